// Whole-page caching for Express over real HTTP: the `dogpile.page` render option (dogpileViews)
// and the pageCache route middleware. Stampedes render once, stale pages are served while one
// request re-renders, responses with Set-Cookie or a status other than 200 are never stored, the
// vary dimensions separate entries, and bad options are ValidationErrors naming the option.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import express from 'express';
import request from 'supertest';
import { dogpileViews, pageCache } from '../../integrations/express.js';
import { ManualClock, makeRegion, ValidationError } from '../../src/index.js';
import { type ServerProcess, startRedis } from '../helpers/servers.js';
import { sleep, until } from '../helpers/time.js';

const TRICKY = `<b>"Fish" & 'Chips'</b>`;
const dirs: string[] = [];
const servers: Server[] = [];
after(() => {
  for (const s of servers) s.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function viewsDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'dogpile-page-'));
  dirs.push(dir);
  for (const [name, source] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), source);
  }
  return dir;
}

async function listen(app: express.Express): Promise<Server> {
  const server = app.listen(0, '127.0.0.1');
  servers.push(server);
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  return server;
}

function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** Answers errors as `Name: message` with status 500, so tests can read them. */
function errorsAsText(app: express.Express): void {
  app.use((err: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    res.status(500).type('text').send(`${err.name}: ${err.message}`);
  });
}

