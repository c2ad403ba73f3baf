// Eta integration: the shared template suite, plus Eta-specific cases (parse errors with line
// numbers, user code named `cache`, sync render, loops).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Eta } from 'eta';
import { dogpileEta } from '../../integrations/eta.js';
import { makeRegion, ValidationError } from '../../src/index.js';
import { etaUnderTest } from './engines.js';
import { templateSuite } from './suite.js';

templateSuite(etaUnderTest);

describe('eta specifics', () => {
  const make = () => new Eta({ plugins: [dogpileEta({ regions: makeRegion().configure('memory') })] });

  it('an unbalanced endcache is a parse error naming the line', () => {
    const eta = make();
    assert.throws(() => eta.renderString('a\nb\n<% endcache %>', {}), /endcache %> without a matching <% cache %> at line 3/);
    assert.throws(() => eta.renderString('x\n<% cache "k" %>y', {}), /cache %> at line 2 has no matching/);
  });

  it('a Nunjucks-style expire=60 is an error naming the tag, template and line, and sets no global', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dogpile-etaopt-'));
    try {
      writeFileSync(join(dir, 'opts.eta'), 'a\n<% cache "k", expire=60 %>y<% endcache %>');
      const eta = new Eta({ views: dir, plugins: [dogpileEta({ regions: makeRegion().configure('memory') })] });
      await assert.rejects(eta.renderAsync('opts', {}), (err: Error) => {
        assert.ok(err instanceof ValidationError, String(err));
        assert.match(err.message, /<% cache %> in opts\.eta at line 2: "expire=60" is an assignment/);
        assert.match(err.message, /\{ expire: 60 \}/);
        return true;
      });
      assert.equal((globalThis as { expire?: unknown }).expire, undefined);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a dynamic include name warns once; a declared dependency is digested', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dogpile-etadyn-'));
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      writeFileSync(join(dir, 'page.eta'), '<% cache "k" %>[<%~ await includeAsync(it.which) %>]<% endcache %>');
      writeFileSync(join(dir, 'a.eta'), 'A one');
      const region = makeRegion().configure('memory');
      const make = (declared: boolean) =>
        new Eta({
          views: dir,
          cache: true,
          plugins: [dogpileEta({ regions: region, ...(declared ? { dependencies: { 'page.eta': ['./a'] } } : {}) })],
        });
      const undeclared = make(false);
      assert.equal(await undeclared.renderAsync('page', { which: './a' }), '[A one]');
      await undeclared.renderAsync('page', { which: './a' });
      await new Promise((r) => setImmediate(r));
      assert.equal(warnings.filter((w) => /page\.eta.*name is an expression/.test(w)).length, 1, warnings.join('\n'));
      writeFileSync(join(dir, 'a.eta'), 'A two');
      assert.equal(await make(true).renderAsync('page', { which: './a' }), '[A two]');
    } finally {
      process.off('warning', onWarning);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('works with a custom varName', async () => {
    const eta = new Eta({ varName: 'data', plugins: [dogpileEta({ regions: makeRegion().configure('memory') })] });
    const src = '<% cache "k", data.id %><%= data.name %><% endcache %>';
    assert.equal(await eta.renderStringAsync(src, { id: 1, name: '<a>' }), '&lt;a&gt;');
    assert.equal(await eta.renderStringAsync(src, { id: 1, name: 'changed' }), '&lt;a&gt;');
    assert.equal(eta.renderString(src, { id: 2, name: 'b&' }), 'b&amp;');
  });

  it('leaves user code that merely uses the word cache alone', async () => {
    const eta = make();
    const out = await eta.renderStringAsync('<% const cache = { hits: 1 }; cache.hits++ %><%= cache.hits %>', {});
    assert.equal(out, '2');
  });

  it('nested blocks in a loop, keyed per item, with whitespace control', async () => {
    const eta = make();
    let runs = 0;
    const src = '<% for (const p of it.items) { -%><% cache "row", p.id -%>[<%= it.n(p.name) %>]<% endcache -%><% } %>';
    const n = (v: unknown) => {
      runs++;
      return v;
    };
    const items = [
      { id: 1, name: 'a&' },
      { id: 2, name: 'b' },
    ];
    assert.equal(await eta.renderStringAsync(src, { items, n }), '[a&amp;][b]');
    assert.equal(await eta.renderStringAsync(src, { items, n }), '[a&amp;][b]');
    assert.equal(runs, 2);
  });

  it('a synchronous render works through the in-process tier', () => {
    const eta = make();
    let runs = 0;
    const n = (v: unknown) => {
      runs++;
      return v;
    };
    assert.equal(eta.renderString('<% cache "s" %><%= it.n(1) %><% endcache %>', { n }), '1');
    assert.equal(eta.renderString('<% cache "s" %><%= it.n(1) %><% endcache %>', { n }), '1');
    assert.equal(runs, 1);
  });
});
