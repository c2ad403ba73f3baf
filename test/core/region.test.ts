import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BackendError,
  type CacheBackend,
  CachedValue,
  DogpileError,
  LockTimeoutError,
  ManualClock,
  MemoryBackend,
  makeRegion,
  NO_VALUE,
  PluginNotFoundError,
  ProxyBackend,
  RegionAlreadyConfiguredError,
  RegionNotConfiguredError,
  registerBackend,
  sha1MangleKey,
  ValidationError,
} from '../../src/index.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function memoryRegion(expirationTime: number | null = 60, extra: Parameters<typeof makeRegion>[0] = {}) {
  const clock = new ManualClock();
  const region = makeRegion({ clock, ...extra }).configure('memory', { expirationTime });
  return { region, clock };
}

/** A backend whose every operation fails, to test failure policies. */
class BrokenBackend extends MemoryBackend {
  override async get(): Promise<never> {
    throw new Error('connection refused');
  }
  override async getMulti(): Promise<never> {
    throw new Error('connection refused');
  }
  override async set(): Promise<never> {
    throw new Error('connection refused');
  }
  override async setMulti(): Promise<never> {
    throw new Error('connection refused');
  }
  override async delete(): Promise<never> {
    throw new Error('connection refused');
  }
}

describe('configuration errors', () => {
  it('every method of an unconfigured region fails with RegionNotConfiguredError', async () => {
    const region = makeRegion({ name: 'users' });
    assert.equal(region.isConfigured, false);
    const calls: (() => Promise<unknown>)[] = [
      () => region.get('k'),
      () => region.getMulti(['k']),
      () => region.getValueMetadata('k'),
      () => region.getOrCreate('k', () => 1),
      () => region.getOrCreateMulti(['k'], () => [1]),
      () => region.set('k', 1),
      () => region.setMulti({ k: 1 }),
      () => region.delete('k'),
      () => region.deleteMulti(['k']),
      () => region.invalidate(),
      () => region.keyIsLocked('k'),
      () =>
        region.cacheOnArguments()(async function f() {
          return 1;
        })(),
    ];
    for (const call of calls) await assert.rejects(call, RegionNotConfiguredError);
    assert.throws(() => region.backend, /region "users" is not configured/);
  });

  it('configuring twice throws RegionAlreadyConfiguredError unless replaceExistingBackend', async () => {
    const region = makeRegion().configure('memory');
    assert.throws(() => region.configure('memory'), RegionAlreadyConfiguredError);
    await region.set('a', 1);
    region.configure('null', { replaceExistingBackend: true });
    assert.equal(await region.get('a'), NO_VALUE);
    assert.equal(region.actualBackend.constructor.name, 'NullBackend');
  });

  it('an unknown backend name throws PluginNotFoundError naming it', () => {
    assert.throws(
      () => makeRegion().configure('no-such-backend'),
      (e: unknown) => {
        return e instanceof PluginNotFoundError && /"no-such-backend"/.test(e.message) && e instanceof DogpileError;
      },
    );
  });

  it('bad expiration times throw ValidationError naming the value', () => {
    for (const bad of ['60', -5, Number.NaN, Number.POSITIVE_INFINITY, {}]) {
      assert.throws(
        () => makeRegion().configure('memory', { expirationTime: bad as number }),
        (e: unknown) => e instanceof ValidationError && /expirationTime/.test(e.message),
      );
    }
  });

  it('non-string keys are rejected with ValidationError', async () => {
    const { region } = memoryRegion();
    for (const bad of [1, null, undefined, {}, Symbol('s')]) {
      await assert.rejects(region.get(bad as unknown as string), ValidationError);
      await assert.rejects(
        region.getOrCreate(bad as unknown as string, () => 1),
        ValidationError,
      );
      await assert.rejects(region.set(bad as unknown as string, 1), ValidationError);
    }
    await assert.rejects(region.getMulti(['a', 2 as unknown as string]), /keys must be strings, got 2/);
  });

  it('bad region options are rejected', () => {
    assert.throws(() => makeRegion({ keyMangler: 'sha1' as unknown as (k: string) => string }), /keyMangler must be a function/);
    assert.throws(() => makeRegion({ lockWaitTimeout: 0 }), /lockWaitTimeout/);
    assert.throws(() => makeRegion({ serializer: {} as never }), /serializer/);
    assert.throws(() => makeRegion().configure('memory', { wrap: [{} as never] }), /not a ProxyBackend/);
  });
});

