// A value keeps how long its creation took (`d`) only when early refresh, its one reader, is on for
// the region or the call: without it the value is a plain CachedValue (40 bytes in the memory
// store, where the form with a duration slot takes 48).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import { type CachedValue, type CacheRegion, MemoryBackend, makeRegion } from '../../src/index.js';

function setup(extra: Parameters<typeof makeRegion>[0] = {}): { region: CacheRegion; clock: ManualClock; store: MemoryBackend } {
  const clock = new ManualClock();
  const store = new MemoryBackend();
  const region = makeRegion({ clock, ...extra }).configure(store, { expirationTime: 60 });
  return { region, clock, store };
}

/** A creator that takes 250 ms on the region's clock. */
function slow(clock: ManualClock, value: unknown): () => Promise<unknown> {
  return async () => {
    clock.advance(0.25);
    return value;
  };
}

const stored = (store: MemoryBackend, key: string): CachedValue => store.cache.get(key) as CachedValue;

describe('creation duration (d)', () => {
  it('is not stored without early refresh: getOrCreate, wrappers, getOrCreateMulti, set, setMulti', async () => {
    const { region, clock, store } = setup();
    await region.getOrCreate('a', slow(clock, 1));
    const wrapped = region.cacheOnArguments({ namespace: 'w' })(async (n: number) => {
      clock.advance(0.25);
      return n;
    });
    await wrapped(1);
    await region.getOrCreateMulti(['m1', 'm2'], async (...keys) => {
      clock.advance(0.25);
      return keys;
    });
    await region.set('s', 1);
    await region.setMulti({ t: 1 });
    for (const key of ['a', 'm1', 'm2', 's', 't', ...store.cache.keys()]) {
      const value = stored(store, key);
      assert.deepEqual(Object.keys(value.metadata).sort(), ['ct', 'v'], key);
      assert.equal(value.constructor.name, 'CachedValue', `${key}: the two-slot form`);
    }
  });

  it("is stored with the region's early refresh, and with a call's", async () => {
    const early = setup({ earlyRefresh: 1 });
    await early.region.getOrCreate('a', slow(early.clock, 1));
    assert.equal(stored(early.store, 'a').metadata.d, 250);
    await early.region.getOrCreateMulti(['m'], async (...keys) => {
      early.clock.advance(0.1);
      return keys;
    });
    assert.equal(stored(early.store, 'm').metadata.d, 100);

    const plain = setup();
    await plain.region.getOrCreate('b', slow(plain.clock, 1), { earlyRefresh: 2 });
    assert.equal(stored(plain.store, 'b').metadata.d, 250);
    await plain.region.getOrCreate('c', slow(plain.clock, 1), { earlyRefresh: 0 });
    assert.equal(stored(plain.store, 'c').metadata.d, undefined, 'earlyRefresh: 0 turns it off for the call');
  });

  it('a fail-safe deadline is kept without a duration', async () => {
    const { region, clock, store } = setup({ failSafe: { maxStale: 30, retryAfter: 5 } });
    await region.getOrCreate('k', slow(clock, 1));
    const meta = stored(store, 'k').metadata;
    assert.equal(meta.d, undefined);
    assert.equal(meta.fs, meta.ct - 250 + 60_000 + 30_000); // counted from the creation's start
  });

  it('early refresh works on the values it times', async () => {
    const { region, clock } = setup({ earlyRefresh: 1000 });
    await region.getOrCreate('k', slow(clock, 'old'));
    clock.advance(59.5); // 0.5 s before expiry; with beta 1000 and d 250 ms, a refresh is certain
    let calls = 0;
    assert.equal(
      await region.getOrCreate('k', async () => {
        calls++;
        return 'new';
      }),
      'old',
    );
    for (let i = 0; i < 50 && calls === 0; i++) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(calls, 1);
    assert.equal(await region.get('k'), 'new');
  });
});
