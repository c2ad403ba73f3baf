// The behaviour every template integration must have, written once and run per engine: output
// identical to the uncached render, hits skip the body, single flight under concurrency, keys that
// never cross templates, digests, body errors, backend failures, partials and the per-render opt-out.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { TemplateCache, type TemplateCacheOptions } from '../../integrations/templates.js';
import { BackendError, BaseBackend, type CachedValue, makeRegion, type NoValue, ValidationError } from '../../src/index.js';

/** Hooks the templates can call: `count(x)` counts body runs and returns x; `boom()` throws. */
export interface Hooks {
  count: (value: unknown) => unknown;
  boom: () => never;
}

/** An engine prepared over a directory of templates. */
export interface Rendering {
  render(name: string, context: Record<string, unknown>): Promise<string>;
  /** A synchronous render, if the engine has one. */
  renderSync?(name: string, context: Record<string, unknown>): string;
}

/** How one engine spells things, and how to set it up. */
/** Options of a block or partial as the tests write them (`if` / `unless`: variable paths). */
export interface BlockOpts {
  region?: string;
  expire?: number;
  if?: string;
  unless?: string;
}

export interface EngineUnderTest {
  name: string;
  ext: string;
  /** `args`: literals as JSON, variable paths prefixed with `@` (e.g. `@user.id`). */
  block(args: string[], body: string, opts?: BlockOpts): string;
  /** Outputs a variable path, escaped. */
  expr(path: string): string;
  /** Outputs a variable path that may be undefined (empty output then). */
  maybe(path: string): string;
  /** Outputs `count(path)`, escaped. */
  count(path: string): string;
  /** Calls `boom()`. */
  boom(): string;
  /** A cached partial `name` with `key=@keyPath` and one variable `varName=@varPath`. */
  partial(name: string, keyPath: string, varName: string, varPath: string, opts?: BlockOpts): string;
  /** A plain (uncached) include of the template `name`, seeing the caller's variables. */
  include(name: string): string;
  /** The same include, only when the variable `flag` is truthy. */
  includeIf(flag: string, name: string): string;
  make(dir: string, cache: TemplateCache, hooks: Hooks): Rendering;
}

/** A backend whose every operation fails, as a server that is down would. */
export class DownBackend extends BaseBackend {
  async get(): Promise<CachedValue | NoValue> {
    throw new Error('connection refused');
  }
  async set(): Promise<void> {
    throw new Error('connection refused');
  }
  async delete(): Promise<void> {
    throw new Error('connection refused');
  }
}

const NASTY = `<b>Tom & "Jerry"</b> it's $& $1`;

