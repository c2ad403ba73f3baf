// Tags on template fragments, for each engine: `tags=` on blocks, cached partials and collections
// (shared tags and per-item `itemTags`), TemplateCache.invalidateTags (hard: only the tagged
// fragments render again; soft: the stale fragment is served while one render runs), bad tags,
// tags of inner fragments stored with the enclosing one, the synchronous tier, tags outside the
// key, and invalidation across two regions over one private redis-server.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, extname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Eta } from 'eta';
import express from 'express';
import Fastify from 'fastify';
import Handlebars from 'handlebars';
import nunjucks from 'nunjucks';
import request from 'supertest';
import { dogpileEta } from '../../integrations/eta.js';
import { dogpileViews, pageCache } from '../../integrations/express.js';
import { dogpileFastify } from '../../integrations/fastify.js';
import { installHandlebars } from '../../integrations/handlebars.js';
import { installNunjucks, renderNunjucks } from '../../integrations/nunjucks.js';
import { tagScopeUsage } from '../../integrations/tag-scope.js';
import { TemplateCache, type TemplateCacheOptions } from '../../integrations/templates.js';
import { type CacheRegion, makeRegion, ProxyBackend, ValidationError } from '../../src/index.js';
import { type ServerProcess, startRedis } from '../helpers/servers.js';
import { sleep } from '../helpers/time.js';

const NASTY = `<>&"'`;

/**
 * Invalidates after the clock has moved on: a value written within the millisecond after an
 * invalidation gets a creation time one millisecond ahead (the region's stamp floor), so an
 * invalidation in that same millisecond would not cover it (see the report of this change).
 */
const tick = () => sleep(3);

interface Hooks {
  counts: Record<string, number>;
  count(name: string): string;
}
const hooks = (): Hooks => {
  const counts: Record<string, number> = {};
  return {
    counts,
    count(name: string) {
      counts[name] = (counts[name] ?? 0) + 1;
      return String(counts[name]);
    },
  };
};

interface Rendered {
  render(name: string, ctx: Record<string, unknown>): Promise<string>;
  renderSync(name: string, ctx: Record<string, unknown>): string;
}

/** One engine: its file extension, its templates for each scenario, and a renderer over a folder. */
interface EngineSpec {
  name: string;
  ext: string;
  files: Record<string, string>;
  make(dir: string, cache: TemplateCache, h: Hooks): Rendered;
}

