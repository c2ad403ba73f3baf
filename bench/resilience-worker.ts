// One measurement of bench/resilience.ts in a fresh process. Usage:
//   resilience-worker.ts hit <subject> <keys> <warmupMs> <measureMs>
//     fresh-hit getOrCreate ops/s over <keys> warm keys, round-robin (~200-byte objects);
//     subjects: raw (lru-cache wrapper), plain (region, no options), options (failSafe +
//     softTimeout + hardTimeout), listener (plain + one `hit` listener), guarded (options + breaker),
//     all (guarded + backendTimeout: every resilience option)
//   resilience-worker.ts storm <seconds> <retryAfter>
//     1,000 callers per second on a stale key whose creator throws, fail-safe on
//   resilience-worker.ts down <subject> <calls>
//     per-call getOrCreate latency on missing keys: memory (the miss path) or redis-open (a redis
//     backend whose server is gone, circuit open)
// Prints one JSON line.
import { makeRegion } from '../src/index.js';
import { freePort } from '../test/helpers/servers.js';
import { hitSubject, warmKeys } from './hit-subjects.js';
import { median, percentile } from './report.js';

const [mode, a1, a2, a3, a4] = process.argv.slice(2);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function hit(subject: string, keyCount: number, warmupMs: number, measureMs: number) {
  const call = hitSubject(subject);
  const { keys, creators } = await warmKeys(call, keyCount);
  let i = 0;
  const pass = async (n: number) => {
    for (let j = 0; j < n; j++) {
      await call(keys[i] as string, creators[i] as () => Promise<object>);
      i = i + 1 === keyCount ? 0 : i + 1;
    }
  };
  let end = performance.now() + warmupMs;
  while (performance.now() < end) await pass(1000);
  const slices: number[] = [];
  let ops = 0;
  const start = performance.now();
  end = start + measureMs;
  while (performance.now() < end && ops < 1_000_000) {
    const t0 = performance.now();
    await pass(10_000);
    slices.push(10_000 / ((performance.now() - t0) / 1000));
    ops += 10_000;
  }
  return { opsPerSec: median(slices), ops };
}

async function storm(seconds: number, retryAfter: number) {
  const region = makeRegion({ failSafe: { maxStale: 3600, retryAfter } }).configure('memory', { expirationTime: 1 });
  await region.set('k', 'last good');
  await sleep(1100);
  let creatorCalls = 0;
  let stale = 0;
  let errors = 0;
  let other = 0;
  const creator = async () => {
    creatorCalls++;
    await sleep(20); // a database that takes 20 ms to fail
    throw new Error('database down');
  };
  const pending: Promise<void>[] = [];
  const started = Date.now();
  // 1,000 callers per second: 50 every 50 ms.
  for (let tick = 0; tick < seconds * 20; tick++) {
    for (let c = 0; c < 50; c++) {
      pending.push(
        region.getOrCreate('k', creator).then(
          (v) => {
            if (v === 'last good') stale++;
            else other++;
          },
          () => {
            errors++;
          },
        ),
      );
    }
    await sleep(Math.max(0, started + (tick + 1) * 50 - Date.now()));
  }
  await Promise.all(pending);
  return { callers: pending.length, creatorCalls, stale, errors, other, seconds, retryAfter };
}

async function down(subject: string, calls: number) {
  let region: ReturnType<typeof makeRegion>;
  if (subject === 'memory') {
    region = makeRegion().configure('memory', { expirationTime: 60 });
  } else {
    const port = await freePort(); // nothing listens there: the server is gone
    region = makeRegion({ breaker: { failures: 3, duration: 3600 }, backendTimeout: 0.5, onError: () => {} }).configure('redis', {
      expirationTime: 60,
      arguments: { url: `redis://127.0.0.1:${port}`, connectTimeout: 0.2, commandTimeout: 0.2 },
    });
    await region.ready();
    let opened = false;
    region.on('breaker', (p) => {
      if (p.state === 'open') opened = true;
    });
    for (let i = 0; !opened && i < 100; i++) await region.getOrCreate(`warm${i}`, async () => ({ i }));
    if (!opened) throw new Error('the circuit did not open');
  }
  const creator = async () => ({ id: 1, name: 'value' });
  for (let i = 0; i < 2000; i++) await region.getOrCreate(`w${i}`, creator); // warm the JIT
  const times: number[] = [];
  for (let i = 0; i < calls; i++) {
    const t0 = performance.now();
    await region.getOrCreate(`m${i}`, creator);
    times.push((performance.now() - t0) * 1000);
  }
  await region.close().catch(() => {});
  return { subject, calls, medianUs: median(times), p99Us: percentile(times, 99) };
}

let result: unknown;
if (mode === 'hit') result = await hit(a1 as string, Number(a2), Number(a3), Number(a4));
else if (mode === 'storm') result = await storm(Number(a1), Number(a2));
else if (mode === 'down') result = await down(a1 as string, Number(a2));
else throw new Error(`unknown mode ${mode}`);
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
