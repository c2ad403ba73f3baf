// A compact memory store (`compact: true`, or `l1: { compact: true }`) is bound to the expiration of
// the region it serves and keeps values that are only a payload and a creation time bare: the
// payload is the lru-cache entry, the creation time lru-cache's start. These tests check that every reading
// of such a store gives what an envelope would have given: freshness, staleness, invalidation,
// per-call expiration, metadata, sharing the store with another region, and the fallbacks to
// CachedValue objects for values that carry more.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BIND_EXPIRY, MemoryBackend } from '../../src/backends/memory.js';
import { ManualClock, systemClock } from '../../src/clock.js';
import {
  CachedValue,
  type CacheRegion,
  DefaultInvalidationStrategy,
  makeRegion,
  NO_VALUE,
  type RegionInvalidationStrategy,
  VALUE_VERSION,
  ValidationError,
} from '../../src/index.js';

const T0 = 1_700_000_000_000;

function memoryRegion(
  extra: Parameters<typeof makeRegion>[0] = {},
  args: object = {},
): { region: CacheRegion; clock: ManualClock; store: MemoryBackend } {
  const clock = new ManualClock(T0);
  const region = makeRegion({ clock, ...extra }).configure('memory', {
    expirationTime: 10,
    arguments: { compact: true, ...args },
  });
  return { region, clock, store: region.backend as MemoryBackend };
}

