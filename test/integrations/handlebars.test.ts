// Handlebars integration: the shared template suite, plus Handlebars-specific cases (each/@index,
// block params, with, forged tokens, a bare synchronous Handlebars render).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Handlebars from 'handlebars';
import { installHandlebars } from '../../integrations/handlebars.js';
import { makeRegion } from '../../src/index.js';
import { handlebarsUnderTest } from './engines.js';
import { templateSuite } from './suite.js';

templateSuite(handlebarsUnderTest);

describe('handlebars specifics', () => {
  const setup = () => {
    const hbs = Handlebars.create();
    let runs = 0;
    hbs.registerHelper('n', (v: unknown) => {
      runs++;
      return v;
    });
    hbs.registerHelper('upper', function (this: unknown, options: { fn: (c: unknown) => string }) {
      return options.fn(this).toUpperCase();
    });
    const dh = installHandlebars(hbs, { regions: makeRegion().configure('memory') });
    return { hbs, dh, runs: () => runs };
  };

  it('inside each with @index/@first, block params, ../ and with: same output as inline', async () => {
    const t = setup();
    const body = '[{{@index}} {{@first}} {{@last}} {{p.name}} {{../title}} {{#with p}}{{name}}{{/with}}]';
    const src = `{{#each items as |p|}}{{#cache "row" p.id}}${body}{{/cache}}{{/each}}`;
    const plain = Handlebars.compile(`{{#each items as |p|}}${body}{{/each}}`);
    const ctx = {
      title: 'T&',
      items: [
        { id: 1, name: 'a' },
        { id: 2, name: 'b<' },
        { id: 3, name: 'c' },
      ],
    };
    const tpl = t.dh.compile(src, { name: 'loop' });
    assert.equal(await tpl(ctx), plain(ctx));
    assert.equal(await tpl(ctx), plain(ctx));
  });

  it('user data that looks like a token or contains $& is output verbatim', async () => {
    const t = setup();
    const tpl = t.dh.compile('{{#cache "k"}}{{v}}{{/cache}}|{{v}}', { name: 'forge' });
    const v = '\u0000dp000000000000:0\u0000 $& $1 $$';
    assert.equal(await tpl({ v }), `${Handlebars.escapeExpression(v)}|${Handlebars.escapeExpression(v)}`);
  });

  it('a cache block whose output an enclosing helper transforms fails clearly', async () => {
    const t = setup();
    const tpl = t.dh.compile('{{#upper}}{{#cache "k"}}x{{/cache}}{{/upper}}', { name: 'up' });
    await assert.rejects(tpl({}), /transformed by an enclosing helper/);
  });

  it('cache blocks inside string partials are keyed by the partial, not the caller', async () => {
    const t = setup();
    t.hbs.registerPartial('one', '{{#cache "same"}}one{{/cache}}');
    t.hbs.registerPartial('two', '{{#cache "same"}}two{{/cache}}');
    const tpl = t.dh.compile('{{> one}}|{{> two}}|{{#cache "same"}}page{{/cache}}', { name: 'host' });
    assert.equal(await tpl({}), 'one|two|page');
    assert.equal(await tpl({}), 'one|two|page');
  });

  it('helperNames: other helper names free `cache` for data; the default names the option in its error', async () => {
    const hbs = Handlebars.create();
    const dh = installHandlebars(hbs, { regions: makeRegion().configure('memory') }, { helperNames: { cache: 'fragment' } });
    let runs = 0;
    hbs.registerHelper('n', (v: unknown) => {
      runs++;
      return v;
    });
    const tpl = dh.compile('{{cache}}|{{#fragment "k"}}{{n label}}{{/fragment}}', { name: 'named' });
    assert.equal(await tpl({ cache: 'a<b', label: 'one' }), 'a&lt;b|one');
    assert.equal(await tpl({ cache: 'a<b', label: 'two' }), 'a&lt;b|one');
    assert.equal(runs, 1);
    const viaOptions = installHandlebars(Handlebars.create(), {
      regions: makeRegion().configure('memory'),
      helperNames: { cache: 'frag', partial: 'cp' },
    });
    assert.equal(await viaOptions.compile('{{#frag "k"}}x{{/frag}}{{cache}}')({ cache: 1 }), 'x1');
    const t = setup();
    await assert.rejects(t.dh.compile('{{cache}}', { name: 'shadow' })({ cache: 'v' }), /helperNames: \{ cache: 'otherName' \}/);
    assert.throws(() =>
      installHandlebars(Handlebars.create(), { regions: makeRegion().configure('memory') }, { helperNames: { cache: 'a b' } }),
    );
  });

  it('a precompiled partial edited between deploys gives new markup (its identity is its code, not String(fn))', async () => {
    const region = makeRegion().configure('memory');
    const deploy = (partialSource: string) => {
      const hbs = Handlebars.create();
      const dh = installHandlebars(hbs, { regions: region });
      const spec = new Function(`return ${Handlebars.precompile(partialSource)}`)();
      hbs.registerPartial('card', hbs.template(spec));
      return dh.compile('{{#cache "k"}}[{{> card}}]{{/cache}}', { name: 'page' });
    };
    const one = Handlebars.template(new Function(`return ${Handlebars.precompile('one')}`)());
    const two = Handlebars.template(new Function(`return ${Handlebars.precompile('two')}`)());
    assert.equal(String(one), String(two), 'the premise: precompiled templates print the same');
    assert.equal(await deploy('card one {{x}}')({ x: '<1>' }), '[card one &lt;1&gt;]');
    assert.equal(await deploy('card one {{x}}')({ x: 'changed' }), '[card one &lt;1&gt;]', 'same code: hit');
    assert.equal(await deploy('card two {{x}}')({ x: '<2>' }), '[card two &lt;2&gt;]');
  });

  it('a dynamic partial name warns once; a declared dependency is digested', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      const region = makeRegion().configure('memory');
      const deploy = (aSource: string, declared: boolean) => {
        const hbs = Handlebars.create();
        const dh = installHandlebars(hbs, { regions: region, ...(declared ? { dependencies: { dyn: ['a'] } } : {}) });
        hbs.registerPartial('a', aSource);
        return dh.compile('{{#cache "k"}}[{{> (lookup . "which")}}]{{/cache}}', { name: 'dyn' });
      };
      const undeclared = deploy('A one', false);
      assert.equal(await undeclared({ which: 'a' }), '[A one]');
      await undeclared({ which: 'a' });
      await new Promise((r) => setImmediate(r));
      assert.equal(warnings.filter((w) => /"dyn".*name is an expression/.test(w)).length, 1, warnings.join('\n'));
      assert.equal(await deploy('A two', true)({ which: 'a' }), '[A two]');
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('a bare synchronous Handlebars render falls back to the in-process tier', () => {
    const t = setup();
    const tpl = t.hbs.compile('{{#cache "s"}}{{n 1}}{{/cache}}');
    assert.equal(tpl({}), '1');
    assert.equal(tpl({}), '1');
    assert.equal(t.runs(), 1);
  });
});
