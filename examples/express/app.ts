// The example site: a small shop whose pages show the fragment cache at work. One Express app,
// rendered by Nunjucks, Eta or Handlebars (the same page in each engine's syntax, under views/):
//
// - the product list is ONE cached collection tag: one cache read for every card, and only the
//   cards that are missing (or whose record version changed) are rendered;
// - a "signed in as" panel is a cached block keyed by the user record, so each user gets their own;
// - "Bump version" (a POST) changes nothing but one product's `version`: its key changes, so only
//   its card is rendered again (Rails' cache_key_with_version: no cache delete anywhere);
// - a stats panel shows this page's fragment summary and the region's events and stats;
// - `?annotate=1` wraps every fragment in `<!-- dogpile: hit|miss key=... -->` comments (never in
//   production).
//
// server.ts runs it (`npm start`); test/integrations/example-site.test.ts drives it over HTTP.

import { fileURLToPath } from 'node:url';
import express from 'express';
import {
  dogpileSummary,
  dogpileViews,
  type FragmentSummary,
  TemplateCache,
  type ViewEngineName,
} from '../../integrations/express.js';
import type { DogpileHandlebars } from '../../integrations/handlebars.js';
import type { CacheRegion } from '../../src/index.js';

/**
 * A product as the "database" holds it. `id` plus `version` make it a *record*: its cached card
 * is keyed by both, so bumping `version` gives the card a new key.
 */
export interface Product {
  id: number;
  name: string;
  price: number;
  version: number;
  /** The slow part of a card (see `slowMs`): computed only when the card is rendered. */
  readonly reviews: string;
}

/** A user; also a record (`id` + `version`), which keys the "signed in as" panel. */
export interface User {
  id: string;
  name: string;
  version: number;
  recent: string[];
}

/** The example's in-memory data, mutable so tests (and you) can watch fragments change. */
export interface ExampleDb {
  products: Product[];
  users: Record<string, User>;
}

/** Options of {@link createApp}. */
export interface ExampleOptions {
  engine: ViewEngineName;
  /** The region fragments are stored in (memory or Redis). */
  region: CacheRegion;
  /** Milliseconds of deliberate work per card render, standing for a slow query. Default 2. */
  slowMs?: number;
  /** Shown in the page header. Default `'memory'`. */
  backend?: string;
}

/** Counters over every page served: fed by each request's fragment summary and the region's events. */
interface Totals {
  pages: number;
  hits: number;
  misses: number;
  savedMs: number;
  /** Fragments rendered (`create` events). */
  renders: number;
  /** The keys of the latest renders, newest first. */
  latest: string[];
}

