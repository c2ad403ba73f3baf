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
import { stripAnnotations } from '../../integrations/dev-annotations.js';
import { createFragmentSummary, TemplateCache } from '../../integrations/templates.js';
import { type CachedValue, makeRegion, type NoValue, ProxyBackend, ValidationError } from '../../src/index.js';
import { enginesUnderTest } from './engines.js';
import type { EngineUnderTest } from './suite.js';

/** Templates per engine: the card partial, the collection page, the uncached loop, the per-item cached loop. */
const SPELLINGS: Record<
  string,
  {
    card: string;
    page: string;
    loop: string;
    perItem: string;
    records: string;
    onlyIf: string;
    unlessAdmin: string;
    plainCard: string;
    bare: string;
  }
> = {
  nunjucks: {
    card: '<li data-id="{{ product.id }}">{{ count(product.id) }}:{{ product.name }} {{ cur }}</li>\n',
    page: '<ul>\n{% cachedeach "card.njk", products, key="id", as="product", cur=cur %}</ul>',
    loop: '<ul>\n{% for product in products %}{% include "card.njk" %}{% endfor %}</ul>',
    perItem:
      '<ul>\n{% for product in products %}{% cachedinclude "card.njk", key=product.id, product=product, cur=cur %}{% endfor %}</ul>',
    records: '<ul>\n{% cachedeach "card.njk", products, as="product", cur=cur %}</ul>',
    onlyIf: '<ul>\n{% cachedeach "card.njk", products, key="id", as="product", cur=cur, if=cacheable %}</ul>',
    unlessAdmin: '<ul>\n{% cachedeach "card.njk", products, key="id", as="product", cur=cur, unless=admin %}</ul>',
    plainCard: '<li>{{ count(item.id) }}:{{ item.name }}</li>',
    bare: '{% cachedeach "plainCard.njk", products %}',
  },
  eta: {
    card: '<li data-id="<%= it.product.id %>"><%= this.config.hooks.count(it.product.id) %>:<%= it.product.name %> <%= it.cur %></li>\n',
    page: '<ul>\n<%~ await cachedEach("./card", it.products, { key: "id", as: "product", data: { cur: it.cur } }) %></ul>',
    loop: '<ul>\n<% for (const product of it.products) { %><%~ await includeAsync("./card", { product, cur: it.cur }) %><% } %></ul>',
    perItem:
      '<ul>\n<% for (const product of it.products) { %><%~ await cachedInclude("./card", { product, cur: it.cur }, { key: product.id }) %><% } %></ul>',
    records: '<ul>\n<%~ await cachedEach("./card", it.products, { as: "product", data: { cur: it.cur } }) %></ul>',
    onlyIf:
      '<ul>\n<%~ await cachedEach("./card", it.products, { key: "id", as: "product", data: { cur: it.cur }, if: it.cacheable }) %></ul>',
    unlessAdmin:
      '<ul>\n<%~ await cachedEach("./card", it.products, { key: "id", as: "product", data: { cur: it.cur }, unless: it.admin }) %></ul>',
    plainCard: '<li><%= this.config.hooks.count(it.id) %>:<%= it.name %></li>',
    bare: '<%~ await cachedEach("./plainCard", it.products) %>',
  },
  handlebars: {
    card: '<li data-id="{{product.id}}">{{count product.id}}:{{product.name}} {{cur}}</li>\n',
    page: '<ul>\n{{cachedEach "card" products key="id" as="product" cur=cur}}</ul>',
    loop: '<ul>\n{{#each products}}{{> card product=this cur=../cur}}{{/each}}</ul>',
    perItem: '<ul>\n{{#each products}}{{cachedPartial "card" key=this.id product=this cur=../cur}}{{/each}}</ul>',
    records: '<ul>\n{{cachedEach "card" products as="product" cur=cur}}</ul>',
    onlyIf: '<ul>\n{{cachedEach "card" products key="id" as="product" cur=cur if=cacheable}}</ul>',
    unlessAdmin: '<ul>\n{{cachedEach "card" products key="id" as="product" cur=cur unless=admin}}</ul>',
    plainCard: '<li>{{count id}}:{{name}}</li>',
    bare: '{{cachedEach "plainCard" products}}',
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

    it('the same list object changed between renders (reordered, a key changed, an item turned record) keys each render by its items', async () => {
      const t = setup();
      const list: Array<{ id: number; name: string; version?: number }> = products(4);
      const ctx = { products: list, cur: 'EUR' };
      const check = async (why: string) => assert.equal(await t.render('page', ctx), await t.render('loop', ctx), why);
      await check('cold');
      await check('warm');
      list.reverse();
      await check('reordered');
      assert.equal(t.rendered.get(1), 4, 'item 1: the first collection and three loops (reordered, it is a hit)');
      (list[0] as { id: number }).id = 40; // was item 4
      await check('a key changed');
      assert.equal(t.rendered.get(40), 2, 'the new key rendered once by the collection, once by the loop');
      (list[1] as { version?: number }).version = 2;
      await check('an item became a record');
      (list[1] as { version?: number }).version = 3;
      const before = t.runs();
      assert.equal(await t.render('page', ctx), await t.render('page', ctx));
      assert.equal(t.runs() - before, 1, 'the bumped record renders once, then is a hit');
    });

    it('variables shared by every item are part of the key', async () => {
      const t = setup();
      const a = await t.render('page', { products: products(2), cur: 'EUR' });
      const b = await t.render('page', { products: products(2), cur: 'USD' });
      assert.match(a, /EUR/);
      assert.match(b, /USD/);
      assert.equal(t.runs(), 4);
      // Back and forth: each value keeps its own items (the tag's key parts are reused only while
      // they are the same), and a shared object is keyed by its content at each render.
      assert.equal(await t.render('page', { products: products(2), cur: 'EUR' }), a);
      assert.equal(await t.render('page', { products: products(2), cur: 'USD' }), b);
      assert.equal(t.runs(), 4);
      const cur = { code: 'EUR' };
      await t.render('page', { products: products(2), cur });
      assert.equal(t.runs(), 6);
      await t.render('page', { products: products(2), cur });
      assert.equal(t.runs(), 6);
      cur.code = 'GBP';
      await t.render('page', { products: products(2), cur });
      assert.equal(t.runs(), 8, 'the changed shared object is a new key');
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

    const rejectsClearly = async (t: ReturnType<typeof setup>, ctx: object, what: RegExp, page = 'page') => {
      await assert.rejects(t.render(page, ctx as Record<string, unknown>), (err: Error) => {
        // Nunjucks re-wraps every render error in its own Error, keeping the name in the message.
        if (engine.name === 'nunjucks') assert.match(err.message, /ValidationError: /);
        else assert.ok(err instanceof ValidationError, `${err.name}: ${err.message}`);
        assert.match(err.message, what);
        assert.match(err.message, new RegExp(`\\b${page}\\b`), 'names the template');
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

    // --- record keys (Rails' cache_key_with_version) and if= / unless= on the collection form ---

    /** Records with `<>&"'` names: `id` plus `updatedAt` (a Date) or `version`. */
    const records = (n: number) =>
      Array.from({ length: n }, (_, i) => ({
        id: i + 1,
        name: `${TRICKY}#${i + 1}`,
        ...(i % 2 ? { version: 1 } : { updatedAt: new Date(Date.UTC(2026, 0, 1)) }),
      }));

    it('record items: bumping one item\'s updatedAt or version re-renders exactly that item (key="id" and no key)', async () => {
      for (const page of ['page', 'records']) {
        const t = setup();
        const items = records(6);
        const ctx = { products: items, cur: `€ <&>` };
        const expected = await t.render('loop', ctx);
        t.rendered.clear();
        assert.equal(await t.render(page, ctx), expected, `${page}: cold`);
        assert.equal(t.runs(), 6);
        assert.equal(await t.render(page, ctx), expected, `${page}: warm`);
        assert.equal(t.runs(), 6, `${page}: warm page renders no item`);
        // Edit two records in place, bump the version of one: only that one is rendered again.
        (items[2] as { name: string }).name = 'edited <2>';
        (items[3] as { name: string }).name = 'edited <3>';
        (items[2] as { updatedAt?: Date }).updatedAt = new Date(Date.UTC(2026, 0, 2));
        const after = await t.render(page, ctx);
        assert.equal(t.runs(), 7, `${page}: exactly one item re-rendered`);
        assert.equal(t.rendered.get(3), 2, `${page}: the bumped item`);
        assert.match(after, /edited &lt;2&gt;/);
        assert.doesNotMatch(after, /edited &lt;3&gt;/, `${page}: an edit without a version bump keeps the cached card`);
        (items[3] as { version?: number }).version = 2;
        assert.equal(await t.render(page, ctx), await t.render('loop', ctx), `${page}: byte-identical after the bumps`);
        assert.equal(t.rendered.get(4), 3, `${page}: version bump re-rendered item 4 (collection + loop)`);
      }
    });

    it('record items keyed by cacheKey (string or function) without key=', async () => {
      const t = setup();
      let v = 1;
      const items = [
        { id: 1, name: 'one', cacheKey: 'products/1-a' },
        {
          id: 2,
          name: 'two',
          cacheKey(this: { id: number }) {
            return `products/${this.id}-${v}`;
          },
        },
      ];
      const ctx = { products: items, cur: 'EUR' };
      await t.render('records', ctx);
      await t.render('records', ctx);
      assert.equal(t.runs(), 2);
      v = 2;
      await t.render('records', ctx);
      assert.equal(t.runs(), 3);
      assert.equal(t.rendered.get(2), 2);
    });

    it('without key=, an item that is not a record, a throwing cacheKey or two equal record keys is a ValidationError', async () => {
      const t = setup();
      await rejectsClearly(t, { products: [{ id: 1, name: 'no version' }], cur: 'x' }, /item 0 is not a record/, 'records');
      const boom = {
        id: 1,
        cacheKey() {
          throw new Error('db gone');
        },
      };
      await rejectsClearly(t, { products: [boom], cur: 'x' }, /cacheKey\(\) of a key argument threw: db gone/, 'records');
      await rejectsClearly(t, { products: [boom], cur: 'x' }, /cacheKey\(\) of a key argument threw: db gone/, 'page');
      const twice = [
        { id: 1, version: 3 },
        { id: 1, version: 3 },
      ];
      await rejectsClearly(t, { products: twice, cur: 'x' }, /items 0 and 1 have the same record key/, 'records');
      assert.equal(t.runs(), 0, 'nothing rendered for a bad collection');
    });

    it('the shortest form: records, no options at all', async () => {
      const t = setup();
      const items = records(3);
      assert.equal(await t.render('bare', { products: items }), await t.render('bare', { products: items }));
      assert.equal(t.runs(), 3);
      (items[1] as { version?: number }).version = 7;
      const html = await t.render('bare', { products: items });
      assert.equal(t.runs(), 4);
      assert.match(html, /<li>2:&lt;b&gt;&quot;Tom&quot; &amp; (&#39;|&#x27;)Jerry(&#39;|&#x27;)&lt;\/b&gt;#2<\/li>/);
    });

    it('if= / unless= on the collection: not cached when the condition says so, byte-identical, backend untouched', async () => {
      const t = setup();
      const ctx = { products: products(4), cur: `€ <&>` };
      const expected = await t.render('loop', ctx);
      t.rendered.clear();
      t.proxy.reset();
      assert.equal(await t.render('onlyIf', { ...ctx, cacheable: false }), expected);
      assert.equal(await t.render('unlessAdmin', { ...ctx, admin: true }), expected);
      assert.deepEqual(t.proxy.calls, { get: 0, getMulti: 0, set: 0, setMulti: 0 }, 'backend untouched');
      assert.equal(t.runs(), 8, 'every item rendered inline, both times');
      assert.equal(await t.render('onlyIf', { ...ctx, cacheable: true }), expected);
      assert.equal(await t.render('onlyIf', { ...ctx, cacheable: true }), expected);
      assert.equal(await t.render('unlessAdmin', { ...ctx, admin: false }), expected);
      assert.equal(await t.render('unlessAdmin', { ...ctx, admin: false }), expected);
      // Item keys belong to the partial (not the page), so the second page finds the first page's items.
      assert.equal(t.runs(), 12, 'cached when the condition allows it: the items are rendered once');
    });

    it('items are counted in the render summary and annotated per item (dogpile: { summary, annotate })', async () => {
      const t = setup();
      const ctx = { products: products(3), cur: 'EUR' };
      const expected = await t.render('page', ctx);
      const summary = createFragmentSummary();
      const annotated = await t.render('page', { ...ctx, dogpile: { summary, annotate: true } });
      assert.equal(summary.hits, 3);
      assert.equal(summary.misses, 0);
      assert.equal(summary.fragments.length, 3);
      assert.equal((annotated.match(/<!-- dogpile: hit key=[^>]*each[^>]* -->/g) ?? []).length, 3);
      assert.equal(stripAnnotations(annotated), expected, 'annotations only wrap the items');
      const more = { products: products(4), cur: 'EUR' };
      const second = createFragmentSummary();
      await t.render('page', { ...more, dogpile: { summary: second } });
      assert.deepEqual([second.hits, second.misses], [3, 1]);
      assert.equal(await t.render('page', more), await t.render('loop', more), 'nothing annotated was stored');
    });
  });
}
