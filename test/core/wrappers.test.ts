import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  coerceValue,
  encodeArg,
  functionKeyGenerator,
  functionMultiKeyGenerator,
  kwargFunctionKeyGenerator,
  lengthConditionalMangler,
  ManualClock,
  makeRegion,
  NO_VALUE,
  sha1MangleKey,
  ValidationError,
} from '../../src/index.js';

const memory = (expirationTime: number | null = 60) => {
  const clock = new ManualClock();
  return { region: makeRegion({ clock }).configure('memory', { expirationTime }), clock };
};

describe('key generation', () => {
  it('is injective across argument boundaries and types', () => {
    const gen = functionKeyGenerator(undefined, { name: 'g' });
    assert.notEqual(gen('x y', 'z'), gen('x', 'y z'));
    assert.notEqual(gen(1), gen('1'));
    assert.notEqual(gen(null), gen('null'));
    assert.notEqual(gen(undefined), gen());
    assert.notEqual(gen(true), gen('true'));
    assert.notEqual(gen(1n), gen(1));
    assert.notEqual(gen([1, 2]), gen([1], 2));
    assert.notEqual(gen('a,b'), gen('a', 'b'));
    assert.equal(gen(1, 'two'), 'g|1,"two"');
  });

  it('encodes plain objects independently of key order, and containers structurally', () => {
    assert.equal(encodeArg({ b: 1, a: [1, { d: 2, c: 3 }] }), encodeArg({ a: [1, { c: 3, d: 2 }], b: 1 }));
    assert.notEqual(encodeArg({ a: 1 }), encodeArg({ a: '1' }));
    assert.equal(encodeArg(new Date('2026-01-01T00:00:00Z')), 'Date(2026-01-01T00:00:00.000Z)');
    assert.equal(encodeArg(new Set([2, 1])), encodeArg(new Set([1, 2])));
    assert.notEqual(encodeArg(new Map([['a', 1]])), encodeArg({ a: 1 }));
    assert.notEqual(encodeArg(Buffer.from('ab')), encodeArg('ab'));
  });

  it('functions, symbols and circular structures throw ValidationError', () => {
    assert.throws(() => encodeArg(() => 1), ValidationError);
    assert.throws(() => encodeArg(Symbol('x')), ValidationError);
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    assert.throws(() => encodeArg(circular), /circular/);
  });

  it('namespace and toStr', () => {
    const gen = functionKeyGenerator('ns', { name: 'one' }, (a) => String(a).toUpperCase());
    assert.equal(gen('a', 1), 'one|ns|"A","1"');
  });

  it('multi generator: one key per argument', () => {
    assert.deepEqual(functionMultiKeyGenerator(undefined, { name: 'one' })(1, 'b'), ['one|1', 'one|"b"']);
  });

  it('kwargFunctionKeyGenerator: same key whatever the order or undefined properties', () => {
    const gen = kwargFunctionKeyGenerator(undefined, { name: 'search' });
    assert.equal(gen({ a: 1, b: 2 }), gen({ b: 2, a: 1 }));
    assert.equal(gen({ a: 1 }), gen({ a: 1, b: undefined }));
    assert.notEqual(gen({ a: 1 }), gen({ a: '1' }));
  });

  it('manglers', () => {
    assert.equal(sha1MangleKey('some_key'), '53def077a4264bd3183d4eb21b1f56f883e1b572');
    const m = lengthConditionalMangler(10, sha1MangleKey);
    assert.equal(m('short'), 'short');
    assert.equal(m('a much longer key').length, 40);
    assert.throws(() => lengthConditionalMangler(-1, sha1MangleKey), ValidationError);
  });
});

