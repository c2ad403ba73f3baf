// The L1 tier in one process against a private redis-server: hits from L1 without an L2 read,
// fills on an L1 miss, two regions (two buses, as two processes would have) kept coherent, the
// bus outage rule, the L1 bound with 1M keys, and bad L1 options.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import type { LRUCache } from 'lru-cache';
import { CompactLru } from '../../src/backends/compact-lru.js';
import {
  type CachedValue,
  type CacheRegion,
  makeRegion,
  NO_VALUE,
  type NoValue,
  ProxyBackend,
  type RedisBackend,
  type TieredBackend,
  ValidationError,
} from '../../src/index.js';
import { type ServerProcess, startRedis } from '../helpers/servers.js';
import { until } from '../helpers/time.js';

let server: ServerProcess;
let raw: Redis;
const url = () => `redis://127.0.0.1:${server.port}`;
const regions: CacheRegion[] = [];

before(async () => {
  server = await startRedis();
  raw = new Redis(server.port, '127.0.0.1');
});
after(async () => {
  await Promise.all(regions.map((r) => r.close().catch(() => {})));
  raw?.disconnect();
  await server?.stop();
});

/** Counts the L2 reads under the tier. */
class CountingProxy extends ProxyBackend {
  gets = 0;
  override get(key: string): Promise<CachedValue | NoValue> {
    this.gets++;
    return super.get(key);
  }
}

async function l1Region(name: string, extra: { max?: number; expirationTime?: number } = {}) {
  const counter = new CountingProxy();
  const region = makeRegion({ name }).configure('redis', {
    expirationTime: 60,
    arguments: { url: url(), distributedLock: true },
    wrap: [counter],
    l1: { max: 1000, ...extra },
  });
  regions.push(region);
  await region.ready();
  const tier = region.backend as TieredBackend;
  await tier.whenListening();
  return { region, tier, counter };
}

