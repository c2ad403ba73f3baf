// Worker process of the Redis benchmark (bench/redis.ts): one library per process. Arguments:
//   <subject> <mode> <redisPort> [<warmupMs> <measureMs> | <key>]
// mode "hit": fresh-hit get-or-create throughput with 64 calls in flight over 100 warm keys;
//   prints { ops, ms }.
// mode "stampede": once connected, prints "ready" and reads the start time (epoch ms) from stdin; at
//   that time, 100 concurrent get-or-create of one fresh key with a 300 ms creator; prints
//   { calls, values, creatorReturnedAt, lastReturnAt } (epoch ms with sub-ms precision).

import { Redis } from 'ioredis';
import { type GetOrCreate, type StampedeResult, stampede } from './stampede-worker.js';

export type { StampedeResult };

/** The libraries compared. */
export const SUBJECTS = ['raw', 'raw-ap', 'ours', 'cm', 'bento', 'bento-l1'] as const;
/** One of {@link SUBJECTS}. */
export type SubjectName = (typeof SUBJECTS)[number];

/** What a "hit" worker prints. */
export interface HitResult {
  readonly ops: number;
  readonly ms: number;
}
interface Subject {
  readonly getOrCreate: GetOrCreate;
  close(): Promise<void>;
}

const now = (): number => performance.timeOrigin + performance.now();
const HOUR_S = 3600;
const VALUE = { id: 42, name: 'a cached row', tags: ['x', 'y', 'z'], score: 3.5 };

async function makeSubject(name: SubjectName, port: number): Promise<Subject> {
  const url = `redis://127.0.0.1:${port}`;
  switch (name) {
    case 'raw':
    case 'raw-ap': {
      // raw-ap: the same client settings as dogpile's own clients (auto-pipelining on).
      const redis = new Redis(port, '127.0.0.1', { enableAutoPipelining: name === 'raw-ap' });
      return {
        getOrCreate: async (key, creator) => {
          const hit = await redis.get(`raw:${key}`);
          if (hit !== null) return JSON.parse(hit);
          const value = await creator();
          await redis.set(`raw:${key}`, JSON.stringify(value), 'EX', HOUR_S);
          return value;
        },
        close: async () => {
          redis.disconnect();
        },
      };
    }
    case 'ours': {
      const { makeRegion } = await import('../src/index.js');
      const region = makeRegion({ lockWaitTimeout: 30 }).configure('redis', {
        expirationTime: HOUR_S,
        arguments: { url, keyPrefix: 'ours:', distributedLock: true, lockTimeout: 30 },
      });
      await region.ready();
      return {
        getOrCreate: (key, creator) => region.getOrCreate(key, creator),
        close: () => region.close(),
      };
    }
    case 'cm': {
      const { createCache } = await import('cache-manager');
      const { createKeyv } = await import('@keyv/redis');
      const keyv = createKeyv(url, { namespace: 'cm' });
      const cache = createCache({ stores: [keyv] });
      return {
        getOrCreate: (key, creator) => cache.wrap(key, creator, HOUR_S * 1000),
        close: async () => {
          await cache.disconnect();
        },
      };
    }
    case 'bento':
    case 'bento-l1': {
      const { BentoCache, bentostore } = await import('bentocache');
      const { redisDriver } = await import('bentocache/drivers/redis');
      const { memoryDriver } = await import('bentocache/drivers/memory');
      const l2 = redisDriver({ connection: { host: '127.0.0.1', port, keyPrefix: 'bento:' } });
      const store =
        name === 'bento-l1'
          ? bentostore()
              .useL1Layer(memoryDriver({ maxItems: 10_000 }))
              .useL2Layer(l2)
          : bentostore().useL2Layer(l2);
      const bento = new BentoCache({ default: 'r', stores: { r: store } });
      return {
        getOrCreate: (key, creator) => bento.getOrSet({ key, factory: creator, ttl: HOUR_S * 1000 }),
        close: () => bento.disconnectAll(),
      };
    }
  }
}

async function hit(subject: Subject, warmupMs: number, measureMs: number): Promise<HitResult> {
  const keys = Array.from({ length: 100 }, (_, i) => `hit:${i}`);
  const creator = async () => VALUE;
  for (const key of keys) await subject.getOrCreate(key, creator);
  let ops = 0;
  let stopAt = now() + warmupMs;
  const loop = async (offset: number) => {
    let i = offset;
    while (now() < stopAt) {
      await subject.getOrCreate(keys[i++ % keys.length] as string, creator);
      ops++;
    }
  };
  await Promise.all(Array.from({ length: 64 }, (_, i) => loop(i)));
  ops = 0;
  const start = now();
  stopAt = start + measureMs;
  await Promise.all(Array.from({ length: 64 }, (_, i) => loop(i)));
  return { ops, ms: now() - start };
}

const [name, mode, portArg, a, b] = process.argv.slice(2);
const subject = await makeSubject(name as SubjectName, Number(portArg));
const result = mode === 'hit' ? await hit(subject, Number(a), Number(b)) : await stampede(subject, String(a));
await subject.close();
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
