// Every resilience option is checked with a ValidationError that names it: on makeRegion, per
// call (on every call, fresh hits included, on the synchronous memory path and on an async
// backend), per getOrCreateMulti call, and per wrapper when it is made (against the region's
// hardTimeout too).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BaseBackend, type CachedValue, makeRegion, NO_VALUE, type RegionOptions, ValidationError } from '../../src/index.js';

/** A backend with asynchronous reads only (no SYNC_GET), like every remote one. */
class AsyncMapBackend extends BaseBackend {
  private readonly map = new Map<string, CachedValue>();
  override async get(key: string) {
    return this.map.get(key) ?? NO_VALUE;
  }
  override async set(key: string, value: CachedValue) {
    this.map.set(key, value);
  }
  override async delete(key: string) {
    this.map.delete(key);
  }
}

const named = (re: RegExp) => (err: unknown) => err instanceof ValidationError && re.test(err.message);

describe('resilience options: makeRegion', () => {
  const bad: [string, RegionOptions, RegExp][] = [
    ['failSafe without retryAfter', { failSafe: { maxStale: 1 } as never }, /failSafe\.retryAfter/],
    ['failSafe.maxStale a string', { failSafe: { maxStale: '1', retryAfter: 1 } as never }, /failSafe\.maxStale/],
    ['failSafe.maxStale Infinity', { failSafe: { maxStale: Number.POSITIVE_INFINITY, retryAfter: 1 } }, /failSafe\.maxStale/],
    ['softTimeout Infinity', { softTimeout: Number.POSITIVE_INFINITY }, /softTimeout/],
    ['hardTimeout NaN', { hardTimeout: Number.NaN }, /hardTimeout/],
    [
      'softTimeout above hardTimeout',
      { softTimeout: 3, hardTimeout: 1 },
      /softTimeout \(3s\) must be shorter than hardTimeout \(1s\)/,
    ],
    ['breaker a number', { breaker: 3 as never }, /breaker must be/],
    ['breaker without duration', { breaker: { failures: 2 } as never }, /breaker\.duration/],
    ['breaker.failures negative', { breaker: { failures: -1, duration: 1 } }, /breaker\.failures/],
    [
      'breaker unknown field',
      { breaker: { failures: 1, duration: 1, reset: 2 } as never },
      /breaker has an unknown field "reset"/,
    ],
    ['backendTimeout 0', { backendTimeout: 0 }, /backendTimeout/],
    ['backendTimeout a string', { backendTimeout: '1' as never }, /backendTimeout/],
    ['backendTimeout NaN', { backendTimeout: Number.NaN }, /backendTimeout/],
  ];
  for (const [name, options, message] of bad) {
    it(name, () => {
      assert.throws(() => makeRegion(options), named(message));
    });
  }
});

describe('resilience options: per call, on every call', () => {
  for (const [kind, configure] of [
    ['memory (synchronous hit path)', (o: RegionOptions) => makeRegion(o).configure('memory', { expirationTime: 60 })],
    ['an async backend', (o: RegionOptions) => makeRegion(o).configure(new AsyncMapBackend(), { expirationTime: 60 })],
  ] as const) {
    it(`a bad option fails a fresh hit too: ${kind}`, async () => {
      const r = configure({ hardTimeout: 1 });
      await r.set('k', 'v');
      assert.equal(await r.getOrCreate('k', () => 'new'), 'v');
      await assert.rejects(
        r.getOrCreate('k', () => 'new', { hardTimeout: -1 }),
        named(/getOrCreate: hardTimeout/),
      );
      await assert.rejects(
        r.getOrCreate('k', () => 'new', { softTimeout: Number.NaN }),
        named(/getOrCreate: softTimeout/),
      );
      await assert.rejects(
        r.getOrCreate('k', () => 'new', { softTimeout: 2 }),
        named(/getOrCreate: softTimeout \(2s\) must be shorter than hardTimeout \(1s\)/),
      );
      await assert.rejects(
        r.getOrCreate('k', () => 'new', { failSafe: { maxStale: 0, retryAfter: 1 } }),
        named(/getOrCreate: failSafe\.maxStale/),
      );
      // Good overrides still pass, and the same overrides again (a wrapper's) are parsed once.
      const options = { failSafe: { maxStale: 5, retryAfter: 1 }, softTimeout: 0.1, hardTimeout: null };
      assert.equal(await r.getOrCreate('k', () => 'new', options), 'v');
      assert.equal(await r.getOrCreate('k', () => 'new', options), 'v');
      options.failSafe.maxStale = -1; // the same object, changed: checked again
      await assert.rejects(
        r.getOrCreate('k', () => 'new', options),
        named(/failSafe\.maxStale/),
      );
    });
  }

  it('getOrCreateMulti names itself', async () => {
    const r = makeRegion().configure('memory', { expirationTime: 60 });
    await r.set('a', 1);
    await assert.rejects(
      r.getOrCreateMulti(['a'], () => [2], { failSafe: { maxStale: 1, retryAfter: -1 } }),
      named(/getOrCreateMulti: failSafe\.retryAfter/),
    );
    await assert.rejects(
      r.getOrCreateMulti(['a'], () => [2], { hardTimeout: 0 }),
      named(/getOrCreateMulti: hardTimeout/),
    );
  });
});

describe('resilience options: per wrapper, when the wrapper is made', () => {
  it('cacheOnArguments and cacheMultiOnArguments', () => {
    const r = makeRegion({ hardTimeout: 2 }).configure('memory');
    assert.throws(
      () => r.cacheOnArguments({ failSafe: { maxStale: 1 } as never }),
      named(/cacheOnArguments: failSafe\.retryAfter/),
    );
    assert.throws(() => r.cacheMultiOnArguments({ failSafe: 1 as never }), named(/cacheMultiOnArguments: failSafe must be/));
    assert.throws(() => r.cacheMultiOnArguments({ hardTimeout: Number.NaN }), named(/cacheMultiOnArguments: hardTimeout/));
    assert.throws(
      () => r.cacheOnArguments({ softTimeout: 2 }),
      named(/cacheOnArguments: softTimeout \(2s\) must be shorter than hardTimeout \(2s\)/),
    );
    assert.doesNotThrow(() => r.cacheOnArguments({ softTimeout: 2, hardTimeout: 3 }));
    assert.doesNotThrow(() => r.cacheMultiOnArguments({ failSafe: false, softTimeout: 0 }));
  });
});
