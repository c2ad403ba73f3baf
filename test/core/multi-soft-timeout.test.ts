// softTimeout on the multi-key paths (getOrCreateMulti, cacheMultiOnArguments): per region, per
// call and per wrapper; the keys stay locked (in this process and, through a distributed lock,
// in others) while the creation goes on; the wrappers' options are checked when they are made.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CreatorTimeoutError, ManualClock, makeRegion, NO_VALUE, type RegionOptions, ValidationError } from '../../src/index.js';
import { sleep, until } from '../helpers/time.js';

function region(options: RegionOptions = {}) {
  const clock = new ManualClock();
  const r = makeRegion({ name: 'm', clock, ...options }).configure('memory', { expirationTime: 10 });
  return { region: r, clock };
}

/** A multi creator that takes `ms` and counts its calls. */
function slowCreator(ms: number) {
  const made = { calls: 0, keys: [] as string[][] };
  const creator = async (...keys: string[]) => {
    made.calls++;
    made.keys.push(keys);
    await sleep(ms);
    return keys.map((k) => `new ${k}`);
  };
  return { made, creator };
}

describe('softTimeout on getOrCreateMulti', () => {
  it('serves the stale values of every key after softTimeout and stores the results when they land', async () => {
    const { region: r, clock } = region({ softTimeout: 0.03 });
    await r.setMulti({ a: 'old a', b: 'old b' });
    clock.advance(11);
    const { made, creator } = slowCreator(600);
    const stale: string[] = [];
    r.on('stale', ({ key }) => stale.push(key as string));
    const started = Date.now();
    assert.deepEqual(await r.getOrCreateMulti(['b', 'a'], creator), ['old b', 'old a']);
    assert.ok(Date.now() - started < 400, `answered after ${Date.now() - started} ms`);
    assert.deepEqual(stale.sort(), ['a', 'b']);
    // The keys stay locked while the creation goes on: the stale values again, no second creation.
    assert.deepEqual(await r.getOrCreateMulti(['a', 'b'], creator), ['old a', 'old b']);
    assert.equal(await r.getOrCreate('a', () => 'single'), 'old a');
    assert.equal(await r.keyIsLocked('a'), true);
    assert.ok(await until(async () => (await r.get('a')) === 'new a' && (await r.get('b')) === 'new b', 2000));
    assert.equal(made.calls, 1);
    assert.deepEqual(made.keys[0], ['b', 'a'], 'the creator got the keys in request order');
    assert.equal(await r.keyIsLocked('a'), false);
  });

  it('waits for the creation when one of the keys has no stale value', async () => {
    const { region: r, clock } = region({ softTimeout: 0.01 });
    await r.set('a', 'old a');
    clock.advance(11);
    const { made, creator } = slowCreator(80);
    assert.deepEqual(await r.getOrCreateMulti(['a', 'c'], creator), ['new a', 'new c']);
    assert.equal(made.calls, 1);
  });

  it('a creation that ends within softTimeout is returned as usual', async () => {
    const { region: r, clock } = region({ softTimeout: 0.5 });
    await r.setMulti({ a: 'old a', b: 'old b' });
    clock.advance(11);
    const { creator } = slowCreator(10);
    assert.deepEqual(await r.getOrCreateMulti(['a', 'b'], creator), ['new a', 'new b']);
  });

  it('per call: softTimeout turns it on, null turns the region’s off', async () => {
    const { region: plain, clock } = region();
    await plain.setMulti({ a: 'old a', b: 'old b' });
    clock.advance(11);
    const slow = slowCreator(500);
    const t0 = Date.now();
    assert.deepEqual(await plain.getOrCreateMulti(['a', 'b'], slow.creator, { softTimeout: 0.02 }), ['old a', 'old b']);
    assert.ok(Date.now() - t0 < 350);

    const { region: soft, clock: c2 } = region({ softTimeout: 0.02 });
    await soft.setMulti({ a: 'old a', b: 'old b' });
    c2.advance(11);
    assert.deepEqual(await soft.getOrCreateMulti(['a', 'b'], slowCreator(60).creator, { softTimeout: null }), ['new a', 'new b']);
  });

  it('hardTimeout still ends a creation that went on after the soft timeout: nothing late is stored', async () => {
    const { region: r, clock } = region({ softTimeout: 0.02, hardTimeout: 0.08 });
    await r.setMulti({ a: 'old a', b: 'old b' });
    clock.advance(11);
    const outcomes: string[] = [];
    r.on('create', ({ outcome }) => outcomes.push(outcome));
    const creator = (...keys: string[]) =>
      new Promise<string[]>((resolve) => setTimeout(() => resolve(keys.map((k) => `late ${k}`)), 300));
    assert.deepEqual(await r.getOrCreateMulti(['a', 'b'], creator), ['old a', 'old b']);
    assert.ok(await until(() => outcomes.length === 2, 1000));
    assert.deepEqual(outcomes, ['timeout', 'timeout']);
    await sleep(300);
    assert.equal(await r.get('a', { ignoreExpiration: true }), 'old a');
    assert.equal(await r.keyIsLocked('a'), false);
    // Unlocked again: the next call creates.
    assert.deepEqual(await r.getOrCreateMulti(['a', 'b'], (...ks) => ks.map((k) => `next ${k}`)), ['next a', 'next b']);
  });

  it('with fail-safe: a background failure after the soft timeout throttles the keys', async () => {
    const { region: r, clock } = region({ softTimeout: 0.02, failSafe: { maxStale: 60, retryAfter: 5 } });
    await r.setMulti({ a: 'old a', b: 'old b' });
    clock.advance(11);
    let calls = 0;
    const failing = async (..._keys: string[]): Promise<string[]> => {
      calls++;
      await sleep(600);
      throw new Error('db down');
    };
    const t0 = Date.now();
    assert.deepEqual(await r.getOrCreateMulti(['a', 'b'], failing), ['old a', 'old b']);
    assert.ok(Date.now() - t0 < 400, 'answered at the soft timeout, not at the failure');
    assert.ok(await until(async () => !(await r.keyIsLocked('a')), 1000));
    assert.deepEqual(await r.getOrCreateMulti(['a', 'b'], failing), ['old a', 'old b']);
    assert.equal(calls, 1, 'throttled after the failure, not retried per call');
  });
});

