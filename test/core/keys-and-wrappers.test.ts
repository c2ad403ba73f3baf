// Keys and wrappers as a dogpile.cache user expects them: kwargFunctionKeyGenerator keys a call the
// same however its defaults are spelled; wrappers keep name and length; cacheMultiOnArguments.set
// addresses the entries calls use; getOrCreateMulti hands the creator its keys in request order; a
// decorated static method is keyed `Class.method` under tsx (esbuild) and tsc alike. (Issue 12.)
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';
import { kwargFunctionKeyGenerator, ManualClock, makeRegion, NO_VALUE } from '../../src/index.js';

const memory = () => makeRegion({ clock: new ManualClock() }).configure('memory', { expirationTime: 60 });

describe('kwargFunctionKeyGenerator: all-defaults calls share one key', () => {
  const gen = kwargFunctionKeyGenerator(undefined, { name: 'one' });

  it('f(), f(undefined), f({}) and f({ a: undefined }) key the same', () => {
    const k = gen();
    assert.equal(k, 'one|');
    assert.equal(gen(undefined), k);
    assert.equal(gen({}), k);
    assert.equal(gen({ a: undefined }), k);
  });

  it('trailing empty arguments are dropped, others keep their place', () => {
    assert.equal(gen(1, {}), gen(1));
    assert.equal(gen(1, undefined), gen(1));
    assert.notEqual(gen({}, 1), gen(1));
    assert.equal(gen({}, 1), gen(undefined, 1));
    assert.notEqual(gen({ a: 1 }), gen());
    assert.notEqual(gen(null), gen());
    assert.notEqual(gen([]), gen());
  });

  it('through a wrapper, f() and f({}) hit the same entry', async () => {
    const region = memory();
    let calls = 0;
    const f = region.cacheOnArguments({ functionKeyGenerator: kwargFunctionKeyGenerator })(async function search(
      opts: { page?: number } = {},
    ) {
      calls++;
      return opts.page ?? 1;
    });
    assert.equal(await f(), 1);
    assert.equal(await f({}), 1);
    assert.equal(await f({ page: undefined }), 1);
    assert.equal(calls, 1);
  });
});

describe('wrappers keep the function identity', () => {
  it('name and length of cacheOnArguments and cacheMultiOnArguments wrappers', () => {
    const region = memory();
    const single = region.cacheOnArguments()(async function loadUser(_id: number, _withPosts: boolean) {
      return 1;
    });
    assert.equal(single.name, 'loadUser');
    assert.equal(single.length, 2);
    const multi = region.cacheMultiOnArguments()(async function loadMany(_a: number, _b: number, _c: number) {
      return [1, 2, 3];
    });
    assert.equal(multi.name, 'loadMany');
    assert.equal(multi.length, 3);
  });
});

describe('cacheMultiOnArguments.set addresses the entries calls use', () => {
  it('numeric arguments, through a Map', async () => {
    const region = memory();
    const seen: number[][] = [];
    const load = region.cacheMultiOnArguments()(async function byId(...ids: number[]) {
      seen.push(ids);
      return ids.map((id) => `db:${id}`);
    });
    await load.set(
      new Map([
        [1, 'preset:1'],
        [2, 'preset:2'],
      ]),
    );
    assert.deepEqual(await load(1, 2, 3), ['preset:1', 'preset:2', 'db:3']);
    assert.deepEqual(seen, [[3]]);
    assert.deepEqual(await load.get(1, 2), ['preset:1', 'preset:2']);
  });

  it('object arguments, through a Map (keyed by value, not identity)', async () => {
    const region = memory();
    let calls = 0;
    const load = region.cacheMultiOnArguments()(async function byRef(...refs: { id: number }[]) {
      calls++;
      return refs.map((r) => `db:${r.id}`);
    });
    await load.set(new Map([[{ id: 7 }, 'preset:7']]));
    assert.deepEqual(await load({ id: 7 }), ['preset:7']);
    assert.equal(calls, 0);
  });

  it('string arguments, through a record', async () => {
    const region = memory();
    const load = region.cacheMultiOnArguments()(async function byName(...names: string[]) {
      return names.map((n) => `db:${n}`);
    });
    await load.set({ ann: 'preset:ann' });
    assert.deepEqual(await load('ann', 'bob'), ['preset:ann', 'db:bob']);
  });

  it('something that is neither a Map nor a record is a ValidationError', async () => {
    const load = memory().cacheMultiOnArguments()(async function byId(...ids: number[]) {
      return ids;
    });
    await assert.rejects(load.set([[1, 2]] as never), /byId\.set: expected a Map/);
  });
});

