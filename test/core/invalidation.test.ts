import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ManualClock,
  MemoryBackend,
  makeRegion,
  NO_VALUE,
  SharedInvalidationStrategy,
  ValidationError,
} from '../../src/index.js';

// Two regions over one backend instance stand for two processes sharing a server.
function pair(refreshInterval = 1) {
  const clock = new ManualClock();
  const backend = new MemoryBackend();
  const make = () =>
    makeRegion({ clock }).configure(backend, {
      expirationTime: 600,
      regionInvalidator: new SharedInvalidationStrategy({ name: 'users', refreshInterval }),
    });
  return { clock, a: make(), b: make() };
}

describe('SharedInvalidationStrategy (cross-process region invalidation)', () => {
  it('a hard invalidation in one process reaches the other within refreshInterval', async () => {
    const { clock, a, b } = pair(1);
    await a.set('k', 'old');
    assert.equal(await b.get('k'), 'old');
    clock.advance(0.1);
    await a.invalidate();
    assert.equal(await a.get('k'), NO_VALUE);
    assert.equal(await b.get('k'), 'old'); // b trusts its copy for up to 1 s
    clock.advance(1.1);
    assert.equal(await b.get('k'), NO_VALUE);
    assert.equal(await b.getOrCreate('k', () => 'new'), 'new');
    assert.equal(await a.get('k'), 'new');
  });

  it('a soft invalidation makes other processes serve stale while one regenerates', async () => {
    const { clock, a, b } = pair(0);
    await a.set('k', 'old');
    clock.advance(0.1);
    await a.invalidate({ hard: false });
    assert.equal(b.regionInvalidator.wasSoftInvalidated(), false);
    assert.equal(await b.get('k'), NO_VALUE);
    assert.equal(b.regionInvalidator.wasSoftInvalidated(), true);
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const winner = b.getOrCreate('k', async () => {
      await gate;
      return 'new';
    });
    assert.equal(await b.getOrCreate('k', () => 'other'), 'old');
    release();
    assert.equal(await winner, 'new');
  });

  it('validates its options', () => {
    assert.throws(() => new SharedInvalidationStrategy({ refreshInterval: -1 }), ValidationError);
  });
});

describe('invalidation within one millisecond', () => {
  it('a second invalidate() in the same millisecond covers a value written between the two (hard and soft)', async () => {
    for (const hard of [true, false]) {
      const clock = new ManualClock();
      const region = makeRegion({ clock }).configure('memory', { expirationTime: 60 });
      await region.set('k', 'before');
      await region.invalidate({ hard });
      await region.set('k', 'between'); // stamped just past the first invalidation
      assert.equal(await region.get('k'), 'between');
      await region.invalidate({ hard }); // same millisecond, still later than the write
      assert.equal(await region.get('k'), NO_VALUE, `hard=${hard}`);
      await region.set('k', 'after');
      assert.equal(await region.get('k'), 'after');
    }
  });

  it('a second invalidateTags() in the same millisecond covers a value written between the two', async () => {
    const clock = new ManualClock();
    const region = makeRegion({ clock }).configure('memory', { expirationTime: 60 });
    await region.set('k', 'before', { tags: ['t'] });
    await region.invalidateTags(['t']);
    await region.set('k', 'between', { tags: ['t'] });
    assert.equal(await region.get('k'), 'between');
    await region.invalidateTags(['t']);
    assert.equal(await region.get('k'), NO_VALUE);
    await region.set('k', 'after', { tags: ['t'] });
    assert.equal(await region.get('k'), 'after');
  });
});
