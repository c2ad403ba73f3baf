// The template benchmark (`npm run bench:templates`): for Nunjucks, Eta and Handlebars, a page with
// 10 cached blocks whose bodies each busy-wait ~1 ms and include a partial (so dependency digests
// are on and non-trivial). Measures the hit render against the uncached render (per-render
// opt-out), and the per-block cost of a hit on the memory backend: (hit render − render of the same
// page without the blocks) / 10, also as a ratio of that bare page render measured in the same run
// (target ≤ 0.1x), next to the ratio of one awaited region.getOrCreate hit (the floor).
// Medians over several runs. Prints a markdown table and saves it to bench/results/templates-<date>.md.

import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeRegion } from '../src/index.js';
import { median, saveReport } from './report.js';
import { BLOCKS, BODY_MS, subjects } from './template-subjects.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const HIT_ITERATIONS = Number(process.env.BENCH_HITS ?? 3000);
const COLD_ITERATIONS = Number(process.env.BENCH_COLD ?? 10);

/** Mean time per call in microseconds over `n` sequential awaited calls. */
async function timePerCall(fn: () => Promise<unknown>, n: number): Promise<number> {
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await fn();
  return Number(process.hrtime.bigint() - start) / 1000 / n;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'dogpile-bench-tpl-'));
  try {
    const rows: string[] = [];
    for (const s of subjects(dir)) {
      const ctx = { title: 'Bench <page>', user: { id: 42 } };
      const uncachedCtx = { ...ctx, dogpile: { enabled: false } };
      // Warm up the JIT and the cache.
      await s.page(ctx);
      for (let i = 0; i < 500; i++) {
        await s.page(ctx);
        await s.bare(ctx);
        await s.noop(ctx);
      }
      if ((await s.page(ctx)) !== (await s.page(uncachedCtx))) throw new Error(`${s.engine}: cached and uncached output differ`);
      const hit: number[] = [];
      const bare: number[] = [];
      const cold: number[] = [];
      const ratios: number[] = [];
      const floors: number[] = [];
      const reads: number[] = [];
      const region = makeRegion().configure('memory');
      await region.set('k', 'v');
      const make = () => 'v';
      for (let r = 0; r < RUNS; r++) {
        // Hit and bare renders interleaved in short slices, so load changes hit both alike.
        let h = 0;
        let b = 0;
        let n = 0;
        for (let slice = 0; slice < 10; slice++) {
          h += await timePerCall(() => s.page(ctx), HIT_ITERATIONS / 10);
          b += await timePerCall(() => s.bare(ctx), HIT_ITERATIONS / 10);
          n += await timePerCall(() => s.noop(ctx), HIT_ITERATIONS / 10);
        }
        floors.push((n - b) / BLOCKS / b);
        hit.push(h / 10);
        bare.push(b / 10);
        ratios.push((h - b) / 10 / BLOCKS / (b / 10));
        reads.push((await timePerCall(() => region.getOrCreate('k', make), HIT_ITERATIONS)) / (b / 10));
        cold.push(await timePerCall(() => s.page(uncachedCtx), COLD_ITERATIONS));
      }
      const h = median(hit);
      const b = median(bare);
      const c = median(cold);
      const perBlock = (h - b) / BLOCKS;
      rows.push(
        `| ${s.engine} | ${(c / 1000).toFixed(2)} ms | ${h.toFixed(1)} µs | ${b.toFixed(1)} µs | ${(c / h).toFixed(0)}× | ${perBlock.toFixed(2)} µs | **${median(ratios).toFixed(3)}x** | ${median(floors).toFixed(3)}x | ${median(reads).toFixed(3)}x |`,
      );
    }
    const started = new Date();
    const date = started.toISOString().slice(0, 10);
    const table = [
      `## Template fragment cache: ${BLOCKS} cached blocks, each body ~${BODY_MS} ms of CPU (memory backend)`,
      '',
      `Node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'} × ${cpus().length}, ${date}. Medians of ${RUNS} runs (${HIT_ITERATIONS} hit renders, ${COLD_ITERATIONS} uncached renders per run), sequential awaited renders.`,
      '',
      `Load average at start: ${loadavg()
        .map((l) => l.toFixed(2))
        .join(', ')}.`,
      '',
      '| engine | uncached render | hit render | same page without blocks (bare) | speed-up | per-block hit overhead | per block / bare page | no-op tag per block / bare page | one region.getOrCreate hit / bare page |',
      '|---|---|---|---|---|---|---|---|---|',
      ...rows,
      '',
      'Per-block hit overhead = (hit render − render of the same page with the blocks removed) / 10, with dependency digests on (each block includes a partial). "per block / bare page" is the median over runs of that overhead divided by the bare page render of the same run (target ≤ 0.1x). The last two columns are floors measured in the same run: what the engine itself spends on a tag of the same shape that does nothing (Nunjucks: an async tag calling back after one resolved promise; Eta: one awaited call that appends its result; Handlebars: a block helper returning an empty string on a page rendered through the integration), and one awaited memory-region hit, each divided by the same bare render.',
      '',
    ].join('\n');
    console.log(table);
    saveReport('templates', started, table);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
