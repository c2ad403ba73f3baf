// Cached collections (`{% cachedeach %}`, Eta `cachedEach`, Handlebars `{{cachedEach}}`), for each
// engine: output byte-identical to a loop of uncached includes (escaping-sensitive data), no item
// rendered on a warm page, only the missing items rendered on a partly warm one, one render per item
// key under 50 concurrent cold renders, exactly one backend getMulti for a warm page, and a clear
// ValidationError (template and line) for bad collections.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { TemplateCache } from '../../integrations/templates.js';
import { type CachedValue, makeRegion, type NoValue, ProxyBackend, ValidationError } from '../../src/index.js';
import { enginesUnderTest } from './engines.js';
import type { EngineUnderTest } from './suite.js';

/** Templates per engine: the card partial, the collection page, the uncached loop, the per-item cached loop. */
const SPELLINGS: Record<string, { card: string; page: string; loop: string; perItem: string }> = {
  nunjucks: {
    card: '<li data-id="{{ product.id }}">{{ count(product.id) }}:{{ product.name }} {{ cur }}</li>\n',
    page: '<ul>\n{% cachedeach "card.njk", products, key="id", as="product", cur=cur %}</ul>',
    loop: '<ul>\n{% for product in products %}{% include "card.njk" %}{% endfor %}</ul>',
    perItem:
      '<ul>\n{% for product in products %}{% cachedinclude "card.njk", key=product.id, product=product, cur=cur %}{% endfor %}</ul>',
  },
  eta: {
    card: '<li data-id="<%= it.product.id %>"><%= this.config.hooks.count(it.product.id) %>:<%= it.product.name %> <%= it.cur %></li>\n',
    page: '<ul>\n<%~ await cachedEach("./card", it.products, { key: "id", as: "product", data: { cur: it.cur } }) %></ul>',
    loop: '<ul>\n<% for (const product of it.products) { %><%~ await includeAsync("./card", { product, cur: it.cur }) %><% } %></ul>',
    perItem:
      '<ul>\n<% for (const product of it.products) { %><%~ await cachedInclude("./card", { product, cur: it.cur }, { key: product.id }) %><% } %></ul>',
  },
  handlebars: {
    card: '<li data-id="{{product.id}}">{{count product.id}}:{{product.name}} {{cur}}</li>\n',
    page: '<ul>\n{{cachedEach "card" products key="id" as="product" cur=cur}}</ul>',
    loop: '<ul>\n{{#each products}}{{> card product=this cur=../cur}}{{/each}}</ul>',
    perItem: '<ul>\n{{#each products}}{{cachedPartial "card" key=this.id product=this cur=../cur}}{{/each}}</ul>',
  },
};

/** Counts the backend calls a region makes. */
class CountingProxy extends ProxyBackend {
  calls = { get: 0, getMulti: 0, set: 0, setMulti: 0 };
  override get(key: string): Promise<CachedValue | NoValue> {
    this.calls.get++;
    return super.get(key);
  }
  override getMulti(keys: string[]): Promise<(CachedValue | NoValue)[]> {
    this.calls.getMulti++;
    return super.getMulti(keys);
  }
  override set(key: string, value: CachedValue): Promise<void> {
    this.calls.set++;
    return super.set(key, value);
  }
  override setMulti(entries: Map<string, CachedValue>): Promise<void> {
    this.calls.setMulti++;
    return super.setMulti(entries);
  }
  reset(): void {
    this.calls = { get: 0, getMulti: 0, set: 0, setMulti: 0 };
  }
}

const TRICKY = `<b>"Tom" & 'Jerry'</b>`;
const products = (n: number, from = 1) =>
  Array.from({ length: n }, (_, i) => ({ id: from + i, name: i % 2 ? `${TRICKY}#${from + i}` : `plain ${from + i}` }));

for (const engine of enginesUnderTest) collectionSuite(engine);

