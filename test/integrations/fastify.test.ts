// dogpile/fastify over fastify.inject with the real fastify and @fastify/view packages: cache blocks
// and cached partials for each of the three engines (output identical to the uncached render with
// escaping-sensitive data, a hit does not run the body, 50 concurrent cold requests render once),
// and whole-page caching of routes (stampede, stale, Set-Cookie, non-200, vary, bad options).
/// <reference types="@fastify/view" />
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { dogpileFastify } from '../../integrations/fastify.js';
import { ManualClock, makeRegion, ValidationError } from '../../src/index.js';
import { sleep, until } from '../helpers/time.js';

const TRICKY = `<b>"Fish" & 'Chips'</b>`;
const dirs: string[] = [];
const apps: FastifyInstance[] = [];
after(async () => {
  for (const app of apps) await app.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function templatesDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'dogpile-fastify-'));
  dirs.push(dir);
  for (const [name, source] of Object.entries(files)) writeFileSync(join(dir, name), source);
  return dir;
}

const TEMPLATES = {
  nunjucks: {
    'page.njk':
      '<h1 title="{{ title }}">{{ title }}</h1>\n{% cache "box", id %}<p>{{ tick() }}{{ title }} {{ items | join(", ") }}</p>{% endcache %}\n{% cachedinclude "card.njk", key=id, item=title, tock=tock %}\n',
    'card.njk': '<div class="card" data-x="{{ item }}">{{ tock() }}{{ item }}</div>',
  },
  eta: {
    'page.eta':
      '<h1 title="<%= it.title %>"><%= it.title %></h1>\n<% cache "box", it.id %><p><%= it.tick() %><%= it.title %> <%= it.items.join(", ") %></p><% endcache %>\n<%~ await cachedInclude("card", { item: it.title, tock: it.tock }, { key: it.id }) %>\n',
    'card.eta': '<div class="card" data-x="<%= it.item %>"><%= it.tock() %><%= it.item %></div>',
  },
  handlebars: {
    'page.hbs':
      '<h1 title="{{title}}">{{title}}</h1>\n{{#cache "box" id}}<p>{{tick}}{{title}} {{#each items}}{{this}}{{#unless @last}}, {{/unless}}{{/each}}</p>{{/cache}}\n{{cachedPartial "card" key=id item=title tock=tock}}\n',
    'card.hbs': '<div class="card" data-x="{{item}}">{{tock}}{{item}}</div>',
  },
} as const;

for (const engine of ['nunjucks', 'eta', 'handlebars'] as const) {
  describe(`fastify + @fastify/view + ${engine}`, () => {
    async function setup(production = false, layout = false) {
      const counts = { block: 0, partial: 0 };
      const app = Fastify();
      apps.push(app);
      const layouts = { 'layout.eta': '<main><%~ it.body %></main>', 'layout.hbs': '<main>{{{body}}}</main>' };
      await app.register(dogpileFastify, {
        engine,
        templates: templatesDir({ ...TEMPLATES[engine], ...layouts }),
        regions: makeRegion({ failOpen: false }).configure('memory'),
        view: {
          production,
          ...(layout ? { layout: 'layout' } : {}),
          ...(engine === 'handlebars' ? { options: { partials: { card: 'card.hbs' } } } : {}),
        },
      });
      const data = (fresh: boolean) => ({
        title: TRICKY,
        id: 7,
        items: ['a&b', '<c>', `"d"`],
        tick: () => {
          counts.block++;
          return '';
        },
        tock: () => {
          counts.partial++;
          return '';
        },
        ...(fresh ? { dogpile: { enabled: false } } : {}),
      });
      app.get('/', (req, reply) => reply.view('page', data('fresh' in (req.query as object))));
      await app.ready();
      const get = async (url = '/') => {
        const res = await app.inject({ method: 'GET', url });
        assert.equal(res.statusCode, 200, res.body);
        return res;
      };
      return { app, counts, get };
    }

    it('cached output equals uncached output byte for byte, with escaping-sensitive data', async () => {
      const { get } = await setup();
      const uncached = (await get('/?fresh')).body;
      const miss = await get();
      const hit = (await get()).body;
      assert.equal(miss.body, uncached);
      assert.equal(hit, uncached);
      assert.match(String(miss.headers['content-type']), /text\/html/);
      assert.match(uncached, /<h1 title="&lt;b&gt;&quot;Fish&quot; &amp; (&#39;|&#x27;)Chips(&#39;|&#x27;)&lt;\/b&gt;">/);
      assert.match(uncached, /<p>&lt;b&gt;.*a&amp;b, &lt;c&gt;, &quot;d&quot;<\/p>/);
      assert.match(
        uncached,
        /<div class="card" data-x="&lt;b&gt;&quot;Fish&quot; &amp; (&#39;|&#x27;)Chips(&#39;|&#x27;)&lt;\/b&gt;">/,
      );
    });

    it('a hit does not run the body of the block or of the partial', async () => {
      const { get, counts } = await setup();
      await get();
      assert.deepEqual(counts, { block: 1, partial: 1 });
      await get();
      await get();
      assert.deepEqual(counts, { block: 1, partial: 1 });
      await get('/?fresh');
      assert.deepEqual(counts, { block: 2, partial: 2 }, 'the opt-out renders the bodies');
    });

    it('production mode (templates and partials cached by @fastify/view) renders the same and caches', async () => {
      const dev = await setup();
      const { get, counts } = await setup(true);
      const expected = (await dev.get('/?fresh')).body;
      assert.equal((await get()).body, expected);
      assert.equal((await get()).body, expected);
      assert.equal((await get('/?fresh')).body, expected);
      assert.deepEqual(counts, { block: 2, partial: 2 });
    });

    if (engine !== 'nunjucks') {
      it('a global @fastify/view layout wraps the cached page', async () => {
        const { get, counts } = await setup(false, true);
        const uncached = (await get('/?fresh')).body;
        assert.match(uncached, /^<main><h1 title=/);
        assert.equal((await get()).body, uncached);
        assert.equal((await get()).body, uncached);
        assert.deepEqual(counts, { block: 2, partial: 2 });
      });
    }

    it('50 concurrent cold requests render each fragment once', async () => {
      const { app, counts } = await setup();
      const pages = await Promise.all(Array.from({ length: 50 }, () => app.inject({ method: 'GET', url: '/' })));
      assert.deepEqual(counts, { block: 1, partial: 1 });
      assert.equal(new Set(pages.map((p) => p.body)).size, 1);
      for (const p of pages) assert.equal(p.statusCode, 200);
    });
  });
}

