import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LRUCache } from 'lru-cache';
import { CompactLru } from '../../src/backends/compact-lru.js';
import { DEFAULT_MEMORY_MAX, MemoryBackend } from '../../src/backends/memory.js';
import { CachedValue, makeRegion, NO_VALUE, VALUE_VERSION, ValidationError } from '../../src/index.js';
import { backendConformance } from './conformance.js';

// The default store (a CompactLru: bare payloads with their times) and an lru-cache store
// (maxSize: CachedValue objects) keep the same storage contract.
backendConformance({ name: 'memory', makeBackend: () => new MemoryBackend({ max: 1000 }) });
backendConformance({ name: 'memory, lru-cache store (maxSize)', makeBackend: () => new MemoryBackend({ maxSize: 1e9 }) });

describe('memory backend arguments', () => {
  const v = (payload: unknown) => new CachedValue(payload, { ct: Date.now(), v: VALUE_VERSION });

  it('is bounded by default', () => {
    const b = new MemoryBackend();
    assert.ok(b.cache instanceof CompactLru);
    assert.equal(b.cache.max, DEFAULT_MEMORY_MAX);
  });

  it('rejects a max longer than any array (the store allocates its slots up front)', () => {
    assert.throws(
      () => new MemoryBackend({ max: 2 ** 32 }),
      (e: unknown) => e instanceof ValidationError && /max must be at most 2\^32 - 1, got 4294967296/.test(e.message),
    );
  });

  it('evicts the least recently used entry past max', async () => {
    const b = new MemoryBackend({ max: 2 });
    await b.set('a', v(1));
    await b.set('b', v(2));
    await b.get('a');
    await b.set('c', v(3));
    assert.equal(await b.get('b'), NO_VALUE);
    assert.notEqual(await b.get('a'), NO_VALUE);
  });

  it('bounds total size with maxSize', async () => {
    const b = new MemoryBackend({ maxSize: 100 });
    await b.set('a', v('x'.repeat(30))); // ~60 bytes
    await b.set('b', v('y'.repeat(30)));
    assert.equal(await b.get('a'), NO_VALUE);
    assert.notEqual(await b.get('b'), NO_VALUE);
  });

  it('rejects bad arguments with ValidationError naming them', () => {
    assert.throws(
      () => new MemoryBackend({ max: -1 }),
      (e: unknown) => e instanceof ValidationError && /max/.test(e.message),
    );
    assert.throws(() => new MemoryBackend({ max: 1.5 }), ValidationError);
    assert.throws(() => makeRegion().configure('memory', { arguments: { maxSize: 'big' as never } }), /maxSize.*"big"/);
  });

  it('does not mutate its arguments', () => {
    const args = Object.freeze({ max: 5 });
    makeRegion().configure('memory', { arguments: args });
    assert.deepEqual(args, { max: 5 });
  });
});

describe('memory backend: time options take fractions of a second', () => {
  const v = (payload: unknown) => new CachedValue(payload, { ct: Date.now(), v: VALUE_VERSION });

  it('accepts ttl: 3.85 (lru-cache itself takes only whole milliseconds)', () => {
    assert.doesNotThrow(() => new MemoryBackend({ ttl: 3.85 }));
    assert.doesNotThrow(() => makeRegion().configure('memory', { arguments: { ttl: 3.85 } }));
    assert.equal((new MemoryBackend({ ttl: 3.85 }).cache as LRUCache<string, CachedValue>).ttl, 3850);
    assert.equal(
      (new MemoryBackend({ ttl: 0.0001 }).cache as LRUCache<string, CachedValue>).ttl,
      1,
      'below a millisecond rounds up to one',
    );
  });

  it('drops entries after a fractional ttl', async () => {
    const b = new MemoryBackend({ ttl: 0.0305 });
    await b.set('a', v(1));
    assert.notEqual(await b.get('a'), NO_VALUE);
    await new Promise((resolve) => setTimeout(resolve, 80));
    assert.equal(await b.get('a'), NO_VALUE);
  });

  it('rejects a bad ttl with a ValidationError naming it, never lru-cache TypeError', () => {
    for (const ttl of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, '5', null]) {
      assert.throws(
        () => new MemoryBackend({ ttl: ttl as number }),
        (e: unknown) => e instanceof ValidationError && /ttl/.test(e.message),
        `ttl ${String(ttl)}`,
      );
    }
  });

  it('rejects unknown arguments, naming them and listing the known ones', () => {
    assert.throws(
      () => makeRegion().configure('memory', { arguments: { maxx: 5 } as never }),
      (e: unknown) => e instanceof ValidationError && /"maxx"/.test(e.message) && /max, maxSize/.test(e.message),
    );
  });

  it('checks sizeCalculation: needs maxSize, and must return a positive number (fractions round up)', async () => {
    assert.throws(() => new MemoryBackend({ sizeCalculation: () => 1 }), /sizeCalculation.*maxSize/);
    const fractional = new MemoryBackend({ maxSize: 10, sizeCalculation: () => 2.5 });
    await fractional.set('a', v(1));
    assert.equal((fractional.cache as LRUCache<string, CachedValue>).calculatedSize, 3);
    const broken = new MemoryBackend({ maxSize: 10, sizeCalculation: () => 0 });
    await assert.rejects(
      broken.set('a', v(1)),
      (e: unknown) => e instanceof ValidationError && /sizeCalculation/.test(e.message),
    );
    const region = makeRegion().configure(new MemoryBackend({ maxSize: 10, sizeCalculation: () => -1 }));
    await assert.rejects(region.set('a', 1), ValidationError);
  });
});

