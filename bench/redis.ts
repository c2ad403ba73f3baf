// The Redis benchmark (`npm run bench:redis`): starts a private redis-server and compares fresh-hit
// get-or-create throughput (64 calls in flight) of raw ioredis, dogpile's `redis` backend,
// cache-manager + @keyv/redis and BentoCache with a Redis L2 (alone, and behind its memory L1);
// then a cross-process stampede (4 processes x 100 callers, 300 ms creator): creator-call counts and
// the wake-up latency of waiters in other processes. Each library runs in its own fresh process per
// round, rounds interleaved. Prints a markdown table and saves it to bench/results/redis-<date>.md.

import { randomUUID } from 'node:crypto';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRedis } from '../test/helpers/servers.js';
import type { HitResult, StampedeResult, SubjectName } from './redis-worker.js';
import { fmtOps, median, percentile, runJsonWorker, saveReport, span, table, version } from './report.js';

const here = dirname(fileURLToPath(import.meta.url));
const workerPath = join(here, 'redis-worker.ts');

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const STAMPEDE_ROUNDS = Number(process.env.BENCH_STAMPEDE_ROUNDS ?? 5);
const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS ?? 300);
const MEASURE_MS = Number(process.env.BENCH_MEASURE_MS ?? 1000);
const PROCESSES = 4;
const ORDER: readonly SubjectName[] = ['raw', 'raw-ap', 'raw-nr', 'ours', 'cm', 'bento', 'bento-l1'];
const STAMPEDE_ORDER: readonly SubjectName[] = ['ours', 'cm', 'bento', 'bento-l1'];

const LABELS: Record<SubjectName, string> = {
  raw: 'raw ioredis GET (+SET on miss, JSON)',
  'raw-ap': 'same, ioredis `enableAutoPipelining: true`',
  'raw-nr': 'raw node-redis GET (+SET on miss, JSON; pipelines within a tick)',
  ours: 'dogpile `region.getOrCreate` (redis, distributedLock)',
  cm: 'cache-manager `wrap` (@keyv/redis)',
  bento: 'BentoCache `getOrSet` (Redis L2 only)',
  'bento-l1': 'BentoCache `getOrSet` (memory L1 + Redis L2)',
};

/** Runs one worker process (see bench/report.ts runJsonWorker). */
function runWorker(args: readonly string[], onReady?: (send: (line: string | number) => void) => void): Promise<unknown> {
  return runJsonWorker(workerPath, args, onReady);
}

interface StampedeRound {
  readonly calls: number;
  readonly distinctValues: number;
  /** Per waiting process: its last caller's return minus the creator's return (ms); only when one creator ran. */
  readonly wakeMs: number[];
}

async function stampedeRound(subject: SubjectName, port: number): Promise<StampedeRound> {
  const key = `stampede:${randomUUID()}`;
  // Every process first starts, connects and says "ready"; then all get the same start time.
  const starters: ((line: string | number) => void)[] = [];
  const results = (await Promise.all(
    Array.from({ length: PROCESSES }, () =>
      runWorker([subject, 'stampede', String(port), key], (start) => {
        starters.push(start);
        if (starters.length === PROCESSES) {
          const at = Date.now() + 100;
          for (const go of starters) go(at);
        }
      }),
    ),
  )) as StampedeResult[];
  const calls = results.reduce((n, r) => n + r.calls, 0);
  const distinctValues = new Set(results.flatMap((r) => r.values)).size;
  const creator = results.find((r) => r.creatorReturnedAt !== null);
  const wakeMs =
    calls === 1 && creator?.creatorReturnedAt
      ? results.filter((r) => r !== creator).map((r) => r.lastReturnAt - (creator.creatorReturnedAt as number))
      : [];
  return { calls, distinctValues, wakeMs };
}

