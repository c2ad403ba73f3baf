// CompactLru, the memory backend's default store, checked against lru-cache as an oracle: the same
// random operations on both must leave the same entries in the same recency order, for sizes that
// use each width of slot array (8, 16 and 32 bits). Plus its own rules: bare payloads and their
// times, CachedValues kept whole, iteration that survives deletes, and validation.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LRUCache } from 'lru-cache';
import { CompactLru } from '../../src/backends/compact-lru.js';
import { CachedValue, VALUE_VERSION, ValidationError } from '../../src/index.js';

/** A small deterministic PRNG (mulberry32), so a failure repeats. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

const T0 = 1_700_000_000_000;

function value(n: number, tagged: boolean): CachedValue {
  return new CachedValue(n, tagged ? { ct: T0 + n, v: VALUE_VERSION, tags: ['t'] } : { ct: T0 + n, v: VALUE_VERSION });
}

/** Runs `ops` random operations on a CompactLru and an LRUCache of the same max, comparing as it goes. */
function compareWithLruCache(max: number, keySpace: number, ops: number, seed: number): void {
  const random = prng(seed);
  const ours = new CompactLru(max);
  const oracle = new LRUCache<string, CachedValue>({ max });
  const payloadOf = (v: CachedValue | undefined): unknown => v?.payload;
  for (let i = 0; i < ops; i++) {
    const key = `k${Math.floor(random() * keySpace)}`;
    const r = random();
    const where = `op ${i} (max ${max}, seed ${seed}) on ${key}`;
    if (r < 0.45) {
      const v = value(i, random() < 0.2);
      ours.set(key, v);
      oracle.set(key, v);
    } else if (r < 0.8) {
      assert.equal(payloadOf(ours.get(key)), payloadOf(oracle.get(key)), `get: ${where}`);
    } else if (r < 0.88) {
      assert.equal(payloadOf(ours.peek(key)), payloadOf(oracle.peek(key)), `peek: ${where}`);
    } else if (r < 0.93) {
      assert.equal(ours.has(key), oracle.has(key), `has: ${where}`);
    } else if (r < 0.995) {
      assert.equal(ours.delete(key), oracle.delete(key), `delete: ${where}`);
    } else {
      ours.clear();
      oracle.clear();
    }
    assert.equal(ours.size, oracle.size, `size: ${where}`);
    if (i % 97 === 0 || ours.size <= 3) {
      assert.deepEqual([...ours.keys()], [...oracle.keys()], `order: ${where}`);
    }
  }
  assert.deepEqual(
    [...ours.entries()].map(([k, v]) => [k, v.payload, v.metadata.ct]),
    [...oracle.entries()].map(([k, v]) => [k, v.payload, v.metadata.ct]),
  );
}

