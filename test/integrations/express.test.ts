// dogpile/express end to end over real HTTP (supertest) for all three engines, using the example
// site: per-user sidebar, per-item cached partials keyed by (id, updatedAt), per-render opt-out.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import request from 'supertest';
import { createApp } from '../../examples/express/app.js';
import { makeRegion } from '../../src/index.js';

for (const engine of ['nunjucks', 'eta', 'handlebars'] as const) {
  describe(`express + ${engine}`, () => {
    const setup = () => createApp({ engine, region: makeRegion({ failOpen: false }).configure('memory') });

    it('sets the view engine and serves the page with escaped data', async () => {
      const { app } = setup();
      assert.equal(app.get('view engine'), { nunjucks: 'njk', eta: 'eta', handlebars: 'hbs' }[engine]);
      const res = await request(app).get('/?user=alice').expect(200);
      assert.match(res.text, /Recently viewed by Alice/);
      assert.match(res.text, /Salt &amp; &quot;Pepper&quot; &lt;grinder&gt;/);
      assert.equal((res.text.match(/class="card"/g) ?? []).length, 12);
    });

    it('caches the sidebar per user and serves identical pages on a hit', async () => {
      const { app } = setup();
      const a1 = await request(app).get('/?user=alice').expect(200);
      const b1 = await request(app).get('/?user=bob').expect(200);
      assert.match(b1.text, /Recently viewed by Bob O(&#39;|&#x27;)Brien/);
      assert.doesNotMatch(b1.text, /Recently viewed by Alice/);
      const a2 = await request(app).get('/?user=alice').expect(200);
      assert.equal(a2.text, a1.text);
    });

    it('serves cached cards until the key changes; ?fresh=1 renders uncached', async () => {
      const { app, db } = setup();
      await request(app).get('/').expect(200);
      const p2 = db.products[1];
      assert.ok(p2);
      p2.name = 'Renamed <now>';
      assert.match((await request(app).get('/').expect(200)).text, /<strong>Product 2<\/strong>/, 'cached card');
      assert.match((await request(app).get('/?fresh=1').expect(200)).text, /Renamed &lt;now&gt;/, 'opt-out renders uncached');
      assert.match((await request(app).get('/').expect(200)).text, /<strong>Product 2<\/strong>/, 'opt-out stored nothing');
      p2.updatedAt = 2;
      assert.match((await request(app).get('/').expect(200)).text, /Renamed &lt;now&gt;/, 'new key, new card');
    });

    it('concurrent cold requests all get the same page', async () => {
      const { app } = setup();
      const pages = await Promise.all(Array.from({ length: 20 }, () => request(app).get('/?user=bob').expect(200)));
      assert.equal(new Set(pages.map((p) => p.text)).size, 1);
    });
  });
}
