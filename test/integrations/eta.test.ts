// Eta integration: the shared template suite, plus Eta-specific cases (parse errors with line
// numbers, user code named `cache`, sync render, loops).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Eta } from 'eta';
import { dogpileEta } from '../../integrations/eta.js';
import { makeRegion } from '../../src/index.js';
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