describe('compact memory stores: bare values, bound to their region', () => {
  it('keeps a set value bare, its creation time in lru-cache, and reads it back as the same CachedValue', async () => {
    const { region, clock, store } = memoryRegion();
    const user = { id: 1, name: 'ann' };
    await region.set('u', user);
    assert.equal(store.cache.get('u'), user, 'the entry is the payload itself');
    const slowReads = countSlowReads(store);
    assert.equal(await region.getOrCreate('u', () => 'other'), user);
    assert.equal(await region.get('u'), user);
    assert.equal(slowReads.count, 0, 'fresh hits do not look up the creation time');
    clock.advance(3);
    const back = (await store.get('u')) as CachedValue;
    assert.ok(back instanceof CachedValue);
    assert.equal(back.payload, user);
    assert.deepEqual(back.metadata, { ct: T0, v: VALUE_VERSION });
    assert.equal(await region.get('u'), user);
    const meta = await region.getValueMetadata('u');
    assert.equal(meta?.cachedTime, T0);
    assert.equal(meta?.age, 3);
  });

  it('getOrCreate values are bare without early refresh, and keep their duration with it', async () => {
    const plain = memoryRegion();
    await plain.region.getOrCreate('k', () => ({ n: 1 }));
    assert.ok(!(plain.store.cache.get('k') instanceof CachedValue));

    const early = memoryRegion({ earlyRefresh: 1 });
    await early.region.getOrCreate('k', async () => {
      early.clock.advance(0.25);
      return { n: 1 };
    });
    const kept = early.store.cache.get('k');
    assert.ok(kept instanceof CachedValue, 'an early-refresh value keeps its envelope');
    assert.equal(kept.metadata.d, 250);

    const perCall = memoryRegion();
    await perCall.region.getOrCreate(
      'k',
      async () => {
        perCall.clock.advance(0.1);
        return 1;
      },
      { earlyRefresh: 1 },
    );
    assert.equal((perCall.store.cache.get('k') as CachedValue).metadata.d, 100);
  });

  it('a bare value past the expiration is served stale while exactly one caller regenerates it', async () => {
    const { region, clock } = memoryRegion();
    await region.set('k', 'old');
    clock.advance(10.001);
    let calls = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const creator = async (): Promise<string> => {
      calls++;
      await gate;
      return 'new';
    };
    const first = region.getOrCreate('k', creator);
    const others = await Promise.all(Array.from({ length: 50 }, () => region.getOrCreate('k', creator)));
    assert.deepEqual(new Set(others), new Set(['old']));
    release();
    assert.equal(await first, 'new');
    assert.equal(calls, 1);
    assert.equal(await region.get('k'), 'new');
    assert.equal(await region.get('k', { ignoreExpiration: true }), 'new');
  });

  it('is fresh up to the expiration exactly, as an envelope is', async () => {
    const { region, clock } = memoryRegion();
    await region.set('k', 'v');
    clock.advance(10);
    assert.equal(await region.get('k'), 'v');
    assert.equal(await region.getOrCreate('k', () => 'other'), 'v');
    clock.advance(0.001);
    assert.equal(await region.get('k'), NO_VALUE);
    assert.equal(await region.get('k', { ignoreExpiration: true }), 'v');
  });

  it('soft and hard invalidation apply to bare values; later values are hits again', async () => {
    const { region, clock, store } = memoryRegion();
    const slowReads = countSlowReads(store);
    await region.set('a', 'a1');
    clock.advance(1);
    await region.invalidate({ hard: false });
    assert.equal(await region.get('a'), NO_VALUE);
    assert.equal(await servedStale(region, 'a', 'a1', 'a2'), 'a2', 'soft: the stale value is served while it is regenerated');
    assert.equal(await region.get('a'), 'a2');
    clock.advance(1);
    await region.set('b', 'b1');
    clock.advance(1);
    await region.invalidate({ hard: true });
    assert.equal(await waitedFor(region, 'b', 'b2'), 'b2', 'hard: a miss');
    clock.advance(1);
    await region.set('c', 'c1');
    assert.equal(await region.get('c'), 'c1');
    assert.equal(await region.getOrCreate('c', () => 'c2'), 'c1');
    clock.advance(20); // every value from before the invalidation has expired anyway
    await region.set('d', 'd1');
    const before = slowReads.count;
    assert.equal(await region.getOrCreate('d', () => 'd2'), 'd1');
    assert.equal(await region.get('d'), 'd1');
    assert.equal(slowReads.count, before, 'the hit path again, without looking up the creation time');
  });

  it("a call's own expirationTime judges bare values by their creation time", async () => {
    const { region, clock } = memoryRegion();
    await region.set('k', 'v');
    clock.advance(5);
    assert.equal(await region.get('k', { expirationTime: 4 }), NO_VALUE);
    assert.equal(await region.get('k', { expirationTime: 6 }), 'v');
    clock.advance(10); // 15 s old: stale for the region, fresh for a 20 s call
    assert.equal(await region.get('k'), NO_VALUE);
    assert.equal(await region.get('k', { expirationTime: 20 }), 'v');
    assert.equal(await region.getOrCreate('k', () => 'new', { expirationTime: 20 }), 'v');
    assert.equal(await servedStale(region, 'k', 'v', 'new', { expirationTime: 4 }), 'new');
  });

  it('getMulti and getOrCreateMulti read bare values with their metadata', async () => {
    const { region, clock } = memoryRegion();
    await region.setMulti({ a: 1, b: 2 });
    clock.advance(11);
    await region.set('c', 3);
    assert.deepEqual(await region.getMulti(['a', 'c', 'x']), [NO_VALUE, 3, NO_VALUE]);
    assert.deepEqual(await region.getMulti(['a', 'c'], { ignoreExpiration: true }), [1, 3]);
    const made: string[][] = [];
    const values = await region.getOrCreateMulti(['a', 'c', 'x'], (...keys) => {
      made.push(keys);
      return keys.map((k) => `${k}!`);
    });
    assert.deepEqual(made, [['a', 'x']]);
    assert.deepEqual(values, ['a!', 3, 'x!']);
  });

  it('values that carry more than a creation time stay CachedValue objects, and read back whole', async () => {
    const { region, store } = memoryRegion();
    await region.set('tagged', 't', { tags: ['x'] });
    assert.ok(store.cache.get('tagged') instanceof CachedValue);
    assert.equal(await region.get('tagged'), 't');
    assert.equal(await region.getOrCreate('tagged', () => 'other'), 't');
    const deadline = new CachedValue('d', { ct: T0, v: VALUE_VERSION, fs: T0 + 60_000 });
    await store.set('deadline', deadline);
    assert.equal(store.cache.get('deadline'), deadline);
    assert.equal(await region.get('deadline'), 'd');
    for (const odd of [undefined, null, new CachedValue('inner', { ct: T0, v: VALUE_VERSION })]) {
      await region.set('odd', odd);
      assert.ok(store.cache.get('odd') instanceof CachedValue);
      assert.equal(await region.get('odd'), odd);
    }
    await region.invalidateTags(['x']);
    assert.equal(await region.get('tagged'), NO_VALUE);
  });

  it('maxSize sizes bare values through sizeCalculation, which still gets the CachedValue', async () => {
    const seen: unknown[] = [];
    const { region, store } = memoryRegion(
      {},
      {
        maxSize: 100,
        sizeCalculation: (value: CachedValue) => {
          seen.push(value);
          return String(value.payload).length;
        },
      },
    );
    await region.set('a', 'x'.repeat(60));
    await region.set('b', 'y'.repeat(60));
    assert.ok(seen.every((v) => v instanceof CachedValue));
    assert.equal(store.cache.get('a'), undefined, 'evicted by size');
    assert.equal(await region.get('b'), 'y'.repeat(60));
    assert.equal(store.cache.calculatedSize, 60);
  });

  it('another region configured with the same store reads CachedValues, judged by its own expiration', async () => {
    const { region: a, clock, store } = memoryRegion();
    const b = makeRegion({ clock }).configure(store, { expirationTime: 3 });
    await a.set('k', 'v');
    assert.equal(store.cache.get('k'), 'v', 'bare');
    assert.equal(await b.get('k'), 'v');
    clock.advance(4);
    assert.equal(await b.get('k'), NO_VALUE);
    assert.equal(await a.get('k'), 'v');
    assert.equal(await servedStale(b, 'k', 'v', 'b'), 'b', 'stale for b: served while regenerated');
    assert.equal(await a.get('k'), 'b');
  });

  it('is compact only when asked, and not in a region with its own invalidation strategy, fail-safe or early refresh', async () => {
    for (const args of [{}, { ttl: 60 }, { clone: true }]) {
      const r = makeRegion().configure('memory', { expirationTime: 10, arguments: args });
      await r.set('k', { v: 1 });
      assert.ok((r.backend as MemoryBackend).cache.get('k') instanceof CachedValue, JSON.stringify(args));
      assert.deepEqual(await r.get('k'), { v: 1 });
    }

    const given = new MemoryBackend({ compact: true });
    const r1 = makeRegion().configure(given, { expirationTime: 10 });
    await r1.set('k', 'v');
    assert.equal(given.cache.get('k'), 'v', 'a compact store given to configure is bound too');

    const filled = new MemoryBackend({ compact: true });
    await filled.set('old', new CachedValue('o', { ct: Date.now(), v: VALUE_VERSION }));
    const r4 = makeRegion().configure(filled, { expirationTime: 10 });
    await r4.set('k', 'v');
    assert.ok(filled.cache.get('k') instanceof CachedValue, 'a store that held values before stays as it was');
    assert.equal(await r4.get('old'), 'o');

    const own: RegionInvalidationStrategy = {
      isInvalidated: () => false,
      isHardInvalidated: () => false,
      isSoftInvalidated: () => false,
      invalidate: () => {},
      wasHardInvalidated: () => false,
      wasSoftInvalidated: () => false,
    };
    const r2 = makeRegion().configure('memory', { expirationTime: 10, regionInvalidator: own, arguments: { compact: true } });
    await r2.set('k', 'v');
    assert.ok((r2.backend as MemoryBackend).cache.get('k') instanceof CachedValue);

    for (const extra of [{ failSafe: { maxStale: 60, retryAfter: 5 } }, { earlyRefresh: 1 }]) {
      const r = makeRegion(extra).configure('memory', { expirationTime: 10, arguments: { compact: true } });
      await r.set('k', 'v');
      assert.ok((r.backend as MemoryBackend).cache.get('k') instanceof CachedValue, Object.keys(extra)[0]);
    }

    const shared = new DefaultInvalidationStrategy();
    const r3 = makeRegion().configure('memory', { expirationTime: 10, regionInvalidator: shared, arguments: { compact: true } });
    await r3.set('k', 'v');
    assert.equal((r3.backend as MemoryBackend).cache.get('k'), 'v', 'the default strategy, given: bound');
    shared.invalidate(true);
    assert.equal(await r3.get('k'), NO_VALUE);
  });

  it('compact is validated', () => {
    assert.throws(
      () => new MemoryBackend({ compact: 'yes' as unknown as boolean }),
      (e: unknown) => e instanceof ValidationError && /compact must be true or false, got "yes"/.test(e.message),
    );
    for (const [name, args] of [
      ['ttl', { ttl: 5 }],
      ['clone', { clone: true }],
      ['cache', { cache: new MemoryBackend().cache as never }],
    ] as const) {
      assert.throws(
        () => new MemoryBackend({ compact: true, ...args }),
        (e: unknown) => e instanceof ValidationError && new RegExp(`compact cannot be used with ${name}`).test(e.message),
        name,
      );
    }
    assert.throws(
      () => makeRegion().configure('null', { expirationTime: 10, l1: { compact: 1 as unknown as boolean, bus: false } }),
      (e: unknown) => e instanceof ValidationError && /l1.compact must be true or false/.test(e.message),
    );
    assert.throws(
      () => makeRegion().configure('null', { expirationTime: 10, l1: { compact: true, expirationTime: 5, bus: false } }),
      (e: unknown) => e instanceof ValidationError && /l1.compact needs l1.expirationTime absent or equal/.test(e.message),
    );
  });

  it('a region that never expires keeps bare values until invalidated', async () => {
    const clock = new ManualClock(T0);
    const region = makeRegion({ clock }).configure('memory', { arguments: { compact: true } });
    await region.set('k', 'v');
    assert.equal((region.backend as MemoryBackend).cache.get('k'), 'v');
    clock.advance(86_400 * 365);
    assert.equal(await region.get('k'), 'v');
    await region.invalidate({ hard: false });
    assert.equal(await region.get('k'), NO_VALUE);
    assert.equal(await servedStale(region, 'k', 'v', 'w'), 'w');
  });

  it('a clock at zero, or fractional times, fall back to CachedValue objects', async () => {
    for (const start of [0, T0 + 0.5]) {
      const clock = new ManualClock(start);
      const region = makeRegion({ clock }).configure('memory', { expirationTime: 10, arguments: { compact: true } });
      await region.set('k', 'v');
      assert.ok((region.backend as MemoryBackend).cache.get('k') instanceof CachedValue, String(start));
      assert.equal(await region.get('k'), 'v');
      clock.advance(11);
      assert.equal(await region.get('k'), NO_VALUE);
    }
  });

  it('an L1 over another backend keeps bare values, bounded by the region expiration', async () => {
    const clock = new ManualClock(T0);
    const l2 = new MemoryBackend();
    const region = makeRegion({ clock }).configure(l2, { expirationTime: 10, l1: { max: 100, bus: false, compact: true } });
    await region.set('k', { n: 1 });
    assert.equal(await region.getOrCreate('k', () => ({ n: 2 })), ((await l2.get('k')) as CachedValue).payload);
    assert.deepEqual(await region.get('k'), { n: 1 });
    clock.advance(11);
    assert.deepEqual(await servedStale(region, 'k', { n: 1 }, { n: 3 }), { n: 3 }, 'stale: served while regenerated');
    assert.deepEqual(await region.get('k'), { n: 3 });
  });

  it('binding: only an empty, unbound compact store', () => {
    const b = new MemoryBackend({ compact: true });
    assert.ok(b[BIND_EXPIRY](10_000, systemClock) !== undefined);
    assert.equal(b[BIND_EXPIRY](10_000, systemClock), undefined, 'bound once');
    const full = new MemoryBackend({ compact: true });
    void full.set('k', new CachedValue('v', { ct: Date.now(), v: VALUE_VERSION }));
    assert.equal(full[BIND_EXPIRY](10_000, systemClock), undefined);
    assert.equal(new MemoryBackend()[BIND_EXPIRY](10_000, systemClock), undefined, 'not compact');
    assert.equal(new MemoryBackend({ compact: true })[BIND_EXPIRY](0, systemClock), undefined);
    assert.ok(new MemoryBackend({ compact: true })[BIND_EXPIRY](-1, systemClock) !== undefined, 'never expires');
  });
});