describe('softTimeout on cacheMultiOnArguments', () => {
  it('per wrapper: stale values after softTimeout, the new ones once they land', async () => {
    const { region: r, clock } = region();
    let version = 1;
    let calls = 0;
    const load = r.cacheMultiOnArguments({ softTimeout: 0.02 })(async function rows(...ids: number[]) {
      calls++;
      if (version > 1) await sleep(500);
      return ids.map((id) => `row ${id} v${version}`);
    });
    assert.deepEqual(await load(1, 2), ['row 1 v1', 'row 2 v1']);
    clock.advance(11);
    version = 2;
    const t0 = Date.now();
    assert.deepEqual(await load(1, 2), ['row 1 v1', 'row 2 v1']);
    assert.ok(Date.now() - t0 < 350);
    assert.ok(await until(async () => (await load.get(1, 2))[0] === 'row 1 v2', 2000));
    assert.equal(calls, 2);
  });

  it('asDict wrappers too', async () => {
    const { region: r, clock } = region({ softTimeout: 0.02 });
    let slow = false;
    const load = r.cacheMultiOnArguments({ asDict: true })(async function byId(...ids: string[]) {
      if (slow) await sleep(150);
      return Object.fromEntries(ids.map((id) => [id, `${id}${slow ? '2' : '1'}`]));
    });
    assert.deepEqual(await load('x', 'y'), { x: 'x1', y: 'y1' });
    clock.advance(11);
    slow = true;
    assert.deepEqual(await load('x', 'y'), { x: 'x1', y: 'y1' });
    assert.ok(await until(async () => (await load.get('x'))[0] === 'x2', 2000));
  });
});

