// Every position a Nunjucks {% cache %} tag can stand (if / for / macro / call / set capture /
// filter block / extends-block / include / import, and nestings of them): the cached render equals
// the uncached render byte for byte with escaping-sensitive data, and a hit does not run the body.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import nunjucks from 'nunjucks';
import { installNunjucks, renderNunjucks } from '../../integrations/nunjucks.js';
import { makeRegion } from '../../src/index.js';

type Wrap = (key: string, body: string) => string;
const cached: Wrap = (key, body) => `{% cache ${key} %}${body}{% endcache %}`;
const plain: Wrap = (_key, body) => body;
const row = (c: Wrap) => c('"row", p.id', '<li>{{ count(p.name) }}</li>');
const user = (c: Wrap) => c('"user", user.id', '<b>{{ count(user.name) }}</b>');

/** Each case: templates by name (`page` is rendered), written with `c` wrapping cached bodies. */
const cases: Record<string, (c: Wrap) => Record<string, string>> = {
  if: (c) => ({ page: `A{% if flag %}${user(c)}{% endif %}Z` }),
  for: (c) => ({ page: `A<ul>{% for p in items %}${row(c)}{% endfor %}</ul>Z` }),
  'if in for': (c) => ({ page: `A{% for p in items %}{% if p.id %}${row(c)}{% endif %}{% endfor %}Z` }),
  macro: (c) => ({ page: `{% macro card(p) %}${row(c)}{% endmacro %}A<ul>{% for p in items %}{{ card(p) }}{% endfor %}</ul>Z` }),
  'if in macro': (c) => ({
    page: `{% macro card(p) %}{% if p.id %}${row(c)}{% endif %}{% endmacro %}A<ul>{% for p in items %}{{ card(p) }}{% endfor %}</ul>Z`,
  }),
  'for in macro': (c) => ({
    page: `{% macro list(ps) %}<ul>{% for p in ps %}${row(c)}{% endfor %}</ul>{% endmacro %}A{{ list(items) }}Z`,
  }),
  call: (c) => ({ page: `{% macro wrap() %}<div>{{ caller() }}</div>{% endmacro %}A{% call wrap() %}${user(c)}{% endcall %}Z` }),
  'if in call': (c) => ({
    page: `{% macro wrap() %}<div>{{ caller() }}</div>{% endmacro %}A{% call wrap() %}{% if flag %}${user(c)}{% endif %}{% endcall %}Z`,
  }),
  switch: (c) => ({ page: `A{% switch flag %}{% case true %}${user(c)}{% default %}no{% endswitch %}Z` }),
  asyncEach: (c) => ({ page: `A{% asyncEach p in items %}${row(c)}{% endeach %}Z` }),
  asyncAll: (c) => ({ page: `A{% asyncAll p in items %}${row(c)}{% endall %}Z` }),
  'set capture': (c) => ({ page: `{% set v %}${user(c)}{% endset %}A{{ v }}|{{ v }}Z` }),
  'if in set capture': (c) => ({ page: `{% set v %}{% if flag %}${user(c)}{% endif %}{% endset %}A{{ v }}Z` }),
  'filter block': (c) => ({ page: `A{% filter upper %}${user(c)}{% endfilter %}Z` }),
  'extends-block': (c) => ({
    layout: '<html>{% block main %}default{% endblock %}</html>',
    page: `{% extends "layout.njk" %}{% block main %}${user(c)}{% endblock %}`,
  }),
  include: (c) => ({ part: user(c), page: 'A{% include "part.njk" %}Z' }),
  'include in if': (c) => ({ part: user(c), page: 'A{% if flag %}{% include "part.njk" %}{% endif %}Z' }),
  'include in for': (c) => ({ part: row(c), page: 'A{% for p in items %}{% include "part.njk" %}{% endfor %}Z' }),
  'include in if in for, twice nested': (c) => ({
    inner: row(c),
    part: '{% if p.id %}{% include "inner.njk" %}{% endif %}',
    page: 'A{% for p in items %}{% if p %}{% include "part.njk" %}{% endif %}{% endfor %}Z',
  }),
  import: (c) => ({
    macros: `{% macro card(p) %}${row(c)}{% endmacro %}`,
    page: '{% import "macros.njk" as m %}A{% for p in items %}{{ m.card(p) }}{% endfor %}Z',
  }),
  'from import': (c) => ({
    macros: `{% macro card(p) %}{% if p %}${row(c)}{% endif %}{% endmacro %}`,
    page: '{% from "macros.njk" import card %}A{% for p in items %}{{ card(p) }}{% endfor %}Z',
  }),
  'nested blocks in a macro': (c) => ({
    page: `{% macro card(p) %}${c('"outer", p.id', `<p>${row(c)}{{ count(p.id) }}</p>`)}{% endmacro %}A{% for p in items %}{{ card(p) }}{% endfor %}Z`,
  }),
  cachedinclude: (c) => ({
    card: '<li>{{ count(p.name) }}</li>',
    page: `{% macro card(p) %}${c === cached ? '{% cachedinclude "card.njk", key=p.id, p=p %}' : '{% include "card.njk" %}'}{% endmacro %}A${c('"x"', '{% for p in items %}{{ card(p) }}{% endfor %}')}Z`,
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

describe('nunjucks: a cache tag in every position', () => {
  it('an include of a template with cache tags inside a macro is a template error naming template and line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dogpile-njinc-'));
    try {
      writeFileSync(join(dir, 'part.njk'), '{% cache "p" %}x{% endcache %}');
      writeFileSync(join(dir, 'page.njk'), 'a\n{% macro m() %}{% include "part.njk" %}{% endmacro %}{{ m() }}');
      writeFileSync(join(dir, 'plain.njk'), 'plain');
      writeFileSync(join(dir, 'ok.njk'), '{% macro m() %}{% include "plain.njk" %}{% endmacro %}[{{ m() }}]');
      const env = new nunjucks.Environment(new nunjucks.FileSystemLoader(dir), { autoescape: true });
      installNunjucks(env, { regions: makeRegion().configure('memory') });
      await assert.rejects(renderNunjucks(env, 'page.njk', {}), (err: Error) => {
        assert.match(err.message, /page\.njk/);
        assert.match(err.message, /Line 2/);
        assert.match(err.message, /inside a \{% macro %\} block renders cached blocks.*cachedinclude/);
        return true;
      });
      assert.equal(await renderNunjucks(env, 'ok.njk', {}), '[plain]', 'an include without cache tags is untouched');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const envFor = (files: Record<string, string>, withCache: boolean) => {
    const dir = mkdtempSync(join(tmpdir(), 'dogpile-njpos-'));
    dirs.push(dir);
    for (const [name, src] of Object.entries(files)) writeFileSync(join(dir, `${name}.njk`), src);
    const env = new nunjucks.Environment(new nunjucks.FileSystemLoader(dir), { autoescape: true });
    let runs = 0;
    env.addGlobal('count', (v: unknown) => {
      runs++;
      return v;
    });
    if (withCache) installNunjucks(env, { regions: makeRegion().configure('memory') });
    return { env, runs: () => runs };
  };

  for (const [name, make] of Object.entries(cases)) {
    it(`${name}: cached === uncached, and a hit runs no body`, async () => {
      const expected = await renderNunjucks(envFor(make(plain), false).env, 'page.njk', data);
      assert.ok(expected.includes('&lt;') && expected.length > 4, expected);
      const t = envFor(make(cached), true);
      const cold = await renderNunjucks(t.env, 'page.njk', data);
      assert.equal(cold, expected);
      const runs = t.runs();
      assert.ok(runs > 0);
      assert.equal(await renderNunjucks(t.env, 'page.njk', data), expected);
      assert.equal(t.runs(), runs, 'a hit runs no body');
      // A synchronous render gives the same page too.
      assert.equal(t.env.render('page.njk', data), expected);
    });
  }
});