export function templateSuite(engine: EngineUnderTest): void {
  describe(`${engine.name} integration`, () => {
    const dirs: string[] = [];
    after(() => {
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    });

    const setup = (files: Record<string, string>, options?: Partial<TemplateCacheOptions>) => {
      const dir = mkdtempSync(join(tmpdir(), `dogpile-${engine.name}-`));
      dirs.push(dir);
      const write = (name: string, source: string) => writeFileSync(join(dir, `${name}.${engine.ext}`), source);
      for (const [name, source] of Object.entries(files)) write(name, source);
      const region = makeRegion({ failOpen: false }).configure('memory');
      const cache = new TemplateCache({ regions: { default: region, pages: makeRegion().configure('memory') }, ...options });
      const runs = new Map<unknown, number>();
      const hooks: Hooks = {
        count: (v) => {
          runs.set(v, (runs.get(v) ?? 0) + 1);
          return v;
        },
        boom: () => {
          runs.set('boom', (runs.get('boom') ?? 0) + 1);
          throw new Error('boom in body');
        },
      };
      const rendering = engine.make(dir, cache, hooks);
      const total = () => [...runs.values()].reduce((a, b) => a + b, 0);
      return { dir, write, region, cache, runs, total, hooks, ...rendering, rendering };
    };

    const e = engine;
    const page =
      `<h1>${e.expr('user.name')}</h1>\n` +
      e.block(['"side"', '@user.id'], `<p>${e.count('user.name')}</p>`, { expire: 60 }) +
      '\n<main>' +
      e.block(['"main"', '@user.id'], `<i>${e.count('user.id')}</i>${e.block(['"inner"'], `<b>${e.count('title')}</b>`)}`) +
      '</main>\n';
    const stripped = `<h1>${e.expr('user.name')}</h1>\n<p>${e.count('user.name')}</p>\n<main><i>${e.count('user.id')}</i><b>${e.count('title')}</b></main>\n`;
    const ctx = (id: number, name = NASTY) => ({ user: { id, name }, title: `T<${id}>` });

    it('cached output is byte-identical to the uncached render (escaping kept, no double escape)', async () => {
      const t = setup({ page, plain: stripped });
      const plain = await t.render('plain', ctx(1));
      assert.ok(plain.includes('&lt;b&gt;Tom &amp;'), plain);
      const cold = await t.render('page', ctx(1));
      const hot = await t.render('page', ctx(1));
      assert.equal(cold, plain);
      assert.equal(hot, plain);
    });

    it('a hit does not run the body; the per-render opt-out runs it every time', async () => {
      const t = setup({ page });
      await t.render('page', ctx(1));
      assert.equal(t.total(), 3);
      await t.render('page', ctx(1));
      await t.render('page', { ...ctx(1), title: 'changed' });
      assert.equal(t.total(), 3, 'no body ran on a hit');
      const fresh = await t.render('page', { ...ctx(1), dogpile: { enabled: false } });
      assert.equal(t.total(), 6);
      assert.ok(fresh.includes('T&lt;1&gt;'));
      await t.render('page', ctx(2));
      assert.equal(t.total(), 8, 'a new user id renders side and main, not the shared inner block');
    });

    it('50 concurrent renders of a cold page run each block body once', async () => {
      const t = setup({ page });
      const outs = await Promise.all(Array.from({ length: 50 }, () => t.render('page', ctx(7))));
      assert.equal(new Set(outs).size, 1);
      assert.equal(t.total(), 3);
    });

    it('two templates with the same block args never share a fragment', async () => {
      const t = setup({ a: e.block(['"x"'], 'from A'), b: e.block(['"x"'], 'from B') });
      assert.equal(await t.render('a', {}), 'from A');
      assert.equal(await t.render('b', {}), 'from B');
      assert.equal(await t.render('a', {}), 'from A');
    });

    it('undefined and null block arguments are different keys', async () => {
      const t = setup({ p: e.block(['@v'], e.count('label')) });
      assert.equal(await t.render('p', { v: null, label: 'null' }), 'null');
      assert.equal(await t.render('p', { v: undefined, label: 'undef' }), 'undef');
    });

    it('editing a template changes its fragment keys (digest on); digest off keeps them', async () => {
      const t = setup({ p: e.block(['"k"'], 'version one') });
      assert.equal(await t.render('p', {}), 'version one');
      t.write('p', e.block(['"k"'], 'version two'));
      assert.equal(await t.render('p', {}), 'version two');

      const s = setup({ p: e.block(['"k"'], 'version one') }, { digest: false });
      assert.equal(await s.render('p', {}), 'version one');
      s.write('p', e.block(['"k"'], 'version two'));
      assert.equal(await s.render('p', {}), 'version one', 'digest off: keys are stable, bump version to bust');
    });

    it('editing a template a block includes shows the new markup after a deploy (fresh environment, same region)', async () => {
      const t = setup({
        page: `<h1>${e.expr('title')}</h1>${e.block(['"k"'], `${e.count('label')}[${e.include('part')}]`)}`,
        part: `part one ${e.expr('label')}|${e.include('leaf')}`,
        leaf: 'leaf one',
        other: 'unrelated one',
      });
      const deploy = () =>
        engine.make(t.dir, new TemplateCache({ regions: t.region }), { count: t.hooks.count, boom: t.hooks.boom });
      assert.equal(await t.render('page', { title: 'T', label: 'L<1>' }), '<h1>T</h1>L&lt;1&gt;[part one L&lt;1&gt;|leaf one]');
      assert.equal(t.total(), 1);
      // An unrelated edit keeps every key: the fresh environment still hits (no body run, old label).
      t.write('other', 'unrelated two');
      assert.equal(
        await deploy().render('page', { title: 'T', label: 'L2' }),
        '<h1>T</h1>L&lt;1&gt;[part one L&lt;1&gt;|leaf one]',
      );
      assert.equal(t.total(), 1, 'unrelated edit: hit');
      // Editing the included template: new key, new markup.
      t.write('part', `part two ${e.expr('label')}|${e.include('leaf')}`);
      assert.equal(await deploy().render('page', { title: 'T', label: 'L3' }), '<h1>T</h1>L3[part two L3|leaf one]');
      // Editing what the include includes (transitively): new markup again.
      t.write('leaf', 'leaf two');
      assert.equal(await deploy().render('page', { title: 'T', label: 'L4' }), '<h1>T</h1>L4[part two L4|leaf two]');
      assert.equal(t.total(), 3);
    });

    it('the engine reloading an edited include (same environment) gives the new markup', async () => {
      const t = setup({ page: e.block(['"k"'], `[${e.include('part')}]`), part: 'one' });
      assert.equal(await t.render('page', {}), '[one]');
      t.write('part', 'two');
      assert.equal(await t.render('page', {}), '[two]');
    });

    it('include cycles terminate (each template is digested once)', async () => {
      const t = setup({
        page: e.block(['"k"'], `<${e.include('a')}>`),
        a: `a${e.include('b')}`,
        b: `b${e.includeIf('never', 'a')}`,
      });
      assert.equal(await t.render('page', {}), '<ab>');
      t.write('b', `B${e.includeIf('never', 'a')}`);
      assert.equal(await t.render('page', {}), '<aB>');
    });

    it('a body that throws fails the render, stores nothing, and every waiter gets the error', async () => {
      const t = setup({ p: e.block(['"k"'], `x${e.boom()}`), ok: e.block(['"k"'], 'fine') });
      const results = await Promise.allSettled(Array.from({ length: 5 }, () => t.render('p', {})));
      for (const r of results) {
        assert.equal(r.status, 'rejected');
        assert.match(String((r as PromiseRejectedResult).reason?.message), /boom in body/);
      }
      assert.equal(t.runs.get('boom'), 1, 'one body ran; the waiters got its error');
      await assert.rejects(t.render('p', {}), /boom in body/);
      assert.equal(t.runs.get('boom'), 2, 'nothing was stored');
      assert.equal(await t.render('ok', {}), 'fine');
    });

    it('backend down: onError "render" renders the page and reports; "throw" rejects with BackendError', async () => {
      const files = { page };
      const t = setup(files);
      const expected = await t.render('page', ctx(3));
      const down = makeRegion({ failOpen: false }).configure(new DownBackend());
      const errors: unknown[] = [];
      const failing = new TemplateCache({ regions: down });
      failing.on('error', (err) => errors.push(err));
      const r = engine.make(t.dir, failing, { count: (v) => v, boom: () => assert.fail() });
      assert.equal(await r.render('page', ctx(3)), expected);
      assert.ok(errors.length > 0 && errors.every((x) => x instanceof BackendError));

      const strict = engine.make(t.dir, new TemplateCache({ regions: down, onError: 'throw' }), {
        count: (v) => v,
        boom: () => assert.fail(),
      });
      await assert.rejects(strict.render('page', ctx(3)), (err: Error) => {
        assert.ok(err instanceof BackendError || /BackendError|get failed|connection refused/.test(String(err)), String(err));
        return true;
      });
    });

    it('a fail-open region renders through a backend outage by itself', async () => {
      const t = setup({ page });
      const expected = await t.render('page', ctx(4));
      const down = makeRegion({ failOpen: true, onError: () => {} }).configure(new DownBackend());
      const r = engine.make(t.dir, new TemplateCache({ regions: down }), { count: (v) => v, boom: () => assert.fail() });
      assert.equal(await r.render('page', ctx(4)), expected);
    });

    it('blocks choose a region by name; an unknown name is a clear error', async () => {
      const t = setup({
        p: e.block(['"k"'], e.count('label'), { region: 'pages' }),
        bad: e.block(['"k"'], 'x', { region: 'nope' }),
      });
      assert.equal(await t.render('p', { label: 'L' }), 'L');
      assert.equal(await t.render('p', { label: 'M' }), 'L');
      await assert.rejects(t.render('bad', {}), (err: Error) => {
        assert.match(String(err.message), /unknown region "nope"/);
        return true;
      });
      assert.throws(() => t.cache.region('nope'), ValidationError);
    });

    it('cached partials: keyed by the given key, rendered with only the given variables', async () => {
      const t = setup({
        card: `<li>${e.count('item.name')}${e.maybe('user')}</li>`,
        list: `${e.partial('card', 'a.id', 'item', 'a')}|${e.partial('card', 'b.id', 'item', 'b')}`,
      });
      const c = { user: { name: 'SECRET' }, a: { id: 1, name: 'A&B' }, b: { id: 2, name: '<c>' } };
      const cold = await t.render('list', c);
      assert.equal(cold, '<li>A&amp;B</li>|<li>&lt;c&gt;</li>');
      assert.equal(await t.render('list', { ...c, a: { id: 1, name: 'changed' } }), cold, 'hit by key');
      assert.equal(t.total(), 2);
      const uncached = await t.render('list', { ...c, a: { id: 1, name: 'changed' }, dogpile: { enabled: false } });
      assert.equal(uncached, '<li>changed</li>|<li>&lt;c&gt;</li>');
    });

    it('TemplateCache.invalidate and version bust fragments', async () => {
      const t = setup({ p: e.block(['"k"'], e.count('label')) });
      assert.equal(await t.render('p', { label: 'one' }), 'one');
      assert.equal(await t.render('p', { label: 'two' }), 'one');
      await t.region.invalidate();
      assert.equal(await t.render('p', { label: 'three' }), 'three');
      const v2 = engine.make(t.dir, new TemplateCache({ regions: t.region, version: 2 }), {
        count: (v) => v,
        boom: () => assert.fail(),
      });
      assert.equal(await v2.render('p', { label: 'four' }), 'four');
    });

    it('a synchronous render works (in-process tier) or fails clearly, never returns null', async () => {
      const t = setup({ page });
      if (!t.renderSync) return;
      const expected = await t.render('page', ctx(5));
      const out = t.renderSync('page', ctx(5));
      assert.equal(out, expected);
      const before = t.total();
      assert.equal(t.renderSync('page', ctx(5)), expected);
      assert.equal(t.total(), before, 'sync hit skips the body');
    });
  });
}

/** Converts `@path` to an engine expression with `prefix`, literals unchanged. */
export function argExpr(arg: string, prefix = ''): string {
  return arg.startsWith('@') ? prefix + arg.slice(1) : arg;
}
