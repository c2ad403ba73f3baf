// Tag invalidation (hard and soft, shared through the backend, read cost) and XFetch early refresh
// (one background regeneration near expiry, callers keep the current value), on memory regions
// with a manual clock, plus the XFetch formula and bad input.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { shouldRefreshEarly } from '../../src/early-refresh.js';
import {
  type CachedValue,
  type CreatorContext,
  ManualClock,
  MemoryBackend,
  makeRegion,
  NO_VALUE,
  type NoValue,
  ProxyBackend,
  ValidationError,
} from '../../src/index.js';
import { sleep, until } from '../helpers/time.js';

class CountingProxy extends ProxyBackend {
  gets = 0;
  override get(key: string): Promise<CachedValue | NoValue> {
    this.gets++;
    return super.get(key);
  }
  override getMulti(keys: string[]): Promise<(CachedValue | NoValue)[]> {
    this.gets++;
    return super.getMulti(keys);
  }
}

function tagged(shared = new MemoryBackend()) {
  const clock = new ManualClock();
  const counter = new CountingProxy();
  const region = makeRegion({ clock, tagRefreshInterval: 1 }).configure(shared, { expirationTime: 60, wrap: [counter] });
  return { region, clock, counter, shared };
}

describe('tags', () => {
  it('invalidateTags (hard) makes values written with one of the tags before the call a miss', async () => {
    const { region, clock } = tagged();
    await region.set('a', 1, { tags: ['users', 'u:1'] });
    await region.set('b', 2, { tags: ['users'] });
    await region.set('c', 3, { tags: ['orders'] });
    await region.set('d', 4);
    clock.advance(0.01);
    await region.invalidateTags(['u:1', 'nobody']);
    assert.equal(await region.get('a'), NO_VALUE);
    assert.equal(await region.get('b'), 2);
    await region.invalidateTags(['users']);
    assert.deepEqual(await region.getMulti(['a', 'b', 'c', 'd']), [NO_VALUE, NO_VALUE, 3, 4]);
    // Written after the invalidation (even in the same millisecond): valid.
    await region.set('b', 'again', { tags: ['users'] });
    assert.equal(await region.get('b'), 'again');
    let calls = 0;
    assert.equal(await region.getOrCreate('a', () => ++calls, { tags: ['users'] }), 1);
    assert.equal(await region.getOrCreate('a', () => ++calls, { tags: ['users'] }), 1);
    assert.equal(calls, 1);
  });

  it('soft invalidateTags serves the old value while one caller regenerates', async () => {
    const { region, clock } = tagged();
    await region.getOrCreate('k', () => 'old', { tags: ['t'] });
    clock.advance(0.01);
    await region.invalidateTags(['t'], { hard: false });
    assert.equal(await region.get('k'), NO_VALUE, 'get() treats it as expired');
    let calls = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const creator = async () => {
      calls++;
      await gate;
      return 'new';
    };
    const winner = region.getOrCreate('k', creator, { tags: ['t'] });
    const others = await Promise.all(Array.from({ length: 10 }, () => region.getOrCreate('k', creator, { tags: ['t'] })));
    assert.ok(others.every((v) => v === 'old'));
    release();
    assert.equal(await winner, 'new');
    assert.equal(calls, 1);
  });

  it('reaches another region over the same backend within tagRefreshInterval, and a soft one never undoes a hard one', async () => {
    const shared = new MemoryBackend();
    const a = tagged(shared);
    const b = tagged(shared);
    await a.region.set('k', 'v', { tags: ['t'] });
    assert.equal(await b.region.get('k'), 'v');
    a.clock.advance(0.01);
    b.clock.advance(0.01);
    await a.region.invalidateTags(['t']);
    await a.region.invalidateTags(['t'], { hard: false });
    assert.equal(await b.region.get('k'), 'v', 'b still trusts what it read');
    b.clock.advance(1.1);
    assert.equal(await b.region.get('k'), NO_VALUE);
    assert.equal(await b.region.getOrCreate('k', () => 'recreated'), 'recreated', 'hard: a miss, not stale');
  });

  it('tags a creator adds through its context are stored with the call’s own (read after it returns)', async () => {
    const { region, clock } = tagged();
    let late: ((tags: string[]) => void) | undefined;
    let calls = 0;
    const create = async (context: CreatorContext) => {
      calls++;
      await sleep(1);
      context.addTags(['found', 'own']);
      context.addTags(['found']);
      late = (tags) => context.addTags(tags);
      return `v${calls}`;
    };
    assert.equal(await region.getOrCreate('k', create, { tags: ['own'] }), 'v1');
    assert.deepEqual((await region.getValueMetadata('k'))?.metadata.tags, ['own', 'found']);
    late?.(['too-late']);
    assert.deepEqual((await region.getValueMetadata('k'))?.metadata.tags, ['own', 'found'], 'nothing after the store');
    // Without a tags option: the added tags alone; invalidating one of them makes the value a miss.
    assert.equal(await region.getOrCreate('j', create), 'v2');
    assert.deepEqual((await region.getValueMetadata('j'))?.metadata.tags, ['found', 'own']);
    clock.advance(0.01);
    await region.invalidateTags(['found']);
    assert.equal(await region.getOrCreate('j', create), 'v3');
    assert.equal(await region.getOrCreate('k', create, { tags: ['own'] }), 'v4');
    // Not stored: nothing to tag. A bad tag fails the creation.
    assert.equal(await region.getOrCreate('n', create, { shouldCacheFn: () => false }), 'v5');
    assert.equal(await region.getValueMetadata('n'), null);
    await assert.rejects(
      region.getOrCreate('bad', (context) => {
        context.addTags(['ok', ''] as never);
        return 1;
      }),
      (e: unknown) =>
        e instanceof ValidationError && /CreatorContext\.addTags: tags must be an array of non-empty strings/.test(e.message),
    );
    assert.equal(await region.get('bad'), NO_VALUE);
  });

  it('costs untagged hits no read, and tagged hits one read per tagRefreshInterval', async () => {
    const { region, clock, counter } = tagged();
    await region.set('plain', 1);
    await region.set('tagged', 2, { tags: ['x', 'y'] });
    counter.gets = 0;
    for (let i = 0; i < 50; i++) await region.getOrCreate('plain', () => 0);
    assert.equal(counter.gets, 50, 'one backend read per untagged hit');
    counter.gets = 0;
    for (let i = 0; i < 50; i++) await region.getOrCreate('tagged', () => 0);
    assert.equal(counter.gets, 51, 'one read per hit, plus one getMulti for both tags');
    clock.advance(1.5);
    counter.gets = 0;
    await region.getOrCreate('tagged', () => 0);
    assert.equal(counter.gets, 2, 'the tag times are read again after the interval');
  });

  it('cacheOnArguments tags (a function of the arguments) and bad tags', async () => {
    const { region, clock } = tagged();
    let calls = 0;
    const load = region.cacheOnArguments({ namespace: 'users', tags: (id: number) => [`user:${id}`] })(
      async (id: number) => `${id}:${++calls}`,
    );
    assert.equal(await load(1), '1:1');
    assert.equal(await load(2), '2:2');
    clock.advance(0.01);
    await region.invalidateTags(['user:1']);
    assert.equal(await load(1), '1:3');
    assert.equal(await load(2), '2:2');
    await assert.rejects(
      region.set('k', 1, { tags: 'x' as never }),
      (e: unknown) => e instanceof ValidationError && /set: tags must be an array of non-empty strings, got "x"/.test(e.message),
    );
    await assert.rejects(
      region.invalidateTags([''] as never),
      (e: unknown) => e instanceof ValidationError && /invalidateTags: tags/.test(e.message),
    );
    await assert.rejects(
      region.getOrCreate('m', () => 1, { tags: [1] as never }),
      (e: unknown) => e instanceof ValidationError && /getOrCreate: tags/.test(e.message),
    );
    assert.throws(
      () => region.cacheMultiOnArguments({ earlyRefresh: 1 } as never),
      (e: unknown) =>
        e instanceof ValidationError &&
        /cacheMultiOnArguments: earlyRefresh is not supported on multi-key wrappers/.test(e.message),
    );
    assert.throws(
      () => region.cacheMultiOnArguments({ tags: 'x' as never }),
      (e: unknown) =>
        e instanceof ValidationError && /cacheMultiOnArguments: tags must be an array of strings or a function/.test(e.message),
    );
    await assert.rejects(
      region.getOrCreateMulti(['a'], () => [1], { earlyRefresh: 1 } as never),
      (e: unknown) => e instanceof ValidationError && /getOrCreateMulti: earlyRefresh/.test(e.message),
    );
    await assert.rejects(
      region.getOrCreateMulti(['a'], () => [1], { tags: [''] }),
      (e: unknown) =>
        e instanceof ValidationError && /getOrCreateMulti: tags must be an array of non-empty strings/.test(e.message),
    );
    await assert.rejects(
      region.getOrCreateMulti(['a'], () => [1], { tags: () => 'x' as never }),
      (e: unknown) => e instanceof ValidationError && /getOrCreateMulti: tags for key "a" must be an array/.test(e.message),
    );
    await assert.rejects(
      region.setMulti({ a: 1 }, { tags: [2] as never }),
      (e: unknown) => e instanceof ValidationError && /setMulti: tags must be an array/.test(e.message),
    );
    assert.throws(
      () => makeRegion({ tagRefreshInterval: -1 }),
      (e: unknown) => e instanceof ValidationError && /tagRefreshInterval/.test(e.message),
    );
  });
});

