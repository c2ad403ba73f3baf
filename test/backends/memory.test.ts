import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_MEMORY_MAX, MemoryBackend } from '../../src/backends/memory.js';
import { CachedValue, makeRegion, NO_VALUE, VALUE_VERSION, ValidationError } from '../../src/index.js';
import { backendConformance } from './conformance.js';

backendConformance({ name: 'memory', makeBackend: () => new MemoryBackend({ max: 1000 }) });

describe('memory backend arguments', () => {
  const v = (payload: unknown) => new CachedValue(payload, { ct: Date.now(), v: VALUE_VERSION });

  it('is bounded by default', () => {
    const b = new MemoryBackend();
    assert.equal(b.cache.max, DEFAULT_MEMORY_MAX);
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