describe('get / set / delete', () => {
  it('stores and reads values, including undefined and null, distinct from NO_VALUE', async () => {
    const { region } = memoryRegion();
    assert.equal(await region.get('missing'), NO_VALUE);
    await region.set('u', undefined);
    await region.set('n', null);
    assert.equal(await region.get('u'), undefined);
    assert.equal(await region.get('n'), null);
    await region.delete('u');
    await region.delete('u');
    assert.equal(await region.get('u'), NO_VALUE);
  });

  it('getMulti is aligned with NO_VALUE holes; setMulti accepts records and Maps', async () => {
    const { region } = memoryRegion();
    await region.setMulti({ key1: 1, key3: 3 });
    await region.setMulti(new Map([['key5', 5]]));
    assert.deepEqual(await region.getMulti(['key1', 'key2', 'key3', 'key4', 'key5', 'key6']), [
      1,
      NO_VALUE,
      3,
      NO_VALUE,
      5,
      NO_VALUE,
    ]);
    assert.deepEqual(await region.getMulti([]), []);
    await region.deleteMulti(['key1', 'key3']);
    assert.deepEqual(await region.getMulti(['key1', 'key3', 'key5']), [NO_VALUE, NO_VALUE, 5]);
  });

  it('expiry: get honours region and per-call expiration, and -1 never expires', async () => {
    const { region, clock } = memoryRegion(10);
    await region.set('k', 'v');
    clock.advance(10);
    assert.equal(await region.get('k'), 'v'); // age == expiration: still fresh
    clock.advance(1);
    assert.equal(await region.get('k'), NO_VALUE);
    assert.equal(await region.get('k', { expirationTime: 20 }), 'v');
    assert.equal(await region.get('k', { expirationTime: -1 }), 'v');
    assert.equal(await region.get('k', { ignoreExpiration: true }), 'v');
    const never = memoryRegion(-1);
    await never.region.set('k', 'v');
    never.clock.advance(1e9);
    assert.equal(await never.region.get('k'), 'v');
  });

  it('expirationTime 0 means always expired', async () => {
    const { region } = memoryRegion(0);
    let calls = 0;
    await region.getOrCreate('k', () => ++calls);
    await region.getOrCreate('k', () => ++calls);
    assert.equal(calls, 2);
  });

  it('getValueMetadata returns payload, creation time and age', async () => {
    const { region, clock } = memoryRegion(10);
    const t0 = clock.now();
    await region.set('k', { a: 1 });
    clock.advance(5);
    const meta = await region.getValueMetadata('k');
    assert.ok(meta instanceof CachedValue);
    assert.deepEqual(meta.payload, { a: 1 });
    assert.equal(meta.metadata.ct, t0);
    assert.equal(meta.age, 5);
    assert.equal(await region.getValueMetadata('k', { expirationTime: 4 }), null);
    assert.ok(await region.getValueMetadata('k', { expirationTime: 4, ignoreExpiration: true }));
    assert.equal(await region.getValueMetadata('nope'), null);
  });

  it('the key mangler applies to every operation, and keyIsLocked honours it', async () => {
    const { region } = memoryRegion(60, { keyMangler: sha1MangleKey });
    await region.set('some_key', 1);
    const backend = region.actualBackend as MemoryBackend;
    assert.deepEqual([...backend.cache.keys()], ['53def077a4264bd3183d4eb21b1f56f883e1b572']);
    assert.equal(await region.get('some_key'), 1);
    let lockedInside = false;
    await region.getOrCreate('other', async () => {
      lockedInside = await region.keyIsLocked('other');
      return 2;
    });
    assert.equal(lockedInside, true);
    assert.equal(await region.keyIsLocked('other'), false);
  });
});

