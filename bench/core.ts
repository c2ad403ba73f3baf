// The core benchmark (`npm run bench`): fresh-hit get-or-create throughput on an in-memory store,
// ours against a raw lru-cache wrapper, cache-manager and BentoCache, on two workloads (1,000 warm
// keys; 10,000 keys of ~200-byte records round-robin, timed from the first hit), plus creator-call
// counts of a cold and an expiry stampede. Each library runs in its own fresh process per round
// (libraries that share code, such as lru-cache, slow each other through shared JIT state), rounds
// interleaved. Prints markdown tables and saves them to bench/results/core-<date>.md.

import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HitResult, StampedeResult, SubjectName, WorkerResult } from './core-worker.js';
import { fmtOps, median, runJsonWorker, saveReport, span, table, version } from './report.js';

const here = dirname(fileURLToPath(import.meta.url));
const workerPath = join(here, 'core-worker.ts');

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
const WIDE_ROUNDS = Number(process.env.BENCH_WIDE_ROUNDS ?? 7);
const STAMPEDE_ROUNDS = Number(process.env.BENCH_STAMPEDE_ROUNDS ?? 3);
const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS ?? 300);
const MEASURE_MS = Number(process.env.BENCH_MEASURE_MS ?? 600);
/** BENCH_SUBJECTS=ours,raw runs only those (raw is always needed for the ratios). */
const ORDER: readonly SubjectName[] = (process.env.BENCH_SUBJECTS?.split(',') as SubjectName[] | undefined) ?? [
  'ours',
  'ours-resilient',
  'raw',
  'ours-lru',
  'ours-clone',
  'cm',
  'bento',
  'bento-noser',
];
const STAMPEDE_ORDER = ORDER.filter((s) => s !== 'ours-clone' && s !== 'ours-resilient' && s !== 'ours-lru');

const LABELS: Record<SubjectName, string> = {
  ours: 'dogpile `region.getOrCreate` (memory)',
  'ours-resilient': 'dogpile `region.getOrCreate` (memory, failSafe + softTimeout + hardTimeout + breaker + backendTimeout)',
  'ours-lru': 'dogpile `region.getOrCreate` (memory, `maxSize`: an lru-cache store of CachedValues)',
  'ours-clone': 'dogpile `region.getOrCreate` (memory, `clone: true`)',
  raw: 'raw lru-cache wrapper',
  cm: 'cache-manager `wrap` (default Keyv Map)',
  bento: 'BentoCache `getOrSet` (memory driver, defaults)',
  'bento-noser': 'BentoCache `getOrSet` (memory driver, `serialize: false`)',
};

type HitMode = 'hit' | 'hit-10k';
type HitRound = Map<SubjectName, HitResult>;

function runWorker(subject: SubjectName, mode: HitMode | 'stampede'): Promise<WorkerResult> {
  return runJsonWorker(workerPath, [subject, mode, String(WARMUP_MS), String(MEASURE_MS)]) as Promise<WorkerResult>;
}

