// Instructions per fresh get-or-create hit on the two-tier paths, counted by valgrind (timings on a
// shared machine are noise, instruction counts are not). Run twice with two hit counts and divide
// the difference of the totals by the difference of the hits (start-up and warm-up cancel out):
//   valgrind --tool=callgrind node --single-threaded --import tsx bench/tier-hit-instructions.ts <subject> <hits>
// Subjects: lru (raw lru-cache, as bench/tiers.ts), mem (memory region), l1 (region with l1 over a
// private redis-server), l1-tags (the same, values written with a tag).
import { LRUCache } from 'lru-cache';
import { makeRegion } from '../src/index.js';
import { startRedis } from '../test/helpers/servers.js';

const [subject = 'l1', hitArg = '100000'] = process.argv.slice(2);
const hits = Number(hitArg);
const KEYS = 1000;
const VALUE = { id: 42, name: 'a cached row', tags: ['x', 'y', 'z'], score: 3.5 };
const keys = Array.from({ length: KEYS }, (_, i) => `hit:${i}`);
const creator = async () => VALUE;

let call: (key: string) => Promise<unknown>;
let stop = async () => {};
if (subject === 'lru') {
  const cache = new LRUCache<string, object>({ max: 10_000 });
  call = async (key) => {
    const hit = cache.get(key);
    if (hit !== undefined) return hit;
    const value = await creator();
    cache.set(key, value);
    return value;
  };
} else if (subject === 'mem') {
  const region = makeRegion({ name: 'bench' }).configure('memory', { expirationTime: 3600, arguments: { max: 10_000 } });
  call = (key) => region.getOrCreate(key, creator);
} else if (subject === 'io-ap' || subject === 'nr' || subject === 'l2' || subject === 'l2-nt') {
  // L2-only hits: raw ioredis (auto-pipelined), raw node-redis, our redis region (its own client,
  // 5 s commandTimeout) and the same over an ioredis client without commandTimeout.
  const redis = await startRedis();
  const url = `redis://127.0.0.1:${redis.port}`;
  const { Redis } = await import('ioredis');
  let close: () => Promise<unknown> = async () => {};
  if (subject === 'nr') {
    const { createClient } = await import('redis');
    const client = createClient({ url });
    await client.connect();
    call = async (key) => {
      const hit = await client.get(`raw:${key}`);
      if (hit !== null) return JSON.parse(hit);
      const value = await creator();
      await client.set(`raw:${key}`, JSON.stringify(value), { EX: 3600 });
      return value;
    };
    close = async () => client.destroy();
  } else if (subject === 'io-ap') {
    const client = new Redis(redis.port, '127.0.0.1', { enableAutoPipelining: true });
    call = async (key) => {
      const hit = await client.get(`raw:${key}`);
      if (hit !== null) return JSON.parse(hit);
      const value = await creator();
      await client.set(`raw:${key}`, JSON.stringify(value), 'EX', 3600);
      return value;
    };
    close = async () => client.disconnect();
  } else {
    const client = subject === 'l2-nt' ? new Redis(redis.port, '127.0.0.1', { enableAutoPipelining: true }) : undefined;
    const region = makeRegion({ name: 'bench' }).configure('redis', {
      expirationTime: 3600,
      arguments: client ? { client, keyPrefix: 'ours:' } : { url, keyPrefix: 'ours:' },
    });
    await region.ready();
    call = (key) => region.getOrCreate(key, creator);
    close = async () => {
      await region.close();
      client?.disconnect();
    };
  }
  stop = async () => {
    await close();
    await redis.stop();
  };
} else {
  const redis = await startRedis();
  const region = makeRegion({ name: 'bench' }).configure('redis', {
    expirationTime: 3600,
    arguments: { url: `redis://127.0.0.1:${redis.port}`, keyPrefix: 'ours:' },
    l1: { max: 10_000 },
  });
  await region.ready();
  await (region.backend as { whenListening?: () => Promise<void> }).whenListening?.();
  const options = subject === 'l1-tags' ? { tags: ['t'] } : undefined;
  call = (key) => region.getOrCreate(key, creator, options);
  stop = async () => {
    await region.close();
    await redis.stop();
  };
}
for (const key of keys) await call(key);
let i = 0;
for (let n = 0; n < hits; n++) {
  await call(keys[i] as string);
  i = i + 1 === KEYS ? 0 : i + 1;
}
await stop();
process.stdout.write(`${subject}: ${hits} hits over ${KEYS} keys\n`);