const engines: EngineSpec[] = [
  {
    name: 'nunjucks',
    ext: 'njk',
    files: {
      page:
        '<p>{% cache "a", tags=["products", "user:" + user.id] %}A{{ count("a") }}{{ s }}{% endcache %}|' +
        '{% cache "b", tags="users" %}B{{ count("b") }}{{ s }}{% endcache %}|' +
        '{% cache "c" %}C{{ count("c") }}{% endcache %}|' +
        '{% cachedinclude "card.njk", key=p.id, p=p, tags=["cards"] %}|' +
        '{% cachedeach "item.njk", products, key="id", as="product", tags="list", itemTags="product:" %}</p>',
      plain:
        '<p>A{{ s }}|B{{ s }}|C|{% include "card.njk" %}|{% for product in products %}{% include "item.njk" %}{% endfor %}</p>',
      card: '<i title="{{ p.name }}">{{ count("card") }}{{ p.name }}</i>',
      item: '<li>{{ count("item") }}{{ product.name }}</li>',
      nested:
        '{% cache "outer", v %}O{{ count("outer") }}[{% cache "mid", tags="m" %}M{{ count("mid") }}({% cache "in", tags="i" %}I{{ count("in") }}{% endcache %}){% endcache %}]{% endcache %}',
      bad: 'line one\n{% cache "x", tags=bad %}X{% endcache %}',
      badPartial: 'line one\n\n{% cachedinclude "card.njk", key=1, p=p, tags=bad %}',
      badEach: '\n{% cachedeach "item.njk", products, key="id", as="product", itemTags=bad %}',
      sync: '{% macro m() %}{% cache "sm", tags="s" %}S{{ count("sm") }}{% endcache %}{% endmacro %}<b>{{ m() }}</b>',
      slow: '{% cache "slow", tags="t" %}{{ count("slow") }}{% endcache %}',
      cond: '{% cache "k", if=on, tags="t" %}K{{ count("k") }}{% endcache %}',
      tagA: '{% cache "same", tags="a" %}{{ count("same") }}{% endcache %}',
      tagB: '{% cache "same", tags=["b", "c"] %}{{ count("same") }}{% endcache %}',
      nestedPlain:
        '{% cache "outer", v, tags="o" %}O{{ count("outer") }}[{% cache "mid" %}M{{ count("mid") }}({% cache "in", tags="i" %}I{{ count("in") }}{% endcache %}){% endcache %}]{% endcache %}',
      untagged:
        '{% cache "a" %}A{{ count("a") }}{% cache "in" %}I{{ count("in") }}{% endcache %}{% endcache %}|' +
        '{% cachedinclude "card.njk", key=p.id, p=p %}|{% cachedeach "item.njk", products, key="id", as="product" %}',
    },
    make(dir, cache, h) {
      const env = new nunjucks.Environment(new nunjucks.FileSystemLoader(dir, { noCache: true }), { autoescape: true });
      env.addGlobal('count', h.count);
      installNunjucks(env, cache);
      return {
        render: (name, ctx) => renderNunjucks(env, `${name}.njk`, ctx),
        renderSync: (name, ctx) => env.render(`${name}.njk`, ctx),
      };
    },
  },
  {
    name: 'eta',
    ext: 'eta',
    files: {
      page:
        '<p><% cache "a", { tags: ["products", "user:" + it.user.id] } %>A<%= this.config.hooks.count("a") %><%= it.s %><% endcache %>|' +
        '<% cache "b", { tags: "users" } %>B<%= this.config.hooks.count("b") %><%= it.s %><% endcache %>|' +
        '<% cache "c" %>C<%= this.config.hooks.count("c") %><% endcache %>|' +
        '<%~ await cachedInclude("./card", { p: it.p }, { key: it.p.id, tags: ["cards"] }) %>|' +
        '<%~ await cachedEach("./item", it.products, { key: "id", as: "product", tags: "list", itemTags: (p) => "product:" + p.id }) %></p>',
      plain:
        '<p>A<%= it.s %>|B<%= it.s %>|C|<%~ await includeAsync("./card", { p: it.p }) %>|<% for (const product of it.products) { %><%~ await includeAsync("./item", { product }) %><% } %></p>',
      card: '<i title="<%= it.p.name %>"><%= this.config.hooks.count("card") %><%= it.p.name %></i>',
      item: '<li><%= this.config.hooks.count("item") %><%= it.product.name %></li>',
      nested:
        '<% cache "outer", it.v %>O<%= this.config.hooks.count("outer") %>[<% cache "mid", { tags: "m" } %>M<%= this.config.hooks.count("mid") %>(<% cache "in", { tags: "i" } %>I<%= this.config.hooks.count("in") %><% endcache %>)<% endcache %>]<% endcache %>',
      bad: 'line one\n<% cache "x", { tags: it.bad } %>X<% endcache %>',
      badPartial: 'line one\n\n<%~ await cachedInclude("./card", { p: it.p }, { key: 1, tags: it.bad }) %>',
      badEach: '\n<%~ await cachedEach("./item", it.products, { key: "id", as: "product", itemTags: it.bad }) %>',
      sync: '<b><% cache "sm", { tags: "s" } %>S<%= this.config.hooks.count("sm") %><% endcache %></b>',
      slow: '<% cache "slow", { tags: "t" } %><%= this.config.hooks.count("slow") %><% endcache %>',
      cond: '<% cache "k", { if: it.on, tags: "t" } %>K<%= this.config.hooks.count("k") %><% endcache %>',
      tagA: '<% cache "same", { tags: "a" } %><%= this.config.hooks.count("same") %><% endcache %>',
      tagB: '<% cache "same", { tags: ["b", "c"] } %><%= this.config.hooks.count("same") %><% endcache %>',
      nestedPlain:
        '<% cache "outer", it.v, { tags: "o" } %>O<%= this.config.hooks.count("outer") %>[<% cache "mid" %>M<%= this.config.hooks.count("mid") %>(<% cache "in", { tags: "i" } %>I<%= this.config.hooks.count("in") %><% endcache %>)<% endcache %>]<% endcache %>',
      untagged:
        '<% cache "a" %>A<%= this.config.hooks.count("a") %><% cache "in" %>I<%= this.config.hooks.count("in") %><% endcache %><% endcache %>|' +
        '<%~ await cachedInclude("./card", { p: it.p }, { key: it.p.id }) %>|<%~ await cachedEach("./item", it.products, { key: "id", as: "product" }) %>',
    },
    make(dir, cache, h) {
      const eta = new Eta({ views: dir, autoTrim: false, plugins: [dogpileEta(cache)], hooks: h } as ConstructorParameters<
        typeof Eta
      >[0]);
      return {
        render: (name, ctx) => eta.renderAsync(name, ctx),
        renderSync: (name, ctx) => eta.render(name, ctx),
      };
    },
  },
  {
    name: 'handlebars',
    ext: 'hbs',
    files: {
      page:
        '<p>{{#cache "a" tags=(cacheTags "products,user:" user.id)}}A{{count "a"}}{{s}}{{/cache}}|' +
        '{{#cache "b" tags="users"}}B{{count "b"}}{{s}}{{/cache}}|' +
        '{{#cache "c"}}C{{count "c"}}{{/cache}}|' +
        '{{cachedPartial "card" key=p.id p=p tags=cardTags}}|' +
        '{{cachedEach "item" products key="id" as="product" tags="list" itemTags="product:"}}</p>',
      plain: '<p>A{{s}}|B{{s}}|C|{{> card}}|{{#each products as |product|}}{{> item product=product}}{{/each}}</p>',
      card: '<i title="{{p.name}}">{{count "card"}}{{p.name}}</i>',
      item: '<li>{{count "item"}}{{product.name}}</li>',
      nested:
        '{{#cache "outer" v}}O{{count "outer"}}[{{#cache "mid" tags="m"}}M{{count "mid"}}({{#cache "in" tags="i"}}I{{count "in"}}{{/cache}}){{/cache}}]{{/cache}}',
      bad: 'line one\n{{#cache "x" tags=bad}}X{{/cache}}',
      badPartial: 'line one\n\n{{cachedPartial "card" key=1 p=p tags=bad}}',
      badEach: '\n{{cachedEach "item" products key="id" as="product" itemTags=bad}}',
      sync: '<b>{{#cache "sm" tags="s"}}S{{count "sm"}}{{/cache}}</b>',
      slow: '{{#cache "slow" tags="t"}}{{count "slow"}}{{/cache}}',
      cond: '{{#cache "k" if=on tags="t"}}K{{count "k"}}{{/cache}}',
      tagA: '{{#cache "same" tags="a"}}{{count "same"}}{{/cache}}',
      tagB: '{{#cache "same" tags="b, c"}}{{count "same"}}{{/cache}}',
      nestedPlain:
        '{{#cache "outer" v tags="o"}}O{{count "outer"}}[{{#cache "mid"}}M{{count "mid"}}({{#cache "in" tags="i"}}I{{count "in"}}{{/cache}}){{/cache}}]{{/cache}}',
      untagged:
        '{{#cache "a"}}A{{count "a"}}{{#cache "in"}}I{{count "in"}}{{/cache}}{{/cache}}|' +
        '{{cachedPartial "card" key=p.id p=p}}|{{cachedEach "item" products key="id" as="product"}}',
    },
    make(dir, cache, h) {
      const hbs = Handlebars.create();
      hbs.registerHelper('count', (name: string) => h.count(name));
      const dh = installHandlebars(hbs, cache);
      const read = (name: string) => readFileSync(join(dir, `${name}.hbs`), 'utf8');
      const load = () => {
        for (const f of readdirSync(dir))
          if (extname(f) === '.hbs') dh.registerPartial(basename(f, '.hbs'), read(basename(f, '.hbs')));
      };
      return {
        render: (name, ctx) => {
          load();
          return dh.compile(read(name), { name })(ctx);
        },
        // Handlebars' own compile: the helpers run synchronously (the in-process tier).
        renderSync: (name, ctx) => {
          load();
          return hbs.compile(read(name))(ctx);
        },
      };
    },
  },
];

