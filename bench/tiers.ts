// The two-tier benchmark (`npm run bench:tiers`): against a private redis-server, each subject in
// a fresh process per round, rounds interleaved:
//   - hit throughput: our L1 over redis vs raw lru-cache (same-run ratio), our L2-only region, and
//     BentoCache L1+L2 with its Redis bus;
//   - 4-process stampede over L1+L2 (ours, BentoCache): creator calls, wake-up p50/p95;
//   - invalidation propagation (a set in one instance seen by another's L1), ours vs BentoCache;
//   - early refresh: a hot key, 100 ms creator, ~10,000 reads/s across 4 processes.
// Prints a markdown report and saves it to bench/results/tiers-<date>.md.

import { availableParallelism, cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRedis } from '../test/helpers/servers.js';
import { fmtOps, median, percentile, runJsonWorker, saveReport, table, version } from './report.js';

const here = dirname(fileURLToPath(import.meta.url));
const workerPath = join(here, 'tiers-worker.ts');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const STAMPEDE_ROUNDS = Number(process.env.BENCH_STAMPEDE_ROUNDS ?? 3);
const HIT_SUBJECTS = ['lru', 'ours-l1', 'bento', 'ours-l2'] as const;
const LABELS: Record<string, string> = {
  lru: 'raw lru-cache get-or-create (baseline)',
  'ours-l1': 'dogpile region, l1 over redis',
  bento: 'BentoCache L1 + redis L2 + redis bus',
  'ours-l2': 'dogpile region, redis only (L2 hit)',
};

interface StampedeReport {
  calls: number;
  creatorReturnedAt: number | null;
  lastReturnAt: number;
}

async function stampede(subject: string, port: number, key: string): Promise<{ calls: number; wakeups: number[] }> {
  const ready: ((line: string | number) => void)[] = [];
  let allReady!: () => void;
  const readyAll = new Promise<void>((r) => {
    allReady = r;
  });
  const runs = Array.from({ length: 4 }, () =>
    runJsonWorker(workerPath, [subject, 'stampede', String(port), key], (send) => {
      ready.push(send);
      if (ready.length === 4) allReady();
    }),
  );
  await readyAll;
  const startAt = Date.now() + 500;
  for (const send of ready) send(startAt);
  const reports = (await Promise.all(runs)) as StampedeReport[];
  const calls = reports.reduce((n, r) => n + r.calls, 0);
  const created = Math.min(...reports.map((r) => r.creatorReturnedAt ?? Number.POSITIVE_INFINITY));
  return { calls, wakeups: reports.filter((r) => r.creatorReturnedAt === null).map((r) => r.lastReturnAt - created) };
}

async function early(port: number, key: string) {
  const ready: ((line: string | number) => void)[] = [];
  let allReady!: () => void;
  const readyAll = new Promise<void>((r) => {
    allReady = r;
  });
  const runs = Array.from({ length: 4 }, () =>
    runJsonWorker(workerPath, ['ours-l1', 'early', String(port), key], (send) => {
      ready.push(send);
      if (ready.length === 4) allReady();
    }),
  );
  await readyAll;
  const startAt = Date.now() + 500;
  for (const send of ready) send(startAt);
  const reports = (await Promise.all(runs)) as { reads: number; creatorAt: number[]; stale: number; waited: number }[];
  const calls = reports.flatMap((r) => r.creatorAt).sort((a, b) => a - b);
  // Regenerations: creator calls more than 1 s apart are separate refreshes; within 1 s, duplicates.
  let refreshes = 0;
  let last = Number.NEGATIVE_INFINITY;
  for (const t of calls) {
    if (t - last > 1000) refreshes++;
    last = t;
  }
  return {
    reads: reports.reduce((n, r) => n + r.reads, 0),
    stale: reports.reduce((n, r) => n + r.stale, 0),
    waited: reports.reduce((n, r) => n + r.waited, 0),
    calls: calls.length,
    refreshes,
  };
}

