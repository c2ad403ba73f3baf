// Events and stats, creator timeouts, fail-safe, circuit breaker and backend timeouts on the
// memory backend (real timers for timeouts, a manual clock for expiry).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BaseBackend,
  CachedValue,
  CreatorTimeoutError,
  decodeValue,
  encodeValue,
  jsonSerializer,
  LockLostError,
  LockTimeoutError,
  ManualClock,
  MemoryBackend,
  makeRegion,
  NO_VALUE,
  type RegionEventMap,
  type RegionOptions,
  ValidationError,
} from '../../src/index.js';
import { sleep, until } from '../helpers/time.js';

function region(options: RegionOptions = {}, expirationTime: number | null = 10) {
  const clock = new ManualClock();
  const r = makeRegion({ name: 'r', clock, ...options }).configure('memory', { expirationTime });
  return { region: r, clock };
}

/** A remote-like backend (async reads only) that can be switched to fail every operation, or to hang. */
class FlakyBackend extends BaseBackend {
  mode: 'ok' | 'fail' | 'hang' = 'ok';
  calls = 0;
  private readonly map = new Map<string, CachedValue>();
  private async gate(): Promise<void> {
    this.calls++;
    if (this.mode === 'fail') throw new Error('connection refused');
    if (this.mode === 'hang') await new Promise(() => {});
  }
  override async get(key: string) {
    await this.gate();
    return this.map.get(key) ?? NO_VALUE;
  }
  override async set(key: string, value: CachedValue) {
    await this.gate();
    this.map.set(key, value);
  }
  override async delete(key: string) {
    await this.gate();
    this.map.delete(key);
  }
}

function record<E extends keyof RegionEventMap>(r: ReturnType<typeof makeRegion>, event: E): RegionEventMap[E][] {
  const seen: RegionEventMap[E][] = [];
  r.on(event, (p) => seen.push(p));
  return seen;
}

