// The backend conformance suite (exported as `dogpile/testing`). Every built-in backend runs it, and
// a third-party backend can too:
//
//   import { backendConformance } from 'dogpile/testing';
//   backendConformance({ name: 'my-backend', makeBackend: () => new MyBackend({ ... }) });
//
// It registers node:test suites: the storage contract, value round trips, the dogpile guarantee
// through a region (stampedes, expiry, creator errors), and the mutex contract when the backend has
// a distributed lock.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { type CacheBackend, CachedValue, NO_VALUE, VALUE_VERSION } from '../api.js';
import { ManualClock } from '../clock.js';
import { type CacheRegion, makeRegion, type RegionOptions } from '../region.js';

/** How to run the suite against one backend. */
export interface ConformanceOptions {
  /** Suite title. */
  name: string;
  /** A new backend instance (may share a server with others: the suite uses unique keys). */
  makeBackend: () => CacheBackend | Promise<CacheBackend>;
  /** Writes raw bytes under a (mangled) key, to check that garbage reads as a miss. Default none (that check is skipped). */
  writeRaw?: (key: string, bytes: Uint8Array) => Promise<void>;
  /** Extra region options (for example a key mangler the backend needs). Default none. */
  regionOptions?: RegionOptions;
  /** Skip the 1 MB value round trip (for stores with a smaller item limit). Default false. */
  skipLargeValue?: boolean;
  /** The backend provides `getMutex`: also run the mutex contract. Default false. */
  distributedLock?: boolean;
}

