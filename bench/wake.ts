// Where a cross-process stampede's wake-up goes (`node --import tsx bench/wake.ts`; env WAKE_ROUNDS,
// WAKE_TRACE=1 prints each waiter's steps). Against a private redis-server, each round runs:
//   - the bench:tiers stampede (4 processes, 100 callers each, one cold key, 300 ms creator, ours
//     with l1 over redis), wake-up as bench:tiers defines it: per non-creating process, its last
//     caller's return minus the creator's return (in the creating process);
//   - the floor: 4 fresh processes, one PUBLISHes a message of the same size over a bare ioredis
//     client at the same point (300 ms after the common start), the 3 others subscribed; latency:
//     receipt minus the publish call.
// Both use the same cross-process clock (performance.timeOrigin + performance.now()).

import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRedis } from '../test/helpers/servers.js';
import { percentile, runJsonWorker } from './report.js';

const here = dirname(fileURLToPath(import.meta.url));
const workerPath = join(here, 'wake-worker.ts');
const ROUNDS = Number(process.env.WAKE_ROUNDS ?? 5);
const TRACE = process.env.WAKE_TRACE === '1';
/** With WAKE_TRACE, print only the rounds with a wake-up over this many ms. */
const TRACE_OVER = Number(process.env.WAKE_TRACE_OVER ?? 0);

async function together<T>(args: (i: number) => string[], env: (i: number) => Record<string, string>): Promise<T[]> {
  const ready: ((line: string | number) => void)[] = [];
  let allReady!: () => void;
  const readyAll = new Promise<void>((r) => {
    allReady = r;
  });
  const runs = Array.from({ length: 4 }, (_, i) => {
    const saved = { ...process.env };
    Object.assign(process.env, env(i));
    const run = runJsonWorker(workerPath, args(i), (send) => {
      ready.push(send);
      if (ready.length === 4) allReady();
    });
    process.env = saved;
    return run;
  });
  await readyAll;
  const startAt = Date.now() + 500;
  for (const send of ready) send(startAt);
  return (await Promise.all(runs)) as T[];
}

interface Traced {
  calls: number;
  creatorReturnedAt: number | null;
  lastReturnAt: number;
  values: string[];
  trace: [string, number][];
}

const load = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
const redis = await startRedis();
const wakeups: number[] = [];
const floors: number[] = [];
const calls: number[] = [];
const loads: string[] = [load()];
try {
  for (let r = 0; r < ROUNDS; r++) {
    const key = `wake:${r}:${Date.now()}`;
    const reports = await together<Traced>(
      () => ['stampede', String(redis.port), key],
      () => ({}),
    );
    const made = Math.min(...reports.map((x) => x.creatorReturnedAt ?? Number.POSITIVE_INFINITY));
    calls.push(reports.reduce((n, x) => n + x.calls, 0));
    const values = new Set(reports.flatMap((x) => x.values));
    const round = reports.filter((x) => x.creatorReturnedAt === null).map((x) => x.lastReturnAt - made);
    wakeups.push(...round);
    const floor = await together<{ publishedAt: number | null; receivedAt: number | null }>(
      () => ['pubsub', String(redis.port), key],
      (i) => (i === 0 ? { WAKE_PUBLISHER: '1' } : { WAKE_PUBLISHER: '0' }),
    );
    const published = floor[0]?.publishedAt as number;
    const fl = floor.slice(1).map((x) => (x.receivedAt ?? Number.NaN) - published);
    floors.push(...fl);
    process.stderr.write(
      `round ${r + 1}: creator calls ${calls.at(-1)}, values ${values.size}, wake-ups ${round.map((x) => x.toFixed(1)).join(' ')} ms; ` +
        `floor ${fl.map((x) => x.toFixed(1)).join(' ')} ms\n`,
    );
    if (TRACE && Math.max(...round) > TRACE_OVER) {
      for (const rep of reports) {
        const who = rep.creatorReturnedAt === null ? 'waiter' : 'creator';
        process.stderr.write(`  ${who}:\n`);
        for (const [label, t] of rep.trace.filter(([, at]) => at >= made - 1))
          process.stderr.write(`    ${(t - made).toFixed(2).padStart(8)} ms  ${label}\n`);
      }
    }
  }
  loads.push(load());
  const fmt = (xs: number[]) =>
    `p50 ${percentile(xs, 50).toFixed(1)} ms, p95 ${percentile(xs, 95).toFixed(1)} ms, max ${Math.max(...xs).toFixed(1)} ms`;
  process.stdout.write(
    `${JSON.stringify({ rounds: ROUNDS, load: loads, calls, wakeups, floors })}\n` +
      `wake-up (${wakeups.length} waiting processes): ${fmt(wakeups)}\n` +
      `floor, bare ioredis PUBLISH -> subscriber (${floors.length}): ${fmt(floors)}\n` +
      `load average: ${loads.join(' -> ')}\n`,
  );
} finally {
  await redis.stop();
}