describe('events and stats', () => {
  it('emits hit, miss, createStart, create with region, key and outcome; stats count them', async () => {
    const { region: r } = region();
    const hits = record(r, 'hit');
    const misses = record(r, 'miss');
    const creates = record(r, 'create');
    const starts = record(r, 'createStart');
    assert.equal(await r.getOrCreate('k', () => 1), 1);
    assert.equal(await r.getOrCreate('k', () => 2), 1);
    assert.equal(await r.get('k'), 1);
    assert.equal(await r.get('nope'), NO_VALUE);
    await assert.rejects(
      r.getOrCreate('bad', () => {
        throw new Error('db down');
      }),
      /db down/,
    );
    assert.deepEqual(
      hits.map((h) => [h.region, h.key]),
      [
        ['r', 'k'],
        ['r', 'k'],
      ],
    );
    assert.deepEqual(
      misses.map((m) => m.key),
      ['k', 'nope', 'bad'],
    );
    assert.deepEqual(
      starts.map((s) => s.key),
      ['k', 'bad'],
    );
    assert.deepEqual(
      creates.map((c) => [c.key, c.outcome]),
      [
        ['k', 'ok'],
        ['bad', 'error'],
      ],
    );
    assert.ok(creates.every((c) => c.durationMs >= 0));
    const stats = r.stats();
    assert.equal(stats.hits, 2);
    assert.equal(stats.misses, 3);
    assert.equal(stats.creations, 2);
    assert.equal(stats.creationErrors, 1);
    assert.ok(stats.creationP99Ms >= stats.creationP50Ms);
  });

  it('counts hits with no listener, and off() removes a listener', async () => {
    const { region: r } = region();
    await r.getOrCreate('k', () => 1);
    await r.getOrCreate('k', () => 1);
    assert.equal(r.stats().hits, 1);
    const seen: unknown[] = [];
    const listener = (p: unknown) => seen.push(p);
    r.on('hit', listener);
    assert.equal(r.listenerCount('hit'), 1);
    await r.getOrCreate('k', () => 1);
    r.off('hit', listener);
    assert.equal(r.listenerCount('hit'), 0);
    await r.getOrCreate('k', () => 1);
    assert.equal(seen.length, 1);
    assert.equal(r.stats().hits, 3);
  });

  it('emits stale while another caller regenerates, lockWait for a waiter, and invalidate', async () => {
    const { region: r, clock } = region();
    const stale = record(r, 'stale');
    const waits = record(r, 'lockWait');
    const invalidations = record(r, 'invalidate');
    await r.set('k', 'old');
    clock.advance(11);
    let release!: () => void;
    const gate = new Promise<void>((res) => {
      release = res;
    });
    const owner = r.getOrCreate('k', async () => {
      await gate;
      return 'new';
    });
    assert.equal(await r.getOrCreate('k', () => 'other'), 'old');
    const cold = r.getOrCreate('cold', async () => {
      await gate;
      return 'c';
    });
    const waiter = r.getOrCreate('cold', () => 'never');
    release();
    assert.equal(await owner, 'new');
    assert.equal(await cold, 'c');
    assert.equal(await waiter, 'c');
    assert.deepEqual(
      stale.map((s) => s.key),
      ['k'],
    );
    assert.deepEqual(
      waits.map((w) => w.key),
      ['cold'],
    );
    await r.invalidate({ hard: false });
    assert.deepEqual(invalidations, [{ region: 'r', hard: false }]);
    assert.equal(r.stats().lockWaits, 1);
  });

  it('emits lockTimeout when a waiter gives up, and lockLost when the creator loses its distributed lock', async () => {
    const r = makeRegion({ name: 'r', lockWaitTimeout: 0.05 }).configure('memory');
    const timeouts = record(r, 'lockTimeout');
    const slow = r.getOrCreate('k', () => sleep(200).then(() => 1));
    await assert.rejects(
      r.getOrCreate('k', () => 2),
      LockTimeoutError,
    );
    await slow;
    assert.deepEqual(
      timeouts.map((t) => t.key),
      ['k'],
    );
    assert.equal(r.stats().lockTimeouts, 1);

    const controller = new AbortController();
    class LosingBackend extends FlakyBackend {
      getMutex() {
        return {
          acquire: async () => true,
          release: async () => {},
          locked: async () => false,
          signal: controller.signal,
        };
      }
    }
    const d = makeRegion({ name: 'd' }).configure(new LosingBackend());
    const lost = record(d, 'lockLost');
    const value = d.getOrCreate('k', async ({ signal }) => {
      controller.abort(new LockLostError('lease ran out'));
      assert.ok(signal?.aborted);
      return 'v';
    });
    assert.equal(await value, 'v');
    assert.deepEqual(
      lost.map((l) => [l.region, l.key]),
      [['d', 'k']],
    );
  });

  it('emits lockWait for a wait on a distributed lock, on fail-closed regions too', async () => {
    class WaitingBackend extends FlakyBackend {
      getMutex() {
        return {
          acquire: async (wait: boolean) => {
            if (wait) await sleep(40);
            return true;
          },
          release: async () => {},
          locked: async () => false,
        };
      }
    }
    for (const failOpen of [true, false]) {
      const r = makeRegion({ failOpen }).configure(new WaitingBackend());
      const waits = record(r, 'lockWait');
      assert.equal(await r.getOrCreate('k', () => 1), 1);
      assert.equal(waits.length, 1, `failOpen ${failOpen}`);
      assert.ok((waits[0]?.durationMs ?? 0) >= 30);
    }
  });

  it('a throwing listener does not break the call', async () => {
    const { region: r } = region();
    r.on('miss', () => {
      throw new Error('bad listener');
    });
    assert.equal(await r.getOrCreate('k', () => 5), 5);
  });

  it('rejects unknown events and non-function listeners', () => {
    const { region: r } = region();
    assert.throws(() => r.on('hits' as never, () => {}), ValidationError);
    assert.throws(() => r.on('hit', 'x' as never), /listener must be a function/);
  });
});

