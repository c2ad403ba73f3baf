// CachedValue keeps common metadata in a compact form (see src/api.ts); every form must read back
// exactly what it was given, and the region must treat them alike.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { CURRENT_CT, UNTAGGED_CT, VALUE_TAGS } from '../../src/api.js';
import { CachedValue, type CacheMetadata, MemoryBackend, makeRegion, NO_VALUE, VALUE_VERSION } from '../../src/index.js';

const apiUrl = new URL('../../src/api.ts', import.meta.url).href;

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

  it('reads back every d exactly, around the small-integer window and far outside it', () => {
    const now = Date.now();
    const day = 86_400_000;
    // The packed time is a small integer from a day before the module loaded to ~23 days after; the
    // edges of that window, and far beyond, must read back to the millisecond.
    const times = [now, now - day + 1, now - day - 1, now + 23 * day, now + 25 * day, now - 400 * day];
    for (const edge of [2 ** 30, 2 ** 31, 2 ** 32]) times.push(now + edge, now - edge, now + edge - 1, now - edge + 1);
    times.push(Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 2 ** 52 + 1, -(2 ** 52) - 3);
    for (const ct of times) {
      for (const d of [undefined, 0, -0, 1, 2, -1, 0.25, 2 ** 31 - 1, 2 ** 31, 2 ** 31 + 1, 2 ** 40, 1e300, Number.NaN]) {
        const metadata: CacheMetadata = d === undefined ? { ct, v: VALUE_VERSION } : { ct, v: VALUE_VERSION, d };
        const value = new CachedValue('x', metadata);
        const label = `ct ${ct}, d ${Object.is(d, -0) ? '-0' : d}`;
        assert.deepEqual(value.metadata, metadata, label);
        assert.ok(Object.is(value.metadata.d, d), label); // -0 stays -0, NaN stays NaN
        assert.equal(value.cachedTime, ct, label);
        assert.equal(value[CURRENT_CT], ct, label);
        assert.equal(value[UNTAGGED_CT], ct, label);
        assert.equal(value[VALUE_TAGS], undefined, label);
        assert.ok(value instanceof CachedValue, label);
        assert.deepEqual(Object.keys(value), ['payload'], label);
        assert.equal(value.payload, 'x', label);
      }
    }
  });

  it('reads back { ct, v, d?, fs } (fail-safe deadlines) exactly, near and far from the time origin', () => {
    const now = Date.now();
    const day = 86_400_000;
    const times = [now, now - day - 1, now + 25 * day, now - 400 * day, now + 2 ** 31, Number.MAX_SAFE_INTEGER];
    for (const ct of times) {
      for (const fs of [ct, ct + 3_600_000, ct + 2 ** 31 + 1, now + 2 ** 40, -(2 ** 52) + 7]) {
        for (const d of [undefined, 0, -0, 4, 0.5, 2 ** 40, Number.NaN]) {
          const metadata: CacheMetadata = d === undefined ? { ct, v: VALUE_VERSION, fs } : { ct, v: VALUE_VERSION, d, fs };
          const value = new CachedValue('x', metadata, () => ct + 1_500);
          const label = `ct ${ct}, fs ${fs}, d ${Object.is(d, -0) ? '-0' : d}`;
          assert.deepEqual(value.metadata, metadata, label);
          assert.ok(Object.is(value.metadata.d, d), label);
          assert.equal(value.metadata.fs, fs, label);
          assert.equal(value.cachedTime, ct, label);
          assert.equal(value.age, (ct + 1_500 - ct) / 1000, label); // 1.5 but for float rounding near 2^53
          assert.equal(value[CURRENT_CT], ct, label);
          assert.equal(value[UNTAGGED_CT], ct, label);
          assert.equal(value[VALUE_TAGS], undefined, label);
          assert.ok(value instanceof CachedValue, label);
          assert.deepEqual(Object.keys(value), ['payload'], label);
        }
      }
    }
  });

  it('keeps a fractional or far deadline, a retry time, tags or a bad fs as given', () => {
    const ct = Date.now();
    for (const metadata of [
      { ct, v: VALUE_VERSION, fs: ct + 0.5 },
      { ct, v: VALUE_VERSION, fs: 2 ** 53 },
      { ct, v: VALUE_VERSION, d: 2, fs: ct + 10, ra: ct + 5 },
      { ct, v: VALUE_VERSION, fs: ct + 10, tags: ['a'] },
      { ct, v: VALUE_VERSION, fs: '1' as unknown as number },
      { ct, v: VALUE_VERSION, fs: undefined },
    ]) {
      assert.equal(new CachedValue('x', metadata).metadata, metadata, JSON.stringify(metadata));
    }
  });

  it('builds the same value with a duration through the public constructor, clock included', () => {
    const value = new CachedValue({ a: 1 }, { ct: 1_000, v: VALUE_VERSION, d: 250 }, () => 3_000);
    assert.ok(value instanceof CachedValue);
    assert.deepEqual(value.metadata, { ct: 1_000, v: VALUE_VERSION, d: 250 });
    assert.equal(value.age, 2);
    assert.equal(new CachedValue('x', { ct: 1_000, v: VALUE_VERSION, d: 0 }, () => 1_500).age, 0.5);
  });

  it('keeps tags, another version and a fractional time as given, read by the internal getters', () => {
    const ct = Date.now();
    const tagged = new CachedValue('x', { ct, v: VALUE_VERSION, d: 5, tags: ['a', 'b'] });
    assert.equal(tagged[CURRENT_CT], ct);
    assert.ok(Number.isNaN(tagged[UNTAGGED_CT]));
    assert.deepEqual(tagged[VALUE_TAGS], ['a', 'b']);
    const other = new CachedValue('x', { ct, v: VALUE_VERSION + 1, d: 5 });
    assert.ok(Number.isNaN(other[CURRENT_CT]));
    assert.ok(Number.isNaN(other[UNTAGGED_CT]));
    assert.equal(other.metadata.d, 5);
    const fractional = new CachedValue('x', { ct: ct + 0.5, v: VALUE_VERSION, d: 3 });
    assert.equal(fractional[UNTAGGED_CT], ct + 0.5);
    assert.deepEqual(fractional.metadata, { ct: ct + 0.5, v: VALUE_VERSION, d: 3 });
  });

  it("a user's subclass stays that class, with its metadata read back", () => {
    class Mine extends CachedValue<string> {
      readonly note = 'mine';
    }
    for (const d of [undefined, 0, 9]) {
      const metadata: CacheMetadata = d === undefined ? { ct: 77, v: VALUE_VERSION } : { ct: 77, v: VALUE_VERSION, d };
      const value = new Mine('x', metadata);
      assert.ok(value instanceof Mine);
      assert.equal(value.note, 'mine');
      assert.deepEqual(value.metadata, metadata);
      assert.equal(value[CURRENT_CT], 77);
    }
  });

  it('takes 40 bytes for a time (with or without d = 0), 48 with a duration and 56 with a fail-safe deadline, in a fresh process', () => {
    // A fresh process, whose first values are built by unoptimised code: its arithmetic results are
    // heap numbers unless made small, and a field that once held one kept every later time boxed
    // (the three-slot layout measured 50-52 B here without a duration and 65 B with one).
    const script = `
      const { CachedValue, VALUE_VERSION } = await import(${JSON.stringify(apiUrl)});
      const { runInNewContext } = await import('node:vm');
      const gc = runInNewContext('gc');
      const n = 400000, rounds = {};
      const used = () => { gc(); gc(); return process.memoryUsage().heapUsed; };
      const kinds = ['time', 'zero', 'duration', 'deadline'];
      for (const kind of [...kinds, ...kinds, ...kinds]) {
        const keep = new Array(n).fill(null);
        globalThis.keep = keep;
        for (let i = 0; i < n; i++) {
          const ct = Date.now() - (i % 1000);
          const metadata =
            kind === 'time' ? { ct, v: VALUE_VERSION }
            : kind === 'deadline' ? { ct, v: VALUE_VERSION, d: Date.now() - ct + 1, fs: ct + 3_600_000 + (i % 7) }
            : { ct, v: VALUE_VERSION, d: kind === 'zero' ? 0 : Date.now() - ct + 1 };
          keep[i] = new CachedValue(keep, metadata);
        }
        // Held, then dropped and read again in the same state (code compiled, the array kept):
        // the difference is the values alone, whatever the process allocated before the round.
        const full = used();
        keep.fill(null);
        (rounds[kind] ??= []).push((full - used()) / n);
      }
      const out = {};
      for (const kind of kinds) out[kind] = rounds[kind].sort((a, b) => a - b)[1]; // the median of three
      process.stdout.write(JSON.stringify(out));
    `;
    const child = spawnSync(
      process.execPath,
      ['--expose-gc', '--single-threaded-gc', '--import', 'tsx', '--input-type=module', '-e', script],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(child.status, 0, child.stderr);
    const bytes = JSON.parse(child.stdout) as Record<'time' | 'zero' | 'duration' | 'deadline', number>;
    // Bounds on both sides: a reading far below the object's size means the measurement broke.
    const near = (got: number, size: number, what: string): void =>
      assert.ok(got > size - 2 && got < size + 2, `${what}: ${got} B, expected ${size} B`);
    near(bytes.time, 40, '{ ct, v }');
    near(bytes.zero, 40, '{ ct, v, d: 0 }');
    near(bytes.duration, 48, '{ ct, v, d }');
    // A fail-safe region's values: before their own form, a CachedValue plus a metadata object
    // with heap-number times (~130 B).
    near(bytes.deadline, 56, '{ ct, v, d, fs }');
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
