// Express view engines set up by dogpileViews keep compiled templates while Express's `view cache`
// is on (its default under NODE_ENV=production), as Express does for its own view lookups, and
// read templates afresh while it is off. Eta's own template cache is off by default, so without
// this an Eta app re-read and recompiled every view and partial on every render.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import express from 'express';
import request from 'supertest';
import { dogpileViews, etaEngine } from '../../integrations/express.js';
import { makeRegion } from '../../src/index.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

type Engine = 'nunjucks' | 'eta' | 'handlebars';
const PAGE: Record<Engine, (v: string) => string> = {
  nunjucks: (v) => `<p>${v} {{ who }}</p>{% include "part.njk" %}`,
  eta: (v) => `<p>${v} <%= it.who %></p><%~ include("./part") %>`,
  handlebars: (v) => `<p>${v} {{who}}</p>{{> part}}`,
};
/** Where each engine finds the page and its partial. */
const FILES: Record<Engine, { page: string; part: string }> = {
  nunjucks: { page: 'page.njk', part: 'part.njk' },
  eta: { page: 'page.eta', part: 'part.eta' },
  handlebars: { page: 'page.hbs', part: 'partials/part.hbs' },
};

function app(engine: Engine, viewCache: boolean): { app: express.Express; edit(version: string): void } {
  const dir = mkdtempSync(join(tmpdir(), 'dogpile-views-'));
  dirs.push(dir);
  mkdirSync(join(dir, 'partials'));
  const write = (version: string): void => {
    writeFileSync(join(dir, FILES[engine].page), PAGE[engine](version));
    writeFileSync(join(dir, FILES[engine].part), `<i>part ${version}</i>`);
  };
  write('v1');
  const a = express();
  if (viewCache) a.enable('view cache');
  else a.disable('view cache');
  dogpileViews(a, { engine, views: dir, regions: makeRegion().configure('memory') });
  a.get('/', (_req, res) => res.render('page', { who: '<me>' }));
  return { app: a, edit: write };
}

describe('view caching follows Express `view cache` (dogpileViews)', () => {
  for (const engine of ['nunjucks', 'eta', 'handlebars'] as const) {
    it(`${engine}: with view cache on, an edited view is not read again; with it off, it is`, async () => {
      const on = app(engine, true);
      const first = await request(on.app).get('/').expect(200);
      assert.match(first.text, /<p>v1 &lt;me&gt;<\/p><i>part v1<\/i>/);
      on.edit('v2');
      const again = await request(on.app).get('/').expect(200);
      assert.equal(again.text, first.text, 'compiled templates kept while view cache is on');

      const off = app(engine, false);
      assert.match((await request(off.app).get('/').expect(200)).text, /v1/);
      off.edit('v2');
      const edited = await request(off.app).get('/').expect(200);
      if (engine !== 'nunjucks') {
        // Eta (its own cache off) and handlebarsEngine read views and partials again.
        assert.match(edited.text, /<p>v2 &lt;me&gt;<\/p><i>part v2<\/i>/);
      } else {
        // Nunjucks' FileSystemLoader without `watch` keeps what it compiled, view cache or not.
        assert.match(edited.text, /v1/);
      }
    });
  }

  it('etaEngine on an app of its own: the Eta cache is turned on by the first cached render and stays on', async () => {
    const { Eta } = await import('eta');
    const dir = mkdtempSync(join(tmpdir(), 'dogpile-views-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'page.eta'), '<p>one</p>');
    const eta = new Eta({ views: dir });
    assert.equal(eta.config.cache, false);
    const a = express();
    a.engine('eta', etaEngine(eta));
    a.set('views', dir);
    a.set('view engine', 'eta');
    a.get('/', (req, res) => res.render('page', req.query.nocache === '1' ? { cache: false } : {}));
    a.disable('view cache');
    await request(a).get('/').expect(200, '<p>one</p>');
    assert.equal(eta.config.cache, false, 'view cache off: Eta left as it was');
    a.enable('view cache');
    await request(a).get('/').expect(200, '<p>one</p>');
    assert.equal(eta.config.cache, true);
    writeFileSync(join(dir, 'page.eta'), '<p>two</p>');
    await request(a).get('/').expect(200, '<p>one</p>');
    a.disable('view cache');
    await request(a).get('/?nocache=1').expect(200, '<p>one</p>');
    assert.equal(eta.config.cache, true, 'never turned off');
  });
});