async function main(): Promise<void> {
  const started = new Date();
  const load = loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
  const server = await startRedis();
  try {
    const port = String(server.port);
    const hits = new Map<SubjectName, number[]>(ORDER.map((s) => [s, []]));
    const ratios = new Map<SubjectName, number[]>(ORDER.map((s) => [s, []]));
    const ratiosAp = new Map<SubjectName, number[]>(ORDER.map((s) => [s, []]));
    const ratiosNr = new Map<SubjectName, number[]>(ORDER.map((s) => [s, []]));
    for (let r = 0; r < ROUNDS; r++) {
      const round = new Map<SubjectName, number>();
      for (const subject of ORDER) {
        const res = (await runWorker([subject, 'hit', port, String(WARMUP_MS), String(MEASURE_MS)])) as HitResult;
        round.set(subject, (res.ops * 1000) / res.ms);
      }
      const raw = round.get('raw') as number;
      const rawAp = round.get('raw-ap') as number;
      const rawNr = round.get('raw-nr') as number;
      for (const [s, ops] of round) {
        ratiosNr.get(s)?.push(ops / rawNr);
        hits.get(s)?.push(ops);
        ratios.get(s)?.push(ops / raw);
        ratiosAp.get(s)?.push(ops / rawAp);
      }
      process.stderr.write(
        `hit round ${r + 1}/${ROUNDS}: ${ORDER.map((s) => `${s} ${fmtOps(round.get(s) as number)}`).join(', ')}\n`,
      );
    }
    const stampedes = new Map<SubjectName, StampedeRound[]>(STAMPEDE_ORDER.map((s) => [s, []]));
    for (let r = 0; r < STAMPEDE_ROUNDS; r++) {
      for (const subject of STAMPEDE_ORDER) stampedes.get(subject)?.push(await stampedeRound(subject, server.port));
      process.stderr.write(`stampede round ${r + 1}/${STAMPEDE_ROUNDS} done\n`);
    }

    const lines: string[] = [];
    lines.push(`# Redis benchmark, ${started.toISOString().slice(0, 10)}`);
    lines.push('');
    lines.push(
      `Machine: ${availableParallelism()} CPUs, ${cpus()[0]?.model ?? 'unknown CPU'}; Node ${process.version}; ` +
        `private redis-server on loopback (same machine); load average at start ${load} (the machine is shared, so ` +
        `absolute figures are noisy: compare ratios within a round). Run at ${started.toISOString()}.`,
    );
    lines.push(
      `Versions: ioredis ${version('ioredis')}, redis (node-redis) ${version('redis')}, cache-manager ${version('cache-manager')}, @keyv/redis ${version('@keyv/redis')}, ` +
        `bentocache ${version('bentocache')}.`,
    );
    lines.push('');
    if (ROUNDS > 0) {
      lines.push('## Fresh-hit throughput (64 calls in flight, 100 warm keys, small object values)');
      lines.push('');
      lines.push(
        `${ROUNDS} rounds; in each, every library runs in its own fresh process in the order ${ORDER.join(', ')}: ` +
          `${WARMUP_MS} ms warm-up, then ${MEASURE_MS} ms timed. Ratios = median over rounds of (ops/s ÷ raw ioredis ops/s ` +
          'in the same round), against the default client and against one with auto-pipelining, the setting dogpile uses ' +
          "for the clients it creates (cache-manager's @keyv/redis rides on node-redis, which pipelines by itself). " +
          'BentoCache with its memory L1 answers hits from process memory, so it is not a Redis ' +
          "round trip per call; it is listed for reference. dogpile's clients also set a 5 s commandTimeout (one timer " +
          'per command, so that a silent server fails calls instead of hanging them); the raw clients do not.',
      );
      lines.push('');
      lines.push(
        ...table(
          [
            'Library',
            'median ops/s',
            'min–max ops/s',
            'ratio vs raw ioredis',
            'ratio vs raw auto-pipelined',
            'ratio vs raw node-redis',
          ],
          'lrrrr',
          ORDER.map((s) => {
            const ops = hits.get(s) as number[];
            return [
              LABELS[s],
              fmtOps(median(ops)),
              `${fmtOps(Math.min(...ops))}–${fmtOps(Math.max(...ops))}`,
              `${median(ratios.get(s) as number[]).toFixed(2)}x`,
              `${median(ratiosAp.get(s) as number[]).toFixed(2)}x`,
              `${median(ratiosNr.get(s) as number[]).toFixed(2)}x`,
            ];
          }),
        ),
      );
      lines.push('');
    }
    lines.push(`## Cross-process stampede (${PROCESSES} processes × 100 callers, one fresh key, 300 ms creator)`);
    lines.push('');
    lines.push(
      `${STAMPEDE_ROUNDS} rounds. Creator calls are totals over the ${PROCESSES} processes (a range means the rounds ` +
        'disagreed). Wake-up latency: for each process that did not create, the time from the creator returning (in ' +
        'another process; this includes its SET) to the last of its callers returning; p50/p95 over all such ' +
        'processes and rounds, only where exactly one creator ran. Every process first starts, connects and warms ' +
        'its creator path on a key of its own, then all start together.',
    );
    lines.push('');
    lines.push(
      ...table(
        ['Library', 'creator calls', 'distinct values', 'wake-up p50 ms', 'wake-up p95 ms'],
        'lrrrr',
        STAMPEDE_ORDER.map((s) => {
          const rounds = stampedes.get(s) as StampedeRound[];
          const wake = rounds.flatMap((r) => r.wakeMs);
          return [
            LABELS[s],
            span(rounds.map((r) => r.calls)),
            span(rounds.map((r) => r.distinctValues)),
            wake.length ? percentile(wake, 50).toFixed(1) : 'n/a',
            wake.length ? percentile(wake, 95).toFixed(1) : 'n/a',
          ];
        }),
      ),
    );
    lines.push('');
    const text = lines.join('\n');
    process.stdout.write(`${text}\n`);
    saveReport('redis', started, text);
  } finally {
    await server.stop();
  }
}

await main();