describe('L1 in front of redis', () => {
  it('an L1 hit does not read L2; an L1 miss reads L2 once and fills L1', async () => {
    const { region, tier, counter } = await l1Region(`hits-${randomUUID()}`);
    const key = `k:${randomUUID()}`;
    await raw.set('unrelated', '1');
    let calls = 0;
    assert.equal(await region.getOrCreate(key, () => ++calls), 1);
    const afterCreate = counter.gets;
    for (let i = 0; i < 100; i++) assert.equal(await region.getOrCreate(key, () => ++calls), 1);
    assert.equal(await region.get(key), 1);
    assert.equal(counter.gets, afterCreate, 'hits were served by L1');
    tier.clear();
    assert.equal(await region.getOrCreate(key, () => ++calls), 1);
    assert.equal(counter.gets, afterCreate + 1, 'the L1 miss read L2 once');
    assert.equal(await region.getOrCreate(key, () => ++calls), 1);
    assert.equal(counter.gets, afterCreate + 1, 'and filled L1');
    assert.equal(calls, 1);
  });

  it('a write, delete or invalidate in one region reaches another region L1 through the bus', async () => {
    const name = `coherent-${randomUUID()}`;
    const a = await l1Region(name);
    const b = await l1Region(name);
    const key = `k:${randomUUID()}`;
    await a.region.set(key, 'v1');
    await new Promise((r) => setTimeout(r, 30)); // a's message about its own write has reached b
    assert.equal(await b.region.get(key), 'v1');
    assert.ok(b.tier.l1.cache.has(key), 'b holds it in L1');
    await a.region.set(key, 'v2');
    assert.ok(await until(async () => (await b.region.get(key)) === 'v2', 2000), 'b saw the new value');
    await a.region.delete(key);
    assert.ok(await until(async () => (await b.region.get(key)) === NO_VALUE, 2000), 'b saw the delete');
    await a.region.set(key, 'v3');
    assert.equal(await b.region.getOrCreate(key, () => 'other'), 'v3');
    await a.region.invalidate();
    assert.ok(await until(async () => (await b.region.get(key)) === NO_VALUE, 2000), 'b applied the invalidation');
  });

  it('a region waiting on another (as another process would) returns the value the release notice carried: no command of its own after the release (MONITOR)', async () => {
    const name = `wake-${randomUUID()}`;
    const a = await l1Region(name);
    const b = await l1Region(name);
    const key = `k:${randomUUID()}`;
    const lockKey = `dogpile:lock:${key}`;
    const client = (region: CacheRegion) =>
      ((region.actualBackend as RedisBackend).client as unknown as { stream: { localPort: number } }).stream.localPort;
    const bSource = `127.0.0.1:${client(b.region)}`;
    const seen: { source: string; command: string; args: string[] }[] = [];
    const monitor = await raw.monitor();
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      seen.push({ source, command: String(args[0]).toLowerCase(), args });
    });
    try {
      const creating = a.region.getOrCreate(key, async () => {
        await new Promise((r) => setTimeout(r, 300));
        return 'from a';
      });
      assert.ok(await until(() => seen.some((c) => c.command === 'set' && c.args[1] === lockKey), 2000), 'a holds the lock');
      let bCalls = 0;
      const waiting = b.region.getOrCreate(key, () => {
        bCalls++;
        return 'from b';
      });
      assert.equal(await creating, 'from a');
      assert.equal(await waiting, 'from a');
      await new Promise((r) => setTimeout(r, 100)); // the MONITOR lines of both have arrived
      const release = seen.findIndex((c) => c.command === 'eval' && c.args.includes(lockKey));
      assert.ok(release >= 0, "a's SET + release was seen");
      assert.ok(
        seen.slice(0, release).some((c) => c.source === bSource && c.command === 'set' && c.args[1] === lockKey),
        'b tried the lock before (the test watches the right connection)',
      );
      const after = seen.slice(release + 1).filter((c) => c.source === bSource);
      assert.deepEqual(
        after.map((c) => c.args.slice(0, 2).join(' ')),
        [],
        'b sent nothing after the release: no GET, no SET NX',
      );
      assert.equal(bCalls, 0);
    } finally {
      monitor.disconnect();
    }
  });

  it('a process ignores its own messages (its fresh L1 copy survives its own write)', async () => {
    const { region, tier, counter } = await l1Region(`own-${randomUUID()}`);
    const key = `k:${randomUUID()}`;
    await region.set(key, 'mine');
    await new Promise((r) => setTimeout(r, 50)); // the message has come back by now
    const before = counter.gets;
    assert.ok(tier.l1.cache.has(key));
    assert.equal(await region.get(key), 'mine');
    assert.equal(counter.gets, before);
  });

  it('while the bus subscription is down, L1 is cleared and bypassed; on resubscribe it is used again', async () => {
    const { region, tier } = await l1Region(`gap-${randomUUID()}`);
    const key = `k:${randomUUID()}`;
    await region.set(key, 'old');
    assert.ok(tier.l1.cache.has(key));
    await raw.client('KILL', 'TYPE', 'pubsub');
    assert.ok(await until(() => !tier.listening, 2000), 'the gap was noticed');
    assert.equal(tier.l1.cache.size, 0, 'L1 was cleared');
    // A write elsewhere while the bus is down (straight to redis): never hidden by L1.
    await raw.set(key, (await raw.getBuffer(key)) as Buffer);
    assert.equal(await region.get(key), 'old');
    assert.ok(await until(() => tier.listening, 5000), 'resubscribed');
    assert.equal(await region.get(key), 'old');
    assert.ok(tier.l1.cache.has(key), 'L1 fills again');
  });

  it('by default an L1 copy lives no longer than the region expiration counted from creation', async () => {
    let now = Date.now();
    const counter = new CountingProxy();
    const region = makeRegion({ name: `bound-${randomUUID()}`, clock: { now: () => now } }).configure('redis', {
      expirationTime: 60,
      arguments: { url: url() },
      wrap: [counter],
      l1: { max: 1000 },
    });
    regions.push(region);
    await region.ready();
    const tier = region.backend as TieredBackend;
    await tier.whenListening();
    assert.equal(tier.creationBoundMs, 60_000);
    assert.ok(tier.l1.cache instanceof CompactLru, 'L1 has no lru-cache ttl of its own: the compact store');
    const key = `k:${randomUUID()}`;
    assert.equal(await region.getOrCreate(key, () => 'v1'), 'v1');
    const reads = counter.gets;
    now += 59_000;
    assert.equal(await region.getOrCreate(key, () => 'v2'), 'v1');
    assert.equal(counter.gets, reads, 'a fresh hit within the bound is served by L1');
    now += 2_000; // 61 s after creation: past the bound, though fresh for a 120 s call
    assert.equal(await region.getOrCreate(key, () => 'v2', { expirationTime: 120 }), 'v1');
    assert.equal(counter.gets, reads + 1, 'the copy past the bound was read again from L2');
    assert.equal(await region.get(key, { expirationTime: 120 }), 'v1');
    assert.equal(counter.gets, reads + 2);
    assert.equal(await region.get(key, { ignoreExpiration: true }), 'v1');
    assert.equal(counter.gets, reads + 3);
  });

  it('a shorter l1.expirationTime is counted from the copy into L1 (lru-cache ttl)', async () => {
    const { tier } = await l1Region(`short-${randomUUID()}`, { expirationTime: 5 });
    assert.equal(tier.creationBoundMs, undefined);
    assert.equal((tier.l1.cache as LRUCache<string, CachedValue>).ttl, 5000);
  });

  it('L1 stays bounded: 1M distinct keys through l1.max = 10,000 keep 10,000 entries', async () => {
    const child = spawnSync(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(new URL('../fixtures/l1-bound-worker.ts', import.meta.url))],
      {
        encoding: 'utf8',
        timeout: 180_000,
      },
    );
    assert.equal(child.status, 0, child.stderr);
    const report = JSON.parse(child.stdout.trim()) as { largest: number; final: number; last: number; recreated: boolean };
    assert.equal(report.largest, 10_000);
    assert.equal(report.final, 10_000);
    assert.equal(report.last, 999_999, 'the most recent key is an L1 hit');
    assert.equal(report.recreated, false);
  });
});