describe('tags on the multi-key forms', () => {
  it('getOrCreateMulti stores the same tags for every key, or each key its own (a function of the key)', async () => {
    const { region } = tagged();
    let calls = 0;
    const make = (...ks: string[]) => {
      calls++;
      return ks.map((k) => `${k}:${calls}`);
    };
    assert.deepEqual(await region.getOrCreateMulti(['a', 'b'], make, { tags: ['all'] }), ['a:1', 'b:1']);
    assert.deepEqual(await region.getOrCreateMulti(['c', 'd'], make, { tags: (k) => [`only:${k}`] }), ['c:2', 'd:2']);
    assert.deepEqual(await region.getOrCreateMulti(['a', 'b', 'c', 'd'], make), ['a:1', 'b:1', 'c:2', 'd:2']);
    await region.invalidateTags(['only:d']);
    assert.deepEqual(await region.getOrCreateMulti(['a', 'b', 'c', 'd'], make), ['a:1', 'b:1', 'c:2', 'd:3']);
    await region.invalidateTags(['all']);
    assert.deepEqual(await region.getOrCreateMulti(['a', 'b', 'c', 'd'], make), ['a:4', 'b:4', 'c:2', 'd:3']);
    assert.equal(calls, 4);
  });

  it('setMulti takes tags the same way', async () => {
    const { region } = tagged();
    await region.setMulti({ x: 1, y: 2 }, { tags: (k) => [`t:${k}`] });
    await region.setMulti(new Map([['z', 3]]), { tags: ['zed'] });
    await region.invalidateTags(['t:x', 'zed']);
    assert.deepEqual(await region.getMulti(['x', 'y', 'z']), [NO_VALUE, 2, NO_VALUE]);
  });

  it('cacheMultiOnArguments tags each value by its own argument, in calls, set and refresh', async () => {
    const { region } = tagged();
    let version = 0;
    const load = region.cacheMultiOnArguments({ tags: (id: number) => [`user:${id}`] })(async function users(...ids: number[]) {
      version++;
      return ids.map((id) => `${id}:${version}`);
    });
    assert.deepEqual(await load(1, 2, 3), ['1:1', '2:1', '3:1']);
    await region.invalidateTags(['user:2']);
    assert.deepEqual(await load(1, 2, 3), ['1:1', '2:2', '3:1']);
    await load.set(new Map([[4, 'four']]));
    await region.invalidateTags(['user:4']);
    assert.deepEqual(await load.get(4), [NO_VALUE]);
    await load.refresh(5, 6);
    await region.invalidateTags(['user:6']);
    assert.deepEqual(await load.get(5, 6), ['5:3', NO_VALUE]);
    const fixed = region.cacheMultiOnArguments({ tags: ['batch'], namespace: 'fixed' })(async function squares(...ns: number[]) {
      version++;
      return ns.map((n) => n * n + version / 1000);
    });
    const first = await fixed(2, 3);
    assert.deepEqual(await fixed(2, 3), first);
    await region.invalidateTags(['batch']);
    assert.notDeepEqual(await fixed(2, 3), first);
  });
});

