// The example site (examples/express, `npm start`) over real HTTP, for each engine: a server on
// port 0 and fetch. The list page, the per-user panel (query then cookie), the stats panel's
// numbers from one request to the next, the annotate toggle (and that production refuses it), and
// the bump button: one POST, then exactly one card re-rendered (one miss in the page's summary).
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createApp } from '../../examples/express/app.js';
import { makeRegion } from '../../src/index.js';

/** The numbers of the stats panel (`data-stat="name"` cells), as numbers. */
function statsOf(html: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of html.matchAll(/data-stat="([a-z-]+)">([\d.]+)/g)) out[m[1] as string] = Number(m[2]);
  return out;
}

/** One card's HTML (`<li class="card" id="p3">…</li>`). */
function card(html: string, id: number): string {
  const start = html.indexOf(`<li class="card" id="p${id}">`);
  assert.ok(start >= 0, `card ${id} on the page`);
  return html.slice(start, html.indexOf('</li>', start));
}

async function serve(app: ReturnType<typeof createApp>['app']) {
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const get = async (path: string, cookie?: string) => {
    const res = await fetch(base + path, { headers: cookie ? { cookie } : {}, redirect: 'manual' });
    return { status: res.status, headers: res.headers, text: await res.text() };
  };
  return { server, base, get };
}

for (const engine of ['nunjucks', 'eta', 'handlebars'] as const) {
  describe(`example site over HTTP: ${engine}`, () => {
    const region = makeRegion({ name: 'pages', failOpen: false }).configure('memory');
    const site = createApp({ engine, region, slowMs: 1 });
    let http: Awaited<ReturnType<typeof serve>>;
    before(async () => {
      http = await serve(site.app);
    });
    after(() => {
      http.server.close();
    });

    it('serves the styled list page: six cards with escaped data, the user panel, the stats panel', async () => {
      const page = await http.get('/');
      assert.equal(page.status, 200);
      assert.match(page.text, /<link rel="stylesheet" href="\/static\/site.css">/);
      assert.equal((page.text.match(/<li class="card"/g) ?? []).length, 6);
      assert.match(card(page.text, 1), /Salt &amp; &quot;Pepper&quot; &lt;grinder&gt;/);
      assert.match(page.text, /Signed in as <strong>Alice<\/strong>/);
      assert.match(page.text, /<aside class="stats"/);
      assert.match(page.text, /<form method="post" action="\/products\/3\/bump">/);
      const css = await http.get('/static/site.css');
      assert.equal(css.status, 200);
      assert.match(css.headers.get('content-type') ?? '', /text\/css/);
      const json = JSON.parse((await http.get('/stats.json')).text) as { region: { creations: number } };
      assert.ok(json.region.creations > 0);
    });

    it('the stats panel counts each request: misses first, then hits and time saved', async () => {
      // Bob's first page: his panel is new (a miss), the cards are warm from the test above.
      const first = statsOf((await http.get('/?user=bob')).text);
      const second = statsOf((await http.get('/?user=bob')).text);
      assert.equal(first['page-fragments'], 7, 'the user panel and six cards');
      assert.equal(first['page-misses'], 1);
      assert.equal(second['page-misses'], 0);
      assert.equal(second['page-hits'], 7);
      assert.ok((second['page-saved'] ?? 0) > 0, 'hits saved render time');
      assert.equal(second.pages, (first.pages ?? 0) + 1);
      assert.equal(second.hits, (first.hits ?? 0) + 7);
      assert.equal(second.renders, first.renders, 'nothing rendered on the warm page');
    });

    it("the per-user panel follows ?user= and then the cookie; users never see each other's panel", async () => {
      const switched = await http.get('/?user=bob');
      const cookie = (switched.headers.get('set-cookie') ?? '').split(';')[0] as string;
      assert.equal(cookie, 'user=bob');
      assert.match(switched.text, /Signed in as <strong>Bob O(&#39;|&#x27;)Brien<\/strong>/);
      const again = await http.get('/', cookie);
      assert.match(again.text, /Signed in as <strong>Bob O(&#39;|&#x27;)Brien<\/strong>/);
      assert.doesNotMatch(again.text, /Signed in as <strong>Alice/);
      assert.match((await http.get('/', 'user=alice')).text, /Signed in as <strong>Alice<\/strong>/);
    });

    it('?annotate=1 wraps every fragment in <!-- dogpile: --> comments (and sticks in a cookie); off by default', async () => {
      const plain = await http.get('/');
      assert.doesNotMatch(plain.text, /<!-- dogpile:/);
      const on = await http.get('/?annotate=1');
      assert.equal((on.text.match(/<!-- dogpile: (hit|miss) key=/g) ?? []).length, 7);
      assert.match(on.text, /<!-- dogpile: hit key=[^>]*card[^>]*rec\(3#\d+\) --><li class="card" id="p3">/);
      assert.match(on.text, /<script src="\/static\/annotate.js"><\/script>/);
      assert.match(on.headers.get('set-cookie') ?? '', /annotate=1/);
      assert.match((await http.get('/', 'annotate=1')).text, /<!-- dogpile: hit/);
      assert.doesNotMatch((await http.get('/?annotate=0', 'annotate=1')).text, /<!-- dogpile:/);
      // Annotations never reach the cache: the next plain page has none.
      assert.doesNotMatch((await http.get('/')).text, /<!-- dogpile:/);
    });

    it("the bump button changes one product's version: exactly that card is rendered again", async () => {
      const before = await http.get('/');
      const version = site.db.products[2]?.version ?? 0;
      const res = await fetch(`${http.base}/products/3/bump`, { method: 'POST', redirect: 'manual' });
      assert.equal(res.status, 303);
      assert.equal(res.headers.get('location'), '/?bumped=3#p3');
      const after = await http.get('/?bumped=3');
      const stats = statsOf(after.text);
      assert.equal(stats['page-misses'], 1, 'one fragment rendered');
      assert.equal(stats['page-hits'], 6);
      assert.match(
        after.text,
        new RegExp(`Rendered on this page:</p>\\s*<ul class="keys"><li><code>[^<]*rec\\(3#${version + 1}\\)</code></li></ul>`),
      );
      assert.match(card(after.text, 3), new RegExp(`version ${version + 1}<`));
      assert.notEqual(card(after.text, 3), card(before.text, 3));
      for (const id of [1, 2, 4, 5, 6])
        assert.equal(card(after.text, id), card(before.text, id), `card ${id} is the cached copy`);
      assert.match(after.text, /You bumped <strong>Sourdough loaf<\/strong> to version/);
      assert.equal((await fetch(`${http.base}/products/99/bump`, { method: 'POST' })).status, 404);
    });
  });
}

describe('example site under NODE_ENV=production', () => {
  it('has no annotate toggle and ignores ?annotate=1', async () => {
    const saved = process.env.NODE_ENV;
    process.env.NODE_ENV = 'production';
    let site: ReturnType<typeof createApp>;
    try {
      site = createApp({ engine: 'nunjucks', region: makeRegion().configure('memory'), slowMs: 0 });
    } finally {
      if (saved === undefined) delete process.env.NODE_ENV;
      else process.env.NODE_ENV = saved;
    }
    const http = await serve(site.app);
    try {
      const page = await http.get('/?annotate=1', 'annotate=1');
      assert.equal(page.status, 200);
      assert.doesNotMatch(page.text, /<!-- dogpile:|annotate\.js|Annotations:/);
      assert.equal(page.headers.get('set-cookie'), null);
    } finally {
      http.server.close();
    }
  });
});