describe('option validation', () => {
  const bad: [string, RegionOptions, RegExp][] = [
    ['negative maxStale', { failSafe: { maxStale: -1, retryAfter: 1 } }, /failSafe\.maxStale/],
    ['NaN retryAfter', { failSafe: { maxStale: 1, retryAfter: Number.NaN } }, /failSafe\.retryAfter/],
    ['failSafe not an object', { failSafe: 5 as never }, /failSafe must be/],
    ['unknown failSafe field', { failSafe: { maxStale: 1, retryAfter: 1, x: 1 } as never }, /unknown field "x"/],
    ['negative softTimeout', { softTimeout: -1 }, /softTimeout/],
    ['string hardTimeout', { hardTimeout: '1' as never }, /hardTimeout/],
    ['zero hardTimeout', { hardTimeout: 0 }, /hardTimeout/],
    ['soft >= hard', { softTimeout: 2, hardTimeout: 2 }, /softTimeout \(2s\) must be shorter than hardTimeout \(2s\)/],
    ['breaker failures 0', { breaker: { failures: 0, duration: 1 } }, /breaker\.failures/],
    ['breaker failures 1.5', { breaker: { failures: 1.5, duration: 1 } }, /breaker\.failures/],
    ['breaker duration NaN', { breaker: { failures: 1, duration: Number.NaN } }, /breaker\.duration/],
    ['backendTimeout negative', { backendTimeout: -2 }, /backendTimeout/],
  ];
  for (const [name, options, message] of bad) {
    it(`makeRegion: ${name}`, () => {
      assert.throws(
        () => makeRegion(options),
        (err: unknown) => err instanceof ValidationError && message.test(err.message),
      );
    });
  }

  it('per call and per wrapper', async () => {
    const { region: r } = region({ softTimeout: 1 });
    await assert.rejects(
      r.getOrCreate('k', () => 1, { hardTimeout: 0.5 }),
      /softTimeout \(1s\) must be shorter/,
    );
    await assert.rejects(
      r.getOrCreate('k', () => 1, { failSafe: { maxStale: 0, retryAfter: 1 } }),
      ValidationError,
    );
    assert.throws(() => r.cacheOnArguments({ hardTimeout: -1 }), /cacheOnArguments: hardTimeout/);
    assert.throws(() => r.cacheOnArguments({ failSafe: 'yes' as never }), /cacheOnArguments: failSafe/);
  });
});

describe('creator timeouts', () => {
  it('hardTimeout aborts the signal with CreatorTimeoutError and rejects at once; a late result is not stored', async () => {
    const { region: r } = region({ hardTimeout: 0.05 });
    const creates = record(r, 'create');
    let reason: unknown;
    const started = Date.now();
    await assert.rejects(
      r.getOrCreate('k', ({ signal }) => {
        signal?.addEventListener('abort', () => {
          reason = signal.reason;
        });
        return sleep(300).then(() => 'late');
      }),
      CreatorTimeoutError,
    );
    assert.ok(Date.now() - started < 250, 'rejected at the hard timeout, not when the creator returned');
    assert.ok(reason instanceof CreatorTimeoutError);
    assert.equal(creates[0]?.outcome, 'timeout');
    await sleep(300);
    assert.equal(await r.get('k'), NO_VALUE);
  });

  it('softTimeout serves the stale value after that long and stores the result when it lands', async () => {
    const { region: r, clock } = region({ softTimeout: 0.03 });
    await r.set('k', 'old');
    clock.advance(11);
    let calls = 0;
    const creator = async () => {
      calls++;
      await sleep(150);
      return 'new';
    };
    const started = Date.now();
    assert.equal(await r.getOrCreate('k', creator), 'old');
    assert.ok(Date.now() - started < 120);
    // The key stays locked while the creation goes on: no second creation.
    assert.equal(await r.getOrCreate('k', creator), 'old');
    assert.ok(await until(async () => (await r.get('k')) === 'new', 2000));
    assert.equal(calls, 1);
  });

  it('softTimeout without a stale value waits for the creation', async () => {
    const { region: r } = region({ softTimeout: 0.01 });
    assert.equal(await r.getOrCreate('k', () => sleep(60).then(() => 'v')), 'v');
  });

  it('per-call hardTimeout overrides the region; null removes it', async () => {
    const { region: r } = region({ hardTimeout: 0.02 });
    assert.equal(await r.getOrCreate('a', () => sleep(60).then(() => 'a'), { hardTimeout: null }), 'a');
    await assert.rejects(
      r.getOrCreate('b', () => sleep(60).then(() => 'b')),
      CreatorTimeoutError,
    );
  });
});

