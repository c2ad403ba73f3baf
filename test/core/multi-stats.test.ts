// The multi paths count and report per key, as the single-key ones do: region.stats() and the
// hit / miss / stale events see getMulti and getOrCreateMulti.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock, makeRegion, NO_VALUE, ProxyBackend } from '../../src/index.js';

describe('stats and events of the multi paths', () => {
  it('getMulti counts a hit or a miss per key and emits them', async () => {
    const region = makeRegion({ name: 'm' }).configure('memory', { expirationTime: 60 });
    await region.set('a', 1);
    const seen: string[] = [];
    region.on('hit', (e) => seen.push(`hit:${e.key}`));
    region.on('miss', (e) => seen.push(`miss:${e.key}`));
    assert.deepEqual(await region.getMulti(['a', 'b']), [1, NO_VALUE]);
    assert.deepEqual(seen, ['hit:a', 'miss:b']);
    const stats = region.stats();
    assert.equal(stats.hits, 1);
    assert.equal(stats.misses, 1);
  });

  it('getOrCreateMulti counts hits and misses per key, and a creation per call', async () => {
    const region = makeRegion({ name: 'm' }).configure('memory', { expirationTime: 60 });
    await region.set('a', 'A');
    const seen: string[] = [];
    region.on('hit', (e) => seen.push(`hit:${e.key}`));
    region.on('miss', (e) => seen.push(`miss:${e.key}`));
    const values = await region.getOrCreateMulti(['a', 'b', 'c'], (...ks) => ks.map((k) => k.toUpperCase()));
    assert.deepEqual(values, ['A', 'B', 'C']);
    assert.deepEqual(seen.sort(), ['hit:a', 'miss:b', 'miss:c']);
    let stats = region.stats();
    assert.equal(stats.hits, 1);
    assert.equal(stats.misses, 2);
    assert.equal(stats.creations, 1);
    await region.getOrCreateMulti(['a', 'b', 'c'], () => assert.fail('all fresh'));
    stats = region.stats();
    assert.equal(stats.hits, 4);
    assert.equal(stats.misses, 2);
  });

  it('a warm getOrCreateMulti reads once in request order, counts a hit per key asked and never calls the creator', async () => {
    const reads: string[][] = [];
    class Reads extends ProxyBackend {
      override getMulti(keys: string[]) {
        reads.push(keys);
        return super.getMulti(keys);
      }
    }
    const region = makeRegion({ name: 'm' }).configure('memory', { expirationTime: 60, wrap: [new Reads()] });
    await region.setMulti({ b: 'B', a: 'A', c: 'C' });
    const hits: string[] = [];
    region.on('hit', (e) => hits.push(e.key as string));
    const values = await region.getOrCreateMulti(['c', 'a', 'b', 'a'], () => assert.fail('all fresh'));
    assert.deepEqual(values, ['C', 'A', 'B', 'A']);
    assert.deepEqual(reads, [['c', 'a', 'b', 'a']]);
    assert.deepEqual(hits, ['c', 'a', 'b', 'a']);
    assert.equal(region.stats().hits, 4);
    // One key missing: the lock path (a read again under the lock), the creation for that key alone.
    reads.length = 0;
    const created: string[] = [];
    const made = await region.getOrCreateMulti(['c', 'd', 'a'], (...ks) => {
      created.push(...ks);
      return ks.map((k) => k.toUpperCase());
    });
    assert.deepEqual(made, ['C', 'D', 'A']);
    assert.deepEqual(created, ['d']);
    assert.deepEqual(reads, [['c', 'd', 'a'], ['d']]);
    assert.equal(region.stats().misses, 1);
    assert.equal(region.stats().hits, 6);
  });

  it('getOrCreateMulti counts a stale value served while another caller regenerates it', async () => {
    const clock = new ManualClock();
    const region = makeRegion({ name: 'm', clock }).configure('memory', { expirationTime: 10 });
    await region.setMulti({ a: 'old-a', b: 'old-b' });
    clock.advance(11);
    let release: (() => void) | undefined;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const stale: string[] = [];
    region.on('stale', (e) => stale.push(e.key as string));
    const creating = region.getOrCreateMulti(['a', 'b'], async (...ks) => {
      await gate;
      return ks.map((k) => `new-${k}`);
    });
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(await region.getOrCreateMulti(['a', 'b'], () => assert.fail('one creation')), ['old-a', 'old-b']);
    release?.();
    assert.deepEqual(await creating, ['new-a', 'new-b']);
    assert.deepEqual(stale.sort(), ['a', 'b']);
    const stats = region.stats();
    assert.equal(stats.stale, 2);
    assert.equal(stats.misses, 2);
  });
});
