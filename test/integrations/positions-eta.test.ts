// Every position an Eta <% cache %> block can stand (if / for / for-of / forEach and map callbacks,
// function and arrow / layouts / include / includeAsync, and nestings): the cached render equals the
// uncached render byte for byte with escaping-sensitive data, and a hit does not run the body.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Eta } from 'eta';
import { dogpileEta } from '../../integrations/eta.js';
import { makeRegion } from '../../src/index.js';

type Wrap = (key: string, body: string) => string;
const cached: Wrap = (key, body) => `<% cache ${key} %>${body}<% endcache %>`;
const plain: Wrap = (_key, body) => body;
const row = (c: Wrap) => c('"row", p.id', '<li><%= it.count(p.name) %></li>');
const user = (c: Wrap) => c('"user", it.user.id', '<b><%= it.count(it.user.name) %></b>');

const cases: Record<string, (c: Wrap) => Record<string, string>> = {
  if: (c) => ({ page: `A<% if (it.flag) { %>${user(c)}<% } %>Z` }),
  for: (c) => ({ page: `A<% for (let i = 0; i < it.items.length; i++) { const p = it.items[i]; %>${row(c)}<% } %>Z` }),
  'for-of': (c) => ({ page: `A<% for (const p of it.items) { %>${row(c)}<% } %>Z` }),
  'forEach(function)': (c) => ({ page: `A<ul><% it.items.forEach(function (p) { %>${row(c)}<% }) %></ul>Z` }),
  'forEach(arrow)': (c) => ({ page: `A<% it.items.forEach((p) => { %>${row(c)}<% }) %>Z` }),
  'map callback': (c) => ({ page: `A<% it.items.map(function (p) { %>${row(c)}<% }) %>Z` }),
  'if in forEach': (c) => ({ page: `A<% it.items.forEach(function (p) { if (p.id) { %>${row(c)}<% } }) %>Z` }),
  'nested blocks in forEach': (c) => ({
    page: `A<% it.items.forEach(function (p) { %>${c('"outer", p.id', `<p>${row(c)}<%= it.count(p.id) %></p>`)}<% }) %>Z`,
  }),
  'async block around a forEach block': (c) => ({
    page: `A${c('"all"', `<% it.items.forEach(function (p) { %>${row(c)}<% }) %>`)}Z`,
  }),
  'page with a layout': (c) => ({ layout: '<html><%~ it.body %></html>', page: `<% layout("./layout") %>${user(c)}` }),
  'block in the layout': (c) => ({ layout: `<html>${user(c)}|<%~ it.body %></html>`, page: '<% layout("./layout") %>P&' }),
  include: (c) => ({ part: user(c), page: 'A<%~ include("./part") %>Z' }),
  includeAsync: (c) => ({ part: user(c), page: 'A<%~ await includeAsync("./part") %>Z' }),
  'include in a loop': (c) => ({
    part: `<% const p = it.p %>${row(c)}`,
    page: 'A<% for (const p of it.items) { %><%~ include("./part", { p }) %><% } %>Z',
  }),
};

const data = {
  flag: true,
  user: { id: 7, name: `<Tom & "Jerry">'` },
  items: [
    { id: 1, name: `<a href="x">&'` },
    { id: 2, name: `b"'<>` },
  ],
};

describe('eta: a cache block in every position', () => {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const etaFor = (files: Record<string, string>, withCache: boolean) => {
    const dir = mkdtempSync(join(tmpdir(), 'dogpile-etapos-'));
    dirs.push(dir);
    for (const [name, src] of Object.entries(files)) writeFileSync(join(dir, `${name}.eta`), src);
    const plugins = withCache ? [dogpileEta({ regions: makeRegion().configure('memory') })] : [];
    let runs = 0;
    const count = (v: unknown) => {
      runs++;
      return v;
    };
    return { eta: new Eta({ views: dir, cache: true, plugins }), ctx: { ...data, count }, runs: () => runs };
  };

  for (const [name, make] of Object.entries(cases)) {
    it(`${name}: cached === uncached, and a hit runs no body`, async () => {
      const p = etaFor(make(plain), false);
      const expected = await p.eta.renderAsync('page', p.ctx);
      assert.ok(expected.includes('&lt;') && expected.length > 4, expected);
      const t = etaFor(make(cached), true);
      assert.equal(await t.eta.renderAsync('page', t.ctx), expected);
      const runs = t.runs();
      assert.ok(runs > 0);
      assert.equal(await t.eta.renderAsync('page', t.ctx), expected);
      assert.equal(t.runs(), runs, 'a hit runs no body');
      if (!name.includes('Async'))
        assert.equal(t.eta.render('page', t.ctx), expected, 'a synchronous render gives the same page');
    });
  }
});