describe('fail-safe', () => {
  const failSafe = { maxStale: 60, retryAfter: 5 };
  const failing = () => {
    throw new Error('db down');
  };

  it('serves the stale value instead of the error, throttles retries for retryAfter, then retries', async () => {
    const { region: r, clock } = region({ failSafe });
    const events = record(r, 'failSafe');
    await r.getOrCreate('k', () => 'good');
    clock.advance(11);
    let calls = 0;
    const creator = () => {
      calls++;
      throw new Error('db down');
    };
    assert.equal(await r.getOrCreate('k', creator), 'good');
    for (let i = 0; i < 50; i++) assert.equal(await r.getOrCreate('k', creator), 'good');
    assert.equal(calls, 1, 'one creator call within retryAfter');
    clock.advance(5.1);
    assert.equal(await r.getOrCreate('k', creator), 'good');
    assert.equal(calls, 2, 'retried after retryAfter');
    clock.advance(5.1);
    assert.equal(await r.getOrCreate('k', () => 'fixed'), 'fixed');
    assert.equal(await r.getOrCreate('k', creator), 'fixed');
    assert.equal(events[0]?.throttled, false);
    assert.match(String((events[0]?.error as Error | undefined)?.message), /db down/);
    assert.ok(events.some((e) => e.throttled));
    const stats = r.stats();
    assert.ok(stats.failSafeServed >= 50);
    assert.equal(stats.creationErrors, 2);
  });

  it('1,000 concurrent callers of a failing key: one creator call, all served stale', async () => {
    const { region: r, clock } = region({ failSafe });
    await r.set('k', 'good');
    clock.advance(11);
    let calls = 0;
    const results = await Promise.all(
      Array.from({ length: 1000 }, () =>
        r.getOrCreate('k', async () => {
          calls++;
          await sleep(5);
          throw new Error('db down');
        }),
      ),
    );
    assert.equal(calls, 1);
    assert.ok(results.every((v) => v === 'good'));
  });

  it('the error reaches callers when there is no stale value, or it is older than maxStale', async () => {
    const { region: r, clock } = region({ failSafe });
    await assert.rejects(r.getOrCreate('none', failing), /db down/);
    await r.set('k', 'good');
    clock.advance(10 + 61);
    await assert.rejects(r.getOrCreate('k', failing), /db down/);
  });

  it('covers hardTimeout: a creation that hangs serves stale', async () => {
    const { region: r, clock } = region({ failSafe, hardTimeout: 0.03 });
    await r.set('k', 'good');
    clock.advance(11);
    assert.equal(await r.getOrCreate('k', () => new Promise(() => {})), 'good');
  });

  it('with softTimeout: stale after the soft bound; a background failure is throttled, not retried per call', async () => {
    const { region: r, clock } = region({ failSafe, softTimeout: 0.02 });
    await r.set('k', 'good');
    clock.advance(11);
    let calls = 0;
    const creator = async () => {
      calls++;
      await sleep(80);
      throw new Error('db down');
    };
    assert.equal(await r.getOrCreate('k', creator), 'good');
    assert.ok(await until(() => r.stats().creationErrors === 1, 2000));
    for (let i = 0; i < 20; i++) assert.equal(await r.getOrCreate('k', creator), 'good');
    assert.equal(calls, 1);
  });

  it('with backgroundRefresh: the background creation failing throttles the key too', async () => {
    const { region: r, clock } = region({ failSafe, backgroundRefresh: true });
    await r.set('k', 'good');
    clock.advance(11);
    let calls = 0;
    const creator = () => {
      calls++;
      throw new Error('db down');
    };
    assert.equal(await r.getOrCreate('k', creator), 'good');
    assert.ok(await until(() => r.stats().creationErrors === 1, 1000));
    await sleep(20);
    for (let i = 0; i < 20; i++) assert.equal(await r.getOrCreate('k', creator), 'good');
    assert.equal(calls, 1);
  });

  it('per call: failSafe false turns it off; a wrapper can turn it on', async () => {
    const { region: r, clock } = region({ failSafe });
    await r.set('k', 'good');
    clock.advance(11);
    await assert.rejects(r.getOrCreate('k', failing, { failSafe: false }), /db down/);

    const { region: plain, clock: c2 } = region();
    let fail = false;
    const load = plain.cacheOnArguments({ failSafe })(function load(id: number) {
      if (fail) throw new Error('db down');
      return `row ${id}`;
    });
    assert.equal(await load(1), 'row 1');
    c2.advance(11);
    fail = true;
    assert.equal(await load(1), 'row 1');
    const noFs = plain.cacheOnArguments({ namespace: 'x' })(function load2(id: number) {
      if (fail) throw new Error('db down');
      return id;
    });
    fail = false;
    await noFs(1);
    c2.advance(11);
    fail = true;
    await assert.rejects(noFs(1), /db down/);
  });

  it('getOrCreateMulti and cacheMultiOnArguments: stale values for every key instead of the error, then throttled', async () => {
    const { region: r, clock } = region({ failSafe });
    await r.setMulti({ a: 'A', b: 'B' });
    clock.advance(11);
    let calls = 0;
    const failingMulti = () => {
      calls++;
      throw new Error('db down');
    };
    assert.deepEqual(await r.getOrCreateMulti(['a', 'b'], failingMulti), ['A', 'B']);
    assert.deepEqual(await r.getOrCreateMulti(['b', 'a'], failingMulti), ['B', 'A']);
    assert.equal(calls, 1, 'throttled keys are not created again before retryAfter');
    // A key without a stale value: the error reaches the caller.
    await assert.rejects(r.getOrCreateMulti(['a', 'c'], failingMulti), /db down/);

    const { region: w, clock: c2 } = region();
    let fail = false;
    const load = w.cacheMultiOnArguments({ failSafe })(function loadMany(...ids: number[]) {
      if (fail) throw new Error('db down');
      return ids.map((id) => `row ${id}`);
    });
    assert.deepEqual(await load(1, 2), ['row 1', 'row 2']);
    c2.advance(11);
    fail = true;
    assert.deepEqual(await load(1, 2), ['row 1', 'row 2']);
    assert.throws(() => w.cacheMultiOnArguments({ hardTimeout: 0 }), /cacheMultiOnArguments: hardTimeout/);
  });

  it('getOrCreateMulti honours hardTimeout', async () => {
    const { region: r } = region({ hardTimeout: 0.03 });
    await assert.rejects(
      r.getOrCreateMulti(['a'], () => new Promise<string[]>(() => {})),
      CreatorTimeoutError,
    );
  });

  it('the envelope carries the fallback deadline and the retry time through a byte backend', async () => {
    const { region: r, clock } = region({ failSafe });
    await r.getOrCreate('k', () => 'good');
    const stored = (await r.backend.get('k')) as CachedValue;
    assert.equal(stored.metadata.fs, stored.metadata.ct + 10_000 + 60_000);
    clock.advance(11);
    await r.getOrCreate('k', failing);
    await until(async () => ((await r.backend.get('k')) as CachedValue).metadata.ra !== undefined, 1000);
    const throttled = (await r.backend.get('k')) as CachedValue;
    assert.equal(throttled.metadata.ra, clock.now() + 5000);
    const decoded = decodeValue(encodeValue(throttled, jsonSerializer), jsonSerializer);
    assert.ok(decoded !== NO_VALUE);
    assert.equal(decoded.metadata.ra, throttled.metadata.ra);
    assert.equal(decoded.metadata.fs, throttled.metadata.fs);
  });

  it('another region on the same backend honours the retry time written back (cross-process throttle)', async () => {
    const clock = new ManualClock();
    const shared = new MemoryBackend();
    const a = makeRegion({ clock, failSafe }).configure(shared, { expirationTime: 10 });
    const b = makeRegion({ clock, failSafe }).configure(shared, { expirationTime: 10 });
    await a.set('k', 'good');
    clock.advance(11);
    let calls = 0;
    const creator = () => {
      calls++;
      throw new Error('db down');
    };
    assert.equal(await a.getOrCreate('k', creator), 'good');
    await until(async () => ((await shared.get('k')) as CachedValue).metadata.ra !== undefined, 1000);
    assert.equal(await b.getOrCreate('k', creator), 'good');
    assert.equal(calls, 1);
  });

  it('with the backend down, serves this process’s last good copy when the creator fails too', async () => {
    const clock = new ManualClock();
    const backend = new FlakyBackend();
    const r = makeRegion({ clock, failSafe, onError: () => {} }).configure(backend, { expirationTime: 10 });
    await r.getOrCreate('k', () => 'good');
    backend.mode = 'fail';
    // Fresh copy: served without a creator call.
    assert.equal(await r.getOrCreate('k', failing), 'good');
    clock.advance(11);
    assert.equal(await r.getOrCreate('k', failing), 'good');
    // A delete drops the copy.
    backend.mode = 'ok';
    await r.delete('k');
    backend.mode = 'fail';
    await assert.rejects(r.getOrCreate('k', failing), /db down/);
  });
});

