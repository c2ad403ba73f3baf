// One round of the core benchmark for one library, in a fresh process (spawned by bench/core.ts).
// Mode `hit`: fresh-hit ops/s of get-or-create on an in-memory store (1,000 keys, warmed up).
// Mode `hit-10k`: the same over 10,000 keys of ~200-byte records read round-robin, timed from the
// first hit (JIT warm-up included), up to 1M calls or `measureMs`. Mode `stampede`: creator calls
// of a cold and of expiry stampedes of concurrent callers. Prints one JSON line (a WorkerResult)
// on stdout. Usage: core-worker.ts <subject> [hit|hit-10k|stampede] [warmupMs] [measureMs]

import { setTimeout as sleep } from 'node:timers/promises';
import type { LRUCache as LRU } from 'lru-cache';
import { payload } from './payload.js';
import { median } from './report.js';

// Each library is imported only in the process that measures it, so no other library's code is
// even loaded next to it.

/** The libraries (and configurations) the benchmark knows. */
export const SUBJECTS = ['ours', 'ours-resilient', 'ours-lru', 'ours-clone', 'raw', 'cm', 'bento', 'bento-noser'] as const;
export type SubjectName = (typeof SUBJECTS)[number];

/** Outcome of one stampede scenario. */
export interface StampedeResult {
  scenario: string;
  /** Creator calls, counted after the callers resolved and background work settled. */
  creatorCalls: number;
  /** Callers that got the old value. */
  stale: number;
  /** Callers that got the newly created value (they waited for it). */
  fresh: number;
  /** Callers that rejected. */
  errors: number;
}

/** Fresh-hit throughput of one process. */
export interface HitResult {
  /** Median over the slices: robust to bursts of load from other processes on the machine. */
  opsPerSec: number;
  /** Total ops over total time. */
  meanOpsPerSec: number;
  ops: number;
  elapsedMs: number;
  slices: number;
}

/** What a worker prints (one of `hit` or `stampedes`, by mode). */
export interface WorkerResult {
  subject: SubjectName;
  /** Mode `hit` or `hit-10k`. */
  hit?: HitResult;
  stampedes?: StampedeResult[];
}

type Creator<V> = () => Promise<V>;
type GetOrCreate = <V>(key: string, creator: Creator<V>) => Promise<V>;

interface Subject {
  /** The hit-path call, on a store whose TTL (1 h) never lapses during the run. */
  hit: GetOrCreate;
  /** Stampede setups: each gets a fresh store. */
  scenarios: StampedeScenario[];
}

interface StampedeScenario {
  name: string;
  /** Builds a fresh store, and says how to make a value stored in it expire. */
  make(): { call: GetOrCreate; expire: () => Promise<void> };
}

const KEYS = 1_000;
const WIDE_KEYS = 10_000;
const WIDE_MAX_CALLS = 1_000_000;
const CALLERS = 1_000;
const CREATOR_MS = 50;
const SHORT_TTL_MS = 100;
const HOUR_S = 3600;
const SLICE_MS = 100;

const lapse = (): Promise<void> => sleep(SHORT_TTL_MS + 50);

