// Every position a Handlebars {{#cache}} block can stand (if / each / with / unless / custom block
// helpers / partials / partial blocks / inline partials, and nestings): the cached render equals the
// uncached render byte for byte with escaping-sensitive data, and a hit does not run the body.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Handlebars from 'handlebars';
import { installHandlebars } from '../../integrations/handlebars.js';
import { makeRegion } from '../../src/index.js';

type Wrap = (key: string, body: string) => string;
const cached: Wrap = (key, body) => `{{#cache ${key}}}${body}{{/cache}}`;
const plain: Wrap = (_key, body) => body;
const row = (c: Wrap) => c('"row" id', '<li>{{count name}} {{@index}} {{@first}} {{../title}}</li>');
const user = (c: Wrap) => c('"user" user.id', '<b>{{count user.name}}</b>');

/** Each case: the page source and partials, written with `c` wrapping cached bodies. */
const cases: Record<string, (c: Wrap) => { page: string; partials?: Record<string, string> }> = {
  if: (c) => ({ page: `A{{#if flag}}${user(c)}{{/if}}Z` }),
  unless: (c) => ({ page: `A{{#unless off}}${user(c)}{{/unless}}Z` }),
  each: (c) => ({ page: `A<ul>{{#each items}}${row(c)}{{/each}}</ul>Z` }),
  'each with block params': (c) => ({
    page: `A{{#each items as |p i|}}${c('"bp" p.id', '[{{i}} {{count p.name}} {{@last}}]')}{{/each}}Z`,
  }),
  with: (c) => ({ page: `A{{#with user}}${c('"w" id', '<i>{{count name}} {{../title}}</i>')}{{/with}}Z` }),
  'if in each': (c) => ({ page: `A{{#each items}}{{#if id}}${row(c)}{{/if}}{{/each}}Z` }),
  'custom block helper': (c) => ({ page: `A{{#wrap}}${user(c)}{{/wrap}}Z` }),
  'nested blocks in each': (c) => ({ page: `A{{#each items}}${c('"outer" id', `<p>${row(c)}{{count id}}</p>`)}{{/each}}Z` }),
  partial: (c) => ({ page: 'A{{#each items}}{{> card}}{{/each}}Z', partials: { card: row(c) } }),
  'partial block': (c) => ({
    page: `A{{#> frame}}${user(c)}{{/frame}}Z`,
    partials: { frame: '<section>{{> @partial-block}}</section>' },
  }),
  'block inside a partial block partial': (c) => ({
    page: 'A{{#> frame}}inner &amp; {{user.name}}{{/frame}}Z',
    partials: { frame: `<section>${c('"f"', '{{count user.name}}')}{{> @partial-block}}</section>` },
  }),
  'inline partial inside the block': (c) => ({
    page: `A${c('"in"', '{{#*inline "il"}}<em>{{count user.name}}</em>{{/inline}}{{> il}}')}Z`,
  }),
  'inline partial outside the block': (c) => ({
    page: `{{#*inline "il"}}<em>{{count name}}</em>{{/inline}}A{{#each items}}${c('"out" id', '{{> il}}')}{{/each}}Z`,
  }),
};

const data = {
  flag: true,
  off: false,
  title: `T<&>"'`,
  user: { id: 7, name: `<Tom & "Jerry">'` },
  items: [
    { id: 1, name: `<a href="x">&'` },
    { id: 2, name: `b"'<>=\`` },
  ],
};

describe('handlebars: a cache block in every position', () => {
  const envFor = (withCache: boolean, partials: Record<string, string>) => {
    const hbs = Handlebars.create();
    let runs = 0;
    hbs.registerHelper('count', (v: unknown) => {
      runs++;
      return v;
    });
    hbs.registerHelper('wrap', function (this: unknown, options: Handlebars.HelperOptions) {
      return `<div>${options.fn(this)}</div>`;
    });
    for (const [name, src] of Object.entries(partials)) hbs.registerPartial(name, src);
    const dh = withCache ? installHandlebars(hbs, { regions: makeRegion().configure('memory') }) : undefined;
    return { hbs, dh, runs: () => runs };
  };

  for (const [name, make] of Object.entries(cases)) {
    it(`${name}: cached === uncached, and a hit runs no body`, async () => {
      const p = make(plain);
      const expected = envFor(false, p.partials ?? {}).hbs.compile(p.page)(data);
      assert.ok(expected.includes('&lt;') && expected.length > 4, expected);
      const c = make(cached);
      const t = envFor(true, c.partials ?? {});
      const tpl = t.dh?.compile(c.page, { name: 'page' });
      assert.ok(tpl);
      assert.equal(await tpl(data), expected);
      const runs = t.runs();
      assert.ok(runs > 0);
      assert.equal(await tpl(data), expected);
      assert.equal(t.runs(), runs, 'a hit runs no body');
      assert.equal(t.hbs.compile(c.page)(data), expected, 'a bare synchronous render gives the same page');
    });
  }
});
