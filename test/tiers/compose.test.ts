// How the two-tier, tag and early-refresh features compose with main's resilience and observability
// work: an L1 hit is a `hit` (event and stat), fail-safe serves stale through an L1+L2 region (L2
// up, and L2 down with L1 cleared), the breaker guards L2 only (an open circuit still serves L1
// hits, and misses without touching L2), tags with fail-safe, and early refresh emitting `create`.
// L2 is a memory backend behind a proxy that can fail, so every case is deterministic and fast.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BackendError,
  type CachedValue,
  type CacheRegion,
  ManualClock,
  makeRegion,
  NO_VALUE,
  type NoValue,
  ProxyBackend,
  type RegionOptions,
  type TieredBackend,
} from '../../src/index.js';
import { until } from '../helpers/time.js';

/** L2 as seen through the tier: counts calls, and fails every one while `down`. */
class FlakyL2 extends ProxyBackend {
  calls = 0;
  down = false;
  private check(): void {
    this.calls++;
    if (this.down) throw new BackendError('L2 is down');
  }
  override async get(key: string): Promise<CachedValue | NoValue> {
    this.check();
    return super.get(key);
  }
  override async getMulti(keys: string[]): Promise<(CachedValue | NoValue)[]> {
    this.check();
    return super.getMulti(keys);
  }
  override async set(key: string, value: CachedValue): Promise<void> {
    this.check();
    return super.set(key, value);
  }
  override async setMulti(entries: Map<string, CachedValue>): Promise<void> {
    this.check();
    return super.setMulti(entries);
  }
}

function tiered(options: RegionOptions = {}, l1 = true) {
  const clock = new ManualClock();
  const l2 = new FlakyL2();
  const region: CacheRegion = makeRegion({ clock, onError: () => {}, ...options }).configure('memory', {
    expirationTime: 10,
    wrap: [l2],
    ...(l1 ? { l1: { max: 100, bus: false as const } } : {}),
  });
  return { region, clock, l2, tier: l1 ? (region.backend as TieredBackend) : undefined };
}

function record(region: CacheRegion, event: 'hit' | 'miss' | 'create' | 'failSafe' | 'breaker') {
  const seen: Record<string, unknown>[] = [];
  region.on(event, (e) => seen.push(e as unknown as Record<string, unknown>));
  return seen;
}

const fail = (): never => {
  throw new Error('database down');
};

describe('L1 + L2 with events and stats', () => {
  it('an L1 hit is a hit (event and stat) and does not read L2; an L1 miss that L2 answers is a hit too', async () => {
    const { region, l2, tier } = tiered();
    const hits = record(region, 'hit');
    const misses = record(region, 'miss');
    assert.equal(await region.getOrCreate('k', () => 'v'), 'v');
    assert.deepEqual(region.stats().misses, 1);
    const l2Calls = l2.calls;
    assert.equal(await region.getOrCreate('k', fail), 'v');
    assert.equal(await region.get('k'), 'v');
    assert.equal(l2.calls, l2Calls, 'served by L1');
    assert.equal(region.stats().hits, 2);
    assert.deepEqual(
      hits.map((e) => e.key),
      ['k', 'k'],
    );
    tier?.clear();
    assert.equal(await region.getOrCreate('k', fail), 'v');
    assert.equal(l2.calls, l2Calls + 1, 'the L1 miss read L2 once');
    assert.equal(region.stats().hits, 3);
    assert.equal(misses.length, 1, 'an L2 hit behind an L1 miss is not a miss');
  });
});

describe('fail-safe through L1 + L2', () => {
  const failSafe = { maxStale: 60, retryAfter: 5 };

  it('serves the stale value when the creator fails, then throttles the creator', async () => {
    const { region, clock } = tiered({ failSafe });
    const served = record(region, 'failSafe');
    await region.getOrCreate('k', () => 'old');
    clock.advance(15); // expired 5 s ago, within maxStale
    let calls = 0;
    const failing = () => {
      calls++;
      return fail();
    };
    assert.equal(await region.getOrCreate('k', failing), 'old');
    assert.equal(await region.getOrCreate('k', failing), 'old');
    assert.equal(calls, 1, 'throttled for retryAfter');
    assert.equal(region.stats().failSafeServed, 2);
    assert.equal(served.length, 2);
    clock.advance(6);
    assert.equal(await region.getOrCreate('k', () => 'new'), 'new');
    assert.equal(await region.getOrCreate('k', fail), 'new');
  });

  it('with L2 down and L1 cleared, serves this process fallback copy', async () => {
    const { region, clock, l2, tier } = tiered({ failSafe });
    await region.getOrCreate('k', () => 'old');
    clock.advance(15);
    tier?.clear();
    l2.down = true;
    assert.equal(await region.getOrCreate('k', fail), 'old');
    assert.equal(region.stats().failSafeServed, 1);
    assert.ok(region.stats().backendErrors >= 1);
  });

  it('without fail-safe the error reaches the caller (the tests above can fail)', async () => {
    const { region, clock } = tiered();
    await region.getOrCreate('k', () => 'old');
    clock.advance(15);
    await assert.rejects(region.getOrCreate('k', fail), /database down/);
  });
});

