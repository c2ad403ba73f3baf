// CachedValue keeps common metadata in a compact form (see src/api.ts); every form must read back
// exactly what it was given, and the region must treat them alike.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CachedValue, MemoryBackend, makeRegion, NO_VALUE, VALUE_VERSION } from '../../src/index.js';

describe('CachedValue metadata', () => {
  it('reads back { ct, v } and { ct, v, d } exactly, near and far from the time origin', () => {
    const now = Date.now();
    for (const ct of [now, now - 30 * 86_400_000, 0, -5, 1e15, 1234.5, now + 0.25]) {
      assert.deepEqual(new CachedValue('x', { ct, v: VALUE_VERSION }).metadata, { ct, v: VALUE_VERSION });
      assert.equal(new CachedValue('x', { ct, v: VALUE_VERSION }).cachedTime, ct);
      for (const d of [0, 7, 0.5, 86_400_000]) {
        assert.deepEqual(new CachedValue('x', { ct, v: VALUE_VERSION, d }).metadata, { ct, v: VALUE_VERSION, d });
      }
    }
  });

  it('keeps metadata with other fields or another version as given', () => {
    const tagged = { ct: 5, v: VALUE_VERSION, d: 3, tags: ['a'] };
    assert.equal(new CachedValue('x', tagged).metadata, tagged);
    const other = { ct: 5, v: 99 };
    assert.equal(new CachedValue('x', other).metadata, other);
    const extra = { ct: 5, v: VALUE_VERSION, maxStale: 10 } as { ct: number; v: number };
    assert.deepEqual(new CachedValue('x', extra).metadata, extra);
  });

  it('measures age with the given clock, or Date.now', () => {
    assert.equal(new CachedValue('x', { ct: 1_000, v: VALUE_VERSION }, () => 6_500).age, 5.5);
    const fresh = new CachedValue('x', { ct: Date.now(), v: VALUE_VERSION });
    assert.ok(fresh.age >= 0 && fresh.age < 5);
  });

  it('payload is the only enumerable field', () => {
    assert.deepEqual(Object.keys(new CachedValue({ a: 1 }, { ct: Date.now(), v: VALUE_VERSION, d: 2 })), ['payload']);
  });
});

describe('the region on every metadata form', () => {
  it('serves compact and long-form values alike, and another version as a miss', async () => {
    const backend = new MemoryBackend();
    const region = makeRegion().configure(backend, { expirationTime: 60 });
    const now = Date.now();
    await backend.set('compact', new CachedValue(1, { ct: now, v: VALUE_VERSION, d: 4 }));
    await backend.set('fractional', new CachedValue(2, { ct: now + 0.5, v: VALUE_VERSION }));
    await backend.set('tagged', new CachedValue(3, { ct: now, v: VALUE_VERSION, tags: ['t'] }));
    await backend.set('old', new CachedValue(4, { ct: now - 120_000, v: VALUE_VERSION }));
    await backend.set('other', new CachedValue(5, { ct: now, v: VALUE_VERSION + 1 }));
    assert.deepEqual(await region.getMulti(['compact', 'fractional', 'tagged', 'old', 'other']), [1, 2, 3, NO_VALUE, NO_VALUE]);
    assert.equal(await region.get('tagged'), 3);
    assert.equal(await region.get('other'), NO_VALUE);
    assert.equal(await region.get('other', { ignoreExpiration: true }), 5);
    assert.equal(await region.getOrCreate('compact', () => assert.fail('fresh')), 1);
    assert.equal(await region.getOrCreate('other', () => 50), 50);
    assert.equal(await region.getOrCreate('old', () => 40), 40);
  });

  it('getOrCreate and get reject (never throw) on bad input on the fast path', async () => {
    const region = makeRegion({
      keyMangler: (k) => {
        if (k === 'boom') throw new Error('mangler failed');
        return k;
      },
    }).configure('memory');
    await region.set('k', 1);
    const call = region.getOrCreate('boom', () => 1);
    assert.ok(call instanceof Promise);
    await assert.rejects(call, /mangler failed/);
    await assert.rejects(region.get('boom'), /mangler failed/);
    await assert.rejects(
      region.getOrCreate('k', () => 1, { expirationTime: -5 }),
      /expirationTime/,
    );
    await assert.rejects(region.get('k', { expirationTime: Number.NaN }), /expirationTime/);
  });
});