describe('early refresh (XFetch)', () => {
  it('the formula: never without a creation time, rarely far from expiry, surely at it', () => {
    assert.equal(
      shouldRefreshEarly(0, undefined, 10_000, 9_999, 1, () => 0.999),
      false,
    );
    assert.equal(
      shouldRefreshEarly(0, 100, -1, 9_999, 1, () => 0.999),
      false,
      'never expires',
    );
    assert.equal(
      shouldRefreshEarly(0, 100, 10_000, 5_000, 1, () => 0.5),
      false,
    );
    // -ln(1 - 0.99) * 100 = 460 ms >= 400 ms remaining.
    assert.equal(
      shouldRefreshEarly(0, 100, 10_000, 9_600, 1, () => 0.99),
      true,
    );
    assert.equal(
      shouldRefreshEarly(0, 100, 10_000, 9_600, 0.5, () => 0.99),
      false,
      'a smaller beta refreshes later',
    );
  });

  it('near expiry, one background regeneration; every caller gets the current value at once', async () => {
    const clock = new ManualClock();
    const region = makeRegion({ clock, earlyRefresh: 1 }).configure('memory', { expirationTime: 10 });
    let calls = 0;
    const creator = async () => {
      calls++;
      clock.advance(0.1); // the creation "takes" 100 ms: d = 100
      await sleep(20);
      return `v${calls}`;
    };
    assert.equal(await region.getOrCreate('hot', creator), 'v1');
    clock.advance(5);
    for (let i = 0; i < 200; i++) assert.equal(await region.getOrCreate('hot', creator), 'v1');
    assert.equal(calls, 1, 'far from expiry: no early refresh');
    clock.advance(4.85); // 50 ms before expiry: each hit refreshes with probability 1 - e^-2
    const seen = await Promise.all(Array.from({ length: 100 }, () => region.getOrCreate('hot', creator)));
    assert.ok(
      seen.every((v) => v === 'v1'),
      'callers got the current value',
    );
    assert.ok(await until(async () => (await region.get('hot')) === 'v2', 2000), 'the refreshed value landed');
    assert.equal(calls, 2, 'one regeneration for 100 concurrent hits');
  });

  it('is off by default and per call (earlyRefresh: 0); a bad beta is a ValidationError', async () => {
    const clock = new ManualClock();
    const on = makeRegion({ clock, earlyRefresh: 1 }).configure('memory', { expirationTime: 10 });
    const off = makeRegion({ clock }).configure('memory', { expirationTime: 10 });
    let calls = 0;
    const creator = () => {
      calls++;
      clock.advance(1);
      return calls;
    };
    await on.getOrCreate('k', creator);
    await off.getOrCreate('k', creator);
    clock.advance(8.9);
    calls = 0;
    for (let i = 0; i < 100; i++) {
      await off.getOrCreate('k', creator);
      await on.getOrCreate('k', creator, { earlyRefresh: 0 });
    }
    await sleep(10);
    assert.equal(calls, 0);
    assert.throws(
      () => makeRegion({ earlyRefresh: -1 }),
      (e: unknown) => e instanceof ValidationError && /earlyRefresh must be a number >= 0/.test(e.message),
    );
    assert.throws(
      () => makeRegion({ earlyRefresh: 'yes' as never }),
      (e: unknown) => e instanceof ValidationError && /got "yes"/.test(e.message),
    );
  });
});
