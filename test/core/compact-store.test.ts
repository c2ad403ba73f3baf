// The memory backend's default store (a CompactLru, for a store bounded by `max` alone, and the
// default L1) keeps values that are only a payload and a creation time bare: the payload in the
// slot, the creation time in a Float64Array beside it. These tests check that every reading of
// such a store gives what an envelope would have given: freshness, staleness, invalidation,
// per-call expiration, metadata, sharing the store with another region, and the CachedValue
// objects kept for values that carry more.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LRUCache } from 'lru-cache';
import { CompactLru } from '../../src/backends/compact-lru.js';
import { MemoryBackend } from '../../src/backends/memory.js';
import { ManualClock } from '../../src/clock.js';
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
    arguments: args,
  });
  return { region, clock, store: region.backend as MemoryBackend };
}

describe('the compact store: bare values, read in place', () => {
  it('keeps a set value bare, its creation time beside it, and reads it back as the same CachedValue', async () => {
    const { region, clock, store } = memoryRegion();
    const user = { id: 1, name: 'ann' };
    await region.set('u', user);
    assert.deepEqual(stored(store, 'u'), { item: user, time: T0 }, 'the entry is the payload itself');
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
    assert.ok(!(stored(plain.store, 'k')?.item instanceof CachedValue));

    const early = memoryRegion({ earlyRefresh: 1 });
    await early.region.getOrCreate('k', async () => {
      early.clock.advance(0.25);
      return { n: 1 };
    });
    const kept = stored(early.store, 'k')?.item;
    assert.ok(kept instanceof CachedValue, 'an early-refresh value keeps its envelope');
    assert.ok(Number.isNaN(stored(early.store, 'k')?.time));
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
    assert.ok(stored(store, 'tagged')?.item instanceof CachedValue);
    assert.equal(await region.get('tagged'), 't');
    assert.equal(await region.getOrCreate('tagged', () => 'other'), 't');
    const deadline = new CachedValue('d', { ct: T0, v: VALUE_VERSION, fs: T0 + 60_000 });
    await store.set('deadline', deadline);
    assert.equal(stored(store, 'deadline')?.item, deadline);
    assert.equal(await region.get('deadline'), 'd');
    const inner = new CachedValue('inner', { ct: T0, v: VALUE_VERSION });
    for (const odd of [undefined, null, inner, 0, '', false]) {
      await region.set('odd', odd);
      assert.deepEqual(stored(store, 'odd'), { item: odd, time: T0 }, `${String(odd)} is kept bare too`);
      assert.equal(await region.get('odd'), odd);
      assert.equal(await region.getOrCreate('odd', () => 'other'), odd);
      assert.equal(((await store.get('odd')) as CachedValue).payload, odd);
    }
    await store.set('d0', new CachedValue('z', { ct: T0, v: VALUE_VERSION, d: 0 }));
    assert.ok(stored(store, 'd0')?.item instanceof CachedValue, 'a zero duration is kept as given');
    assert.deepEqual(((await store.get('d0')) as CachedValue).metadata, { ct: T0, v: VALUE_VERSION, d: 0 });
    await region.invalidateTags(['x']);
    assert.equal(await region.get('tagged'), NO_VALUE);
  });

  it('maxSize, ttl and a given cache make an lru-cache store of CachedValues; clone keeps bare clones', async () => {
    for (const args of [{ maxSize: 1000 }, { ttl: 60 }, { cache: new LRUCache<string, CachedValue>({ max: 10 }) }]) {
      const { region, store } = memoryRegion({}, args);
      assert.ok(store.cache instanceof LRUCache, Object.keys(args)[0]);
      await region.set('k', { v: 1 });
      assert.ok(store.cache.get('k') instanceof CachedValue);
      assert.deepEqual(await region.get('k'), { v: 1 });
      assert.deepEqual(await region.getOrCreate('k', () => 'other'), { v: 1 });
    }
    const { region, store } = memoryRegion({}, { clone: true });
    assert.ok(store.cache instanceof CompactLru);
    const value = { v: 1 };
    await region.set('k', value);
    const kept = stored(store, 'k')?.item;
    assert.deepEqual(kept, value);
    assert.notEqual(kept, value, 'a clone, kept bare');
    const got = await region.get('k');
    assert.deepEqual(got, value);
    assert.notEqual(got, kept, 'read back as another clone');
  });

  it('another region configured with the same store reads CachedValues, judged by its own expiration', async () => {
    const { region: a, clock, store } = memoryRegion();
    const b = makeRegion({ clock }).configure(store, { expirationTime: 3 });
    await a.set('k', 'v');
    assert.equal(stored(store, 'k')?.item, 'v', 'bare');
    assert.equal(await b.get('k'), 'v');
    clock.advance(4);
    assert.equal(await b.get('k'), NO_VALUE);
    assert.equal(await a.get('k'), 'v');
    assert.equal(await servedStale(b, 'k', 'v', 'b'), 'b', 'stale for b: served while regenerated');
    assert.equal(await a.get('k'), 'b');
  });

  it('is the store of every region on a max-bounded memory store or L1, whatever its policies', async () => {
    const given = new MemoryBackend({ max: 5 });
    const r1 = makeRegion().configure(given, { expirationTime: 10 });
    await r1.set('k', 'v');
    assert.equal(stored(given, 'k')?.item, 'v', 'a store given to configure');

    const filled = new MemoryBackend();
    await filled.set('old', new CachedValue('o', { ct: Date.now(), v: VALUE_VERSION }));
    const r4 = makeRegion().configure(filled, { expirationTime: 10 });
    assert.equal(await r4.get('old'), 'o', 'values stored before a region used the store');

    // A strategy of the user's own judges bare values as it judges envelopes.
    let invalidAfter = 0;
    const own: RegionInvalidationStrategy = {
      isInvalidated: (ct) => ct <= invalidAfter,
      isHardInvalidated: (ct) => ct <= invalidAfter,
      isSoftInvalidated: () => false,
      invalidate: () => {},
      wasHardInvalidated: () => false,
      wasSoftInvalidated: () => false,
    };
    const clock = new ManualClock(T0);
    const r2 = makeRegion({ clock }).configure('memory', { expirationTime: 10, regionInvalidator: own });
    await r2.set('k', 'v');
    assert.equal(stored(r2.backend as MemoryBackend, 'k')?.item, 'v');
    assert.equal(await r2.getOrCreate('k', () => 'other'), 'v');
    invalidAfter = T0;
    assert.equal(await r2.get('k'), NO_VALUE);
    assert.equal(await r2.getOrCreate('k', () => 'new'), 'new');

    // Fail-safe values carry a deadline: CachedValues; a plain set in such a region is bare.
    const fs = makeRegion({ failSafe: { maxStale: 60, retryAfter: 5 } }).configure('memory', { expirationTime: 10 });
    await fs.getOrCreate('made', () => 'm');
    assert.ok(stored(fs.backend as MemoryBackend, 'made')?.item instanceof CachedValue);
    assert.equal(await fs.getOrCreate('made', () => 'other'), 'm');

    const shared = new DefaultInvalidationStrategy();
    const r3 = makeRegion().configure('memory', { expirationTime: 10, regionInvalidator: shared });
    await r3.set('k', 'v');
    assert.equal(stored(r3.backend as MemoryBackend, 'k')?.item, 'v');
    shared.invalidate(true);
    assert.equal(await r3.get('k'), NO_VALUE);
  });

  it('compact is not an argument (every max-bounded store is compact)', () => {
    assert.throws(
      () => new MemoryBackend({ compact: true } as never),
      (e: unknown) => e instanceof ValidationError && /unknown argument "compact"/.test(e.message),
    );
  });

  it('a region that never expires keeps bare values until invalidated', async () => {
    const clock = new ManualClock(T0);
    const region = makeRegion({ clock }).configure('memory');
    await region.set('k', 'v');
    assert.equal(stored(region.backend as MemoryBackend, 'k')?.item, 'v');
    clock.advance(86_400 * 365);
    assert.equal(await region.get('k'), 'v');
    await region.invalidate({ hard: false });
    assert.equal(await region.get('k'), NO_VALUE);
    assert.equal(await servedStale(region, 'k', 'v', 'w'), 'w');
  });

  it('a clock at zero is kept bare; fractional times keep their CachedValue', async () => {
    for (const start of [0, T0 + 0.5]) {
      const clock = new ManualClock(start);
      const region = makeRegion({ clock }).configure('memory', { expirationTime: 10 });
      await region.set('k', 'v');
      const kept = stored(region.backend as MemoryBackend, 'k');
      if (start === 0) assert.deepEqual(kept, { item: 'v', time: 0 });
      else assert.ok(kept?.item instanceof CachedValue, String(start));
      assert.equal(await region.get('k'), 'v');
      assert.equal((await region.getValueMetadata('k'))?.cachedTime, start);
      clock.advance(11);
      assert.equal(await region.get('k'), NO_VALUE);
    }
  });

  it('an L1 over another backend keeps bare values, bounded by the region expiration', async () => {
    const clock = new ManualClock(T0);
    const l2 = new MemoryBackend();
    const region = makeRegion({ clock }).configure(l2, { expirationTime: 10, l1: { max: 100, bus: false } });
    await region.set('k', { n: 1 });
    const tier = region.backend as unknown as { l1: MemoryBackend };
    assert.ok(tier.l1.cache instanceof CompactLru);
    assert.ok(!(stored(tier.l1, 'k')?.item instanceof CachedValue), 'bare in L1');
    assert.equal(await region.getOrCreate('k', () => ({ n: 2 })), ((await l2.get('k')) as CachedValue).payload);
    assert.deepEqual(await region.get('k'), { n: 1 });
    clock.advance(11);
    assert.deepEqual(await servedStale(region, 'k', { n: 1 }, { n: 3 }), { n: 3 }, 'stale: served while regenerated');
    assert.deepEqual(await region.get('k'), { n: 3 });
  });

  it('an L1 with its own shorter expirationTime or a maxSize is an lru-cache store', () => {
    for (const l1 of [{ expirationTime: 5 }, { maxSize: 1000 }]) {
      const region = makeRegion().configure('null', { expirationTime: 10, l1: { ...l1, bus: false } });
      const tier = region.backend as unknown as { l1: MemoryBackend };
      assert.ok(tier.l1.cache instanceof LRUCache, JSON.stringify(l1));
    }
  });
});

/** What a CompactLru store holds under `key` (recency unchanged): the slot's item and time. */
function stored(store: MemoryBackend, key: string): { item: unknown; time: number } | undefined {
  const lru = store.cache;
  assert.ok(lru instanceof CompactLru, 'a CompactLru store');
  const slot = (lru as unknown as { slots: Map<string, number> }).slots.get(key);
  return slot === undefined ? undefined : { item: lru.items[slot], time: lru.times[slot] as number };
}

/** Counts the store's rebuilding of CachedValues around bare payloads (reads that are not fresh hits). */
function countSlowReads(store: MemoryBackend): { count: number } {
  const counter = { count: 0 };
  const lru = store.cache as CompactLru;
  const original = lru.valueAt.bind(lru);
  lru.valueAt = (slot: number) => {
    counter.count++;
    return original(slot);
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