describe('softTimeout on the multi paths, across processes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dogpile-multi-soft-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('the distributed locks stay held while the creation goes on: another region serves stale, creates nothing', async (t) => {
    const clock = new ManualClock();
    const path = join(dir, 'cache');
    const one = makeRegion({ clock, softTimeout: 0.02 }).configure('file', { expirationTime: 10, arguments: { path } });
    const two = makeRegion({ clock, softTimeout: 0.02 }).configure('file', { expirationTime: 10, arguments: { path } });
    t.after(() => Promise.all([one.close(), two.close()]));
    await one.setMulti({ a: 'old a', b: 'old b' });
    clock.advance(11);
    const first = slowCreator(300);
    assert.deepEqual(await one.getOrCreateMulti(['a', 'b'], first.creator), ['old a', 'old b']);
    const second = slowCreator(0);
    assert.deepEqual(await two.getOrCreateMulti(['a', 'b'], second.creator), ['old a', 'old b']);
    assert.equal(second.made.calls, 0, 'the other region did not create while the lock was held');
    assert.ok(await until(async () => (await two.get('a')) === 'new a', 3000));
    assert.equal(first.made.calls, 1);
    assert.ok(await until(async () => !(await one.keyIsLocked('a')) && !(await one.keyIsLocked('b')), 3000));
  });
});

describe('validation of the multi-path timeouts', () => {
  it('cacheMultiOnArguments checks softTimeout when the wrapper is made, against its own and the region’s hardTimeout', () => {
    const { region: r } = region({ hardTimeout: 1 });
    assert.throws(() => r.cacheMultiOnArguments({ softTimeout: -1 }), /cacheMultiOnArguments: softTimeout must be/);
    assert.throws(() => r.cacheMultiOnArguments({ softTimeout: 'x' as never }), ValidationError);
    assert.throws(
      () => r.cacheMultiOnArguments({ softTimeout: 1 }),
      /cacheMultiOnArguments: softTimeout \(1s\) must be shorter than hardTimeout \(1s\)/,
    );
    assert.throws(
      () => r.cacheOnArguments({ softTimeout: 2 }),
      /cacheOnArguments: softTimeout \(2s\) must be shorter than hardTimeout \(1s\)/,
    );
    assert.throws(() => r.cacheMultiOnArguments({ softTimeout: 0.5, hardTimeout: 0.4 }), /softTimeout \(0.5s\)/);
    assert.doesNotThrow(() => r.cacheMultiOnArguments({ softTimeout: 2, hardTimeout: null }));
    assert.doesNotThrow(() => r.cacheMultiOnArguments({ softTimeout: 0.5 }));
  });

  it('getOrCreateMulti names itself in per-call errors', async () => {
    const { region: r } = region({ hardTimeout: 1 });
    await assert.rejects(
      r.getOrCreateMulti(['a'], () => ['A'], { softTimeout: 1 }),
      /getOrCreateMulti: softTimeout \(1s\) must be shorter than hardTimeout \(1s\)/,
    );
    await assert.rejects(
      r.getOrCreateMulti(['a'], () => ['A'], { softTimeout: Number.NaN }),
      /getOrCreateMulti: softTimeout/,
    );
  });

  it('a soft-timed-out wrapper with hardTimeout rejects with CreatorTimeoutError when nothing stale exists', async () => {
    const { region: r } = region();
    const load = r.cacheMultiOnArguments({ softTimeout: 0.01, hardTimeout: 0.05 })(function hangs(...ids: number[]) {
      return new Promise<number[]>((resolve) => setTimeout(() => resolve(ids), 300));
    });
    await assert.rejects(load(1, 2), CreatorTimeoutError);
    assert.deepEqual(await load.get(1), [NO_VALUE]);
  });
});