async function main(): Promise<void> {
  const started = new Date();
  const loadAtStart = loadavg();
  const rounds = await hitRounds('hit', ROUNDS);
  const wideRounds = await hitRounds('hit-10k', WIDE_ROUNDS);
  const loadAfterHits = loadavg();
  const stampedeRounds: Map<SubjectName, StampedeResult[]>[] = [];
  for (let r = 0; r < STAMPEDE_ROUNDS; r++) {
    const round = new Map<SubjectName, StampedeResult[]>();
    for (const subject of STAMPEDE_ORDER) round.set(subject, (await runWorker(subject, 'stampede')).stampedes ?? []);
    stampedeRounds.push(round);
    process.stderr.write(`stampede round ${r + 1}/${STAMPEDE_ROUNDS} done\n`);
  }

  const lines: string[] = [];
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const fmtLoad = (xs: number[]): string => xs.map((x) => x.toFixed(2)).join(' ');
  lines.push(`# Core benchmark, ${started.toISOString().slice(0, 10)}`);
  lines.push('');
  lines.push(
    `Machine: ${availableParallelism()} CPUs (nproc), ${cpu}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB; Node ${process.version}; ` +
      `${process.platform}/${process.arch}; load average (1, 5, 15 min) ${fmtLoad(loadAtStart)} at the start, ` +
      `${fmtLoad(loadAfterHits)} after the hit runs. Run at ${started.toISOString()}.`,
  );
  lines.push(
    `Versions: lru-cache ${version('lru-cache')}, cache-manager ${version('cache-manager')} (keyv ${version('keyv')}), ` +
      `bentocache ${version('bentocache')}.`,
  );
  lines.push('');
  lines.push(
    'Method: in each round, every library runs in its own fresh Node process (importing only that library), ' +
      `in the order ${ORDER.join(', ')}. Ratio = median over rounds of (library ops/s ÷ raw lru-cache ops/s in the ` +
      'same round); "ratio range" is the lowest and highest per-round ratio. Expiry on the hit path is 1 h.',
  );
  lines.push('');
  lines.push('## Fresh-hit path, 1,000 warm keys');
  lines.push('');
  lines.push(
    `${ROUNDS} rounds. A process stores 1,000 keys (small objects), runs ${WARMUP_MS} ms of warm-up passes, then times ` +
      `sequentially awaited get-or-create hits over those keys for ≥${MEASURE_MS} ms in 100 ms slices; its figure is ` +
      'the median slice.',
  );
  lines.push('');
  lines.push(...hitTable(rounds));
  lines.push('');
  lines.push('## Fresh-hit path, 10,000 keys round-robin (the workload measured from outside)');
  lines.push('');
  lines.push(
    `${WIDE_ROUNDS} rounds. A process stores 10,000 keys of ~200-byte records (bench/payload.ts), then times ` +
      'sequentially awaited get-or-create hits over them round-robin from the first hit (no warm-up passes: JIT ' +
      `tier-up counts), until 1M calls or ${MEASURE_MS} ms; its figure is calls ÷ time.`,
  );
  lines.push('');
  lines.push(...hitTable(wideRounds));
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
  for (const s of STAMPEDE_ORDER) {
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

/** `count` rounds of `mode`, each library in a fresh process per round, in ORDER. */
async function hitRounds(mode: HitMode, count: number): Promise<HitRound[]> {
  const all: HitRound[] = [];
  for (let r = 0; r < count; r++) {
    const round: HitRound = new Map();
    for (const subject of ORDER) {
      const { hit } = await runWorker(subject, mode);
      if (!hit) throw new Error(`worker ${subject} returned no hit result`);
      round.set(subject, hit);
    }
    all.push(round);
    const raw = round.get('raw')?.opsPerSec ?? Number.NaN;
    const summary = ORDER.map((s) => {
      const ops = round.get(s)?.opsPerSec ?? Number.NaN;
      return `${s} ${fmtOps(ops)} (${(ops / raw).toFixed(3)}x)`;
    });
    process.stderr.write(`${mode} round ${r + 1}/${count}: ${summary.join(', ')}\n`);
  }
  return all;
}

/** Median ops/s and range per library, and the median and range of its per-round ratio to raw. */
function hitTable(rounds: readonly HitRound[]): string[] {
  const opsOf = (s: SubjectName): number[] => rounds.map((round) => round.get(s)?.opsPerSec ?? Number.NaN);
  const rawPerRound = opsOf('raw');
  const rows = ORDER.map((s) => {
    const ops = opsOf(s);
    const ratios = ops.map((o, i) => o / (rawPerRound[i] as number));
    return [
      LABELS[s],
      fmtOps(median(ops)),
      `${fmtOps(Math.min(...ops))}–${fmtOps(Math.max(...ops))}`,
      `${median(ratios).toFixed(3)}x`,
      `${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}`,
    ];
  });
  return table(['Library', 'median ops/s', 'min–max ops/s', 'median ratio vs raw lru-cache', 'ratio range'], 'lrrrr', rows);
}

await main();
