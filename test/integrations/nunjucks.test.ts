// Nunjucks integration: the shared template suite, plus Nunjucks-specific cases (sync render,
// loops, cachedinclude inside if/for, tags where Nunjucks would drop async output).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import nunjucks from 'nunjucks';
import { installNunjucks } from '../../integrations/nunjucks.js';
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

  it('a cache tag directly inside a macro or set block is a template error, not silent truncation', async () => {
    const t = setup();
    await assert.rejects(
      t.render('{% macro m() %}{% cache "x" %}y{% endcache %}{% endmacro %}{{ m() }}', {}),
      /cannot be used inside \{% macro %\}/,
    );
    await assert.rejects(t.render('{% set v %}{% cache "x" %}y{% endcache %}{% endset %}{{ v }}', {}), /inside \{% set %\}/);
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