describe('getOrCreateMulti passes the missing keys in request order', () => {
  it('stale and missing keys interleaved reach the creator as asked', async () => {
    const clock = new ManualClock();
    const region = makeRegion({ clock }).configure('memory', { expirationTime: 10 });
    await region.setMulti({ b: 'old-b', d: 'old-d' });
    clock.advance(20_000); // b and d are stale now
    const calls: string[][] = [];
    const values = await region.getOrCreateMulti(['z', 'd', 'a', 'b', 'z'], (...keys) => {
      calls.push(keys);
      return keys.map((k) => `new-${k}`);
    });
    assert.deepEqual(calls, [['z', 'd', 'a', 'b']]);
    assert.deepEqual(values, ['new-z', 'new-d', 'new-a', 'new-b', 'new-z']);
    assert.deepEqual(await region.getMulti(['a', 'b', 'd', 'z']), ['new-a', 'new-b', 'new-d', 'new-z']);
  });

  it('cacheMultiOnArguments: numbers 10, 2, 8 reach the function as 10, 2, 8', async () => {
    const region = memory();
    const seen: number[][] = [];
    const f = region.cacheMultiOnArguments()(async function gen(...n: number[]) {
      seen.push(n);
      return n;
    });
    await f(10, 2, 8);
    assert.deepEqual(seen, [[10, 2, 8]]);
  });
});

describe('decorated methods are named Class.method under tsx and tsc', () => {
  const source = (imported: string) => `
import { makeRegion } from ${JSON.stringify(imported)};
const region = makeRegion().configure('memory');
export class Catalog {
  @region.cacheOnArguments() static async find(id) { return id; }
  @region.cacheOnArguments() async load(id) { return id; }
}
`;

  it('under tsx (esbuild, keepNames), a static method is Catalog.find', async () => {
    const region = memory();
    class Catalog {
      @region.cacheOnArguments()
      static async find(id: number) {
        return id;
      }
      @region.cacheOnArguments()
      async load(id: number) {
        return id;
      }
    }
    assert.equal((Catalog.find as unknown as { key(n: number): string }).key(1), 'Catalog.find|1');
    await new Catalog().load(1);
    assert.equal((new Catalog().load as unknown as { key(n: number): string }).key(1), 'Catalog.load|1');
    assert.equal(await region.get('Catalog.find|1'), NO_VALUE);
    await Catalog.find(1);
    assert.equal(await region.get('Catalog.find|1'), 1);
  });

  it('under tsc, the same keys', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dogpile-tsc-'));
    try {
      const index = pathToFileURL(join(import.meta.dirname, '../../src/index.ts')).href;
      const out = ts.transpileModule(source(index), {
        compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ES2022 },
      }).outputText;
      assert.match(out, /__esDecorate/); // really tsc's decorator emit
      const file = join(dir, 'catalog.mjs');
      writeFileSync(file, out);
      const mod = (await import(pathToFileURL(file).href)) as {
        Catalog: { find: { key(n: number): string }; new (): { load: { key(n: number): string } } };
      };
      assert.equal(mod.Catalog.find.key(1), 'Catalog.find|1');
      assert.equal(new mod.Catalog().load.key(1), 'Catalog.load|1');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