/** Registers the conformance suites for one backend with node:test. */
export function backendConformance(options: ConformanceOptions): void {
  const backends: CacheBackend[] = [];
  const newBackend = async (): Promise<CacheBackend> => {
    const b = await options.makeBackend();
    backends.push(b);
    return b;
  };
  const newRegion = async (extra: RegionOptions = {}): Promise<{ region: CacheRegion; clock: ManualClock }> => {
    const clock = new ManualClock(Date.now());
    const region = makeRegion({ ...options.regionOptions, clock, ...extra }).configure(await newBackend(), {
      expirationTime: 60,
    });
    return { region, clock };
  };
  const k = (label: string): string => `conformance:${label}:${randomUUID()}`;
  const value = (payload: unknown, ct = Date.now()): CachedValue => new CachedValue(payload, { ct, v: VALUE_VERSION });

  after(async () => {
    await Promise.all(backends.map((b) => b.close?.()));
  });

  describe(`${options.name}: storage contract`, () => {
    it('reads NO_VALUE for a missing key, and what was set', async () => {
      const b = await newBackend();
      const key = k('get');
      assert.equal(await b.get(key), NO_VALUE);
      await b.set(key, value('hello', 123));
      const got = await b.get(key);
      assert.ok(got instanceof CachedValue);
      assert.equal(got.payload, 'hello');
      assert.equal(got.metadata.ct, 123);
    });

    it('delete and deleteMulti are idempotent', async () => {
      const b = await newBackend();
      const [a, c] = [k('del-a'), k('del-c')];
      await b.delete(a);
      await b.set(a, value(1));
      await b.delete(a);
      await b.delete(a);
      assert.equal(await b.get(a), NO_VALUE);
      await b.deleteMulti([a, c]);
      await b.set(c, value(2));
      await b.deleteMulti([a, c]);
      assert.equal(await b.get(c), NO_VALUE);
    });

    it('getMulti is aligned with its keys, with NO_VALUE holes (never null)', async () => {
      const b = await newBackend();
      const keys = [1, 2, 3, 4, 5, 6].map((i) => k(`multi${i}`));
      await b.setMulti(new Map([0, 2, 4].map((i) => [keys[i] as string, value(`v${i}`)])));
      const got = await b.getMulti(keys);
      assert.deepEqual(
        got.map((v) => (v === NO_VALUE ? NO_VALUE : v.payload)),
        ['v0', NO_VALUE, 'v2', NO_VALUE, 'v4', NO_VALUE],
      );
      assert.deepEqual(await b.getMulti([]), []);
    });

    it('setMulti does not mutate its input', async () => {
      const b = await newBackend();
      const entries = new Map([
        [k('sm1'), value({ a: 1 })],
        [k('sm2'), value([1, 2])],
      ]);
      const copy = new Map(entries);
      await b.setMulti(entries);
      assert.deepEqual([...entries], [...copy]);
    });

    it('keeps keys apart, including ones with spaces, unicode and separators', async () => {
      const b = await newBackend();
      const base = k('chars');
      const keys = [`${base} a b`, `${base}|a:b`, `${base}/ünï©ødé/`, `${base}\u00e9`];
      await b.setMulti(new Map(keys.map((key, i) => [key, value(i)])));
      const got = await b.getMulti(keys);
      assert.deepEqual(
        got.map((v) => (v === NO_VALUE ? NO_VALUE : v.payload)),
        [0, 1, 2, 3],
      );
    });

    if (options.writeRaw) {
      const writeRaw = options.writeRaw;
      it('reads corrupted bytes as a miss', async () => {
        const b = await newBackend();
        const key = k('corrupt');
        await writeRaw(key, Buffer.from('definitely not an envelope'));
        assert.equal(await b.get(key), NO_VALUE);
        const { region } = await newRegion();
        await writeRaw(key, Buffer.from([0xd0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]));
        assert.equal(await region.getOrCreate(key, () => 'recreated'), 'recreated');
      });
    }
  });

  describe(`${options.name}: value round trip`, () => {
    const samples: [string, unknown][] = [
      ['string', 'text with ünïcødé and "quotes" <>&'],
      ['empty string', ''],
      ['integer', 42],
      ['float', -3.25],
      ['NaN', Number.NaN],
      ['true', true],
      ['false', false],
      ['null', null],
      ['undefined', undefined],
      ['array', [1, 'two', null, [3]]],
      ['nested object', { a: { b: { c: [1, { d: 'e' }] } }, f: null }],
      ['Date', new Date('2026-11-25T10:00:00.000Z')],
      [
        'Map',
        new Map<unknown, unknown>([
          ['a', 1],
          [2, { b: 3 }],
        ]),
      ],
      ['Set', new Set([1, 'two', 3])],
      ['BigInt', 12345678901234567890123456789n],
      ['Buffer', Buffer.from([0, 1, 2, 250, 255])],
      ['Uint8Array', new Uint8Array([9, 8, 7])],
    ];
    for (const [label, sample] of samples) {
      it(`round-trips ${label}`, async () => {
        const { region } = await newRegion();
        const key = k(`rt-${label}`);
        await region.set(key, sample);
        const got = await region.get(key);
        assert.notEqual(got, NO_VALUE, `${label} was not read back`);
        if (sample instanceof Uint8Array) {
          assert.ok(got instanceof Uint8Array, `${label} came back as ${Object.prototype.toString.call(got)}`);
          assert.deepEqual([...(got as Uint8Array)], [...sample]);
        } else {
          assert.deepEqual(got, sample);
        }
      });
    }
    if (!options.skipLargeValue) {
      it('round-trips a 1 MB value', async () => {
        const { region } = await newRegion();
        const key = k('large');
        const big = 'x'.repeat(1024 * 1024);
        await region.set(key, { big });
        assert.deepEqual(await region.get(key), { big });
      });
    }
  });

  describe(`${options.name}: the dogpile guarantee`, () => {
    it('a fresh hit does not call the creator', async () => {
      const { region } = await newRegion();
      const key = k('fresh');
      let calls = 0;
      assert.equal(await region.getOrCreate(key, () => ++calls), 1);
      assert.equal(await region.getOrCreate(key, () => ++calls), 1);
      assert.equal(calls, 1);
    });

    it('200 concurrent getOrCreate on a missing key run the creator once', async () => {
      const { region } = await newRegion();
      const key = k('stampede');
      let calls = 0;
      const creator = async () => {
        calls++;
        await sleep(50);
        return { made: calls };
      };
      const results = await Promise.all(Array.from({ length: 200 }, () => region.getOrCreate(key, creator)));
      assert.equal(calls, 1);
      for (const r of results) assert.deepEqual(r, { made: 1 });
    });

    it('an expired key is regenerated once; everyone else gets the stale value while it runs', async () => {
      const { region, clock } = await newRegion();
      const key = k('expired');
      await region.getOrCreate(key, () => 'old');
      clock.advance(61);
      let calls = 0;
      let finish!: () => void;
      const gate = new Promise<void>((r) => {
        finish = r;
      });
      const creator = async () => {
        calls++;
        await gate;
        return 'new';
      };
      const winner = region.getOrCreate(key, creator);
      const others = Array.from({ length: 99 }, () => region.getOrCreate(key, creator));
      // The creator is still blocked on the gate: every other caller must already have its answer.
      const early = await Promise.all(others);
      assert.ok(early.every((v) => v === 'old'));
      finish();
      assert.equal(await winner, 'new');
      assert.equal(calls, 1);
      assert.equal(await region.getOrCreate(key, creator), 'new');
    });

    it('a creator error reaches the waiters, frees the lock, and the next call succeeds', async () => {
      const { region } = await newRegion();
      const key = k('error');
      let calls = 0;
      const failing = async () => {
        calls++;
        await sleep(20);
        throw new Error('creator failed');
      };
      const results = await Promise.allSettled(Array.from({ length: 20 }, () => region.getOrCreate(key, failing)));
      assert.equal(calls, 1);
      for (const r of results) {
        assert.equal(r.status, 'rejected');
        assert.match(String((r as PromiseRejectedResult).reason), /creator failed/);
      }
      assert.equal(await region.keyIsLocked(key), false);
      assert.equal(await region.getOrCreate(key, () => 'ok'), 'ok');
    });

    it('getOrCreateMulti creates each missing key once across concurrent callers', async () => {
      const { region } = await newRegion();
      const keys = [k('m1'), k('m2'), k('m3')];
      await region.set(keys[1] as string, 'cached');
      const created: string[] = [];
      const creator = async (...missing: string[]) => {
        created.push(...missing);
        await sleep(30);
        return missing.map((m) => `made:${m}`);
      };
      const results = await Promise.all(Array.from({ length: 20 }, () => region.getOrCreateMulti(keys, creator)));
      assert.deepEqual(created.sort(), [keys[0], keys[2]].sort());
      for (const r of results) assert.deepEqual(r, [`made:${keys[0]}`, 'cached', `made:${keys[2]}`]);
    });
  });

  if (!options.distributedLock) return;
  describe(`${options.name}: mutex contract`, () => {
    it('a held lock excludes other mutex objects for the same key, not other keys, and only the owner frees it', async () => {
      const b = await newBackend();
      const getMutex = b.getMutex?.bind(b);
      assert.ok(getMutex?.('probe'), 'distributedLock: true, but getMutex() returned nothing');
      const mutexFor = (key: string) => {
        const m = getMutex?.(key);
        assert.ok(m, `getMutex(${key}) returned nothing`);
        return m;
      };
      const key = k('mutex');
      const m1 = mutexFor(key);
      const m2 = mutexFor(key);
      const other = mutexFor(k('mutex-other'));
      assert.equal(await m1.acquire(false), true);
      assert.equal(await m1.locked(), true);
      assert.equal(await m2.acquire(false), false);
      assert.equal(await other.acquire(false), true);
      await m2.release(); // not the owner: must not free m1's lock
      assert.equal(await m2.acquire(false), false);
      await m1.release();
      assert.equal(await m2.acquire(false), true);
      await m2.release();
      await other.release();
      assert.equal(await m1.locked(), false);
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