describe('memory backend: clone', () => {
  it('is off by default: values are stored by reference', async () => {
    const region = makeRegion().configure('memory');
    const value = { n: 1 };
    await region.set('k', value);
    ((await region.get<{ n: number }>('k')) as { n: number }).n = 2;
    assert.deepEqual(await region.get('k'), { n: 2 });
  });

  it('clone: true stores and returns copies, so callers cannot corrupt the cache', async () => {
    const region = makeRegion().configure('memory', { expirationTime: 60, arguments: { clone: true } });
    const stored = { n: 1, list: [1, 2], when: new Date(5), map: new Map([['a', 1]]) };
    await region.set('k', stored);
    stored.n = 99;
    stored.list.push(3);
    const first = (await region.get('k')) as typeof stored;
    assert.deepEqual(first, { n: 1, list: [1, 2], when: new Date(5), map: new Map([['a', 1]]) });
    first.n = 42;
    first.map.set('b', 2);
    const second = await region.getOrCreate('k', () => assert.fail('fresh value: the creator must not run'));
    assert.equal((second as typeof stored).n, 1);
    assert.notEqual(second, first);
    assert.equal((second as typeof stored).map.size, 1);
    const [multi] = await region.getMulti(['k']);
    assert.notEqual(multi, second);
    assert.deepEqual(multi, second);
  });

  it('clone: true copies what getOrCreate stores, and keeps the metadata', async () => {
    const backend = new MemoryBackend({ clone: true });
    const region = makeRegion().configure(backend, { expirationTime: 60 });
    const made = { n: 1 };
    assert.equal(await region.getOrCreate('k', () => made), made);
    made.n = 5;
    assert.deepEqual(await region.get('k'), { n: 1 });
    const meta = await region.getValueMetadata('k');
    assert.equal(typeof meta?.metadata.ct, 'number');
    assert.equal(meta?.metadata.v, VALUE_VERSION);
  });

  it('a value that cannot be cloned is a ValidationError at the write, and nothing is stored', async () => {
    const region = makeRegion().configure('memory', { arguments: { clone: true } });
    await assert.rejects(
      region.set('k', { f: () => 1 }),
      (e: unknown) => e instanceof ValidationError && /clone/.test(e.message),
    );
    await assert.rejects(region.setMulti({ a: 1, b: { f: () => 1 } }), ValidationError);
    assert.equal(await region.get('a'), NO_VALUE);
    assert.throws(() => new MemoryBackend({ clone: 'yes' as unknown as boolean }), /clone must be true or false/);
  });
});

describe('memory backend: an existing LRUCache as the store', () => {
  it('stores into the given cache, so its owner sees and controls the entries', async () => {
    const lru = new LRUCache<string, CachedValue>({ max: 2 });
    const region = makeRegion().configure('memory', { expirationTime: 60, arguments: { cache: lru } });
    assert.equal((region.actualBackend as MemoryBackend).cache, lru);
    await region.set('a', 1);
    await region.set('b', 2);
    assert.equal(lru.peek('a')?.payload, 1);
    await region.set('c', 3); // lru's own bound applies: 'a' (least recently used) goes
    assert.equal(await region.get('a'), NO_VALUE);
    lru.clear();
    assert.equal(await region.get('c'), NO_VALUE);
    assert.equal(await region.getOrCreate('c', () => 30), 30);
  });

  it('rejects a cache that is not an LRUCache, and bounds given beside it', () => {
    assert.throws(
      () => new MemoryBackend({ cache: new Map() as unknown as LRUCache<string, CachedValue> }),
      (e: unknown) => e instanceof ValidationError && /cache must be an LRUCache/.test(e.message),
    );
    const lru = new LRUCache<string, CachedValue>({ max: 5 });
    for (const extra of [{ max: 5 }, { maxSize: 5 }, { ttl: 1 }]) {
      assert.throws(
        () => new MemoryBackend({ cache: lru, ...extra }),
        (e: unknown) =>
          e instanceof ValidationError && new RegExp(`${Object.keys(extra)[0]} cannot be given with cache`).test(e.message),
      );
    }
  });

  it('combines with clone', async () => {
    const lru = new LRUCache<string, CachedValue>({ max: 10 });
    const backend = new MemoryBackend({ cache: lru, clone: true });
    const value = { n: 1 };
    await backend.set('k', new CachedValue(value, { ct: Date.now(), v: VALUE_VERSION }));
    assert.deepEqual(lru.get('k')?.payload, { n: 1 });
    assert.notEqual(lru.get('k')?.payload, value);
  });
});