function collectionSuite(engine: EngineUnderTest): void {
  describe(`cached collections: ${engine.name}`, () => {
    const dirs: string[] = [];
    after(() => {
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    });
    const setup = () => {
      const dir = mkdtempSync(join(tmpdir(), `dogpile-coll-${engine.name}-`));
      dirs.push(dir);
      const s = SPELLINGS[engine.name];
      assert.ok(s, `no spelling for ${engine.name}`);
      for (const [name, src] of Object.entries(s)) writeFileSync(join(dir, `${name}.${engine.ext}`), src);
      const proxy = new CountingProxy();
      const region = makeRegion({ name: 'fragments' }).configure('memory', { wrap: [proxy] });
      const cache = new TemplateCache({ regions: region });
      const rendered = new Map<unknown, number>();
      const r = engine.make(dir, cache, {
        count: (v) => {
          rendered.set(v, (rendered.get(v) ?? 0) + 1);
          return v;
        },
        boom: () => {
          throw new Error('boom');
        },
      });
      const runs = () => [...rendered.values()].reduce((a, b) => a + b, 0);
      return { dir, proxy, region, cache, rendered, runs, render: r.render };
    };

    it('renders byte-identically to a loop of uncached includes, cold and warm (escaping-sensitive data)', async () => {
      const t = setup();
      const ctx = { products: products(6), cur: `€ <&>` };
      const expected = await t.render('loop', ctx);
      assert.match(expected, /&lt;b&gt;/);
      assert.equal(await t.render('page', ctx), expected);
      assert.equal(await t.render('page', ctx), expected);
      assert.equal(await t.render('page', { products: [], cur: 'x' }), await t.render('loop', { products: [], cur: 'x' }));
    });

    it('a warm page renders no item; a partly warm one renders only the missing items', async () => {
      const t = setup();
      const ctx = { products: products(5), cur: 'EUR' };
      await t.render('page', ctx);
      assert.equal(t.runs(), 5);
      await t.render('page', ctx);
      assert.equal(t.runs(), 5, 'warm: no item rendered');
      const more = { products: [...products(5), ...products(3, 100)], cur: 'EUR' };
      assert.equal(await t.render('page', more), await t.render('loop', more));
      // the loop render counts 8 itself; the collection rendered only items 100..102
      for (const id of [100, 101, 102]) assert.equal(t.rendered.get(id), 2, `item ${id}: collection once + loop once`);
      for (const id of [1, 2, 3, 4, 5]) assert.equal(t.rendered.get(id), 2, `item ${id}: first collection + loop`);
    });

    it('variables shared by every item are part of the key', async () => {
      const t = setup();
      const a = await t.render('page', { products: products(2), cur: 'EUR' });
      const b = await t.render('page', { products: products(2), cur: 'USD' });
      assert.match(a, /EUR/);
      assert.match(b, /USD/);
      assert.equal(t.runs(), 4);
    });

    it('50 concurrent cold renders render each item key once', async () => {
      const t = setup();
      const ctx = { products: products(20), cur: 'EUR' };
      const expected = await t.render('loop', ctx);
      t.rendered.clear();
      const pages = await Promise.all(Array.from({ length: 50 }, () => t.render('page', ctx)));
      for (const p of pages) assert.equal(p, expected);
      assert.equal(t.rendered.size, 20);
      for (const [id, n] of t.rendered) assert.equal(n, 1, `item ${String(id)} rendered ${n} times`);
    });

    it('a warm page makes exactly one backend getMulti for its items (and no get); a cold one writes with one setMulti', async () => {
      const t = setup();
      const ctx = { products: products(30), cur: 'EUR' };
      t.proxy.reset();
      await t.render('page', ctx);
      assert.equal(t.proxy.calls.setMulti, 1, 'cold: one setMulti');
      assert.equal(t.proxy.calls.set, 0, 'cold: no per-item set');
      t.proxy.reset();
      await t.render('page', ctx);
      assert.deepEqual(t.proxy.calls, { get: 0, getMulti: 1, set: 0, setMulti: 0 });
      // the per-item loop, for contrast, reads once per item
      await t.render('perItem', ctx);
      t.proxy.reset();
      await t.render('perItem', ctx);
      assert.equal(t.proxy.calls.get + t.proxy.calls.getMulti, 30);
    });

    it('stale items are served and regenerated once', async () => {
      const t = setup();
      const ctx = { products: products(3), cur: 'EUR' };
      const first = await t.render('page', ctx);
      await t.region.invalidate({ hard: false });
      assert.equal(await t.render('page', ctx), first);
      assert.equal(t.runs(), 6, 'soft-invalidated items rendered again, once each');
      await t.render('page', ctx);
      assert.equal(t.runs(), 6);
    });

    it('the per-render opt-out renders every item without touching the backend', async () => {
      const t = setup();
      const ctx = { products: products(3), cur: 'EUR', dogpile: { enabled: false } };
      t.proxy.reset();
      assert.equal(await t.render('page', ctx), await t.render('loop', ctx));
      assert.deepEqual(t.proxy.calls, { get: 0, getMulti: 0, set: 0, setMulti: 0 });
    });

    const rejectsClearly = async (t: ReturnType<typeof setup>, ctx: object, what: RegExp) => {
      await assert.rejects(t.render('page', ctx as Record<string, unknown>), (err: Error) => {
        // Nunjucks re-wraps every render error in its own Error, keeping the name in the message.
        if (engine.name === 'nunjucks') assert.match(err.message, /ValidationError: /);
        else assert.ok(err instanceof ValidationError, `${err.name}: ${err.message}`);
        assert.match(err.message, what);
        assert.match(err.message, /\bpage\b/, 'names the template');
        if (engine.name !== 'eta' || /line/.test(err.message)) assert.match(err.message, /line 2/, 'names the line');
        return true;
      });
    };

    it('duplicate item keys are a ValidationError naming the template and line', async () => {
      const t = setup();
      await rejectsClearly(
        t,
        { products: [...products(2), { id: 1, name: 'again' }], cur: 'x' },
        /items 0 and 2 have the same key "1"/,
      );
    });

    it('a collection that is not an array is a ValidationError naming the template and line', async () => {
      const t = setup();
      await rejectsClearly(t, { products: { id: 1 }, cur: 'x' }, /must be an array, got an object/);
      await rejectsClearly(t, { cur: 'x' }, /must be an array, got undefined/);
    });

    it('an item without the key field is a ValidationError naming the template and line', async () => {
      const t = setup();
      await rejectsClearly(t, { products: [{ id: 1 }, { name: 'no id' }], cur: 'x' }, /item 1 has no key field "id"/);
      await rejectsClearly(t, { products: [{ id: { nested: true } }], cur: 'x' }, /must give a string or number/);
      assert.equal(t.runs(), 0, 'nothing rendered for a bad collection');
    });
  });
}
