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

  it('a bare synchronous Handlebars render falls back to the in-process tier', () => {
    const t = setup();
    const tpl = t.hbs.compile('{{#cache "s"}}{{n 1}}{{/cache}}');
    assert.equal(tpl({}), '1');
    assert.equal(tpl({}), '1');
    assert.equal(t.runs(), 1);
  });
});