async function main(): Promise<void> {
  const started = new Date();
  const load = loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
  const redis = await startRedis();
  try {
    const hits = new Map<string, number[]>(HIT_SUBJECTS.map((s) => [s, []]));
    const ratios: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const round = new Map<string, number>();
      for (const s of HIT_SUBJECTS) {
        const { opsPerSec } = (await runJsonWorker(workerPath, [s, 'hit', String(redis.port)])) as { opsPerSec: number };
        hits.get(s)?.push(opsPerSec);
        round.set(s, opsPerSec);
      }
      ratios.push((round.get('ours-l1') as number) / (round.get('lru') as number));
      process.stderr.write(`hit round ${r + 1}/${ROUNDS}: ${[...round].map(([s, v]) => `${s} ${fmtOps(v)}`).join(', ')}\n`);
    }
    const stampedes = new Map<string, { calls: number[]; wakeups: number[] }>([
      ['ours-l1', { calls: [], wakeups: [] }],
      ['bento', { calls: [], wakeups: [] }],
    ]);
    for (let r = 0; r < STAMPEDE_ROUNDS; r++) {
      for (const [s, acc] of stampedes) {
        const { calls, wakeups } = await stampede(s, redis.port, `stampede:${s}:${r}:${Date.now()}`);
        acc.calls.push(calls);
        acc.wakeups.push(...wakeups);
      }
      process.stderr.write(`stampede round ${r + 1}/${STAMPEDE_ROUNDS} done\n`);
    }
    const propagation = new Map<string, number[]>();
    for (const s of ['ours-l1', 'bento']) {
      const { latenciesMs } = (await runJsonWorker(workerPath, [s, 'propagate', String(redis.port)])) as {
        latenciesMs: number[];
      };
      propagation.set(s, latenciesMs);
    }
    process.stderr.write('propagation done\n');
    const hot = await early(redis.port, `early:${Date.now()}`);
    process.stderr.write('early refresh done\n');

    const lines: string[] = [];
    lines.push(`# Two-tier benchmark, ${started.toISOString().slice(0, 10)}`, '');
    lines.push(
      `Machine: ${availableParallelism()} CPUs, ${cpus()[0]?.model ?? 'unknown CPU'}; Node ${process.version}; load average at start ${load} ` +
        `(shared with other work). redis-server private on loopback. Versions: lru-cache ${version('lru-cache')}, ioredis ${version('ioredis')}, bentocache ${version('bentocache')}.`,
      '',
    );
    lines.push(
      `## Hit throughput (${ROUNDS} rounds, each subject in a fresh process per round; 64 callers in flight over 1,000 warm keys; median of 100 ms slices)`,
      '',
    );
    const lruMedian = median(hits.get('lru') as number[]);
    lines.push(
      ...table(
        ['subject', 'median hits/s', 'vs raw lru-cache'],
        'lrr',
        HIT_SUBJECTS.map((s) => {
          const m = median(hits.get(s) as number[]);
          return [LABELS[s] as string, fmtOps(m), `${(m / lruMedian).toFixed(3)}x`];
        }),
      ),
    );
    lines.push(
      '',
      `Same-round ratio ours-l1 / lru-cache: median ${median(ratios).toFixed(3)}x (rounds: ${ratios.map((x) => x.toFixed(2)).join(', ')}).`,
      '',
    );
    lines.push(`## 4-process stampede on one cold key, 100 callers each, 300 ms creator (${STAMPEDE_ROUNDS} rounds)`, '');
    lines.push(
      ...table(
        ['subject', 'creator calls per round', 'wake-up p50', 'wake-up p95'],
        'lrrr',
        [...stampedes].map(([s, acc]) => [
          LABELS[s] as string,
          acc.calls.join(', '),
          acc.wakeups.length ? `${percentile(acc.wakeups, 50).toFixed(1)} ms` : 'n/a',
          acc.wakeups.length ? `${percentile(acc.wakeups, 95).toFixed(1)} ms` : 'n/a',
        ]),
      ),
    );
    lines.push('', 'Wake-up: for each process that did not create, its last caller’s return minus the creator’s return.', '');
    lines.push(
      '## Invalidation propagation (a set in one instance, seen by another instance whose L1 held the old value; 50 rounds)',
      '',
    );
    lines.push(
      ...table(
        ['subject', 'p50', 'p99', 'max'],
        'lrrr',
        [...propagation].map(([s, xs]) => [
          LABELS[s] as string,
          `${percentile(xs, 50).toFixed(1)} ms`,
          `${percentile(xs, 99).toFixed(1)} ms`,
          `${Math.max(...xs).toFixed(1)} ms`,
        ]),
      ),
    );
    lines.push('', 'The reader polls every millisecond, so figures include up to ~1 ms of polling.', '');
    lines.push(
      '## Early refresh (XFetch, beta 1): one hot key, 100 ms creator, expiration 3 s, ~2,500 reads/s in each of 4 processes for 9 s',
      '',
    );
    lines.push(
      `Reads ${hot.reads}; reads that returned a value older than its expiration: ${hot.stale}; reads that waited over 50 ms (a missing value): ${hot.waited}; ` +
        `creator calls ${hot.calls} in ${hot.refreshes} refreshes (calls per refresh ${(hot.calls / Math.max(1, hot.refreshes)).toFixed(2)}).`,
      '',
    );
    const text = `${lines.join('\n')}\n`;
    process.stdout.write(text);
    saveReport('tiers', started, text);
  } finally {
    await redis.stop();
  }
}

await main();
