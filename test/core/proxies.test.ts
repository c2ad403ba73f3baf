// wrap: the bare ProxyBackend (class or instance) is a pass-through; one proxy instance serves one
// region; a backend may supply its own key mangler. (Issue 12.)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type CachedValue,
  MemoryBackend,
  makeRegion,
  NO_VALUE,
  ProxyBackend,
  registerBackend,
  ValidationError,
} from '../../src/index.js';

describe('wrap with the bare ProxyBackend', () => {
  it('the class itself is accepted and passes everything through', async () => {
    const region = makeRegion().configure('memory', { wrap: [ProxyBackend] });
    assert.ok(region.backend instanceof ProxyBackend);
    await region.set('a', 1);
    assert.equal(await region.get('a'), 1);
    assert.equal(await region.getOrCreate('b', () => 2), 2);
    assert.deepEqual(await region.getMulti(['a', 'b', 'c']), [1, 2, NO_VALUE]);
  });

  it('a bare instance is accepted, and region.wrap takes the class too', async () => {
    const region = makeRegion().configure('memory', { wrap: [new ProxyBackend()] });
    region.wrap(ProxyBackend);
    await region.set('a', 1);
    assert.equal(await region.get('a'), 1);
    assert.ok(region.actualBackend instanceof MemoryBackend);
  });
});

describe('one proxy instance, one region', () => {
  it('an instance already wrapping one region is rejected by a second region', async () => {
    const shared = new ProxyBackend();
    const first = makeRegion({ name: 'first' }).configure('memory', { wrap: [shared] });
    await first.set('k', 'first');
    assert.throws(
      () => makeRegion({ name: 'second' }).configure('memory', { wrap: [shared] }),
      (err: unknown) => err instanceof ValidationError && /already wraps another region's backend/.test(err.message),
    );
    assert.throws(() => makeRegion().configure('memory').wrap(shared), /already wraps another region/);
    // The first region still reads its own data.
    assert.equal(await first.get('k'), 'first');
  });

  it('a region whose backend is still loading already owns its proxies', async () => {
    registerBackend('slow-memory', async () => {
      await new Promise((r) => setTimeout(r, 20));
      return new MemoryBackend();
    });
    const shared = new ProxyBackend();
    const first = makeRegion().configure('slow-memory', { wrap: [shared] });
    assert.throws(() => makeRegion().configure('memory', { wrap: [shared] }), /already wraps another region/);
    await first.set('k', 1);
    assert.equal(await first.get('k'), 1);
  });

  it('the same region may reuse its instance when it is configured again', async () => {
    const proxy = new ProxyBackend();
    const region = makeRegion().configure('memory', { wrap: [proxy] });
    region.configure('memory', { wrap: [proxy], replaceExistingBackend: true });
    await region.set('a', 1);
    assert.equal(await region.get('a'), 1);
  });

  it('one instance listed twice is rejected (it would forward to itself)', () => {
    const proxy = new ProxyBackend();
    assert.throws(() => makeRegion().configure('memory', { wrap: [proxy, proxy] }), /same proxy instance twice/);
  });

  it('a class gives each region its own instance', async () => {
    class Counting extends ProxyBackend {
      sets = 0;
      override set(key: string, value: CachedValue) {
        this.sets++;
        return super.set(key, value);
      }
    }
    const a = makeRegion().configure('memory', { wrap: [Counting] });
    const b = makeRegion().configure('memory', { wrap: [Counting] });
    await a.set('k', 'a');
    await b.set('k', 'b');
    assert.notEqual(a.backend, b.backend);
    assert.equal((a.backend as Counting).sets, 1);
    assert.equal(await a.get('k'), 'a');
  });
});

describe("a backend's own key mangler", () => {
  class HashingBackend extends MemoryBackend {
    readonly keyMangler = (key: string) => `m:${key.length}:${key}`;
  }

  it('is used when the region has none, for every operation', async () => {
    const backend = new HashingBackend();
    const region = makeRegion().configure(backend);
    await region.set('abc', 1);
    assert.equal(await region.getOrCreate('de', () => 2), 2);
    assert.deepEqual([...backend.cache.keys()].sort(), ['m:2:de', 'm:3:abc']);
    assert.equal(await region.get('abc'), 1);
    assert.equal(region.keyMangler, region.keyMangler); // stable
    assert.equal(region.mangle('x'), 'm:1:x');
  });

  it("the region's own keyMangler wins; a backend under a proxy still supplies it", async () => {
    const own = makeRegion({ keyMangler: (k) => `own:${k}` }).configure(new HashingBackend());
    assert.equal(own.mangle('x'), 'own:x');
    const proxied = makeRegion().configure(new HashingBackend(), { wrap: [ProxyBackend] });
    assert.equal(proxied.mangle('x'), 'm:1:x');
  });

  it('a backend keyMangler that is not a function is a ValidationError', async () => {
    const bad = Object.assign(new MemoryBackend(), { keyMangler: 'sha1' });
    assert.throws(() => makeRegion().configure(bad as never), /backend's keyMangler must be a function/);
  });
});