describe('fastify page caching (route config dogpile.page)', () => {
  async function setup(region = makeRegion({ failOpen: false }).configure('memory')) {
    const app = Fastify();
    apps.push(app);
    await app.register(dogpileFastify, { regions: region });
    return app;
  }

  it('50 concurrent cold requests run the handler once; all get its response', async () => {
    const app = await setup();
    let handled = 0;
    app.get('/p', { config: { dogpile: { page: { expire: 60 } } } }, async (_req, reply) => {
      handled++;
      await sleep(60);
      reply.type('text/html; charset=utf-8');
      return `<p>${TRICKY}</p>`;
    });
    const pages = await Promise.all(Array.from({ length: 50 }, () => app.inject({ method: 'GET', url: '/p' })));
    assert.equal(handled, 1);
    for (const p of pages) {
      assert.equal(p.statusCode, 200);
      assert.equal(p.body, `<p>${TRICKY}</p>`);
      assert.equal(p.headers['content-type'], 'text/html; charset=utf-8');
    }
  });

  it('serves the stale page while one request re-runs the handler', async () => {
    const clock = new ManualClock();
    const app = await setup(makeRegion({ clock }).configure('memory'));
    let version = 1;
    let handled = 0;
    let wait: Promise<void> | undefined;
    app.get('/s', { config: { dogpile: { page: { expire: 10 } } } }, async () => {
      handled++;
      const v = version;
      await wait;
      return `v${v}`;
    });
    assert.equal((await app.inject('/s')).body, 'v1');
    clock.advance(11);
    version = 2;
    let open!: () => void;
    wait = new Promise((resolve) => {
      open = resolve;
    });
    const winner = app.inject('/s');
    assert.ok(await until(() => handled === 2, 5000));
    for (const r of await Promise.all(Array.from({ length: 5 }, () => app.inject('/s')))) assert.equal(r.body, 'v1');
    open();
    assert.equal((await winner).body, 'v2');
    assert.equal((await app.inject('/s')).body, 'v2');
    assert.equal(handled, 2);
  });

  it('a response with Set-Cookie or a status other than 200 is not stored', async () => {
    const app = await setup();
    let cookie = 0;
    let failing = 0;
    app.get('/c', { config: { dogpile: { page: true } } }, async (_req, reply) => {
      reply.header('set-cookie', `sid=${cookie++}`);
      return 'with cookie';
    });
    app.get('/e', { config: { dogpile: { page: true } } }, async (_req, reply) => {
      failing++;
      reply.code(404);
      return 'nope';
    });
    assert.equal((await app.inject('/c')).headers['set-cookie'], 'sid=0');
    assert.equal((await app.inject('/c')).headers['set-cookie'], 'sid=1');
    assert.equal((await app.inject('/e')).statusCode, 404);
    assert.equal((await app.inject('/e')).statusCode, 404);
    assert.equal(failing, 2);
  });

  it('a payload encoded by an earlier onSend hook (compression) is not stored', async () => {
    const app = Fastify();
    apps.push(app);
    app.addHook('onSend', async (_req, reply, payload) => {
      reply.header('content-encoding', 'x-test');
      return payload;
    });
    await app.register(dogpileFastify, { regions: makeRegion().configure('memory') });
    let handled = 0;
    app.get('/z', { config: { dogpile: { page: true } } }, async () => {
      handled++;
      return 'zipped';
    });
    await app.inject('/z');
    await app.inject('/z');
    assert.equal(handled, 2);
  });

  it('enabled: false turns route pages off', async () => {
    const app = Fastify();
    apps.push(app);
    await app.register(dogpileFastify, { regions: makeRegion().configure('memory'), enabled: false });
    let handled = 0;
    app.get('/off', { config: { dogpile: { page: true } } }, async () => `n${++handled}`);
    assert.equal((await app.inject('/off')).body, 'n1');
    assert.equal((await app.inject('/off')).body, 'n2');
  });

  it('the vary dimensions are part of the key', async () => {
    const app = await setup();
    let handled = 0;
    app.get(
      '/v',
      {
        config: {
          dogpile: {
            page: { varyBy: { headers: ['accept-language'], query: ['page'], request: (r) => r.headers['x-role'] ?? 'guest' } },
          },
        },
      },
      async (req) => {
        handled++;
        return `${req.headers['accept-language']} ${(req.query as { page?: string }).page} ${req.headers['x-role']}`;
      },
    );
    const get = (url: string, headers: Record<string, string>) => app.inject({ url, headers }).then((r) => r.body);
    assert.equal(await get('/v?page=1', { 'accept-language': 'en' }), 'en 1 undefined');
    assert.equal(await get('/v?page=1', { 'accept-language': 'fr' }), 'fr 1 undefined');
    assert.equal(await get('/v?page=2', { 'accept-language': 'en' }), 'en 2 undefined');
    assert.equal(await get('/v?page=1', { 'accept-language': 'en', 'x-role': 'admin' }), 'en 1 admin');
    assert.equal(await get('/v?page=1&utm=x', { 'accept-language': 'en' }), 'en 1 undefined');
    assert.equal(handled, 4);
  });

  it('a view route page is stored and replayed with its content type', async () => {
    const app = Fastify();
    apps.push(app);
    await app.register(dogpileFastify, {
      engine: 'nunjucks',
      templates: templatesDir({ 'p.njk': '<i>{{ x }}</i>' }),
      regions: makeRegion().configure('memory'),
    });
    let handled = 0;
    app.get('/', { config: { dogpile: { page: true } } }, (_req, reply) => {
      handled++;
      return reply.view('p', { x: TRICKY });
    });
    const first = await app.inject('/');
    const second = await app.inject('/');
    assert.equal(handled, 1);
    assert.equal(second.body, first.body);
    assert.equal(first.body, '<i>&lt;b&gt;&quot;Fish&quot; &amp; &#39;Chips&#39;&lt;/b&gt;</i>');
    assert.equal(second.headers['content-type'], first.headers['content-type']);
  });

  it('bad page options throw a ValidationError naming the option when the route is added', async () => {
    const app = await setup();
    const add = (page: unknown) => () =>
      app.get(`/${Math.random()}`, { config: { dogpile: { page: page as true } } }, async () => 'x');
    assert.throws(add({ expire: 'soon' }), { name: 'ValidationError', message: /page option expire .*"soon"/ });
    assert.throws(add({ vary: {} }), /unknown page option "vary"/);
    assert.throws(add({ varyBy: { headers: [1] } }), /varyBy.headers/);
    assert.throws(add({ region: 'nope' }), /unknown region "nope"/);
    await assert.rejects(
      async () => {
        const bad = Fastify();
        apps.push(bad);
        await bad.register(dogpileFastify, { engine: 'eta', templates: '.' } as never);
      },
      (err: Error) => err instanceof ValidationError && /regions/.test(err.message),
    );
  });
});

describe('dogpile/fastify as a package entry point', () => {
  it('resolves by name and imports neither fastify, @fastify/view nor an engine until used', () => {
    spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
    const run = spawnSync(
      process.execPath,
      [
        '--import',
        './test/fixtures/trace-register.mjs',
        '--input-type=module',
        '-e',
        "const f = await import('dogpile/fastify'); console.log(typeof f.dogpileFastify, typeof f.dogpileViewOptions, typeof f.PageCache);",
      ],
      { encoding: 'utf8' },
    );
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout.trim(), 'function function function');
    const resolved = run.stderr
      .split('\n')
      .filter((l) => l.startsWith('resolve:'))
      .map((l) => l.slice('resolve:'.length));
    assert.deepEqual([...new Set(resolved)].sort(), ['dogpile/fastify', 'lru-cache']);
  });
});
