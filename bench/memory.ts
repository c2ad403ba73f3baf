// The memory benchmark (`npm run bench:memory`): bytes taken by 100,000 entries of a ~200-byte
// record (bench/payload.ts) in raw lru-cache and in dogpile's memory backend (through
// `region.set`, through `region.getOrCreate`, and straight into `MemoryBackend.set`). Each
// measurement is a fresh process that reads heapUsed + external after a full GC, with the store
// empty and then full; rounds interleave the subjects. Prints a markdown table and saves it to
// bench/results/memory-<date>.md.

import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MemoryResult, MemorySubject } from './memory-worker.js';
import { median, runJsonWorker, saveReport, table, version } from './report.js';

const here = dirname(fileURLToPath(import.meta.url));
const workerPath = join(here, 'memory-worker.ts');

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const ENTRIES = Number(process.env.BENCH_ENTRIES ?? 100_000);

const LABELS: Record<MemorySubject, string> = {
  raw: 'raw lru-cache (`cache.set(key, record)`)',
  'ours-set': 'dogpile memory backend via `region.set`',
  'ours-goc': 'dogpile memory backend via `region.getOrCreate`',
  'ours-goc-5ms': 'dogpile memory backend via `region.getOrCreate`, creators taking 5 ms',
  'ours-l1': 'dogpile L1 (`l1: { max }` over the null backend, no bus) via `region.getOrCreate`',
  backend: 'dogpile `MemoryBackend.set(key, new CachedValue(record, { ct, v }))`',
  'ours-clone': 'dogpile memory backend, `clone: true`, via `region.set`',
  'ours-lru': 'dogpile memory backend with `maxSize` (an lru-cache store of `CachedValue`s) via `region.set`',
};
/** The subjects, in the order each round runs them (LABELS' order). */
const ORDER = Object.keys(LABELS) as MemorySubject[];

const MB = 1e6;

async function main(): Promise<void> {
  const started = new Date();
  const loadAtStart = loadavg();
  const rounds: Map<MemorySubject, MemoryResult>[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const round = new Map<MemorySubject, MemoryResult>();
    for (const subject of ORDER) {
      round.set(subject, (await runJsonWorker(workerPath, [subject, String(ENTRIES)])) as MemoryResult);
    }
    rounds.push(round);
    const raw = round.get('raw')?.fullBytes ?? Number.NaN;
    const summary = ORDER.map((s) => {
      const full = round.get(s)?.fullBytes ?? Number.NaN;
      return `${s} ${(full / MB).toFixed(1)} MB (${(full / raw).toFixed(3)}x)`;
    });
    process.stderr.write(`round ${r + 1}/${ROUNDS}: ${summary.join(', ')}\n`);
  }

  const of = (s: MemorySubject, f: (x: MemoryResult) => number): number[] =>
    rounds.map((round) => f(round.get(s) as MemoryResult));
  const perEntry = (x: MemoryResult): number => (x.fullBytes - x.emptyBytes) / x.entries;
  const rawFull = of('raw', (x) => x.fullBytes);
  const rawPerEntry = of('raw', perEntry);
  const rows = ORDER.map((s) => {
    const full = of(s, (x) => x.fullBytes);
    const each = of(s, perEntry);
    return [
      LABELS[s],
      `${(median(full) / MB).toFixed(1)} MB`,
      `${(median(full.map((f, i) => f / (rawFull[i] as number)))).toFixed(3)}x`,
      `${median(each).toFixed(0)} B`,
      `${median(each.map((e, i) => e - (rawPerEntry[i] as number))).toFixed(0)} B`,
      `${(median(of(s, (x) => x.emptyBytes)) / MB).toFixed(2)} MB`,
    ];
  });

  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const lines: string[] = [];
  lines.push(`# Memory benchmark, ${started.toISOString().slice(0, 10)}`);
  lines.push('');
  lines.push(
    `Machine: ${availableParallelism()} CPUs (nproc), ${cpu}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB; Node ${process.version}; ` +
      `${process.platform}/${process.arch}; load average ${loadAtStart.map((x) => x.toFixed(2)).join(' ')} at the start ` +
      `(memory figures do not depend on it). lru-cache ${version('lru-cache')}. Run at ${started.toISOString()}.`,
  );
  lines.push('');
  lines.push(
    `Method: ${ROUNDS} rounds; in each, every subject runs in its own fresh Node process (through tsx, as every ` +
      `benchmark here), makes its store with room for ${ENTRIES.toLocaleString('en-US')} entries, runs a full GC and ` +
      `reads heapUsed + external ("empty"), stores ${ENTRIES.toLocaleString('en-US')} entries of ~200-byte records ` +
      '(bench/payload.ts, each with strings of its own), runs a full GC and reads again ("total"). Ratio = median ' +
      'over rounds of (total ÷ raw lru-cache total in the same round); per entry = (total − empty) ÷ entries.',
  );
  lines.push('');
  lines.push(
    ...table(
      ['Store', 'median total', 'ratio vs raw lru-cache', 'per entry', 'per entry over raw', 'empty (code, store)'],
      'lrrrrr',
      rows,
    ),
  );
  lines.push('');
  const text = lines.join('\n');
  process.stdout.write(`${text}\n`);
  saveReport('memory', started, text);
}

await main();
