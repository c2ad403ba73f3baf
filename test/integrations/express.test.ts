// dogpile/express end to end over real HTTP (supertest) for all three engines, using the example
// site: per-user panel, the product cards (a cached collection keyed by record version), per-render
// opt-out. test/integrations/example-site.test.ts covers the site itself (stats, annotations, bumps).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import request from 'supertest';
import { createApp } from '../../examples/express/app.js';
import { makeRegion } from '../../src/index.js';

for (const engine of ['nunjucks', 'eta', 'handlebars'] as const) {
  describe(`express + ${engine}`, () => {
    const setup = () => createApp({ engine, region: makeRegion({ failOpen: false }).configure('memory'), slowMs: 0 });

    it('sets the view engine and serves the page with escaped data', async () => {
      const { app } = setup();
      assert.equal(app.get('view engine'), { nunjucks: 'njk', eta: 'eta', handlebars: 'hbs' }[engine]);
      const res = await request(app).get('/?user=alice').expect(200);
      assert.match(res.text, /Signed in as <strong>Alice<\/strong>/);
      assert.match(res.text, /Salt &amp; &quot;Pepper&quot; &lt;grinder&gt;/);
      assert.equal((res.text.match(/class="card"/g) ?? []).length, 6);
    });

    it('caches the user panel per user and serves the same cards on a hit', async () => {
      const { app } = setup();
      const a1 = await request(app).get('/?user=alice').expect(200);
      const b1 = await request(app).get('/?user=bob').expect(200);
      assert.match(b1.text, /Signed in as <strong>Bob O(&#39;|&#x27;)Brien/);
      assert.doesNotMatch(b1.text, /Signed in as <strong>Alice/);
      const a2 = await request(app).get('/?user=alice').expect(200);
      const cards = (html: string) => html.slice(html.indexOf('<ul class="cards">'), html.indexOf('</ul>'));
      assert.equal(cards(a2.text), cards(a1.text));
      assert.match(a2.text, /Signed in as <strong>Alice/);
    });

    it('serves cached cards until the key changes; ?fresh=1 renders uncached', async () => {
      const { app, db } = setup();
      await request(app).get('/').expect(200);
      const p2 = db.products[1];
      assert.ok(p2);
      p2.name = 'Renamed <now>';
      assert.match((await request(app).get('/').expect(200)).text, /<h2>Olive oil<\/h2>/, 'cached card');
      assert.match((await request(app).get('/?fresh=1').expect(200)).text, /Renamed &lt;now&gt;/, 'opt-out renders uncached');
      assert.match((await request(app).get('/').expect(200)).text, /<h2>Olive oil<\/h2>/, 'opt-out stored nothing');
      p2.version = 2;
      assert.match((await request(app).get('/').expect(200)).text, /Renamed &lt;now&gt;/, 'new key, new card');
    });

    it('concurrent cold requests all get the same page', async () => {
      const { app } = setup();
      const pages = await Promise.all(Array.from({ length: 20 }, () => request(app).get('/?user=bob').expect(200)));
      // The pages differ only in the stats panel (each request counts its own hits and misses).
      const main = (html: string) => html.slice(0, html.indexOf('<aside class="stats"'));
      assert.equal(new Set(pages.map((p) => main(p.text))).size, 1);
      assert.match(main(pages[0]?.text ?? ''), /class="card"/);
    });
  });
}
