// dogpile/express: one call that sets up an Express app's views with the dogpile cache tags
// installed, for Nunjucks, Eta or Handlebars. The engines are loaded only when chosen, so this module
// needs only the engine you use. The bare engine factories are re-exported for app.engine().

import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { ValidationError } from '../src/index.js';
import { type DogpileEtaPlugin, dogpileEta, type EtaLike, etaEngine } from './eta.js';
import { installPageOption } from './express-page.js';
import { type DogpileHandlebars, type HandlebarsEnv, handlebarsEngine, installHandlebars } from './handlebars.js';
import { installNunjucks, type NunjucksEnvironment, nunjucksEngine } from './nunjucks.js';
import { PageCache } from './page.js';
import {
  createFragmentSummary,
  type RenderCacheOptions,
  type TemplateCache,
  type TemplateCacheOptions,
  toTemplateCache,
} from './templates.js';

export { etaEngine } from './eta.js';
export {
  type ExpressPageOptions,
  type ExpressPageRequest,
  PageCache,
  type PageCacheMiddlewareOptions,
  type PageOptions,
  type PageVaryBy,
  pageCache,
} from './express-page.js';
export { handlebarsEngine } from './handlebars.js';
export { nunjucksEngine } from './nunjucks.js';
export {
  type PageCacheOptions,
  type PageClaim,
  type PageRequestLike,
  type ParsedPageOptions,
  parsePageOptions,
  type StoredPage,
} from './page.js';
export {
  createFragmentSummary,
  type FragmentEntry,
  type FragmentSummary,
  type RenderCacheOptions,
  TemplateCache,
  type TemplateCacheOptions,
} from './templates.js';

/** The parts of an Express application used here. */
export interface ExpressAppLike {
  /** Registers a template engine for files with extension `ext` (`app.engine`). */
  engine(ext: string, fn: (path: string, options: object, callback: (e: unknown, rendered?: string) => void) => void): unknown;
  /** Sets an application setting (`views`, `view engine`). */
  set(setting: string, value: unknown): unknown;
  /** The app's response prototype (where the `dogpile.page` render option is installed). */
  response?: object;
}

/** Engines {@link dogpileViews} can set up. */
export type ViewEngineName = 'nunjucks' | 'eta' | 'handlebars';

/** Options of {@link dogpileViews}: the engine, the views directory, and TemplateCache options. */
export type DogpileViewsOptions<E extends ViewEngineName = ViewEngineName> = Partial<TemplateCacheOptions> & {
  /** Which engine renders the views. */
  engine: E;
  /** The views directory (one directory). */
  views: string;
  /**
   * Use this TemplateCache instead of creating one from the options (to share it, or to listen to
   * its `'error'` events); `regions` and the other cache options are then not needed.
   */
  templateCache?: TemplateCache;
  /** Nunjucks only: watch and reload templates (default false). */
  watch?: boolean;
};

/** What {@link dogpileViews} returns for each engine. */
export interface ViewEnvironments {
  /** A `nunjucks.Environment` over the views directory. */
  nunjucks: NunjucksEnvironment & {
    /** The environment's options (`autoescape`, `watch`, ...). */
    opts?: object;
  };
  /** An `Eta` instance with the dogpile plugin. */
  eta: EtaLike & {
    /** The dogpile plugin installed on this instance (its `cache` is the TemplateCache). */
    readonly dogpile: DogpileEtaPlugin;
  };
  /** The Handlebars integration (`.handlebars` is the environment, `.compile` the async compiler). */
  handlebars: DogpileHandlebars;
}

const EXTENSIONS: Record<ViewEngineName, string> = { nunjucks: 'njk', eta: 'eta', handlebars: 'hbs' };

/**
 * Registers `engine` on the app with the cache tags installed, sets `views` and `view engine`
 * (`njk`, `eta` or `hbs`), and returns the engine's environment. Render one response uncached with
 * `res.render(view, { dogpile: { enabled: false } })` or `res.locals.dogpile = { enabled: false }`.
 */