describe('circuit breaker and backend timeouts', () => {
  it('opens after `failures` consecutive failures, stops calling the backend, probes after `duration`, closes', async () => {
    const backend = new FlakyBackend();
    const errors: unknown[] = [];
    // duration long enough that the 100 calls below fit in it on a loaded machine
    const r = makeRegion({ breaker: { failures: 3, duration: 0.6 }, onError: (e) => errors.push(e) }).configure(backend, {
      expirationTime: 10,
    });
    const states = record(r, 'breaker');
    backend.mode = 'fail';
    for (let i = 0; i < 3; i++) await r.get('k');
    assert.deepEqual(
      states.map((s) => s.state),
      ['open'],
    );
    const before = backend.calls;
    for (let i = 0; i < 100; i++) assert.equal(await r.getOrCreate(`k${i}`, () => i), i);
    assert.equal(backend.calls, before, 'no backend call while open');
    assert.equal(errors.length, 3, 'open-circuit misses are not reported again');
    await sleep(650);
    backend.mode = 'ok';
    assert.equal(await r.getOrCreate('p', () => 'v'), 'v');
    assert.deepEqual(
      states.map((s) => s.state),
      ['open', 'half-open', 'closed'],
    );
    assert.equal(await r.get('p'), 'v');
  });

  it('a failed probe opens the circuit again', async () => {
    const backend = new FlakyBackend();
    const r = makeRegion({ breaker: { failures: 1, duration: 0.05 }, onError: () => {} }).configure(backend);
    const states = record(r, 'breaker');
    backend.mode = 'fail';
    await r.get('k');
    await sleep(60);
    await r.get('k');
    assert.deepEqual(
      states.map((s) => s.state),
      ['open', 'half-open', 'open'],
    );
  });

  it('deletes reject while the circuit is open', async () => {
    const backend = new FlakyBackend();
    const r = makeRegion({ breaker: { failures: 1, duration: 10 }, onError: () => {} }).configure(backend);
    backend.mode = 'fail';
    await r.get('k');
    await assert.rejects(r.delete('k'), /circuit is open/);
  });

  it('backendTimeout: a hanging read is a miss after the bound, a hanging write is skipped', async () => {
    const backend = new FlakyBackend();
    const errors: Error[] = [];
    const r = makeRegion({ backendTimeout: 0.05, onError: (e) => errors.push(e) }).configure(backend);
    backend.mode = 'hang';
    const started = Date.now();
    assert.equal(await r.getOrCreate('k', () => 'v'), 'v');
    assert.ok(Date.now() - started < 400, `took ${Date.now() - started} ms`);
    assert.ok(errors.some((e) => /timed out after 50 ms/.test(e.message)));
    const events = record(r, 'backendError');
    await r.get('k');
    assert.equal(events[0]?.operation, 'get');
    assert.ok(r.stats().backendErrors >= 3);
  });

  it('the guard sits over the wrap proxies: actualBackend is still the real one', () => {
    const backend = new MemoryBackend();
    const r = makeRegion({ breaker: { failures: 1, duration: 1 } }).configure(backend);
    assert.equal(r.actualBackend, backend);
    assert.notEqual(r.backend, backend);
    assert.equal(new CachedValue(1, { ct: 1, v: 1 }).payload, 1);
  });
});