const products = [
  { id: 1, name: `one ${NASTY}` },
  { id: 2, name: `two ${NASTY}` },
  { id: 3, name: 'three' },
];
const pageCtx = (extra: Record<string, unknown> = {}) => ({
  s: NASTY,
  user: { id: 7 },
  p: { id: 5, name: `card ${NASTY}` },
  products,
  cardTags: ['cards'],
  ...extra,
});

/** A proxy whose writes take `ms`: a creation holds its lock that long. */
class SlowWrites extends ProxyBackend {
  constructor(private readonly ms: number) {
    super();
  }
  override async set(...args: Parameters<ProxyBackend['set']>) {
    await sleep(this.ms);
    return super.set(...args);
  }
}

/** A proxy counting backend reads and writes. */
class CountingBackend extends ProxyBackend {
  ops = 0;
  override get(...args: Parameters<ProxyBackend['get']>) {
    this.ops++;
    return super.get(...args);
  }
  override set(...args: Parameters<ProxyBackend['set']>) {
    this.ops++;
    return super.set(...args);
  }
}

for (const engine of engines) {
  describe(`tags on fragments: ${engine.name}`, () => {
    let dir = '';
    before(() => {
      dir = mkdtempSync(join(tmpdir(), `dogpile-tags-${engine.name}-`));
      for (const [name, src] of Object.entries(engine.files)) writeFileSync(join(dir, `${name}.${engine.ext}`), src);
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    const setup = (options: Partial<TemplateCacheOptions> = {}, region?: CacheRegion) => {
      const r = region ?? makeRegion({ failOpen: false }).configure('memory');
      const cache = new TemplateCache({ regions: r, ...options });
      const h = hooks();
      return { region: r, cache, h, ...engine.make(dir, cache, h) };
    };
    const strip = (html: string) => html.replace(/\d/g, '');

    it('output with tags is byte-identical to the uncached render, with <>&"\' data', async () => {
      const { render } = setup();
      const cold = await render('page', pageCtx());
      const warm = await render('page', pageCtx());
      const off = await render('page', pageCtx({ dogpile: { enabled: false } }));
      const plain = await render('plain', pageCtx());
      assert.equal(cold, warm);
      assert.equal(strip(cold), strip(off));
      assert.equal(strip(cold), strip(plain));
      assert.ok(cold.includes('&lt;&gt;&amp;'), cold);
    });

    it('hard invalidation re-renders only the fragments carrying the tag', async () => {
      const { render, cache, h } = setup();
      await render('page', pageCtx());
      await render('page', pageCtx());
      assert.deepEqual(h.counts, { a: 1, b: 1, c: 1, card: 1, item: 3 });
      await tick();
      await cache.invalidateTags(['user:7']);
      await render('page', pageCtx());
      assert.deepEqual(h.counts, { a: 2, b: 1, c: 1, card: 1, item: 3 });
      await tick();
      await cache.invalidateTags('cards');
      await render('page', pageCtx());
      assert.deepEqual(h.counts, { a: 2, b: 1, c: 1, card: 2, item: 3 });
      await tick();
      await cache.invalidateTags(['product:2']);
      await render('page', pageCtx());
      assert.deepEqual(h.counts, { a: 2, b: 1, c: 1, card: 2, item: 4 }, 'only item 2 (itemTags)');
      await tick();
      await cache.invalidateTags(['list', 'users']);
      const out = await render('page', pageCtx());
      assert.deepEqual(h.counts, { a: 2, b: 2, c: 1, card: 2, item: 7 }, 'every item (shared tag) and b');
      assert.equal(strip(out), strip(await render('plain', pageCtx())));
    });

    it('soft invalidation serves the stale fragment while one render runs', async () => {
      const region = makeRegion({ failOpen: false }).configure('memory', { wrap: [new SlowWrites(150)] });
      const { render, cache, h } = setup({}, region);
      assert.equal(await render('slow', {}), '1');
      await tick();
      await cache.invalidateTags(['t'], { hard: false });
      const outs = await Promise.all(Array.from({ length: 5 }, () => render('slow', {})));
      assert.equal(h.counts.slow, 2, 'one render for five concurrent requests');
      assert.ok(outs.filter((o) => o === '1').length >= 4, `stale served to the others: ${outs.join(',')}`);
      assert.equal(await render('slow', {}), '2');
    });

    it('a bad tags value is a ValidationError naming the value, the template and the line', async () => {
      const { render } = setup();
      for (const bad of [5, { a: 1 }, [1], ['ok', ''], null]) {
        await assert.rejects(render('bad', { bad }), (err: Error) => {
          // Nunjucks wraps errors in its own (keeping the message).
          assert.ok(err instanceof ValidationError || /ValidationError/.test(err.message), `${err.name}: ${err.message}`);
          assert.match(err.message, /tags?\b/);
          assert.match(err.message, /line 2/);
          assert.match(err.message, /bad/);
          return true;
        });
      }
      await assert.rejects(render('badPartial', pageCtx({ bad: 3 })), /cachedinclude|cachedInclude|cachedPartial/);
      await assert.rejects(render('badPartial', pageCtx({ bad: 3 })), /line 3.*number 3|number 3/s);
      await assert.rejects(render('badPartial', pageCtx({ bad: 3 })), /badPartial/);
      await assert.rejects(render('badEach', pageCtx({ bad: 4 })), /itemTags.*number 4/);
      await assert.rejects(render('badEach', pageCtx({ bad: 4 })), /badEach.*line 2/);
    });

    it('an inner fragment’s tags are stored with the enclosing fragment (also when the inner one is a hit)', async () => {
      const { render, cache, h } = setup();
      assert.equal(await render('nested', { v: 1 }), 'O1[M1(I1)]');
      // A new outer key: the outer renders, the middle one is a hit whose stored tags (m, i) go outward.
      assert.equal(await render('nested', { v: 2 }), 'O2[M1(I1)]');
      assert.deepEqual(h.counts, { outer: 2, mid: 1, in: 1 });
      await tick();
      await cache.invalidateTags(['i']);
      assert.equal(await render('nested', { v: 1 }), 'O3[M2(I2)]');
      assert.equal(await render('nested', { v: 2 }), 'O4[M2(I2)]');
      assert.deepEqual(h.counts, { outer: 4, mid: 2, in: 2 });
      await tick();
      await cache.invalidateTags('m');
      await render('nested', { v: 1 });
      assert.deepEqual(h.counts, { outer: 5, mid: 3, in: 2 }, 'the inner fragment is untouched');
    });

    it('a fragment without tags= inside a tagged one still carries its inner fragments’ tags outward', async () => {
      const { render, cache, h } = setup();
      assert.equal(await render('nestedPlain', { v: 1 }), 'O1[M1(I1)]');
      // A new outer key: the tag-less middle fragment is a hit; the tags stored with it (i) go outward.
      assert.equal(await render('nestedPlain', { v: 2 }), 'O2[M1(I1)]');
      await tick();
      await cache.invalidateTags('i');
      assert.equal(await render('nestedPlain', { v: 2 }), 'O3[M2(I2)]');
      assert.equal(await render('nestedPlain', { v: 1 }), 'O4[M2(I2)]');
      assert.deepEqual(h.counts, { outer: 4, mid: 2, in: 2 });
      await tick();
      await cache.invalidateTags('o');
      assert.equal(await render('nestedPlain', { v: 1 }), 'O5[M2(I2)]', 'only the outer fragment carries o');
    });

    it('a warm page without tags never looks up or enters the tag scope', async () => {
      const { render } = setup();
      const cold = tagScopeUsage();
      const first = await render('untagged', pageCtx());
      assert.ok(tagScopeUsage().entries > cold.entries, 'misses render their bodies in the scope');
      const warm = tagScopeUsage();
      for (let i = 0; i < 3; i++) assert.equal(await render('untagged', pageCtx()), first);
      assert.deepEqual(tagScopeUsage(), warm);
    });

    it('the synchronous tier honours tags (TemplateCache.invalidateTags at once, region.invalidateTags after a check)', async () => {
      const { render, renderSync, cache, region, h } = setup({ syncTagRefresh: 0 });
      const r = engine.name === 'nunjucks' ? render : async (n: string, c: Record<string, unknown>) => renderSync(n, c);
      assert.equal(await r('sync', {}), '<b>S1</b>');
      assert.equal(await r('sync', {}), '<b>S1</b>');
      await tick();
      await cache.invalidateTags('s');
      assert.equal(await r('sync', {}), '<b>S2</b>');
      await tick();
      await region.invalidateTags(['s']); // not through the TemplateCache: found by the background check
      await tick();
      await r('sync', {});
      await sleep(20);
      assert.equal(await r('sync', {}), '<b>S3</b>');
      assert.equal(h.counts.sm, 3);
    });

    it('tags are not part of the key; if= and the per-render opt-out still bypass the backend', async () => {
      const counting = new CountingBackend();
      const region = makeRegion({ failOpen: false }).configure('memory', { wrap: [counting] });
      const { render, h } = setup({ digest: false }, region);
      writeFileSync(join(dir, `same.${engine.ext}`), engine.files.tagA as string);
      assert.equal(await render('same', {}), '1');
      writeFileSync(join(dir, `same.${engine.ext}`), engine.files.tagB as string);
      assert.equal(await render('same', {}), '1', 'another tag list, same key: a hit');
      assert.equal(h.counts.same, 1);
      const before = counting.ops;
      assert.equal(await render('cond', { on: false }), 'K1');
      assert.equal(await render('cond', { on: false }), 'K2');
      assert.equal(await render('cond', { on: true, dogpile: { enabled: false } }), 'K3');
      assert.equal(counting.ops, before, 'no backend call');
    });
  });
}

describe('tagged collections under concurrency', () => {
  it('50 concurrent cold renders of a tagged collection render each item once and store it with its tags', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dogpile-tags-each-'));
    try {
      writeFileSync(
        join(dir, 'list.njk'),
        '{% cachedeach "item.njk", products, key="id", as="product", tags="list", itemTags="product:" %}',
      );
      writeFileSync(join(dir, 'item.njk'), '<li>{{ count(product.id) }}{{ product.name }}</li>');
      const region = makeRegion({ failOpen: false }).configure('memory', { wrap: [new SlowWrites(30)] });
      const cache = new TemplateCache({ regions: region });
      const h = hooks();
      const { render } = (engines[0] as EngineSpec).make(dir, cache, h);
      const outs = await Promise.all(Array.from({ length: 50 }, () => render('list', { products })));
      assert.equal(new Set(outs).size, 1);
      assert.deepEqual(h.counts, { 1: 1, 2: 1, 3: 1 });
      await tick();
      await cache.invalidateTags('product:3');
      await Promise.all(Array.from({ length: 20 }, () => render('list', { products })));
      assert.deepEqual(h.counts, { 1: 1, 2: 1, 3: 2 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('tags on cached pages', () => {
  it('Express res.render page: its own tags (a function of the request) and those of the fragments inside it', async () => {
    const views = mkdtempSync(join(tmpdir(), 'dogpile-tags-page-'));
    try {
      writeFileSync(
        join(views, 'page.eta'),
        '<h1><%= it.title %></h1><% cache "box", { tags: "box" } %><p><%= it.n() %></p><% endcache %>',
      );
      const region = makeRegion({ failOpen: false }).configure('memory');
      const app = express();
      dogpileViews(app, { engine: 'eta', views, regions: region });
      let pages = 0;
      let boxes = 0;
      app.get('/p/:id', (_req, res) => {
        pages++;
        res.render('page', {
          title: NASTY,
          n: () => ++boxes,
          dogpile: { page: { tags: (r: { params?: { id?: string } }) => `page:${r.params?.id}` } },
        });
      });
      const get = async () => (await request(app).get('/p/1').expect(200)).text;
      const first = await get();
      assert.equal(first, `<h1>&lt;&gt;&amp;&quot;&#39;</h1><p>1</p>`);
      assert.equal(await get(), first);
      assert.equal(boxes, 1);
      await tick();
      await region.invalidateTags(['page:1']);
      assert.equal(await get(), first, 'the page renders again; its fragment is a hit');
      assert.equal(boxes, 1);
      await tick();
      await region.invalidateTags(['box']);
      assert.equal(await get(), `<h1>&lt;&gt;&amp;&quot;&#39;</h1><p>2</p>`, 'the fragment’s tag reaches the page');
      assert.equal(pages, 4);
      const bad = express();
      dogpileViews(bad, { engine: 'eta', views, regions: region });
      bad.get('/', (_req, res) => res.render('page', { title: 'x', n: () => 0, dogpile: { page: { tags: [5] } } }));
      bad.use((err: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
        res.status(500).send(`${err.name}: ${err.message}`);
      });
      assert.match((await request(bad).get('/').expect(500)).text, /ValidationError: .*page option tags.*tag 0 .*number 5/);
    } finally {
      rmSync(views, { recursive: true, force: true });
    }
  });

  it('pageCache middleware and Fastify route pages accept tags', async () => {
    const region = makeRegion({ failOpen: false }).configure('memory');
    let handled = 0;
    const app = express();
    app.get('/list', pageCache({ regions: region, tags: ['list'] }), (_req, res) => {
      res.send(`list ${++handled}`);
    });
    assert.equal((await request(app).get('/list')).text, 'list 1');
    assert.equal((await request(app).get('/list')).text, 'list 1');
    await tick();
    await region.invalidateTags(['list']);
    assert.equal((await request(app).get('/list')).text, 'list 2');

    const f = Fastify();
    try {
      await f.register(dogpileFastify, { regions: region });
      let runs = 0;
      f.get('/f', { config: { dogpile: { page: { tags: 'fast' } } } }, async () => `f${++runs}`);
      assert.equal((await f.inject('/f')).body, 'f1');
      assert.equal((await f.inject('/f')).body, 'f1');
      await tick();
      await region.invalidateTags(['fast']);
      assert.equal((await f.inject('/f')).body, 'f2');
    } finally {
      await f.close();
    }
  });
});

describe('TemplateCache.invalidateTags', () => {
  it('calls every region once (a region given under two names too) and validates its arguments', async () => {
    const a = makeRegion({ name: 'a' }).configure('memory');
    const b = makeRegion({ name: 'b' }).configure('memory');
    const calls: string[] = [];
    for (const r of [a, b]) {
      const original = r.invalidateTags.bind(r);
      r.invalidateTags = (tags, options) => {
        calls.push(`${r.name}:${tags.join(',')}:${options?.hard}`);
        return original(tags, options);
      };
    }
    const cache = new TemplateCache({ regions: { default: a, pages: b, again: a } });
    await cache.invalidateTags(['x', 'y'], { hard: false });
    assert.deepEqual(calls.sort(), ['a:x,y:false', 'b:x,y:false']);
    await assert.rejects(cache.invalidateTags([3 as unknown as string]), ValidationError);
    await assert.rejects(cache.invalidateTags(''), ValidationError);
    await assert.rejects(cache.invalidateTags(['x'], { hard: 'yes' as unknown as boolean }), ValidationError);
    assert.equal(calls.length, 2);
  });

  it('tags found while a fragment renders reach the region with its value (no second write)', async () => {
    const region = makeRegion({ failOpen: false }).configure('memory');
    const cache = new TemplateCache({ regions: region });
    let sets = 0;
    const set = region.set.bind(region);
    region.set = (...args: Parameters<CacheRegion['set']>) => {
      sets++;
      return set(...args);
    };
    const inner = () => cache.getOrCreate('inner', () => 'I', { tags: ['i'] });
    assert.equal(await cache.getOrCreate('outer', async () => `O${await inner()}`), 'OI');
    assert.equal(await cache.getOrCreate('outer2', async () => `P${await inner()}`, { tags: ['p'] }), 'PI');
    assert.equal(sets, 0, 'stored by the region’s own creation');
    assert.deepEqual((await region.getValueMetadata(cache.storedKey('outer')))?.metadata.tags, ['i']);
    assert.deepEqual((await region.getValueMetadata(cache.storedKey('outer2')))?.metadata.tags, ['p', 'i']);
    await tick();
    await cache.invalidateTags('i');
    assert.equal(await cache.get('outer'), undefined);
    assert.equal(await cache.get('outer2'), undefined);
  });

  it('set(key, html, { tags }) stores a fragment that invalidateTags drops', async () => {
    const region = makeRegion().configure('memory');
    const cache = new TemplateCache({ regions: region });
    await cache.set('k', '<b>x</b>', { tags: ['t'] });
    assert.equal(await cache.get('k'), '<b>x</b>');
    await cache.invalidateTags('t');
    assert.equal(await cache.get('k'), undefined);
  });
});

describe('tags on fragments across processes (two regions over one private redis-server)', {
  skip: spawnSync('redis-server', ['--version']).status === 0 ? false : 'redis-server not available',
}, () => {
  let redis: ServerProcess | undefined;
  const regions: CacheRegion[] = [];
  let dir = '';
  before(async () => {
    redis = await startRedis();
    dir = mkdtempSync(join(tmpdir(), 'dogpile-tags-redis-'));
  });
  after(async () => {
    for (const r of regions) await r.close();
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  const redisRegion = () => {
    const region = makeRegion({ failOpen: false, tagRefreshInterval: 0.05 }).configure('redis', {
      arguments: { url: `redis://127.0.0.1:${redis?.port}`, distributedLock: true },
    });
    regions.push(region);
    return region;
  };

  for (const engine of engines) {
    it(`${engine.name}: a tagged fragment rendered in B is rendered again in B after A invalidates its tag`, async () => {
      const edir = mkdtempSync(join(dir, `${engine.name}-`));
      for (const [name, src] of Object.entries(engine.files)) writeFileSync(join(edir, `${name}.${engine.ext}`), src);
      const cacheA = new TemplateCache({ regions: redisRegion(), keyPrefix: `x${engine.name}` });
      const cacheB = new TemplateCache({ regions: redisRegion(), keyPrefix: `x${engine.name}` });
      const hA = hooks();
      const hB = hooks();
      const a = engine.make(edir, cacheA, hA);
      const b = engine.make(edir, cacheB, hB);
      const first = await a.render('page', pageCtx());
      assert.equal(await b.render('page', pageCtx()), first, 'B reads what A rendered');
      assert.equal(hB.counts.a, undefined);
      await cacheA.invalidateTags(['products', 'product:3']);
      await sleep(120); // B's tag times are trusted for tagRefreshInterval (50 ms)
      await b.render('page', pageCtx());
      assert.deepEqual(hB.counts, { a: 1, item: 1 }, 'B renders the invalidated fragments only');
      await a.render('page', pageCtx());
      assert.deepEqual(hA.counts, { a: 1, b: 1, c: 1, card: 1, item: 3 }, 'A reads what B rendered again');
    });
  }
});