describe('getOrCreate: the dogpile guarantee', () => {
  it('a fresh value is returned without calling the creator', async () => {
    const { region } = memoryRegion();
    await region.set('k', 'cached');
    assert.equal(
      await region.getOrCreate('k', () => {
        throw new Error('must not run');
      }),
      'cached',
    );
  });

  it('the creator receives the key and an AbortSignal slot', async () => {
    const { region } = memoryRegion();
    const seen = await region.getOrCreate('the-key', (ctx) => ctx.key);
    assert.equal(seen, 'the-key');
  });

  it('shouldCacheFn false: the value reaches every waiter once, and is not stored', async () => {
    const { region } = memoryRegion();
    let calls = 0;
    const creator = async () => {
      calls++;
      await sleep(20);
      return 'uncacheable';
    };
    const results = await Promise.all(
      Array.from({ length: 10 }, () => region.getOrCreate('k', creator, { shouldCacheFn: () => false })),
    );
    assert.equal(calls, 1);
    assert.ok(results.every((r) => r === 'uncacheable'));
    assert.equal(await region.get('k'), NO_VALUE);
  });

  it('per-call expirationTime overrides the region (not persisted)', async () => {
    const { region, clock } = memoryRegion(100);
    await region.getOrCreate('k', () => 'a');
    clock.advance(50);
    assert.equal(await region.getOrCreate('k', () => 'b', { expirationTime: 10 }), 'b');
    clock.advance(50);
    assert.equal(await region.getOrCreate('k', () => 'c'), 'b');
  });

  it('a waiter gives up after lockWaitTimeout with LockTimeoutError', async () => {
    const region = makeRegion({ lockWaitTimeout: 0.05 }).configure('memory');
    const slow = region.getOrCreate('k', () => sleep(300).then(() => 'late'));
    await assert.rejects(
      region.getOrCreate('k', () => 'never'),
      LockTimeoutError,
    );
    assert.equal(await slow, 'late');
  });

  it('a nested getOrCreate of another key inside a creator does not deadlock', async () => {
    const { region } = memoryRegion();
    const v = await region.getOrCreate('outer', async () => `outer(${await region.getOrCreate('inner', () => 'inner')})`);
    assert.equal(v, 'outer(inner)');
  });

  it('asyncCreationRunner: the winner also gets the stale value; the runner is called once with the original key', async () => {
    const calls: string[] = [];
    const { region, clock } = memoryRegion(10, {
      asyncCreationRunner: (_region, key, creator, mutex) => {
        calls.push(key);
        void creator().finally(() => mutex.release());
      },
    });
    await region.getOrCreate('some key', () => 'some value');
    clock.advance(11);
    let created = 0;
    const newValue = async () => {
      created++;
      return 'some new value';
    };
    const results = await Promise.all(Array.from({ length: 5 }, () => region.getOrCreate('some key', newValue)));
    assert.deepEqual(results, Array(5).fill('some value'));
    await sleep(10);
    assert.deepEqual(calls, ['some key']);
    assert.equal(created, 1);
    assert.equal(await region.getOrCreate('some key', newValue), 'some new value');
  });

  it('backgroundRefresh regenerates after returning the stale value; the first request still blocks', async () => {
    const { region, clock } = memoryRegion(10, { backgroundRefresh: true });
    assert.equal(await region.getOrCreate('k', () => 'v1'), 'v1');
    clock.advance(11);
    assert.equal(await region.getOrCreate('k', () => 'v2'), 'v1');
    await sleep(10);
    assert.equal(await region.getOrCreate('k', () => 'v3'), 'v2');
  });
});

describe('getOrCreateMulti', () => {
  it('calls the creator once with only the missing keys; results follow request order with duplicates', async () => {
    const { region } = memoryRegion();
    await region.set('b', 'B-cached');
    const seen: string[][] = [];
    const result = await region.getOrCreateMulti(['c', 'b', 'a', 'b'], async (...keys) => {
      seen.push(keys);
      return keys.map((k) => k.toUpperCase());
    });
    assert.deepEqual(result, ['C', 'B-cached', 'A', 'B-cached']);
    assert.deepEqual(seen, [['c', 'a']]);
    assert.deepEqual(await region.getOrCreateMulti([], () => []), []);
  });

  it('a creator returning the wrong number of values is a ValidationError', async () => {
    const { region } = memoryRegion();
    await assert.rejects(
      region.getOrCreateMulti(['a', 'b'], async () => ['only one']),
      (e: unknown) => e instanceof ValidationError && /array of 2 values/.test(e.message),
    );
  });

  it('stale keys are regenerated once while concurrent callers get the stale values', async () => {
    const { region, clock } = memoryRegion(10);
    await region.setMulti({ a: 'a1', b: 'b1' });
    clock.advance(11);
    let calls = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const creator = async (...keys: string[]) => {
      calls++;
      await gate;
      return keys.map((k) => `${k}2`);
    };
    const first = region.getOrCreateMulti(['a', 'b'], creator);
    const others = await Promise.all(Array.from({ length: 10 }, () => region.getOrCreateMulti(['a', 'b'], creator)));
    assert.ok(others.every((r) => r[0] === 'a1' && r[1] === 'b1'));
    release();
    assert.deepEqual(await first, ['a2', 'b2']);
    assert.equal(calls, 1);
  });
});

