// Worker process of the two-tier benchmark (bench/tiers.ts): one subject per process. Arguments:
//   <subject> <mode> <redisPort> [<key>]
// mode "hit": fresh-hit get-or-create throughput, 64 calls in flight over 1,000 warm keys, median
//   of 100 ms slices after a warm-up; prints { opsPerSec }.
// mode "stampede": prints "ready", reads the start time from stdin, then 100 concurrent
//   get-or-create of one cold key with a 300 ms creator; prints { calls, creatorReturnedAt, lastReturnAt }.
// mode "propagate": two instances in this process (two buses); the writer sets a key 50 times,
//   the reader (whose L1 holds the old value) polls every millisecond; prints { latenciesMs }.
// mode "early": prints "ready", reads the start time; then ~2,500 reads/s of one hot key for
//   EARLY_SECONDS (default 9) with a 100 ms creator, expiration 3 s, early refresh beta 1; prints
//   { reads, creatorCalls, creatorAt, stale, waited } (stale: a value older than its expiration was returned;
//   waited: a read that took over 50 ms, i.e. waited for a creation).

import { LRUCache } from 'lru-cache';
import { type GetOrCreate, stampede, startSignal } from './stampede-worker.js';

interface Subject {
  getOrCreate: GetOrCreate;
  set?(key: string, value: unknown): Promise<void>;
  get?(key: string): Promise<unknown>;
  close(): Promise<void>;
}

const now = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const HOUR_S = 3600;
const EARLY_EXPIRATION_S = 3;
const VALUE = { id: 42, name: 'a cached row', tags: ['x', 'y', 'z'], score: 3.5 };

async function makeSubject(name: string, port: number, options: { expiration?: number; early?: number } = {}): Promise<Subject> {
  const url = `redis://127.0.0.1:${port}`;
  switch (name) {
    case 'lru': {
      const cache = new LRUCache<string, object>({ max: 10_000 });
      return {
        getOrCreate: async (key, creator) => {
          const hit = cache.get(key);
          if (hit !== undefined) return hit;
          const value = await creator();
          cache.set(key, value as object);
          return value;
        },
        close: async () => {},
      };
    }
    case 'ours-mem': {
      const { makeRegion } = await import('../src/index.js');
      const region = makeRegion({ name: 'bench' }).configure('memory', { expirationTime: HOUR_S, arguments: { max: 10_000 } });
      return { getOrCreate: (key, creator) => region.getOrCreate(key, creator), close: () => region.close() };
    }
    case 'ours-l1':
    case 'ours-l2': {
      const { makeRegion } = await import('../src/index.js');
      const region = makeRegion({ name: 'bench', lockWaitTimeout: 30, earlyRefresh: options.early ?? 0 }).configure('redis', {
        expirationTime: options.expiration ?? HOUR_S,
        arguments: { url, keyPrefix: 'ours:', distributedLock: true, lockTimeout: 30 },
        ...(name === 'ours-l1' ? { l1: { max: 10_000 } } : {}),
      });
      await region.ready();
      const tier = region.backend as { whenListening?: () => Promise<void> };
      await tier.whenListening?.();
      return {
        getOrCreate: (key, creator) => region.getOrCreate(key, creator),
        set: (key, value) => region.set(key, value),
        get: (key) => region.get(key),
        close: () => region.close(),
      };
    }
    case 'bento': {
      const { BentoCache, bentostore } = await import('bentocache');
      const { redisDriver, redisBusDriver } = await import('bentocache/drivers/redis');
      const { memoryDriver } = await import('bentocache/drivers/memory');
      const connection = { host: '127.0.0.1', port };
      const store = bentostore()
        .useL1Layer(memoryDriver({ maxItems: 10_000 }))
        .useL2Layer(redisDriver({ connection: { ...connection, keyPrefix: 'bento:' } }))
        .useBus(redisBusDriver({ connection }));
      const bento = new BentoCache({ default: 'r', stores: { r: store } });
      return {
        getOrCreate: (key, creator) => bento.getOrSet({ key, factory: creator, ttl: HOUR_S * 1000 }),
        set: async (key, value) => {
          await bento.set({ key, value, ttl: HOUR_S * 1000 });
        },
        get: (key) => bento.get({ key }),
        close: () => bento.disconnectAll(),
      };
    }
  }
  throw new Error(`unknown subject ${name}`);
}

