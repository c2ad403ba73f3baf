import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type CacheMutex, LockTimeoutError, ManualClock, MemoryBackend, makeRegion } from '../../src/index.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A memory backend whose mutex is scripted by the test: stands in for another process's lock. */
class ScriptedLockBackend extends MemoryBackend {
  heldElsewhere = false;
  acquires: boolean[] = [];
  releases = 0;
  controller = new AbortController();
  getMutex(_key: string): CacheMutex {
    return {
      acquire: async (wait) => {
        this.acquires.push(wait);
        if (!this.heldElsewhere) return true;
        if (!wait) return false;
        await sleep(30); // a bounded wait that ends without the lock
        return false;
      },
      release: async () => {
        this.releases++;
      },
      locked: async () => this.heldElsewhere,
      signal: this.controller.signal,
    };
  }
}

function setup() {
  const clock = new ManualClock();
  const backend = new ScriptedLockBackend();
  const region = makeRegion({ clock }).configure(backend, { expirationTime: 10 });
  return { clock, backend, region };
}

describe('dogpile lock with a distributed mutex', () => {
  it('stale value and the lock held elsewhere: returns stale without creating', async () => {
    const { clock, backend, region } = setup();
    await region.set('k', 'old');
    clock.advance(11);
    backend.heldElsewhere = true;
    assert.equal(await region.getOrCreate('k', () => 'new'), 'old');
    assert.deepEqual(backend.acquires, [false]);
    assert.equal(backend.releases, 0);
  });

  it('missing value and the lock held elsewhere past the wait: LockTimeoutError, or what landed meanwhile', async () => {
    const { backend, region } = setup();
    backend.heldElsewhere = true;
    await assert.rejects(
      region.getOrCreate('k', () => 'new'),
      LockTimeoutError,
    );
    const pending = region.getOrCreate('k2', () => 'never');
    await region.set('k2', 'landed'); // another process stores while we wait
    assert.equal(await pending, 'landed');
  });

  it('after winning the lock the owner re-reads: a value stored meanwhile is not recreated', async () => {
    const { clock, backend, region } = setup();
    await region.set('k', 'old');
    clock.advance(11);
    const original = backend.getMutex.bind(backend);
    backend.getMutex = (key) => {
      const m = original(key);
      return {
        ...m,
        acquire: async (wait) => {
          await region.set('k', 'made elsewhere'); // the other process finished just before we got the lock
          return m.acquire(wait);
        },
      };
    };
    let calls = 0;
    assert.equal(
      await region.getOrCreate('k', () => {
        calls++;
        return 'new';
      }),
      'made elsewhere',
    );
    assert.equal(calls, 0);
    assert.equal(backend.releases, 1);
  });

  it('the creator receives the mutex signal; the lock is released after success and after failure', async () => {
    const { backend, region } = setup();
    let seen: AbortSignal | undefined;
    await region.getOrCreate('k', ({ signal }) => {
      seen = signal;
      return 1;
    });
    assert.equal(seen, backend.controller.signal);
    await assert.rejects(
      region.getOrCreate('k2', () => {
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.equal(backend.releases, 2);
  });

  it('fail open: a lock service that throws does not stop creation', async () => {
    const backend = new ScriptedLockBackend();
    backend.getMutex = () => ({
      acquire: async () => {
        throw new Error('lock server down');
      },
      release: async () => {
        throw new Error('lock server down');
      },
      locked: async () => false,
    });
    const errors: string[] = [];
    const region = makeRegion({ onError: (_e, info) => errors.push(info.operation) }).configure(backend);
    assert.equal(await region.getOrCreate('k', () => 'made'), 'made');
    assert.deepEqual(errors, ['lock', 'lock']);
    const strict = makeRegion({ failOpen: false }).configure(backend);
    await assert.rejects(
      strict.getOrCreate('k2', () => 'made'),
      /lock server down/,
    );
  });

  it('getOrCreateMulti: keys whose lock is held elsewhere keep their stale value; the rest are created in one call', async () => {
    const { clock, backend, region } = setup();
    await region.setMulti({ a: 'a-old', b: 'b-old' });
    clock.advance(11);
    const original = backend.getMutex.bind(backend);
    backend.getMutex = (key) => {
      const m = original(key);
      return key === 'a' ? { ...m, acquire: async () => false } : m;
    };
    const seen: string[][] = [];
    const result = await region.getOrCreateMulti(['a', 'b', 'c'], async (...keys) => {
      seen.push(keys);
      return keys.map((k) => `${k}-new`);
    });
    assert.deepEqual(result, ['a-old', 'b-new', 'c-new']);
    assert.deepEqual(seen, [['b', 'c']]);
  });
});