describe('L1 options', () => {
  const bad: [string, unknown, RegExp][] = [
    ['max 0', { max: 0, bus: false }, /l1\.max must be a positive integer, got 0/],
    ['max 1.5', { max: 1.5, bus: false }, /l1\.max must be a positive integer, got 1\.5/],
    ['maxSize string', { maxSize: '10', bus: false }, /l1\.maxSize must be a positive integer, got "10"/],
    ['expirationTime -1', { expirationTime: -1, bus: false }, /l1\.expirationTime must be a positive number of seconds, got -1/],
    ['bus url', { bus: { url: 'http://x' } }, /l1\.bus\.url must be a redis:\/\/ or rediss:\/\/ URL, got "http:\/\/x"/],
    ['bus object', { bus: { publish: 1 } }, /l1\.bus must be false, \{ url, channel\? \} or an InvalidationBus/],
    ['not an object', 5, /l1 must be an object/],
  ];
  for (const [label, l1, message] of bad) {
    it(`rejects ${label} (makeRegion and configure)`, () => {
      assert.throws(
        () => makeRegion({ l1: l1 as never }),
        (e: unknown) => e instanceof ValidationError && message.test(e.message),
      );
      assert.throws(
        () => makeRegion().configure('memory', { l1: l1 as never }),
        (e: unknown) => e instanceof ValidationError && message.test(String((e as Error).message)),
      );
    });
  }

  it('rejects an l1.expirationTime longer than the region expirationTime', () => {
    assert.throws(
      () => makeRegion({ l1: { expirationTime: 120, bus: false } }).configure('memory', { expirationTime: 60 }),
      (e: unknown) => e instanceof ValidationError && /l1\.expirationTime \(120s\).*expirationTime \(60s\)/.test(e.message),
    );
    makeRegion({ l1: { expirationTime: 60, bus: false } }).configure('memory', { expirationTime: 60 });
    makeRegion({ l1: { expirationTime: 600, bus: false } }).configure('memory');
  });

  it('asks for a bus with a backend that has none of its own', () => {
    assert.throws(
      () => makeRegion().configure('memcached', { l1: {} }),
      (e: unknown) => e instanceof ValidationError && /l1\.bus is required with backend "memcached"/.test(e.message),
    );
  });
});
