// TemplateCache, the engine-agnostic fragment cache: the Mako-plugin methods, key building, region
// lookup, the onError policy ('render' emits or warns, 'throw' rejects) and the enabled switches.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { digestSource, renderEnabled, TemplateCache } from '../../integrations/templates.js';
import { BackendError, makeRegion, ValidationError } from '../../src/index.js';
import { DownBackend } from './suite.js';

describe('TemplateCache', () => {
  const make = (opts: Partial<ConstructorParameters<typeof TemplateCache>[0]> = {}) =>
    new TemplateCache({ regions: makeRegion({ failOpen: false }).configure('memory'), ...opts });

  it('getOrCreate / get / set / invalidate share one key space', async () => {
    const tc = make();
    let runs = 0;
    const render = () => {
      runs++;
      return `<b>${runs}</b>`;
    };
    assert.equal(await tc.getOrCreate('k', render), '<b>1</b>');
    assert.equal(await tc.getOrCreate('k', render), '<b>1</b>');
    assert.equal(await tc.get('k'), '<b>1</b>');
    await tc.set('k', 'set by hand');
    assert.equal(await tc.getOrCreate('k', render), 'set by hand');
    await tc.invalidate('k');
    assert.equal(await tc.get('k'), undefined);
    assert.equal(await tc.getOrCreate('k', render), '<b>2</b>');
  });

  it('a single region answers to "default" and to its own name', async () => {
    const pages = makeRegion({ name: 'pages' }).configure('memory');
    const tc = new TemplateCache({ regions: pages });
    assert.equal(tc.region('pages'), pages);
    assert.equal(tc.region('default'), pages);
    assert.equal(tc.region(), pages);
    await tc.set('k', 'v', { region: 'pages' });
    assert.equal(await tc.get('k'), 'v');
    assert.throws(() => tc.region('other'), /unknown region "other" \(known: default, pages\)/);
  });

  it('dependencies must be a record of name arrays; declared names are returned as given', () => {
    const regions = makeRegion().configure('memory');
    assert.throws(() => new TemplateCache({ regions, dependencies: { a: 'b' as unknown as string[] } }), ValidationError);
    const tc = new TemplateCache({ regions, dependencies: { 'page.njk': ['a.njk'] } });
    assert.deepEqual(tc.declaredDependencies('page.njk'), ['a.njk']);
    assert.equal(tc.declaredDependencies('toString'), undefined);
  });

  it('single flight: concurrent callers of a cold key share one render', async () => {
    const tc = make();
    let runs = 0;
    const render = async () => {
      runs++;
      await new Promise((r) => setTimeout(r, 10));
      return 'slow';
    };
    const outs = await Promise.all(Array.from({ length: 30 }, () => tc.getOrCreate('cold', render)));
    assert.deepEqual(new Set(outs), new Set(['slow']));
    assert.equal(runs, 1);
  });

  it('keyPrefix and version namespace every key', async () => {
    const region = makeRegion().configure('memory');
    const a = new TemplateCache({ regions: region, version: 1 });
    const b = new TemplateCache({ regions: region, version: 2 });
    await a.set('k', 'one');
    assert.equal(await b.get('k'), undefined);
    assert.equal(await region.get('tpl|1|k'), 'one');
    const c = new TemplateCache({ regions: region, keyPrefix: 'frag' });
    await c.set('k', 'x');
    assert.equal(await region.get('frag||k'), 'x');
  });

  it('fragmentKey: engine | template@digest | block | injective args', () => {
    const tc = make();
    const parts = { engine: 'eta', template: 'a.eta', digest: 'd1', block: 'b1' };
    assert.equal(tc.fragmentKey({ ...parts, args: ['x', 1] }), 'eta|a.eta@d1|b1|"x",1');
    assert.notEqual(tc.fragmentKey({ ...parts, args: [1] }), tc.fragmentKey({ ...parts, args: ['1'] }));
    assert.notEqual(tc.fragmentKey({ ...parts, args: [null] }), tc.fragmentKey({ ...parts, args: [undefined] }));
    assert.notEqual(tc.fragmentKey({ ...parts, args: ['a,b'] }), tc.fragmentKey({ ...parts, args: ['a', 'b'] }));
    assert.equal(tc.fragmentKey({ ...parts, template: undefined, args: [] }), 'eta|#d1|b1|');
    assert.equal(make({ digest: false }).fragmentKey({ ...parts, args: [] }), 'eta|a.eta|b1|');
    assert.equal(digestSource('x').length, 12);
  });

  it('regions by name; unknown names and bad options are ValidationErrors naming them', async () => {
    const pages = makeRegion().configure('memory');
    const tc = new TemplateCache({ regions: { main: makeRegion().configure('memory'), pages }, defaultRegion: 'main' });
    await tc.set('k', 'p', { region: 'pages' });
    assert.equal(await pages.get('tpl||k'), 'p');
    await assert.rejects(
      tc.getOrCreate('k', () => 'x', { region: 'nope' }),
      /unknown region "nope"/,
    );
    assert.throws(() => new TemplateCache({ regions: { a: pages }, defaultRegion: 'b' }), ValidationError);
    assert.throws(() => new TemplateCache({ regions: pages, onError: 'ignore' as 'render' }), /onError/);
    assert.throws(() => new TemplateCache({ regions: 5 as never }), ValidationError);
  });

  it('a render that throws stores nothing and rejects every waiter', async () => {
    const tc = make();
    let runs = 0;
    const bad = async () => {
      runs++;
      await new Promise((r) => setTimeout(r, 5));
      throw new Error('body failed');
    };
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => tc.getOrCreate('e', bad)));
    assert.ok(results.every((r) => r.status === 'rejected' && /body failed/.test(String(r.reason))));
    assert.equal(runs, 1);
    assert.equal(await tc.get('e'), undefined);
  });

  it("onError 'render': backend failure renders inline once and emits 'error'", async () => {
    const down = makeRegion({ failOpen: false }).configure(new DownBackend());
    const tc = new TemplateCache({ regions: down });
    const seen: unknown[] = [];
    tc.on('error', (err, info) => seen.push([err, info]));
    let runs = 0;
    assert.equal(
      await tc.getOrCreate('k', () => {
        runs++;
        return 'inline';
      }),
      'inline',
    );
    assert.equal(runs, 1);
    assert.ok(seen.length >= 1);
    const [err, info] = seen[0] as [unknown, { key: string }];
    assert.ok(err instanceof BackendError);
    assert.equal(info.key, 'k');
    assert.equal(await tc.get('k'), undefined);
  });

  it("with no 'error' listener a process warning is emitted instead of crashing", async () => {
    const down = makeRegion({ failOpen: false }).configure(new DownBackend());
    const tc = new TemplateCache({ regions: down });
    const warned = new Promise<Error>((resolve) => process.once('warning', resolve));
    assert.equal(await tc.getOrCreate('k', () => 'inline'), 'inline');
    const w = await warned;
    assert.equal(w.name, 'DogpileWarning');
  });

  it("onError 'throw' rejects with BackendError", async () => {
    const down = makeRegion({ failOpen: false }).configure(new DownBackend());
    const tc = new TemplateCache({ regions: down, onError: 'throw' });
    await assert.rejects(
      tc.getOrCreate('k', () => 'x'),
      BackendError,
    );
    await assert.rejects(tc.get('k'), BackendError);
  });

  it('enabled: false (global or per call) renders every time and touches no backend', async () => {
    const down = makeRegion({ failOpen: false }).configure(new DownBackend());
    const off = new TemplateCache({ regions: down, enabled: false, onError: 'throw' });
    assert.equal(await off.getOrCreate('k', () => 'a'), 'a');
    const on = new TemplateCache({ regions: down, onError: 'throw' });
    assert.equal(await on.getOrCreate('k', () => 'b', { enabled: false }), 'b');
    assert.equal(
      on.getOrCreateSync('k', () => 'c', { enabled: false }),
      'c',
    );
  });

  it('renderEnabled reads the per-render opt-out, also from Express _locals', () => {
    assert.equal(renderEnabled({}), true);
    assert.equal(renderEnabled({ dogpile: { enabled: false } }), false);
    assert.equal(renderEnabled({ dogpile: false }), false);
    assert.equal(renderEnabled({ _locals: { dogpile: { enabled: false } } }), false);
  });

  it('the synchronous tier honours expire and invalidate', async () => {
    const tc = make();
    let runs = 0;
    const render = () => String(++runs);
    assert.equal(tc.getOrCreateSync('s', render, { expire: 60 }), '1');
    assert.equal(tc.getOrCreateSync('s', render, { expire: 60 }), '1');
    assert.equal(tc.getOrCreateSync('s', render, { expire: 0 }), '2');
    await tc.invalidate('s');
    assert.equal(tc.getOrCreateSync('s', render, { expire: 60 }), '3');
  });

  it('region invalidation (soft and hard) reaches the synchronous tier', async () => {
    const region = makeRegion().configure('memory');
    const tc = new TemplateCache({ regions: region });
    let runs = 0;
    const render = () => String(++runs);
    assert.equal(tc.getOrCreateSync('s', render), '1');
    assert.equal(tc.getOrCreateSync('s', render), '1');
    await new Promise((r) => setTimeout(r, 2)); // invalidation compares millisecond timestamps
    await region.invalidate({ hard: true });
    await new Promise((r) => setTimeout(r, 2)); // a render in the same millisecond counts as before it
    assert.equal(tc.getOrCreateSync('s', render), '2', 'hard invalidation: rendered again');
    assert.equal(tc.getOrCreateSync('s', render), '2');
    await new Promise((r) => setTimeout(r, 2));
    await region.invalidate({ hard: false });
    await new Promise((r) => setTimeout(r, 2));
    assert.equal(tc.getOrCreateSync('s', render), '3', 'soft invalidation: rendered again');
  });
});