async function subject(name: SubjectName): Promise<Subject> {
  switch (name) {
    case 'ours': {
      const { makeRegion } = await import('../src/index.js');
      const region = makeRegion().configure('memory', { expirationTime: HOUR_S });
      return {
        hit: (key, creator) => region.getOrCreate(key, creator),
        scenarios: [
          {
            name: `expirationTime ${SHORT_TTL_MS} ms, wait ${SHORT_TTL_MS + 50} ms (value stays in memory, expired)`,
            make: () => {
              const r = makeRegion().configure('memory', { expirationTime: SHORT_TTL_MS / 1000 });
              return { call: (k, c) => r.getOrCreate(k, c), expire: lapse };
            },
          },
          {
            name: `same, with backgroundRefresh: true`,
            make: () => {
              const r = makeRegion({ backgroundRefresh: true }).configure('memory', { expirationTime: SHORT_TTL_MS / 1000 });
              return { call: (k, c) => r.getOrCreate(k, c), expire: lapse };
            },
          },
        ],
      };
    }
    case 'ours-resilient': {
      // Every resilience option on (no listener): the fresh-hit path must not pay for them.
      const { makeRegion } = await import('../src/index.js');
      const region = makeRegion({
        failSafe: { maxStale: 600, retryAfter: 5 },
        softTimeout: 0.5,
        hardTimeout: 5,
        breaker: { failures: 5, duration: 5 },
        backendTimeout: 0.5,
      }).configure('memory', { expirationTime: HOUR_S });
      return { hit: (key, creator) => region.getOrCreate(key, creator), scenarios: [] };
    }
    case 'ours-lru': {
      // A store that needs lru-cache (maxSize): CachedValue objects, as every store was before CompactLru.
      const { makeRegion } = await import('../src/index.js');
      const region = makeRegion().configure('memory', { expirationTime: HOUR_S, arguments: { maxSize: 1e9 } });
      return { hit: (key, creator) => region.getOrCreate(key, creator), scenarios: [] };
    }
    case 'ours-clone': {
      const { makeRegion } = await import('../src/index.js');
      const region = makeRegion().configure('memory', { expirationTime: HOUR_S, arguments: { clone: true } });
      return { hit: (key, creator) => region.getOrCreate(key, creator), scenarios: [] };
    }
    case 'raw': {
      const { LRUCache } = await import('lru-cache');
      const cache = new LRUCache<string, object>({ max: 10_000 });
      const wrapper = (c: LRU<string, object>): GetOrCreate =>
        async function raw<V>(k: string, creator: Creator<V>): Promise<V> {
          const v = c.get(k);
          if (v !== undefined) return v as V;
          const n = await creator();
          c.set(k, n as object);
          return n;
        };
      return {
        hit: wrapper(cache),
        scenarios: [
          {
            name: `lru-cache ttl ${SHORT_TTL_MS} ms, wait ${SHORT_TTL_MS + 50} ms (no single-flight)`,
            make: () => ({ call: wrapper(new LRUCache<string, object>({ max: 10_000, ttl: SHORT_TTL_MS })), expire: lapse }),
          },
        ],
      };
    }
    case 'cm': {
      const { createCache } = await import('cache-manager');
      const cache = createCache();
      return {
        hit: (key, creator) => cache.wrap(key, creator, HOUR_S * 1000),
        scenarios: [
          {
            name: `wrap ttl ${SHORT_TTL_MS} ms, wait ${SHORT_TTL_MS + 50} ms (entry gone; no stale serving)`,
            make: () => {
              const c = createCache();
              return { call: (k, f) => c.wrap(k, f, SHORT_TTL_MS), expire: lapse };
            },
          },
          {
            name: `wrap ttl 1000 ms, refreshThreshold 950 ms, wait ${SHORT_TTL_MS + 50} ms (refresh-ahead window)`,
            make: () => {
              const c = createCache();
              return { call: (k, f) => c.wrap(k, f, 1000, 950), expire: lapse };
            },
          },
        ],
      };
    }
    case 'bento':
    case 'bento-noser': {
      const { BentoCache, bentostore } = await import('bentocache');
      const { memoryDriver } = await import('bentocache/drivers/memory');
      const serialize = name === 'bento';
      const make = () =>
        new BentoCache({
          default: 'memory',
          stores: { memory: bentostore().useL1Layer(memoryDriver({ maxItems: 10_000, serialize })) },
        });
      const bento = make();
      return {
        hit: (key, factory) => bento.getOrSet({ key, factory, ttl: HOUR_S * 1000 }),
        scenarios: [
          {
            name: `getOrSet ttl ${SHORT_TTL_MS} ms, no grace, wait ${SHORT_TTL_MS + 50} ms (entry gone)`,
            make: () => {
              const b = make();
              return { call: (key, factory) => b.getOrSet({ key, factory, ttl: SHORT_TTL_MS }), expire: lapse };
            },
          },
          {
            name: `getOrSet ttl ${SHORT_TTL_MS} ms, grace 1h (timeout 0 default), wait ${SHORT_TTL_MS + 50} ms`,
            make: () => {
              const b = make();
              return { call: (key, factory) => b.getOrSet({ key, factory, ttl: SHORT_TTL_MS, grace: '1h' }), expire: lapse };
            },
          },
        ],
      };
    }
  }
}

/**
 * Sequentially awaited hits over a pre-warmed working set of KEYS keys, timed in slices of
 * SLICE_MS (whole passes over the keys) for at least `measureMs` in all.
 */
