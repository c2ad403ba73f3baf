// The example site's Express app: a product list with per-item cached partials and a sidebar block
// cached per user, rendered by Nunjucks, Eta or Handlebars through dogpile/express. server.ts runs it;
// the integration tests drive it over HTTP.

import { fileURLToPath } from 'node:url';
import express from 'express';
import {
  dogpileViews,
  type TemplateCache,
  TemplateCache as TemplateCacheClass,
  type ViewEngineName,
} from '../../integrations/express.js';
import type { DogpileHandlebars } from '../../integrations/handlebars.js';
import type { CacheRegion } from '../../src/index.js';

/** A product as the "database" holds it. `updatedAt` is part of each card's key. */
export interface Product {
  id: number;
  name: string;
  price: number;
  updatedAt: number;
}

/** A signed-in user (here: picked with `?user=`). */
export interface User {
  id: string;
  name: string;
  recent: string[];
}

/** The example's in-memory data, mutable so tests (and you) can watch fragments go stale. */
export interface ExampleDb {
  products: Product[];
  users: Record<string, User>;
}

/** Options of {@link createApp}. */
export interface ExampleOptions {
  engine: ViewEngineName;
  /** The region fragments are stored in (memory or Redis). */
  region: CacheRegion;
}

/** Builds the app; returns it with its data and the TemplateCache (for invalidation). */
export function createApp(options: ExampleOptions): { app: express.Express; db: ExampleDb; cache: TemplateCache } {
  const db: ExampleDb = {
    products: Array.from({ length: 12 }, (_, i) => ({
      id: i + 1,
      name: i === 0 ? 'Salt & "Pepper" <grinder>' : `Product ${i + 1}`,
      price: 5 + i * 2.5,
      updatedAt: 1,
    })),
    users: {
      alice: { id: 'alice', name: 'Alice', recent: ['Product 2', 'Product 5'] },
      bob: { id: 'bob', name: "Bob O'Brien", recent: ['Product 7'] },
    },
  };
  const app = express();
  const cache = new TemplateCacheClass({ regions: { pages: options.region } });
  cache.on('error', (err: Error) => console.error(`dogpile: cache backend failed, rendered inline: ${err.message}`));
  const views = fileURLToPath(new URL(`./views/${options.engine}`, import.meta.url));
  const env = dogpileViews(app, { engine: options.engine, views, templateCache: cache });
  if (options.engine === 'handlebars') {
    // Handlebars cannot call methods or build arrays in templates: two small helpers.
    const hbs = (env as DogpileHandlebars).handlebars;
    hbs.registerHelper('price', (n: unknown) => (typeof n === 'number' ? n.toFixed(2) : ''));
    hbs.registerHelper('key', (...args: unknown[]) => args.slice(0, -1));
  }

  app.use((req, res, next) => {
    const name = typeof req.query.user === 'string' ? req.query.user : 'alice';
    res.locals.user = db.users[name] ?? db.users.alice;
    next();
  });

  app.get('/', (req, res) => {
    res.render('products', {
      title: 'Products',
      products: db.products,
      // ?fresh=1 renders this response without the fragment cache (previews, admins).
      ...(req.query.fresh ? { dogpile: { enabled: false } } : {}),
    });
  });

  return { app, db, cache };
}