describe('res.render page option (dogpileViews)', () => {
  /** An Eta app whose page loads its data inside the template, counting renders. */
  function etaApp(region = makeRegion({ failOpen: false }).configure('memory')) {
    const state = { renders: 0, version: 1, gate: undefined as Promise<void> | undefined };
    const views = viewsDir({
      'page.eta': '<% const d = await it.load() %><h1><%= d.title %></h1><p>v<%= d.version %> <%= it.extra ?? "" %></p>\n',
    });
    const app = express();
    dogpileViews(app, { engine: 'eta', views, regions: region });
    const load = async () => {
      state.renders++;
      const version = state.version;
      await (state.gate ?? sleep(50));
      return { title: TRICKY, version };
    };
    return { app, state, load, views };
  }

  it('50 concurrent cold requests render the page once and all get it', async () => {
    const { app, state, load } = etaApp();
    app.get('/', (_req, res) => res.render('page', { load, dogpile: { page: { expire: 60 } } }));
    const server = await listen(app);
    const pages = await Promise.all(Array.from({ length: 50 }, () => request(server).get('/').expect(200)));
    assert.equal(state.renders, 1);
    assert.equal(new Set(pages.map((p) => p.text)).size, 1);
    assert.match(pages[0]?.text ?? '', /<h1>&lt;b&gt;&quot;Fish&quot; &amp; &#39;Chips&#39;&lt;\/b&gt;<\/h1>/);
    assert.match(pages[0]?.headers['content-type'] ?? '', /text\/html/);
  });

  it('serves the stale page while one request re-renders it', async () => {
    const clock = new ManualClock();
    const { app, state, load } = etaApp(makeRegion({ clock }).configure('memory'));
    app.get('/', (_req, res) => res.render('page', { load, dogpile: { page: { expire: 10 } } }));
    const server = await listen(app);
    assert.match((await request(server).get('/').expect(200)).text, /v1/);
    clock.advance(11);
    state.version = 2;
    const g = gate();
    state.gate = g.promise;
    const winner = request(server)
      .get('/')
      .then((r) => r.text);
    assert.ok(await until(() => state.renders === 2, 5000), 'one request re-renders');
    const during = await Promise.all(Array.from({ length: 5 }, () => request(server).get('/').expect(200)));
    for (const r of during) assert.match(r.text, /v1/, 'stale page while re-rendering');
    assert.equal(state.renders, 2);
    g.open();
    assert.match(await winner, /v2/);
    assert.match((await request(server).get('/').expect(200)).text, /v2/);
    assert.equal(state.renders, 2);
  });

  it('a response that sets a cookie renders uncached and stores nothing', async () => {
    const { app, state, load } = etaApp();
    app.get('/login', (_req, res) => {
      res.cookie('sid', String(state.renders));
      res.render('page', { load, dogpile: { page: true } });
    });
    const server = await listen(app);
    const first = await request(server).get('/login').expect(200);
    const second = await request(server).get('/login').expect(200);
    assert.equal(state.renders, 2);
    assert.match(String(first.headers['set-cookie']), /sid=0/);
    assert.match(String(second.headers['set-cookie']), /sid=1/);
  });

  it('a response that is not a 200 renders uncached and stores nothing', async () => {
    const { app, state, load } = etaApp();
    app.get('/gone', (_req, res) => res.status(404).render('page', { load, dogpile: { page: true } }));
    app.get('/ok', (_req, res) => res.render('page', { load, dogpile: { page: { key: 'same' } } }));
    const server = await listen(app);
    await request(server).get('/gone').expect(404);
    await request(server).get('/gone').expect(404);
    assert.equal(state.renders, 2);
  });

  it('headers, query parameters and a function of the request are part of the key', async () => {
    const { app, state, load } = etaApp();
    app.get('/list', (req, res) =>
      res.render('page', {
        load,
        extra: `${req.get('accept-language')}|${String(req.query.page)}|${req.get('x-role')}`,
        dogpile: {
          page: {
            varyBy: {
              headers: ['Accept-Language'],
              query: ['page'],
              request: (r: express.Request) => r.get('x-role') ?? 'guest',
            },
          },
        },
      }),
    );
    const server = await listen(app);
    const get = (lang: string, query: string, role?: string) => {
      const r = request(server).get(`/list${query}`).set('accept-language', lang);
      return (role ? r.set('x-role', role) : r).expect(200).then((res) => res.text);
    };
    const en1 = await get('en', '?page=1');
    const fr1 = await get('fr', '?page=1');
    const en2 = await get('en', '?page=2');
    const admin = await get('en', '?page=1', 'admin');
    assert.equal(state.renders, 4, 'four distinct pages');
    assert.match(en1, /en\|1\|undefined/);
    assert.match(fr1, /fr\|1\|undefined/);
    assert.match(en2, /en\|2\|undefined/);
    assert.match(admin, /en\|1\|admin/);
    assert.equal(await get('en', '?page=1&utm=x'), en1, 'an unnamed query parameter does not vary the page');
    assert.equal(state.renders, 4);
  });

  it('an edited view renders anew (the key includes a digest of the views)', async () => {
    const { app, state, load, views } = etaApp();
    app.get('/', (_req, res) => res.render('page', { load, dogpile: { page: true } }));
    const server = await listen(app);
    await request(server).get('/').expect(200);
    await request(server).get('/').expect(200);
    assert.equal(state.renders, 1);
    writeFileSync(join(views, 'page.eta'), '<% const d = await it.load() %><h2>edited <%= d.version %></h2>');
    assert.match((await request(server).get('/').expect(200)).text, /<h2>edited 1<\/h2>/);
    assert.equal(state.renders, 2);
  });

  it('dogpile: { enabled: false } renders the page uncached', async () => {
    const { app, state, load } = etaApp();
    app.get('/', (req, res) => res.render('page', { load, dogpile: { page: true, enabled: !req.query.fresh } }));
    const server = await listen(app);
    await request(server).get('/').expect(200);
    await request(server).get('/?fresh=1').expect(200);
    await request(server).get('/').expect(200);
    assert.equal(state.renders, 2);
  });

  it('the master switch enabled: false turns page caching off too', async () => {
    const state = { renders: 0 };
    const app = express();
    dogpileViews(app, {
      engine: 'eta',
      views: viewsDir({ 'p.eta': '<%= it.tick() %>' }),
      regions: makeRegion().configure('memory'),
      enabled: false,
    });
    app.get('/', (_req, res) => res.render('p', { tick: () => ++state.renders, dogpile: { page: true } }));
    const server = await listen(app);
    assert.equal((await request(server).get('/').expect(200)).text, '1');
    assert.equal((await request(server).get('/').expect(200)).text, '2');
  });

  it('bad page options reach the error handler as a ValidationError naming the option', async () => {
    const { app, load } = etaApp();
    const bad: Record<string, unknown> = {
      expire: { expire: 'soon' },
      unknown: { ttl: 5 },
      headers: { varyBy: { headers: 'accept' } },
      vary: { varyBy: { cookies: ['sid'] } },
      key: { key: () => ({}) },
      region: { region: 'nope' },
    };
    app.get('/:case', (req, res) => res.render('page', { load, dogpile: { page: bad[req.params.case] } }));
    errorsAsText(app);
    const server = await listen(app);
    const text = async (c: string) => (await request(server).get(`/${c}`).expect(500)).text;
    assert.match(await text('expire'), /^ValidationError: .*page option expire .*"soon"/);
    assert.match(await text('unknown'), /^ValidationError: .*unknown page option "ttl"/);
    assert.match(await text('headers'), /^ValidationError: .*varyBy.headers .*"accept"/);
    assert.match(await text('vary'), /^ValidationError: .*unknown varyBy option "cookies"/);
    assert.match(await text('key'), /^ValidationError: .*key function must return a string or a number/);
    assert.match(await text('region'), /^ValidationError: .*unknown region "nope"/);
  });

  for (const engine of ['nunjucks', 'eta', 'handlebars'] as const) {
    it(`${engine}: the cached page is byte for byte the uncached one`, async () => {
      const source = {
        nunjucks:
          '<ul>{% for x in items %}<li title="{{ x }}">{{ x }}</li>{% endfor %}</ul>{% cache "c", n %}<i>{{ n }}</i>{% endcache %}\n',
        eta: '<ul><% for (const x of it.items) { %><li title="<%= x %>"><%= x %></li><% } %></ul><% cache "c", it.n %><i><%= it.n %></i><% endcache %>\n',
        handlebars: '<ul>{{#each items}}<li title="{{this}}">{{this}}</li>{{/each}}</ul>{{#cache "c" n}}<i>{{n}}</i>{{/cache}}\n',
      }[engine];
      const ext = { nunjucks: 'njk', eta: 'eta', handlebars: 'hbs' }[engine];
      const views = viewsDir({ [`page.${ext}`]: source });
      const app = express();
      dogpileViews(app, { engine, views, regions: makeRegion().configure('memory') });
      const items = [TRICKY, '&amp; already', "it's <x>"];
      app.get('/', (req, res) =>
        res.render('page', { items, n: '<&>', dogpile: req.query.fresh ? { enabled: false } : { page: { expire: 60 } } }),
      );
      const server = await listen(app);
      const uncached = (await request(server).get('/?fresh=1').expect(200)).text;
      const miss = (await request(server).get('/').expect(200)).text;
      const hit = (await request(server).get('/').expect(200)).text;
      assert.equal(miss, uncached);
      assert.equal(hit, uncached);
      assert.match(hit, /&lt;b&gt;&quot;Fish&quot; &amp;/);
    });
  }
});

describe('pageCache route middleware', () => {
  const region = () => makeRegion({ failOpen: false }).configure('memory');

  it('50 concurrent cold requests run the handler once and all get its response', async () => {
    const app = express();
    let handled = 0;
    app.get('/m', pageCache({ regions: region(), expire: 60 }), async (_req, res) => {
      handled++;
      await sleep(80);
      res.type('html').send(`<p>${TRICKY}</p>`);
    });
    const server = await listen(app);
    const pages = await Promise.all(Array.from({ length: 50 }, () => request(server).get('/m').expect(200)));
    assert.equal(handled, 1);
    for (const p of pages) {
      assert.equal(p.text, `<p>${TRICKY}</p>`);
      assert.match(p.headers['content-type'] ?? '', /text\/html/);
    }
  });

  it('serves the stale page while one request re-runs the handler', async () => {
    const clock = new ManualClock();
    const app = express();
    let version = 1;
    let handled = 0;
    let g: Promise<void> | undefined;
    app.get('/s', pageCache({ regions: makeRegion({ clock }).configure('memory'), expire: 10 }), async (_req, res) => {
      handled++;
      const v = version;
      await g;
      res.send(`v${v}`);
    });
    const server = await listen(app);
    assert.equal((await request(server).get('/s').expect(200)).text, 'v1');
    clock.advance(11);
    version = 2;
    const opened = gate();
    g = opened.promise;
    const winner = request(server)
      .get('/s')
      .then((r) => r.text);
    assert.ok(await until(() => handled === 2, 5000));
    const during = await Promise.all(Array.from({ length: 5 }, () => request(server).get('/s').expect(200)));
    for (const r of during) assert.equal(r.text, 'v1');
    opened.open();
    assert.equal(await winner, 'v2');
    assert.equal((await request(server).get('/s').expect(200)).text, 'v2');
    assert.equal(handled, 2);
  });

  it('a response with Set-Cookie is not stored, and concurrent waiters run their own handler', async () => {
    const app = express();
    let handled = 0;
    app.get('/c', pageCache({ regions: region() }), async (_req, res) => {
      const n = handled++;
      await sleep(40);
      res.cookie('sid', `s${n}`).send(`for s${n}`);
    });
    const server = await listen(app);
    const pages = await Promise.all(Array.from({ length: 10 }, () => request(server).get('/c').expect(200)));
    assert.equal(handled, 10);
    for (const p of pages) {
      const sid = /for (s\d+)/.exec(p.text)?.[1];
      assert.match(String(p.headers['set-cookie']), new RegExp(`sid=${sid};`), 'each body with its own cookie');
    }
    await request(server).get('/c').expect(200);
    assert.equal(handled, 11);
  });

  it('a hit is replayed through res.send, so a matching If-None-Match gets a 304', async () => {
    const app = express();
    let handled = 0;
    app.get('/t', pageCache({ regions: region() }), (_req, res) => {
      handled++;
      res.send('tagged');
    });
    const server = await listen(app);
    const first = await request(server).get('/t').expect(200);
    const etag = first.headers.etag;
    assert.ok(etag);
    await request(server).get('/t').set('if-none-match', etag).expect(304);
    assert.equal((await request(server).get('/t').expect(200)).text, 'tagged');
    assert.equal(handled, 1);
  });

  it('a body transformer mounted before pageCache re-runs on replay; one mounted after it stops storing', async () => {
    const upper = (_req: express.Request, res: express.Response, next: express.NextFunction) => {
      const end = res.end.bind(res) as (chunk?: unknown) => express.Response;
      res.end = ((chunk?: unknown) =>
        end(typeof chunk === 'string' || Buffer.isBuffer(chunk) ? String(chunk).toUpperCase() : chunk)) as never;
      next();
    };
    const app = express();
    const handled = { before: 0, after: 0 };
    app.get('/before', upper, pageCache({ regions: region() }), (_req, res) => {
      handled.before++;
      res.type('text').send('quiet');
    });
    app.get('/after', pageCache({ regions: region() }), upper, (_req, res) => {
      handled.after++;
      res.type('text').send('quiet');
    });
    const server = await listen(app);
    for (let i = 0; i < 2; i++) {
      assert.equal((await request(server).get('/before').expect(200)).text, 'QUIET');
      assert.equal((await request(server).get('/after').expect(200)).text, 'QUIET');
    }
    assert.deepEqual(handled, { before: 1, after: 2 });
  });

  it('a non-200 response is not stored', async () => {
    const app = express();
    let handled = 0;
    app.get('/e', pageCache({ regions: region() }), (_req, res) => {
      handled++;
      res.status(503).send('busy');
    });
    const server = await listen(app);
    await request(server).get('/e').expect(503);
    await request(server).get('/e').expect(503);
    assert.equal(handled, 2);
  });

  it('the vary dimensions separate entries; other requests share one', async () => {
    const app = express();
    let handled = 0;
    app.get('/v', pageCache({ regions: region(), varyBy: { query: true, headers: ['accept'] } }), (req, res) => {
      handled++;
      res.send(`${req.get('accept')} ${JSON.stringify(req.query)}`);
    });
    const server = await listen(app);
    const a = (await request(server).get('/v?b=2&a=1').set('accept', 'text/html')).text;
    const b = (await request(server).get('/v?a=1&b=2').set('accept', 'text/html')).text;
    const c = (await request(server).get('/v?a=1&b=3').set('accept', 'text/html')).text;
    const d = (await request(server).get('/v?a=1&b=2').set('accept', 'application/json')).text;
    assert.equal(b, a, 'parameter order does not matter');
    assert.notEqual(c, a);
    assert.notEqual(d, a);
    assert.equal(handled, 3);
  });

  it('a region with background refresh drops the stale page so the next request renders it', async () => {
    const clock = new ManualClock();
    const app = express();
    let version = 1;
    let handled = 0;
    const bg = makeRegion({ clock, backgroundRefresh: true }).configure('memory');
    app.get('/b', pageCache({ regions: bg, expire: 10 }), (_req, res) => {
      handled++;
      res.send(`v${version}`);
    });
    const server = await listen(app);
    assert.equal((await request(server).get('/b')).text, 'v1');
    clock.advance(11);
    version = 2;
    assert.equal((await request(server).get('/b')).text, 'v1', 'stale at once');
    assert.ok(await until(async () => (await request(server).get('/b')).text === 'v2', 5000), 'then renders anew');
    assert.equal(handled, 2);
  });

  it('only GET is cached', async () => {
    const app = express();
    let handled = 0;
    app.all('/g', pageCache({ regions: region() }), (_req, res) => {
      handled++;
      res.send('x');
    });
    const server = await listen(app);
    await request(server).post('/g').expect(200);
    await request(server).post('/g').expect(200);
    await request(server).head('/g').expect(200);
    assert.equal(handled, 3);
  });

  it('bad options throw a ValidationError naming the option', () => {
    const r = region();
    assert.throws(() => pageCache({ regions: r, expire: -5 }), { name: 'ValidationError', message: /expire .*-5/ });
    assert.throws(() => pageCache({ regions: r, varyBy: { cookies: [] } as never }), /unknown varyBy option "cookies"/);
    assert.throws(() => pageCache({ regions: r, varyBy: { query: 'page' as never } }), /varyBy.query .*"page"/);
    assert.throws(() => pageCache({ regions: r, varyBy: { request: 'role' as never } }), /varyBy.request must be a function/);
    assert.throws(() => pageCache({ regions: r, region: 'nope' }), /unknown region "nope"/);
    assert.throws(() => pageCache({ regions: r, maxSize: -1 }), /maxSize/);
    assert.throws(() => pageCache({ regions: 'x' as never }), ValidationError);
  });
});

describe('pages on a private Redis (two regions as two processes, distributed lock)', {
  skip: spawnSync('redis-server', ['--version']).status === 0 ? false : 'redis-server not available',
}, () => {
  let redis: ServerProcess | undefined;
  const regions: ReturnType<typeof makeRegion>[] = [];
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    for (const r of regions) await r.close();
    await redis?.stop();
  });
  const redisRegion = () => {
    const region = makeRegion({ failOpen: false }).configure('redis', {
      arguments: { url: `redis://127.0.0.1:${redis?.port}`, distributedLock: true, lockTimeout: 10 },
    });
    regions.push(region);
    return region;
  };

  it('50 requests split over two apps run the handler once; a binary body comes back byte for byte', async () => {
    const body = Buffer.from([0, 255, 254, 10, 0xc3, 0x28, 60, 62, 38]);
    let handled = 0;
    const appFor = () => {
      const app = express();
      app.get('/bin', pageCache({ regions: redisRegion(), expire: 60 }), async (_req, res) => {
        handled++;
        await sleep(150);
        res.type('application/octet-stream').send(body);
      });
      return listen(app);
    };
    const [a, b] = await Promise.all([appFor(), appFor()]);
    const pages = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        request(i % 2 ? a : b)
          .get('/bin')
          .buffer(true)
          .parse((res, cb) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => cb(null, Buffer.concat(chunks)));
          })
          .expect(200),
      ),
    );
    assert.equal(handled, 1);
    for (const p of pages) assert.deepEqual(p.body, body);
  });

  it('a rendered page is shared by two apps through Redis', async () => {
    const views = viewsDir({ 'p.njk': '<p>{{ x }}</p>' });
    let renders = 0;
    const appFor = () => {
      const app = express();
      dogpileViews(app, { engine: 'nunjucks', views, regions: redisRegion() });
      app.get('/', (_req, res) =>
        res.render('p', {
          get x() {
            renders++;
            return TRICKY;
          },
          dogpile: { page: { key: 'shared' } },
        }),
      );
      return listen(app);
    };
    const [a, b] = await Promise.all([appFor(), appFor()]);
    const first = (await request(a).get('/').expect(200)).text;
    const second = (await request(b).get('/').expect(200)).text;
    assert.equal(second, first);
    assert.equal(first, '<p>&lt;b&gt;&quot;Fish&quot; &amp; &#39;Chips&#39;&lt;/b&gt;</p>');
    assert.equal(renders, 1);
  });
});