describe('breaker in front of L2, behind L1', () => {
  it('with the circuit open, L1 hits are served and misses create without calling L2', async () => {
    const { region, l2 } = tiered({ breaker: { failures: 2, duration: 30 } });
    const states = record(region, 'breaker');
    assert.equal(await region.getOrCreate('a', () => 'A'), 'A');
    l2.down = true;
    assert.equal(await region.getOrCreate('b', () => 'B1'), 'B1'); // L2 read and write fail: the circuit opens
    assert.deepEqual(
      states.map((e) => e.state),
      ['open'],
    );
    const l2Calls = l2.calls;
    const t0 = performance.now();
    assert.equal(await region.getOrCreate('a', fail), 'A', 'an L1 hit');
    let created = 0;
    assert.equal(
      await region.getOrCreate('c', () => {
        created++;
        return 'C';
      }),
      'C',
    );
    assert.ok(performance.now() - t0 < 100, 'misses fast');
    assert.equal(created, 1);
    assert.equal(l2.calls, l2Calls, 'L2 not called while the circuit is open');
    assert.equal(region.stats().hits, 1);
  });
});

describe('tags with fail-safe', () => {
  const failSafe = { maxStale: 60, retryAfter: 5 };

  for (const l1 of [false, true]) {
    it(`soft invalidateTags: a failing creator serves the tagged stale value${l1 ? ' (L1 + L2)' : ''}; hard: the error`, async () => {
      const { region, clock } = tiered({ failSafe }, l1);
      await region.getOrCreate('a', () => 'A', { tags: ['t'] });
      await region.getOrCreate('b', () => 'B', { tags: ['t'] });
      clock.advance(0.01);
      await region.invalidateTags(['t'], { hard: false });
      let calls = 0;
      const failing = () => {
        calls++;
        return fail();
      };
      assert.equal(await region.getOrCreate('a', failing, { tags: ['t'] }), 'A');
      assert.equal(await region.getOrCreate('a', failing, { tags: ['t'] }), 'A', 'throttled, the tags kept');
      assert.equal(calls, 1);
      assert.equal(region.stats().failSafeServed, 2);
      clock.advance(0.01);
      await region.invalidateTags(['t']);
      await assert.rejects(region.getOrCreate('b', failing, { tags: ['t'] }), /database down/);
      assert.equal(await region.get('b'), NO_VALUE);
    });
  }
});

/**
 * Runs `f` with Math.random fixed to `r` (XFetch draws one number per hit; without a fixed draw a
 * refresh "all but certain" still failed to happen about once in 500 runs).
 */
async function withRandom<T>(r: number, f: () => Promise<T>): Promise<T> {
  const real = Math.random;
  Math.random = () => r;
  try {
    return await f();
  } finally {
    Math.random = real;
  }
}

describe('early refresh with events', () => {
  for (const l1 of [false, true]) {
    it(`a background refresh emits create (outcome ok) and callers get the current value${l1 ? ' (L1 + L2)' : ''}`, async () => {
      const { region, clock } = tiered({ earlyRefresh: 50 }, l1);
      const creates = record(region, 'create');
      const hits = record(region, 'hit');
      let version = 0;
      const creator = () => {
        clock.advance(1); // a creation that takes 1 s: XFetch weighs by it
        return ++version;
      };
      assert.equal(await region.getOrCreate('k', creator), 1);
      clock.advance(8.9); // 0.1 s left: with beta 50 and this draw, the refresh is certain
      assert.equal(await withRandom(0.5, () => region.getOrCreate('k', creator)), 1, 'the caller gets the current value');
      assert.ok(await until(() => creates.length === 2, 2000), 'the background refresh ran');
      assert.deepEqual(
        creates.map((e) => [e.key, e.outcome]),
        [
          ['k', 'ok'],
          ['k', 'ok'],
        ],
      );
      assert.equal(hits.length, 1);
      assert.equal(await region.get('k'), 2, 'the refreshed value is stored');
      assert.equal(region.stats().creations, 2);
    });
  }

  it('a failing background refresh emits create (outcome error) and keeps the value', async () => {
    const { region, clock } = tiered({ earlyRefresh: 50 });
    const creates = record(region, 'create');
    await region.getOrCreate('k', () => {
      clock.advance(1);
      return 'v';
    });
    clock.advance(8.9);
    assert.equal(await withRandom(0.5, () => region.getOrCreate('k', fail)), 'v');
    assert.ok(await until(() => creates.length === 2, 2000), 'the background refresh ran');
    assert.equal(creates[1]?.outcome, 'error');
    assert.equal(region.stats().creationErrors, 1);
    assert.equal(await region.get('k'), 'v');
  });
});
