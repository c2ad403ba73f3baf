// Nunjucks integration: the shared template suite, plus Nunjucks-specific cases (sync render,
// loops, cachedinclude inside if/for, tags where Nunjucks would drop async output).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import nunjucks from 'nunjucks';
import { installNunjucks, renderNunjucks } from '../../integrations/nunjucks.js';
import { TemplateCache } from '../../integrations/templates.js';
import { makeRegion } from '../../src/index.js';
import { nunjucksUnderTest } from './engines.js';
import { templateSuite } from './suite.js';

templateSuite(nunjucksUnderTest);

describe('nunjucks specifics', () => {
  const setup = () => {
    const env = new nunjucks.Environment(null, { autoescape: true });
    let runs = 0;
    env.addGlobal('count', (v: unknown) => {
      runs++;
      return v;
    });
    const cache = installNunjucks(env, { regions: makeRegion().configure('memory') });
    const render = (src: string, ctx: object) =>
      new Promise<string>((res, rej) => env.renderString(src, ctx, (e, h) => (e ? rej(e) : res(h ?? ''))));
    return { env, cache, render, runs: () => runs };
  };

  it('works inside for loops and if, keyed by the loop variable', async () => {
    const t = setup();
    const src =
      '{% for p in items %}{% if p.show %}{% cache "row", p.id %}[{{ count(p.name) }}]{% endcache %}{% endif %}{% endfor %}';
    const items = [
      { id: 1, name: 'a', show: true },
      { id: 2, name: 'b', show: true },
      { id: 3, name: 'c', show: false },
    ];
    assert.equal(await t.render(src, { items }), '[a][b]');
    assert.equal(await t.render(src, { items }), '[a][b]');
    assert.equal(t.runs(), 2);
  });

  it('a missing endcache names the tag and the line it was opened on', async () => {
    const t = setup();
    await assert.rejects(t.render('a\nb {% cache "x" %}y\n{% if 1 %}z{% endif %}', {}), (err: Error) => {
      assert.match(err.message, /\{% cache %\} opened at line 2 has no matching \{% endcache %\}/);
      assert.match(err.message, /Line 2/);
      return true;
    });
  });

  it('an Eta-style options object is a template error naming the template and line, not a key argument', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dogpile-njopt-'));
    try {
      writeFileSync(join(dir, 'opts.njk'), 'x\n{% cache "k", { region: "pages" } %}y{% endcache %}');
      const env = new nunjucks.Environment(new nunjucks.FileSystemLoader(dir), { autoescape: true });
      installNunjucks(env, { regions: makeRegion().configure('memory') });
      await assert.rejects(renderNunjucks(env, 'opts.njk', {}), (err: Error) => {
        assert.match(err.message, /opts\.njk/);
        assert.match(err.message, /Line 2/);
        assert.match(err.message, /keyword arguments \(region="pages", expire=60\), not an object literal/);
        return true;
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a dynamic include name warns once; a declared dependency is digested and silences it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dogpile-njdyn-'));
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      writeFileSync(join(dir, 'page.njk'), '{% cache "k" %}[{% include which %}]{% endcache %}');
      writeFileSync(join(dir, 'a.njk'), 'A one');
      const region = makeRegion().configure('memory');
      const make = (declared: boolean) => {
        const env = new nunjucks.Environment(new nunjucks.FileSystemLoader(dir), { autoescape: true });
        installNunjucks(env, { regions: region, ...(declared ? { dependencies: { 'page.njk': ['a.njk'] } } : {}) });
        return env;
      };
      const undeclared = make(false);
      assert.equal(await renderNunjucks(undeclared, 'page.njk', { which: 'a.njk' }), '[A one]');
      await renderNunjucks(undeclared, 'page.njk', { which: 'a.njk' });
      await new Promise((r) => setImmediate(r));
      assert.equal(warnings.filter((w) => /page\.njk.*name is an expression/.test(w)).length, 1, warnings.join('\n'));
      writeFileSync(join(dir, 'a.njk'), 'A two');
      assert.equal(await renderNunjucks(make(true), 'page.njk', { which: 'a.njk' }), '[A two]');
    } finally {
      process.off('warning', onWarning);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a watching loader reporting an edited include (update event) gives the new markup without a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dogpile-njwatch-'));
    try {
      writeFileSync(join(dir, 'page.njk'), '{% cache "k" %}[{% include "part.njk" %}]{% endcache %}');
      writeFileSync(join(dir, 'part.njk'), 'one');
      const loader = new nunjucks.FileSystemLoader(dir);
      const env = new nunjucks.Environment(loader, { autoescape: true });
      installNunjucks(env, { regions: makeRegion().configure('memory') });
      assert.equal(await renderNunjucks(env, 'page.njk', {}), '[one]');
      writeFileSync(join(dir, 'part.njk'), 'two');
      assert.equal(await renderNunjucks(env, 'page.njk', {}), '[one]', 'templates are cached and nothing reported the edit');
      // What FileSystemLoader({ watch: true }) emits when chokidar sees the change.
      (loader as unknown as { emit(e: string, name: string, path: string): void }).emit(
        'update',
        'part.njk',
        join(dir, 'part.njk'),
      );
      assert.equal(await renderNunjucks(env, 'page.njk', {}), '[two]');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('unknown tag options are rejected with their name', async () => {
    const t = setup();
    await assert.rejects(t.render('{% cache "x", expires=3 %}y{% endcache %}', {}), /unknown option "expires"/);
  });

  it('sync renderString works and never returns null', () => {
    const t = setup();
    assert.equal(t.env.renderString('{% cache "s" %}{{ count(1) }}{% endcache %}', {}), '1');
    assert.equal(t.env.renderString('{% cache "s" %}{{ count(1) }}{% endcache %}', {}), '1');
    assert.equal(t.runs(), 1);
  });

  it('a sync render of a body with async work fails with a clear DogpileError', () => {
    const env = new nunjucks.Environment(null, { autoescape: true });
    env.addFilter('later', (v: unknown, cb: (e: null, r: unknown) => void) => setTimeout(() => cb(null, v), 1), true);
    installNunjucks(env, new TemplateCache({ regions: makeRegion().configure('memory') }));
    assert.throws(() => env.renderString('{% cache "s" %}{{ 1 | later }}{% endcache %}', {}), /rendered synchronously/);
  });

  it('async filters inside the body work on the async path', async () => {
    const env = new nunjucks.Environment(null, { autoescape: true });
    env.addFilter('later', (v: unknown, cb: (e: null, r: unknown) => void) => setTimeout(() => cb(null, `<${v}>`), 1), true);
    installNunjucks(env, { regions: makeRegion().configure('memory') });
    const out = await new Promise<string>((res, rej) =>
      env.renderString('{% cache "s" %}{{ 1 | later }}{% endcache %}', {}, (e, h) => (e ? rej(e) : res(h ?? ''))),
    );
    assert.equal(out, '&lt;1&gt;');
  });
});