async function hit(subject: Subject): Promise<{ opsPerSec: number }> {
  const keys = Array.from({ length: 1000 }, (_, i) => `hit:${i}`);
  const creator = async () => VALUE;
  for (const key of keys) await subject.getOrCreate(key, creator);
  let ops = 0;
  let stopAt = 0;
  const loop = async (offset: number) => {
    let i = offset;
    while (now() < stopAt) {
      for (let j = 0; j < 64; j++) await subject.getOrCreate(keys[i++ % keys.length] as string, creator);
      ops += 64;
    }
  };
  const slice = async () => {
    ops = 0;
    const start = now();
    stopAt = start + 100;
    await Promise.all(Array.from({ length: 64 }, (_, i) => loop(i * 13)));
    return ops / ((now() - start) / 1000);
  };
  for (let i = 0; i < 3; i++) await slice(); // warm-up
  const slices: number[] = [];
  for (let i = 0; i < 7; i++) slices.push(await slice());
  slices.sort((a, b) => a - b);
  return { opsPerSec: slices[3] as number };
}

async function propagate(writer: Subject, reader: Subject) {
  const key = `propagate:${process.pid}`;
  const latenciesMs: number[] = [];
  for (let round = 0; round < 50; round++) {
    await writer.set?.(key, `old-${round}`);
    // Until the reader holds the old value (in its L1, after a read or two).
    while ((await reader.get?.(key)) !== `old-${round}`) await sleep(1);
    await sleep(5);
    const at = now();
    await writer.set?.(key, `new-${round}`);
    while ((await reader.get?.(key)) !== `new-${round}`) await sleep(1);
    latenciesMs.push(now() - at);
  }
  return { latenciesMs };
}

async function early(subject: Subject, key: string, seconds: number) {
  // The hot key exists before the start (the cold miss is not what this measures).
  await subject.getOrCreate(key, async () => {
    await sleep(100);
    return { madeAt: Date.now() };
  });
  const startAt = await startSignal();
  await sleep(Math.max(0, startAt - Date.now()));
  let creatorCalls = 0;
  const creatorAt: number[] = [];
  let reads = 0;
  let stale = 0;
  let waited = 0;
  const creator = async () => {
    creatorCalls++;
    creatorAt.push(Date.now());
    await sleep(100);
    return { madeAt: Date.now() };
  };
  const endAt = Date.now() + seconds * 1000;
  const perMs = 2.5; // 2,500 reads/s
  let due = 0;
  let last = now();
  while (Date.now() < endAt) {
    const t = now();
    due += (t - last) * perMs;
    last = t;
    const batch: Promise<void>[] = [];
    for (; due >= 1; due--) {
      batch.push(
        (async () => {
          const began = now();
          const v = (await subject.getOrCreate(key, creator)) as { madeAt: number };
          reads++;
          if (now() - began > 50) waited++;
          if (Date.now() - v.madeAt > EARLY_EXPIRATION_S * 1000) stale++;
        })(),
      );
    }
    await Promise.all(batch);
    await sleep(1);
  }
  return { reads, creatorCalls, creatorAt, stale, waited };
}

const [name, mode, portArg, key] = process.argv.slice(2);
const port = Number(portArg);
let result: unknown;
if (mode === 'propagate') {
  const [writer, reader] = [await makeSubject(String(name), port), await makeSubject(String(name), port)];
  result = await propagate(writer, reader);
  await Promise.all([writer.close(), reader.close()]);
} else if (mode === 'early') {
  const subject = await makeSubject(String(name), port, { expiration: EARLY_EXPIRATION_S, early: 1 });
  result = await early(subject, String(key), Number(process.env.EARLY_SECONDS ?? 9));
  await subject.close();
} else {
  const subject = await makeSubject(String(name), port);
  result = mode === 'hit' ? await hit(subject) : await stampede(subject, String(key));
  await subject.close();
}
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