describe('CompactLru', () => {
  it('behaves as lru-cache under random operations (8-, 16- and 32-bit slot arrays)', () => {
    compareWithLruCache(1, 4, 2_000, 1);
    compareWithLruCache(2, 5, 3_000, 2);
    compareWithLruCache(7, 20, 20_000, 3);
    compareWithLruCache(256, 600, 20_000, 4);
    compareWithLruCache(300, 700, 30_000, 5);
    compareWithLruCache(70_000, 100_000, 200_000, 6);
  });

  it('evicts the least recently used; get refreshes recency, peek and has do not', () => {
    const lru = new CompactLru(3);
    for (const k of ['a', 'b', 'c']) lru.set(k, value(1, false));
    lru.get('a');
    lru.peek('b');
    lru.has('b');
    lru.set('d', value(2, false));
    assert.deepEqual([...lru.keys()], ['d', 'a', 'c']);
    lru.set('c', value(3, false)); // overwriting refreshes too
    lru.set('e', value(4, false));
    assert.deepEqual([...lru.keys()], ['e', 'c', 'd']);
    assert.equal(lru.size, 3);
  });

  it('keeps a plain value bare with its time, and anything else as the CachedValue given', () => {
    const lru = new CompactLru(10);
    const payload = { id: 1 };
    lru.set('plain', new CachedValue(payload, { ct: T0, v: VALUE_VERSION }));
    const slot = lru.find('plain');
    assert.equal(lru.items[slot], payload);
    assert.equal(lru.times[slot], T0);
    const back = lru.get('plain') as CachedValue;
    assert.equal(back.payload, payload);
    assert.deepEqual(back.metadata, { ct: T0, v: VALUE_VERSION });

    const kept = [
      new CachedValue('t', { ct: T0, v: VALUE_VERSION, tags: ['x'] }),
      new CachedValue('d', { ct: T0, v: VALUE_VERSION, d: 12 }),
      new CachedValue('f', { ct: T0, v: VALUE_VERSION, fs: T0 + 1000 }),
      new CachedValue('o', { ct: T0, v: VALUE_VERSION + 1 }),
      new CachedValue('h', { ct: T0 + 0.5, v: VALUE_VERSION }),
    ];
    for (const [i, v] of kept.entries()) {
      lru.set(`k${i}`, v);
      const s = lru.find(`k${i}`);
      assert.equal(lru.items[s], v, v.payload as string);
      assert.ok(Number.isNaN(lru.times[s]));
      assert.equal(lru.get(`k${i}`), v);
    }
    // A key that changes kind keeps the right one.
    lru.set('plain', kept[0] as CachedValue);
    assert.equal(lru.get('plain'), kept[0]);
    lru.set('plain', new CachedValue(2, { ct: T0 + 5, v: VALUE_VERSION }));
    assert.deepEqual((lru.get('plain') as CachedValue).metadata, { ct: T0 + 5, v: VALUE_VERSION });
  });

  it('drops references on delete, clear and eviction (slots are reused)', () => {
    const lru = new CompactLru(2);
    lru.set('a', value(1, false));
    lru.set('b', value(2, false));
    lru.delete('a');
    assert.equal(lru.items.filter((x) => x !== undefined).length, 1);
    lru.set('c', value(3, false));
    lru.set('d', value(4, false)); // evicts b
    assert.deepEqual([...lru.keys()], ['d', 'c']);
    assert.deepEqual(
      lru.items.filter((x) => x !== undefined),
      [3, 4].filter((n) => [...lru.values()].some((v) => v.payload === n)),
    );
    lru.clear();
    assert.equal(lru.size, 0);
    assert.deepEqual([...lru.keys()], []);
    assert.ok(lru.items.every((x) => x === undefined));
    lru.set('e', value(5, false));
    assert.deepEqual([...lru.keys()], ['e']);
  });

  it('iterates from the most recently used, and deleting while iterating is safe', () => {
    const lru = new CompactLru(10);
    for (let i = 0; i < 6; i++) lru.set(`k${i}`, value(i, i % 2 === 0));
    const seen: string[] = [];
    for (const [key, v] of lru) {
      seen.push(key);
      if ((v.payload as number) % 2 === 1) lru.delete(key);
      if (key === 'k5') lru.delete('k4'); // a later one: skipped
    }
    assert.deepEqual(seen, ['k5', 'k3', 'k2', 'k1', 'k0']);
    assert.deepEqual([...lru.keys()], ['k2', 'k0']);
    assert.deepEqual(
      [...lru.values()].map((v) => v.payload),
      [2, 0],
    );
  });

  it('rejects a bad max and values that are not CachedValues', () => {
    for (const max of [0, -1, 1.5, Number.NaN, 2 ** 32]) {
      assert.throws(
        () => new CompactLru(max),
        (e: unknown) => e instanceof ValidationError && /max must be a positive integer/.test(e.message),
        String(max),
      );
    }
    const lru = new CompactLru(2);
    assert.throws(
      () => lru.set('k', 'raw' as unknown as CachedValue),
      (e: unknown) =>
        e instanceof ValidationError && /values must be CachedValue objects, got string for key "k"/.test(e.message),
    );
    assert.equal(lru.size, 0);
  });
});
