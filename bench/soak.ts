// The soak benchmark (`npm run bench:soak`, not in CI): SOAK_SECONDS (default 600) of mixed load
// on a redis region (private redis-server) and a memory region, with fail-safe, timeouts, the
// breaker and listeners on, a creator that fails 10% of the time and short expirations. Every
// SOAK_SAMPLE_SECONDS (default 30) the heap is measured after a full GC. Reports the growth from
// the first sample to the last (target: flat within 5%) and the listener and timer counts at the
// end against the start (target: equal). Needs --expose-gc (the npm script passes it).
// Saves bench/results/soak-<date>.md.

import { loadavg } from 'node:os';
import { instrumentRegion } from '../integrations/otel.js';
import { EVENT_NAMES } from '../src/events.js';
import { type CacheRegion, makeRegion } from '../src/index.js';
import { startRedis } from '../test/helpers/servers.js';
import { saveReport, table } from './report.js';

const SECONDS = Number(process.env.SOAK_SECONDS ?? 600);
const SAMPLE_SECONDS = Number(process.env.SOAK_SAMPLE_SECONDS ?? 30);
const KEYS = 5000;
const CONCURRENCY = 16;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc (npm run bench:soak)');
const EVENTS = EVENT_NAMES;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
const listeners = (regions: CacheRegion[]) =>
  regions.reduce((n, r) => n + EVENTS.reduce((m, e) => m + r.listenerCount(e), 0), 0) + process.listenerCount('exit');
const heapMb = () => {
  (gc as () => void)();
  (gc as () => void)();
  return process.memoryUsage().heapUsed / 1024 / 1024;
};

async function load(region: CacheRegion, until: number, counts: { ops: number; errors: number }): Promise<void> {
  let seed = 1;
  const random = () => {
    seed = (seed * 48271) % 2147483647;
    return seed / 2147483647;
  };
  const creator = (key: string) => async () => {
    if (random() < 0.1) throw new Error('database hiccup');
    return { key, at: Date.now(), pad: 'x'.repeat(100) };
  };
  const caller = async () => {
    while (Date.now() < until) {
      const key = `k${Math.floor(random() * KEYS)}`;
      const r = random();
      try {
        if (r < 0.75) await region.getOrCreate(key, creator(key));
        else if (r < 0.85) await region.set(key, { key, at: Date.now() });
        else if (r < 0.97) await region.get(key);
        else await region.delete(key);
      } catch {
        counts.errors++;
      }
      counts.ops++;
      if (counts.ops % 64 === 0) await sleep(1);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, caller));
}

async function main(): Promise<void> {
  const started = new Date();
  const server = await startRedis();
  const options = {
    failSafe: { maxStale: 60, retryAfter: 1 },
    softTimeout: 0.2,
    hardTimeout: 2,
    breaker: { failures: 5, duration: 1 },
    onError: () => {},
  };
  const redis = makeRegion({ name: 'soak-redis', ...options }).configure('redis', {
    expirationTime: 2,
    arguments: { url: `redis://127.0.0.1:${server.port}`, distributedLock: true, redisExpirationTime: 10 },
  });
  const memory = makeRegion({ name: 'soak-memory', ...options }).configure('memory', { expirationTime: 2 });
  await redis.ready();
  const regions = [redis, memory];
  // Listeners as an application would have them: stats counters and OpenTelemetry (no-op global providers).
  let heard = 0;
  for (const r of regions) r.on('create', () => heard++);
  const uninstall = instrumentRegion(regions);

  const counts = { ops: 0, errors: 0 };
  // Counted idle, before the load (once connection set-up has settled), and again idle after it.
  await sleep(1000);
  const startTimers = timers();
  const startListeners = listeners(regions);
  // The load runs SECONDS after a warm-up (a quarter of SECONDS, at most 30 s) that fills the
  // working set (values, fail-safe copies, JIT code), so the first sample is not an empty cache.
  const warmMs = Math.min(30_000, SECONDS * 250);
  const end = Date.now() + warmMs + SECONDS * 1000;
  const running = Promise.all(regions.map((r) => load(r, end, counts)));
  await sleep(warmMs);
  const samples: { t: number; heapMb: number; ops: number }[] = [];
  const t0 = Date.now();
  for (;;) {
    samples.push({ t: Math.round((Date.now() - t0) / 1000), heapMb: heapMb(), ops: counts.ops });
    process.stderr.write(`soak ${samples.at(-1)?.t}s heap ${samples.at(-1)?.heapMb.toFixed(1)} MB, ${counts.ops} ops\n`);
    if (Date.now() + SAMPLE_SECONDS * 1000 > end + 500) break;
    await sleep(SAMPLE_SECONDS * 1000);
  }
  await running;
  await sleep(2500); // background refreshes and soft-timeout creations land, lock leases end
  // Measured with the regions idle, as at the start, but the start had load running: compare the
  // counts that an idle region keeps (listeners) and the timers left after the load.
  const endTimers = timers();
  const endListeners = listeners(regions);
  const first = samples[0]?.heapMb ?? 0;
  const last = samples.at(-1)?.heapMb ?? 0;
  const growth = ((last - first) / first) * 100;
  const lines = [
    `# Soak, ${started.toISOString()}`,
    '',
    `${SECONDS} s (after a ${warmMs / 1000} s warm-up) of mixed load (getOrCreate 75%, set 10%, get 12%, delete 3%; creator fails 10%) over ${KEYS} keys, ${CONCURRENCY} callers on each of a redis and a memory region (fail-safe, soft/hard timeouts, breaker, one listener and dogpile/otel on). Heap after GC every ${SAMPLE_SECONDS} s. Load average at end ${(loadavg()[0] ?? 0).toFixed(2)}.`,
    '',
    ...table(
      ['t (s)', 'heap after GC (MB)', 'ops so far'],
      'rrr',
      samples.map((s) => [String(s.t), s.heapMb.toFixed(2), String(s.ops)]),
    ),
    '',
    `Heap growth first → last sample: ${growth.toFixed(1)}% (target within 5%). Calls: ${counts.ops}, errors (creator failures with no stale value): ${counts.errors}.`,
    '',
    `Region + process listeners: start ${startListeners}, end ${endListeners}. Active timers (idle): before the load ${startTimers}, after it ${endTimers}.`,
    '',
  ];
  uninstall();
  const afterUninstall = listeners(regions);
  lines.push(`After uninstalling dogpile/otel: ${afterUninstall} listeners (the one \`create\` listener remains).`, '');
  await redis.close();
  await memory.close();
  await server.stop();
  await sleep(200);
  lines.push(`Active timers after close: ${timers()}.`, '');
  const text = lines.join('\n');
  process.stdout.write(`${text}\n`);
  saveReport('soak', started, text);
  process.exit(0);
}

await main();