/** Builds the app; returns it with its data and the TemplateCache (for invalidation). */
export function createApp(options: ExampleOptions): { app: express.Express; db: ExampleDb; cache: TemplateCache } {
  const { region, engine } = options;
  const slowMs = options.slowMs ?? 2;
  const names = [
    'Salt & "Pepper" <grinder>',
    'Olive oil',
    'Sourdough loaf',
    'Espresso beans',
    'Dark chocolate',
    "Farmer's honey",
  ];
  const db: ExampleDb = {
    products: names.map((name, i) => makeProduct(i + 1, name, 4 + i * 2.5, slowMs)),
    users: {
      alice: { id: 'alice', name: 'Alice', version: 1, recent: ['Olive oil', 'Dark chocolate'] },
      bob: { id: 'bob', name: "Bob O'Brien", version: 1, recent: ['Espresso beans'] },
    },
  };

  const app = express();
  const cache = new TemplateCache({ regions: { pages: region }, keyPrefix: 'example' });
  cache.on('error', (err: Error) => console.error(`dogpile: cache backend failed, rendered inline: ${err.message}`));
  const views = fileURLToPath(new URL(`./views/${engine}`, import.meta.url));
  const env = dogpileViews(app, { engine, views, templateCache: cache });
  if (engine === 'handlebars') {
    // Handlebars cannot call methods in templates: one small helper.
    const hbs = (env as DogpileHandlebars).handlebars;
    hbs.registerHelper('price', (n: unknown) => (typeof n === 'number' ? n.toFixed(2) : ''));
  }
  app.use('/static', express.static(fileURLToPath(new URL('./public', import.meta.url))));

  // Region events: count the renders and remember the latest keys (a `create` event is one
  // fragment rendered; `region.off('create', listener)` would stop listening).
  const totals: Totals = { pages: 0, hits: 0, misses: 0, savedMs: 0, renders: 0, latest: [] };
  const prefix = cache.storedKey('');
  region.on('create', ({ key, outcome }) => {
    if (outcome !== 'ok') return;
    totals.renders++;
    totals.latest.unshift(key.startsWith(prefix) ? key.slice(prefix.length) : key);
    totals.latest.length = Math.min(totals.latest.length, 5);
  });

  // Dev annotations: off unless the visitor asks (the choice sticks in a cookie); never in production.
  const devMode = process.env.NODE_ENV !== 'production';
  const wantsAnnotations = (req: express.Request): boolean => {
    const asked = req.query.annotate;
    if (typeof asked === 'string') return asked === '1';
    return readCookie(req, 'annotate') === '1';
  };
  // A fresh fragment summary for every request, at res.locals.dogpile.summary.
  app.use(dogpileSummary({ annotate: (req) => devMode && wantsAnnotations(req as express.Request) }));

  // Who is "signed in": ?user=bob switches, and a cookie remembers it (so does ?annotate=).
  app.use((req, res, next) => {
    const asked = typeof req.query.user === 'string' ? req.query.user : undefined;
    const id = asked ?? readCookie(req, 'user') ?? 'alice';
    const user = db.users[id] ?? (db.users.alice as User);
    if (asked !== undefined) res.cookie('user', user.id, { sameSite: 'lax', httpOnly: true });
    if (devMode && typeof req.query.annotate === 'string') {
      res.cookie('annotate', req.query.annotate === '1' ? '1' : '0', { sameSite: 'lax' });
    }
    const summary = (res.locals.dogpile as { summary: FragmentSummary }).summary;
    Object.assign(res.locals, {
      engine,
      backend: options.backend ?? 'memory',
      user,
      users: Object.values(db.users).map((u) => ({ id: u.id, name: u.name, current: u === user })),
      devMode,
      annotate: devMode && wantsAnnotations(req),
      stats: statsPanel(region, summary, totals),
    });
    // Once a page is sent, its summary joins the totals.
    res.on('finish', () => {
      if (req.method !== 'GET' || res.statusCode !== 200 || summary.fragments.length === 0) return;
      totals.pages++;
      totals.hits += summary.hits;
      totals.misses += summary.misses;
      totals.savedMs += summary.savedMs;
    });
    next();
  });

  app.get('/', (req, res) => {
    const bumped = db.products.find((p) => String(p.id) === req.query.bumped);
    res.render('products', {
      title: 'Products',
      products: db.products,
      bumped,
      // ?fresh=1 renders this response without the fragment cache (previews, admins).
      ...(req.query.fresh ? { dogpile: { ...res.locals.dogpile, enabled: false } } : {}),
    });
  });

  // "Edit" a product without changing anything but its version: its card key changes.
  app.post('/products/:id/bump', (req, res) => {
    const product = db.products.find((p) => String(p.id) === req.params.id);
    if (product === undefined) {
      res.status(404).send('no such product');
      return;
    }
    product.version++;
    res.redirect(303, `/?bumped=${product.id}#p${product.id}`);
  });

  // The region's counters as JSON (for curl, dashboards, health checks).
  app.get('/stats.json', (_req, res) => {
    res.json({ region: region.stats(), pages: totals });
  });

  return { app, db, cache };
}

/**
 * What the stats panel shows. Getters, so the numbers are read when the template reaches the
 * panel: after the page's fragments, since the panel comes last in the layout.
 */
function statsPanel(region: CacheRegion, summary: FragmentSummary, totals: Totals) {
  const ms = (n: number) => n.toFixed(1);
  return {
    get pageFragments() {
      return summary.hits + summary.misses;
    },
    get pageHits() {
      return summary.hits;
    },
    get pageMisses() {
      return summary.misses;
    },
    get pageRenderMs() {
      return ms(summary.renderMs);
    },
    get pageSavedMs() {
      return ms(summary.savedMs);
    },
    /** The keys of the fragments this page rendered (its misses). */
    get renderedHere() {
      return summary.fragments.filter((f) => f.outcome === 'miss').map((f) => f.key);
    },
    // Totals include this page.
    get pages() {
      return totals.pages + 1;
    },
    get hits() {
      return totals.hits + summary.hits;
    },
    get misses() {
      return totals.misses + summary.misses;
    },
    get savedMs() {
      return ms(totals.savedMs + summary.savedMs);
    },
    get renders() {
      return totals.renders;
    },
    latest: totals.latest,
    // From region.stats(): stale fragments served (while one request re-rendered them), and waits
    // for another request's render of the same fragment (the dogpile lock at work).
    get stale() {
      return region.stats().stale;
    },
    get lockWaits() {
      return region.stats().lockWaits;
    },
  };
}

/**
 * A product record. `reviews` is a getter that does `slowMs` of work on purpose: it stands for
 * the expensive part of a card (a query, a markdown render) that a cached card skips. The time
 * it was computed is part of its text, so you can see which cards were rendered.
 */
function makeProduct(id: number, name: string, price: number, slowMs: number): Product {
  return {
    id,
    name,
    price,
    version: 1,
    get reviews() {
      const until = performance.now() + slowMs;
      while (performance.now() < until); // pretend to wait for the database
      const rating = 3 + (id % 3);
      return `${'★'.repeat(rating)}${'☆'.repeat(5 - rating)} ${10 + id * 7} reviews · looked up at ${new Date().toISOString().slice(11, 23)}`;
    },
  };
}

/** One cookie's value (no cookie-parser needed for two cookies). */
function readCookie(req: express.Request, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, v] = part.trim().split('=');
    if (k === name && v !== undefined) return decodeURIComponent(v);
  }
  return undefined;
}