describe('invalidation', () => {
  it('hard invalidation makes older values missing; new ones are kept', async () => {
    const { region } = memoryRegion(60);
    await region.set('k', 'old');
    await region.invalidate();
    assert.equal(await region.get('k'), NO_VALUE);
    assert.equal(await region.getOrCreate('k', () => 'new'), 'new');
    assert.equal(await region.getOrCreate('k', () => 'newer'), 'new');
    assert.equal(region.regionInvalidator.wasHardInvalidated(), true);
  });

  it('hard invalidation makes everyone wait for one regeneration', async () => {
    const { region } = memoryRegion(60);
    await region.set('k', 'old');
    await region.invalidate({ hard: true });
    let calls = 0;
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        region.getOrCreate('k', async () => {
          calls++;
          await sleep(10);
          return 'new';
        }),
      ),
    );
    assert.equal(calls, 1);
    assert.ok(results.every((r) => r === 'new'));
  });

  it('invalidate rejects options that are not { hard?: boolean } (invalidate(false) is not a soft invalidation)', async () => {
    const { region } = memoryRegion(null);
    await region.set('k', 'v');
    for (const bad of [false, true, 'soft', null, 0]) {
      await assert.rejects(
        region.invalidate(bad as unknown as { hard?: boolean }),
        (e: unknown) =>
          e instanceof ValidationError && /invalidate: options must be an object such as \{ hard: false \}/.test(e.message),
        String(bad),
      );
    }
    await assert.rejects(
      region.invalidate({ hard: 'no' as unknown as boolean }),
      (e: unknown) => e instanceof ValidationError && /hard must be true or false, got "no"/.test(e.message),
    );
    assert.equal(await region.get('k'), 'v', 'a rejected call invalidates nothing');
    await region.invalidate();
    assert.equal(await region.get('k'), NO_VALUE);
  });

  it('soft invalidation serves the old value while one caller regenerates, even without an expiration time', async () => {
    const { region } = memoryRegion(null);
    await region.set('k', 'old');
    await region.invalidate({ hard: false });
    assert.equal(await region.get('k'), NO_VALUE);
    assert.equal(await region.get('k', { ignoreExpiration: true }), 'old');
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let calls = 0;
    const creator = async () => {
      calls++;
      await gate;
      return 'new';
    };
    const winner = region.getOrCreate('k', creator);
    const others = await Promise.all(Array.from({ length: 10 }, () => region.getOrCreate('k', creator)));
    assert.ok(others.every((r) => r === 'old'));
    release();
    assert.equal(await winner, 'new');
    assert.equal(calls, 1);
    assert.equal(region.regionInvalidator.wasSoftInvalidated(), true);
  });
});

describe('failure policy', () => {
  it('fail open (default): reads miss, writes are skipped, the creator value is returned, onError is told', async () => {
    const errors: string[] = [];
    const region = makeRegion({ onError: (e, info) => errors.push(`${info.operation}:${e instanceof BackendError}`) }).configure(
      new BrokenBackend(),
    );
    assert.equal(await region.getOrCreate('k', () => 'made'), 'made');
    assert.equal(await region.get('k'), NO_VALUE);
    await region.set('k', 1);
    assert.ok(errors.includes('get:true'));
    assert.ok(errors.includes('set:true'));
    await assert.rejects(region.delete('k'), BackendError);
  });

  it('failOpen false: operations reject with BackendError carrying the cause', async () => {
    const region = makeRegion({ failOpen: false }).configure(new BrokenBackend());
    await assert.rejects(
      region.getOrCreate('k', () => 'made'),
      (e: unknown) => {
        return e instanceof BackendError && e.cause instanceof Error && /connection refused/.test(e.message);
      },
    );
    await assert.rejects(region.get('k'), BackendError);
    await assert.rejects(region.getMulti(['k']), BackendError);
    await assert.rejects(region.set('k', 1), BackendError);
  });
});

