// The core benchmark (`npm run bench`): fresh-hit get-or-create throughput on an in-memory store,
// ours against a raw lru-cache wrapper, cache-manager and BentoCache, plus creator-call counts of a
// cold and an expiry stampede. Each library runs in its own fresh process per round (libraries that
// share code, such as lru-cache, slow each other through shared JIT state), rounds interleaved.
// Prints a markdown table and saves it to bench/results/core-<date>.md.

import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HitResult, StampedeResult, SubjectName, WorkerResult } from './core-worker.js';
import { fmtOps, median, runJsonWorker, saveReport, span, table, version } from './report.js';

const here = dirname(fileURLToPath(import.meta.url));
const workerPath = join(here, 'core-worker.ts');

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
const STAMPEDE_ROUNDS = Number(process.env.BENCH_STAMPEDE_ROUNDS ?? 3);
const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS ?? 300);
const MEASURE_MS = Number(process.env.BENCH_MEASURE_MS ?? 600);
const ORDER: readonly SubjectName[] = ['ours', 'raw', 'cm', 'bento', 'bento-noser'];

const LABELS: Record<SubjectName, string> = {
  ours: 'dogpile `region.getOrCreate` (memory)',
  raw: 'raw lru-cache wrapper',
  cm: 'cache-manager `wrap` (default Keyv Map)',
  bento: 'BentoCache `getOrSet` (memory driver, defaults)',
  'bento-noser': 'BentoCache `getOrSet` (memory driver, `serialize: false`)',
};

function runWorker(subject: SubjectName, mode: 'hit' | 'stampede'): Promise<WorkerResult> {
  return runJsonWorker(workerPath, [subject, mode, String(WARMUP_MS), String(MEASURE_MS)]) as Promise<WorkerResult>;
}

async function main(): Promise<void> {
  const started = new Date();
  const rounds: Map<SubjectName, HitResult>[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const round = new Map<SubjectName, HitResult>();
    for (const subject of ORDER) {
      const { hit } = await runWorker(subject, 'hit');
      if (!hit) throw new Error(`worker ${subject} returned no hit result`);
      round.set(subject, hit);
    }
    rounds.push(round);
    const raw = round.get('raw')?.opsPerSec ?? Number.NaN;
    const summary = ORDER.map((s) => {
      const ops = round.get(s)?.opsPerSec ?? Number.NaN;
      return `${s} ${fmtOps(ops)} (${(ops / raw).toFixed(3)}x)`;
    });
    process.stderr.write(`hit round ${r + 1}/${ROUNDS}: ${summary.join(', ')}\n`);
  }
  const stampedeRounds: Map<SubjectName, StampedeResult[]>[] = [];
  for (let r = 0; r < STAMPEDE_ROUNDS; r++) {
    const round = new Map<SubjectName, StampedeResult[]>();
    for (const subject of ORDER) round.set(subject, (await runWorker(subject, 'stampede')).stampedes ?? []);
    stampedeRounds.push(round);
    process.stderr.write(`stampede round ${r + 1}/${STAMPEDE_ROUNDS} done\n`);
  }

  const opsOf = (s: SubjectName): number[] => rounds.map((round) => round.get(s)?.opsPerSec ?? Number.NaN);
  const lines: string[] = [];
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  lines.push(`# Core benchmark, ${started.toISOString().slice(0, 10)}`);
  lines.push('');
  lines.push(
    `Machine: ${availableParallelism()} CPUs (nproc), ${cpu}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB; Node ${process.version}; ` +
      `${process.platform}/${process.arch}; load average at start ${loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}. Run at ${started.toISOString()}.`,
  );
  lines.push(
    `Versions: lru-cache ${version('lru-cache')}, cache-manager ${version('cache-manager')} (keyv ${version('keyv')}), ` +
      `bentocache ${version('bentocache')}.`,
  );
  lines.push('');
  lines.push(
    `Method: ${ROUNDS} rounds; in each, every library runs in its own fresh Node process (importing only that library), ` +
      `in the order ${ORDER.join(', ')}. A process warms 1,000 keys (values are small objects), runs ${WARMUP_MS} ms of ` +
      `warm-up passes, then times sequentially awaited get-or-create hits over those keys for ≥${MEASURE_MS} ms in ` +
      `100 ms slices; its figure is the median slice. Expiry on the hit path is 1 h. ` +
      `Ratio = median over rounds of (library ops/s ÷ raw lru-cache ops/s in the same round).`,
  );
  lines.push('');
  lines.push('## Fresh-hit path');
  lines.push('');
  const hitRows: string[][] = [];
  const rawPerRound = opsOf('raw');
  for (const s of ORDER) {
    const ops = opsOf(s);
    const ratios = ops.map((o, i) => o / (rawPerRound[i] as number));
    hitRows.push([
      LABELS[s],
      fmtOps(median(ops)),
      `${fmtOps(Math.min(...ops))}–${fmtOps(Math.max(...ops))}`,
      `${median(ratios).toFixed(3)}x`,
    ]);
  }
  lines.push(...table(['Library', 'median ops/s', 'min–max ops/s', 'median ratio vs raw lru-cache'], 'lrrr', hitRows));
  lines.push('');
  lines.push('## Stampedes (1,000 concurrent callers on one key, creator takes 50 ms)');
  lines.push('');
  lines.push(
    `${STAMPEDE_ROUNDS} rounds, each library in its own fresh process. Counts are per round; a range means the rounds disagreed. "Got old value" = returned the expired/stale value at once; ` +
      '"waited" = returned the newly created value. Creator calls are counted 150 ms after all callers settled, so ' +
      'background refreshes are included.',
  );
  lines.push('');
  const stampedeRows: string[][] = [];
  for (const s of ORDER) {
    const results = stampedeRounds.map((round) => round.get(s) ?? []);
    const scenarios = results[0]?.map((x) => x.scenario) ?? [];
    for (const scenario of scenarios) {
      const pick = (f: (x: StampedeResult) => number): string =>
        span(results.map((r) => f(r.find((x) => x.scenario === scenario) as StampedeResult)));
      stampedeRows.push([
        LABELS[s],
        scenario,
        pick((x) => x.creatorCalls),
        pick((x) => x.stale),
        pick((x) => x.fresh),
        pick((x) => x.errors),
      ]);
    }
  }
  lines.push(
    ...table(['Library', 'Scenario', 'creator calls', 'got old value', 'waited for new', 'errors'], 'llrrrr', stampedeRows),
  );
  lines.push('');
  const text = lines.join('\n');
  process.stdout.write(`${text}\n`);
  saveReport('core', started, text);
}

await main();
