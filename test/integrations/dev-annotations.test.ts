// Dev annotations and the per-request fragment summary, over real HTTP (Express + supertest) for
// every engine: counts, annotations that never reach the cache, and the production guard.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import express from 'express';
import request from 'supertest';
import { dogpileSummary, dogpileViews, type FragmentSummary, TemplateCache } from '../../integrations/express.js';
import { makeRegion, ValidationError } from '../../src/index.js';
import { enginesUnderTest } from './engines.js';

const NASTY = `<b>Tom & "Jerry"</b> it's $& $1`;

for (const e of enginesUnderTest) {
  describe(`${e.name}: dev annotations and the fragment summary over HTTP`, () => {
    const dirs: string[] = [];
    after(() => {
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    });
    const setup = (cacheOptions: { annotate?: boolean | 'force' } = {}) => {
      const dir = mkdtempSync(join(tmpdir(), `dogpile-dev-${e.name}-`));
      dirs.push(dir);
      const page =
        `<h1>${e.expr('title')}</h1>` +
        e.block(
          ['"outer"', '@user.id'],
          `<main>${e.expr('user.name')}${e.block(['"inner"'], `<i>${e.expr('title')}</i>`)}</main>`,
        );
      writeFileSync(join(dir, `page.${e.ext}`), page);
      const cache = new TemplateCache({ regions: makeRegion().configure('memory'), ...cacheOptions });
      const app = express();
      dogpileViews(app, { engine: e.name as 'nunjucks', views: dir, templateCache: cache });
      app.use(dogpileSummary({ annotate: (req) => (req as express.Request).query.annotate === '1' }));
      app.get('/', (_req, res, next) => {
        res.render('page', { title: NASTY, user: { id: 1, name: 'Ann' } }, (err: unknown, html?: string) => {
          if (err) return next(err);
          res.json({ html, summary: (res.locals.dogpile as { summary: FragmentSummary }).summary });
        });
      });
      return { app, cache };
    };
    const get = async (app: express.Express, query = '') => {
      const res = await request(app).get(`/${query}`).expect(200);
      return res.body as { html: string; summary: FragmentSummary };
    };
    const strip = (html: string) => html.replace(/<!-- dogpile: (hit|miss) key=[^>]* -->|<!-- \/dogpile -->/g, '');

    it('counts each request’s hits and misses, with render times, on res.locals.dogpile.summary', async () => {
      const { app } = setup();
      const cold = await get(app);
      assert.equal(cold.summary.misses, 2);
      assert.equal(cold.summary.hits, 0);
      assert.equal(cold.summary.fragments.length, 2);
      assert.ok(cold.summary.fragments.every((f) => f.outcome === 'miss' && f.ms >= 0 && /outer|inner/.test(f.key)));
      const warm = await get(app);
      assert.equal(warm.html, cold.html);
      assert.deepEqual([warm.summary.hits, warm.summary.misses], [1, 0]); // the inner block is inside the hit
      assert.equal(warm.summary.savedMs, cold.summary.fragments.find((f) => /outer/.test(f.key))?.ms);
      assert.doesNotMatch(warm.html, /dogpile:/);
    });

    it('?annotate=1 wraps each fragment; the markup is otherwise identical and annotations are never stored', async () => {
      const { app } = setup();
      const first = await get(app, '?annotate=1');
      assert.match(first.html, /<!-- dogpile: miss key=[^>]*outer[^>]* --><main>Ann<!-- dogpile: miss key=[^>]*inner/);
      assert.equal((first.html.match(/<!-- \/dogpile -->/g) ?? []).length, 2);
      const plain = await get(app);
      assert.doesNotMatch(plain.html, /dogpile/);
      assert.equal(strip(first.html), plain.html);
      const hit = await get(app, '?annotate=1');
      assert.match(hit.html, /^<h1>[^<]*(<[^!][^<]*)*<!-- dogpile: hit key=/);
      assert.equal(strip(hit.html), plain.html);
    });

    it('annotate: true in the cache options annotates every render', async () => {
      const { app } = setup({ annotate: true });
      assert.match((await get(app)).html, /<!-- dogpile: miss key=/);
      assert.match((await get(app)).html, /<!-- dogpile: hit key=/);
    });
  });
}

describe('dev annotations in production', () => {
  const withEnv = <T>(value: string, run: () => T): T => {
    const before = process.env.NODE_ENV;
    process.env.NODE_ENV = value;
    try {
      return run();
    } finally {
      if (before === undefined) delete process.env.NODE_ENV;
      else process.env.NODE_ENV = before;
    }
  };
  const region = makeRegion().configure('memory');

  it("annotate: true is refused under NODE_ENV=production; 'force' is accepted", () => {
    assert.throws(
      () => withEnv('production', () => new TemplateCache({ regions: region, annotate: true })),
      (err: Error) => err instanceof ValidationError && /production/.test(err.message) && /'force'/.test(err.message),
    );
    assert.ok(withEnv('production', () => new TemplateCache({ regions: region, annotate: 'force' })));
    assert.throws(
      () => new TemplateCache({ regions: region, annotate: 'yes' as never }),
      (err: Error) => err instanceof ValidationError && /annotate/.test(err.message),
    );
  });

  it('a per-render annotate request is ignored in production (with a warning)', async () => {
    const cache = withEnv('production', () => new TemplateCache({ regions: region }));
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    const html = await cache.getOrCreate('k', () => '<p>x</p>', { annotate: true });
    await new Promise((r) => setImmediate(r));
    process.off('warning', onWarning);
    assert.equal(html, '<p>x</p>');
    assert.ok(warnings.some((m) => /annotate: true \} is ignored/.test(m)));
  });
});