describe('cacheOnArguments', () => {
  it('caches by arguments and keeps types; helpers address the same entries', async () => {
    const { region } = memory();
    let calls = 0;
    const load = region.cacheOnArguments({ namespace: 'users' })(async function loadUser(id: number, full = false) {
      calls++;
      return { id, full, n: calls };
    });
    const a = await load(7);
    const b = await load(7);
    assert.equal(a.n, 1);
    assert.equal(b.n, 1);
    assert.equal(load.key(7), 'loadUser|users|7');
    assert.deepEqual(await load.get(7), a);
    await load.invalidate(7);
    assert.equal(await load.get(7), NO_VALUE);
    await load.set({ id: 7, full: true, n: 99 }, 7);
    assert.equal((await load(7)).n, 99);
    const refreshed = await load.refresh(7);
    assert.equal(refreshed.n, 2);
    assert.equal((await load(7)).n, 2);
    assert.equal((await load.original(7)).n, 3);
    assert.equal((await load(7, true)).n, 4); // different arguments, different entry
  });

  it('anonymous functions need a namespace; the example form works', async () => {
    const { region } = memory();
    assert.throws(() => region.cacheOnArguments()(async (x: number) => x), /anonymous function/);
    const f = region.cacheOnArguments({ namespace: 'users' })(async (id: number) => ({ id }));
    assert.deepEqual(await f(1), { id: 1 });
  });

  it('function and symbol arguments reject with ValidationError', async () => {
    const { region } = memory();
    const f = region.cacheOnArguments()(async function f(x: unknown) {
      return x;
    });
    await assert.rejects(
      f(() => 1),
      ValidationError,
    );
    await assert.rejects(f(Symbol('s')), ValidationError);
  });

  it('expirationTime as a function is read on every call; get honours the wrapper expiration', async () => {
    const { region, clock } = memory(1000);
    let ttl = 10;
    let calls = 0;
    const f = region.cacheOnArguments({ expirationTime: () => ttl })(async function f() {
      return ++calls;
    });
    await f();
    clock.advance(11);
    assert.equal(await f.get(), NO_VALUE); // wrapper's 10 s, not the region's 1000 s
    assert.equal(await f(), 2);
    ttl = 0;
    assert.equal(await f(), 3);
  });

  it('shouldCacheFn applies to calls', async () => {
    const { region } = memory();
    let calls = 0;
    const f = region.cacheOnArguments({ shouldCacheFn: (v: number) => v > 1 })(async function f() {
      return ++calls;
    });
    assert.equal(await f(), 1);
    assert.equal(await f(), 2);
    assert.equal(await f(), 2);
  });

  it('works as a standard method decorator, keyed by Class.method, with this bound', async () => {
    const { region } = memory();
    class Users {
      calls = 0;
      constructor(readonly prefix: string) {}
      @region.cacheOnArguments()
      async load(id: number): Promise<string> {
        this.calls++;
        return `${this.prefix}${id}`;
      }
    }
    class Posts {
      @region.cacheOnArguments()
      async load(id: number): Promise<string> {
        return `post${id}`;
      }
    }
    const users = new Users('user');
    assert.equal(await users.load(1), 'user1');
    assert.equal(await users.load(1), 'user1');
    assert.equal(users.calls, 1);
    assert.equal(await new Posts().load(1), 'post1'); // same method name, other class: no collision
    const wrapped = users.load as unknown as { key(id: number): string };
    assert.equal(wrapped.key(1), 'Users.load|1');
  });

  it('a custom key generator can read this (per-instance entries)', async () => {
    const { region } = memory();
    const byTenant = (_ns: string | undefined, fn: { name: string }) =>
      function (this: unknown, ...args: readonly unknown[]) {
        return `${fn.name}|${(this as { tenant: string }).tenant}|${args.join(',')}`;
      };
    class Repo {
      constructor(readonly tenant: string) {}
      @region.cacheOnArguments({ functionKeyGenerator: byTenant })
      async find(id: number) {
        return `${this.tenant}:${id}`;
      }
    }
    assert.equal(await new Repo('a').find(1), 'a:1');
    assert.equal(await new Repo('b').find(1), 'b:1');
  });
});

describe('cacheMultiOnArguments', () => {
  it('calls the function once with only the missing arguments', async () => {
    const { region } = memory();
    const seen: number[][] = [];
    const load = region.cacheMultiOnArguments()(async function loadMany(...ids: number[]) {
      seen.push(ids);
      return ids.map((id) => `v${id}`);
    });
    assert.deepEqual(await load(2, 8, 10), ['v2', 'v8', 'v10']);
    assert.deepEqual(await load(2, 3, 10), ['v2', 'v3', 'v10']);
    assert.equal(seen.length, 2);
    assert.deepEqual(seen[1], [3]);
    assert.deepEqual(await load.get(2, 4), ['v2', NO_VALUE]);
    await load.invalidate(2);
    assert.deepEqual(await load.get(2), [NO_VALUE]);
    await load.set(new Map([[5, 'five']]));
    assert.deepEqual(await load(5), ['five']);
    assert.deepEqual(load.keys(1), ['loadMany|1']);
  });

  it('asDict: returns a record; arguments the function omits are left out and not cached', async () => {
    const { region } = memory();
    let calls = 0;
    const load = region.cacheMultiOnArguments({ asDict: true })(async function lookup(...names: string[]) {
      calls++;
      const out: Record<string, number> = {};
      for (const n of names) if (n !== 'ghost') out[n] = n.length;
      return out;
    });
    assert.deepEqual(await load('a', 'bb', 'ghost'), { a: 1, bb: 2 });
    assert.deepEqual(await load('a', 'ghost'), { a: 1 });
    assert.equal(calls, 2);
    assert.deepEqual(await load.get('a', 'ghost'), [1, NO_VALUE]);
  });
});

describe('configureFromConfig', () => {
  it('reads flat keys and coerces strings', async () => {
    const region = makeRegion().configureFromConfig(
      {
        'cache.users.backend': 'memory',
        'cache.users.expiration_time': '60',
        'cache.users.arguments.max': '100',
        'cache.other.backend': 'null',
      },
      'cache.users.',
    );
    assert.equal(region.expirationTime, 60);
    assert.equal(region.actualBackend.constructor.name, 'MemoryBackend');
    const env = makeRegion().configureFromConfig(
      { CACHE_BACKEND: 'memory', CACHE_EXPIRATIONTIME: 'None', CACHE_ARGUMENTS_MAX_SIZE: '1000' },
      'CACHE_',
    );
    assert.equal(env.expirationTime, null);
  });

  it('coerces values like dogpile.cache, plus JSON', () => {
    assert.equal(coerceValue('-1'), -1);
    assert.equal(coerceValue('+1'), 1);
    assert.equal(coerceValue('0.1'), 0.1);
    assert.equal(coerceValue('-3.14e-10'), -3.14e-10);
    assert.equal(coerceValue('True'), true);
    assert.equal(coerceValue('None'), null);
    assert.deepEqual(coerceValue('["a:1","b:2"]'), ['a:1', 'b:2']);
    assert.equal(coerceValue('redis://x'), 'redis://x');
  });

  it('a missing backend key is a ValidationError', () => {
    assert.throws(() => makeRegion().configureFromConfig({}, 'cache.'), /no backend under "cache.backend"/);
  });
});