/** Counts a bound store's lookups of a bare value's creation time (the reads that are not fresh hits). */
function countSlowReads(store: MemoryBackend): { count: number } {
  const counter = { count: 0 };
  const cache = store.cache;
  const original = cache.getRemainingTTL.bind(cache);
  cache.getRemainingTTL = (key: string) => {
    counter.count++;
    return original(key);
  };
  return counter;
}

/**
 * Starts a regeneration of `key` whose creator waits; checks that a second caller meanwhile gets
 * `old` (a stale value is served, not a miss), then lets it finish and returns what it made.
 */
async function servedStale(
  region: CacheRegion,
  key: string,
  old: unknown,
  fresh: unknown,
  options: { expirationTime?: number } = {},
): Promise<unknown> {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const creating = region.getOrCreate(
    key,
    async () => {
      await gate;
      return fresh;
    },
    options,
  );
  assert.deepEqual(await region.getOrCreate(key, () => 'second creator', options), old);
  release();
  return creating;
}

/** Like servedStale, but the second caller must wait for the new value (a miss: nothing to serve). */
async function waitedFor(region: CacheRegion, key: string, fresh: unknown): Promise<unknown> {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const creating = region.getOrCreate(key, async () => {
    await gate;
    return fresh;
  });
  const second = region.getOrCreate(key, () => 'second creator');
  release();
  assert.deepEqual(await second, fresh);
  return creating;
}