export function dogpileViews<E extends ViewEngineName>(
  app: ExpressAppLike,
  options: DogpileViewsOptions<E>,
): ViewEnvironments[E] {
  if (options === null || typeof options !== 'object') throw new ValidationError('dogpileViews: options are required');
  const { engine, views: viewsOption, templateCache, watch, ...cacheOptions } = options;
  if (typeof viewsOption !== 'string') throw new ValidationError('dogpileViews: `views` must be a directory path');
  const views = resolve(viewsOption);
  const ext = EXTENSIONS[engine];
  if (ext === undefined) {
    throw new ValidationError(`dogpileViews: unknown engine ${JSON.stringify(engine)} (nunjucks, eta or handlebars)`);
  }
  if (templateCache === undefined && cacheOptions.regions === undefined) {
    throw new ValidationError('dogpileViews: give `regions` (or an existing `templateCache`)');
  }
  const cache = templateCache ?? toTemplateCache(cacheOptions as TemplateCacheOptions);
  const require = createRequire(import.meta.url);
  let env: ViewEnvironments[ViewEngineName];
  if (engine === 'nunjucks') {
    const nunjucks = require('nunjucks') as {
      Environment: new (loader: unknown, opts: object) => ViewEnvironments['nunjucks'];
      FileSystemLoader: new (path: string, opts: object) => unknown;
    };
    const nj = new nunjucks.Environment(new nunjucks.FileSystemLoader(views, { watch: watch ?? false }), { autoescape: true });
    installNunjucks(nj, cache);
    app.engine(ext, nunjucksEngine(nj));
    env = nj;
  } else if (engine === 'eta') {
    const { Eta } = require('eta') as { Eta: new (config: object) => EtaLike };
    const plugin = dogpileEta(cache);
    const eta = new Eta({ views, plugins: [plugin] }) as EtaLike & { dogpile: DogpileEtaPlugin };
    eta.dogpile = plugin;
    app.engine(ext, etaEngine(eta));
    env = eta;
  } else {
    const handlebars = require('handlebars') as HandlebarsEnv;
    const dh = installHandlebars(handlebars.create(), cache);
    app.engine(ext, handlebarsEngine(dh, { views }));
    env = dh;
  }
  app.set('views', views);
  app.set('view engine', ext);
  const pageKeys = { keyPrefix: `${cacheOptions.keyPrefix ?? 'tpl'}-page`, version: cacheOptions.version ?? '' };
  installPageOption(app, new PageCache({ regions: cache, ...pageKeys }), views, cache.enabled);
  return env as ViewEnvironments[E];
}

/** Options of {@link dogpileSummary}. */
export interface DogpileSummaryOptions {
  /**
   * Whether a request's fragments are annotated (`<!-- dogpile: hit|miss key=... -->`), e.g.
   * `(req) => req.query.annotate === '1'`. Ignored with a warning under `NODE_ENV=production`
   * unless the TemplateCache has `annotate: 'force'`. Default: never.
   */
  annotate?: (req: unknown) => boolean;
}

/**
 * Express middleware: gives every request a fresh fragment summary at `res.locals.dogpile.summary`
 * (`{ hits, misses, renderMs, savedMs, fragments }`), filled by the renders of that response, and
 * optionally turns on annotations for it. Keeps other `res.locals.dogpile` fields (`enabled`).
 *
 * ```ts
 * app.use(dogpileSummary({ annotate: (req) => req.query.annotate === '1' }));
 * res.render('page', locals, (err, html) => { console.log(res.locals.dogpile.summary); res.send(html); });
 * ```
 */
export function dogpileSummary(
  options: DogpileSummaryOptions = {},
): (req: unknown, res: { locals: Record<string, unknown> }, next: () => void) => void {
  if (options === null || typeof options !== 'object') throw new ValidationError('dogpileSummary: options must be an object');
  const { annotate } = options;
  if (annotate !== undefined && typeof annotate !== 'function') {
    throw new ValidationError(`dogpileSummary: annotate must be a function of the request, got ${typeof annotate}`);
  }
  return (req, res, next) => {
    const current = res.locals.dogpile;
    const base = current !== null && typeof current === 'object' ? (current as RenderCacheOptions) : {};
    const dogpile: RenderCacheOptions = { ...base, summary: createFragmentSummary() };
    if (annotate?.(req) === true) dogpile.annotate = true;
    res.locals.dogpile = dogpile;
    next();
  };
}