async function measureHits(call: GetOrCreate, warmupMs: number, measureMs: number): Promise<HitResult> {
  const keys = Array.from({ length: KEYS }, (_, i) => `user:${i}`);
  const values = keys.map((k, i) => ({ id: i, name: k }));
  let misses = 0;
  const creators = values.map((v) => async () => {
    misses++;
    return v;
  });
  for (let i = 0; i < KEYS; i++) await call(keys[i] as string, creators[i] as Creator<object>);
  const missesAfterWarm = misses;
  const pass = async (): Promise<void> => {
    for (let i = 0; i < KEYS; i++) await call(keys[i] as string, creators[i] as Creator<object>);
  };
  let end = performance.now() + warmupMs;
  while (performance.now() < end) await pass();
  const slices: number[] = [];
  let ops = 0;
  const start = performance.now();
  end = start + measureMs;
  let now = start;
  while (now < end) {
    const sliceStart = now;
    let sliceOps = 0;
    while (now - sliceStart < SLICE_MS) {
      await pass();
      sliceOps += KEYS;
      now = performance.now();
    }
    slices.push((sliceOps / (now - sliceStart)) * 1000);
    ops += sliceOps;
  }
  if (misses !== missesAfterWarm) throw new Error(`hit path called the creator ${misses - missesAfterWarm} times`);
  const elapsedMs = now - start;
  return { opsPerSec: median(slices), meanOpsPerSec: (ops / elapsedMs) * 1000, ops, elapsedMs, slices: slices.length };
}

/**
 * The workload measured from outside (issue 9): WIDE_KEYS keys, each a ~200-byte record, created
 * once, then read round-robin with sequentially awaited get-or-create calls from the very first
 * hit (no warm-up passes, so JIT tier-up counts) until WIDE_MAX_CALLS calls or `measureMs`.
 */
async function measureWideHits(call: GetOrCreate, measureMs: number): Promise<HitResult> {
  const keys = Array.from({ length: WIDE_KEYS }, (_, i) => `user:${i}`);
  let misses = 0;
  const creators = keys.map((_, i) => async () => {
    misses++;
    return payload(i);
  });
  for (let i = 0; i < WIDE_KEYS; i++) await call(keys[i] as string, creators[i] as Creator<object>);
  const missesAfterWarm = misses;
  const start = performance.now();
  const end = start + measureMs;
  let calls = 0;
  let now = start;
  // Check the clock every 1,000 calls: reading it on every call would be part of the measurement.
  while (calls < WIDE_MAX_CALLS && now < end) {
    for (let j = 0; j < 1_000; j++) {
      const i = calls % WIDE_KEYS;
      await call(keys[i] as string, creators[i] as Creator<object>);
      calls++;
    }
    now = performance.now();
  }
  if (misses !== missesAfterWarm) throw new Error(`hit path called the creator ${misses - missesAfterWarm} times`);
  const elapsedMs = now - start;
  const opsPerSec = (calls / elapsedMs) * 1000;
  return { opsPerSec, meanOpsPerSec: opsPerSec, ops: calls, elapsedMs, slices: 1 };
}

/** CALLERS concurrent calls on one key; counts creator calls and who got the old vs new value. */
async function stampede(scenario: string, call: GetOrCreate, expireFirst: (() => Promise<void>) | null): Promise<StampedeResult> {
  const key = 'hot';
  if (expireFirst) {
    await call(key, async () => 'old');
    await expireFirst();
  }
  let creatorCalls = 0;
  const creator = async (): Promise<string> => {
    creatorCalls++;
    await sleep(CREATOR_MS);
    return 'new';
  };
  const settled = await Promise.allSettled(Array.from({ length: CALLERS }, () => call(key, creator)));
  await sleep(CREATOR_MS * 3); // let background refreshes finish before counting creator calls
  let stale = 0;
  let fresh = 0;
  let errors = 0;
  for (const s of settled) {
    if (s.status === 'rejected') errors++;
    else if (s.value === 'old') stale++;
    else if (s.value === 'new') fresh++;
  }
  return { scenario, creatorCalls, stale, fresh, errors };
}

async function main(): Promise<void> {
  const [name, mode = 'hit', warmup = '300', measure = '600'] = process.argv.slice(2) as [SubjectName, string?, string?, string?];
  if (!SUBJECTS.includes(name)) throw new Error(`unknown subject ${JSON.stringify(name)}; one of ${SUBJECTS.join(', ')}`);
  const s = await subject(name);
  const result: WorkerResult = { subject: name };
  if (mode === 'hit') {
    result.hit = await measureHits(s.hit, Number(warmup), Number(measure));
  } else if (mode === 'hit-10k') {
    result.hit = await measureWideHits(s.hit, Number(measure));
  } else if (mode === 'stampede') {
    const stampedes: StampedeResult[] = [];
    const cold = s.scenarios[0]?.make();
    if (cold) stampedes.push(await stampede('cold', cold.call, null));
    for (const sc of s.scenarios) {
      const { call, expire } = sc.make();
      stampedes.push(await stampede(`expiry: ${sc.name}`, call, expire));
    }
    result.stampedes = stampedes;
  } else {
    throw new Error(`unknown mode ${JSON.stringify(mode)}; hit, hit-10k or stampede`);
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0); // some peers keep timers alive
}

await main();