describe('backends: registry, instances, module specifiers and proxies', () => {
  it('registerBackend by factory', async () => {
    let made = 0;
    registerBackend('counting-memory', (args) => {
      made++;
      return new MemoryBackend(args as { max?: number });
    });
    const region = makeRegion().configure('counting-memory', { arguments: { max: 5 } });
    await region.set('a', 1);
    assert.equal(await region.get('a'), 1);
    assert.equal(made, 1);
  });

  it('a backend instance can be passed directly', async () => {
    const backend = new MemoryBackend();
    const region = makeRegion().configure(backend);
    await region.set('a', 1);
    assert.equal(region.actualBackend, backend);
  });

  it('loads a third-party backend from a module specifier, passing arguments unmutated', async () => {
    const args = Object.freeze({ max: 3, label: 'x' });
    const region = makeRegion().configure('./test/fixtures/third-party-backend.ts', { arguments: args });
    assert.equal(region.isConfigured, true);
    await region.set('a', 1);
    assert.equal(await region.get('a'), 1);
    assert.equal((region.actualBackend as unknown as { label: string }).label, 'x');
    registerBackend('third-party', './test/fixtures/third-party-backend.ts');
    const again = makeRegion().configure('third-party', { arguments: { label: 'y' } });
    assert.equal(((await again.ready()).actualBackend as unknown as { label: string }).label, 'y');
  });

  it('registerBackend with an unresolvable module throws PluginNotFoundError', () => {
    assert.throws(() => registerBackend('nope', './does/not/exist.js'), PluginNotFoundError);
  });

  it('proxies wrap in order (first is outermost) and see CachedValue objects', async () => {
    const order: string[] = [];
    class Tagging extends ProxyBackend {
      constructor(private readonly tag: string) {
        super();
      }
      override async set(key: string, value: CachedValue) {
        assert.ok(value instanceof CachedValue);
        order.push(this.tag);
        return super.set(key, value);
      }
    }
    class Counting extends ProxyBackend {
      static gets = 0;
      override get(key: string) {
        Counting.gets++;
        return super.get(key);
      }
    }
    const region = makeRegion().configure('memory', { wrap: [new Tagging('outer'), new Tagging('inner'), Counting] });
    await region.set('a', 1);
    assert.deepEqual(order, ['outer', 'inner']);
    assert.equal(await region.getOrCreate('a', () => 2), 1);
    assert.equal(Counting.gets, 1);
    assert.ok(region.backend instanceof Tagging);
    assert.ok(region.actualBackend instanceof MemoryBackend);
  });

  it('region.wrap adds a proxy after configuration', async () => {
    const region = makeRegion().configure('memory');
    let sets = 0;
    region.wrap(
      new (class extends ProxyBackend {
        override set(key: string, value: CachedValue) {
          sets++;
          return super.set(key, value);
        }
      })(),
    );
    await region.set('a', 1);
    assert.equal(sets, 1);
    assert.throws(() => region.wrap({} as never), ValidationError);
  });

  it('null backend: nothing is stored; each sequential call creates', async () => {
    const region = makeRegion().configure('null');
    let n = 0;
    assert.equal(await region.getOrCreate('k', () => ++n), 1);
    assert.equal(await region.getOrCreate('k', () => ++n), 2);
    await region.set('k', 5);
    assert.equal(await region.get('k'), NO_VALUE);
    assert.deepEqual(await region.getMulti(['a', 'b']), [NO_VALUE, NO_VALUE]);
  });

  it('a backend with a distributed mutex: only the flight owner touches it', async () => {
    let acquires = 0;
    const backend: CacheBackend = Object.assign(new MemoryBackend(), {
      getMutex: () => ({
        acquire: async () => {
          acquires++;
          return true;
        },
        release: async () => {},
        locked: async () => false,
      }),
    });
    const region = makeRegion().configure(backend);
    await Promise.all(Array.from({ length: 1000 }, () => region.getOrCreate('k', () => sleep(10).then(() => 'v'))));
    assert.equal(acquires, 1);
  });
});
