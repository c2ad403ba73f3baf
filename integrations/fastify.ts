// dogpile/fastify: the cache blocks and partials of dogpile/nunjucks, dogpile/eta and
// dogpile/handlebars under @fastify/view, and whole-page caching for Fastify routes. The view engine
// is set up through @fastify/view's own options (its nunjucks `onConfigure` hook, an Eta instance
// with the dogpile plugin rendering asynchronously, a Handlebars engine whose templates resolve their
// blocks asynchronously); pages use PageCache (./page.ts) from onRequest/onSend/onResponse hooks.

import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ValidationError } from '../src/index.js';
import { type DogpileEtaPlugin, dogpileEta, type EtaLike } from './eta.js';
import { type AsyncTemplate, type DogpileHandlebars, type HandlebarsEnv, installHandlebars } from './handlebars.js';
import { installNunjucks, type NunjucksEnvironment } from './nunjucks.js';
import {
  PageCache,
  type PageOptions,
  type ParsedPageOptions,
  parsePageOptions,
  type StoredPage,
  storableHeaders,
} from './page.js';
import { type TemplateCache, type TemplateCacheOptions, toTemplateCache } from './templates.js';

export { PageCache, type PageOptions, type PageVaryBy } from './page.js';
export { TemplateCache, type TemplateCacheOptions } from './templates.js';

/** Engines this module sets up for @fastify/view. */
export type FastifyViewEngineName = 'nunjucks' | 'eta' | 'handlebars';

/** Options of {@link dogpileViewOptions}: the engine, the templates directory and TemplateCache options. */
export type DogpileViewOptions = Partial<TemplateCacheOptions> & {
  /** Which engine renders the views. */
  engine: FastifyViewEngineName;
  /** The templates directory (@fastify/view's `root`). */
  templates: string;
  /** Use this TemplateCache instead of creating one from the options (`regions` is then not needed). */
  templateCache?: TemplateCache;
  /**
   * Further @fastify/view options, passed through (`layout`, `defaultContext`, `production`,
   * `propertyName`, `options`, …). For Nunjucks your `options.onConfigure` still runs; for Eta
   * `options.async` defaults to true (the cache blocks need asynchronous rendering).
   */
  view?: Readonly<Record<string, unknown>>;
};

/** What {@link dogpileViewOptions} returns: options for `fastify.register(fastifyView, …)`, plus the cache. */
export interface DogpileViewSetup {
  /** Pass to `fastify.register(fastifyView, setup.viewOptions)`. */
  readonly viewOptions: Record<string, unknown> & {
    /** The engine for @fastify/view, keyed by its name (`{ nunjucks }`, `{ eta }`, `{ handlebars }`). */
    engine: Record<string, unknown>;
    /** The templates folder, as given in `templates`. */
    root: string;
  };
  /** The TemplateCache behind the tags (for `get`, `set`, `invalidate`, `'error'` events). */
  readonly cache: TemplateCache;
  /**
   * The engine's environment: the Eta instance, or the Handlebars integration (register helpers on
   * `.handlebars`). For Nunjucks it is set once @fastify/view has configured the environment.
   */
  readonly env: () => NunjucksEnvironment | DogpileEtaInstance | DogpileHandlebars | undefined;
}

/** An Eta instance with the dogpile plugin installed. */
export type DogpileEtaInstance = EtaLike & {
  /** The installed plugin (its TemplateCache and options). */
  readonly dogpile: DogpileEtaPlugin;
};

/** Page options of a route (`config: { dogpile: { page } }`): the request functions receive the FastifyRequest. */
export type FastifyPageOptions = PageOptions<FastifyRequest>;

/** Options of the {@link dogpileFastify} plugin. */
export type DogpileFastifyOptions = Partial<DogpileViewOptions> & {
  /** Page cache settings shared by all routes. */
  pages?: {
    /** First component of every page key. Default `"page"`. */
    keyPrefix?: string;
    /** Part of every page key: changing it makes every page miss once. */
    version?: string | number;
    /** Largest payload stored, in bytes; a bigger one is sent but not cached. Default 4 MiB. */
    maxSize?: number;
  };
};

/** What the plugin decorates the instance with, as `fastify.dogpile`. */
export interface FastifyDogpile {
  /** The TemplateCache of the views (absent without `engine`). */
  readonly cache: TemplateCache | undefined;
  /** The page cache of the routes. */
  readonly pages: PageCache;
  /** The view engine's environment (see {@link DogpileViewSetup.env}). */
  readonly env: DogpileViewSetup['env'];
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Set by dogpile/fastify's plugin. */
    dogpile: FastifyDogpile;
  }
  interface FastifyContextConfig {
    /** dogpile/fastify: `{ page: true | FastifyPageOptions }` caches the route's whole response. */
    dogpile?: { page?: true | FastifyPageOptions };
  }
}

/**
 * Options for @fastify/view with the dogpile cache tags installed on `engine`:
 *
 * ```ts
 * const { viewOptions } = dogpileViewOptions({ engine: 'eta', templates: 'views', regions: region });
 * await fastify.register(fastifyView, viewOptions);
 * ```
 *
 * Nunjucks: `{% cache %}` / `{% cachedinclude %}`; Eta: `<% cache %>` / `cachedInclude()` (rendered
 * with `renderAsync`); Handlebars: `{{#cache}}` / `{{cachedPartial}}`, including the partials of
 * @fastify/view's `options.partials`. `reply.view(page, { dogpile: { enabled: false } })` renders
 * one response uncached.
 */
export function dogpileViewOptions(options: DogpileViewOptions): DogpileViewSetup {
  if (options === null || typeof options !== 'object') throw new ValidationError('dogpileViewOptions: options are required');
  const { engine, templates, templateCache, view = {}, ...cacheOptions } = options;
  if (typeof templates !== 'string') {
    throw new ValidationError(`dogpileViewOptions: \`templates\` must be a directory path, got ${describe(templates)}`);
  }
  if (view === null || typeof view !== 'object') {
    throw new ValidationError(`dogpileViewOptions: \`view\` must be an object of @fastify/view options, got ${describe(view)}`);
  }
  if (templateCache === undefined && cacheOptions.regions === undefined) {
    throw new ValidationError('dogpileViewOptions: give `regions` (or an existing `templateCache`)');
  }
  const cache = templateCache ?? toTemplateCache(cacheOptions as TemplateCacheOptions);
  const root = resolve(templates);
  const require = createRequire(import.meta.url);
  const userOptions = (view as { options?: Record<string, unknown> }).options ?? {};
  const base = { ...view, root };
  if (engine === 'nunjucks') {
    let env: NunjucksEnvironment | undefined;
    const userConfigure = userOptions.onConfigure as ((env: NunjucksEnvironment) => void) | undefined;
    const viewOptions = {
      ...base,
      engine: { nunjucks: require('nunjucks') },
      options: {
        ...userOptions,
        onConfigure(e: NunjucksEnvironment) {
          installNunjucks(e, cache);
          env = e;
          userConfigure?.(e);
        },
      },
    };
    return { viewOptions, cache, env: () => env };
  }
  if (engine === 'eta') {
    const { Eta } = require('eta') as { Eta: new (config: object) => EtaLike };
    const plugin = dogpileEta(cache);
    const eta = new Eta({ views: root, plugins: [plugin] }) as EtaLike & { dogpile: DogpileEtaPlugin };
    eta.dogpile = plugin;
    const viewOptions = { ...base, engine: { eta }, options: { async: true, ...userOptions } };
    return { viewOptions, cache, env: () => eta };
  }
  if (engine === 'handlebars') {
    const handlebars = require('handlebars') as HandlebarsEnv;
    const dh = installHandlebars(handlebars.create(), cache);
    const viewOptions = { ...base, engine: { handlebars: handlebarsViewEngine(dh) }, options: { ...userOptions } };
    return { viewOptions, cache, env: () => dh };
  }
  throw new ValidationError(`dogpileViewOptions: unknown engine ${describe(engine)} (nunjucks, eta or handlebars)`);
}

/**
 * The Fastify plugin: registers @fastify/view for `engine` (when given) with the cache tags, and
 * caches whole responses of routes that ask for it in their config:
 *
 * ```ts
 * await fastify.register(dogpileFastify, { engine: 'nunjucks', templates: 'views', regions: region });
 * fastify.get('/products', { config: { dogpile: { page: { expire: 60, varyBy: { query: ['page'] } } } } },
 *   (req, reply) => reply.view('products.njk', { products }));
 * ```
 *
 * A page route caches GET responses only: the first request for a missing or stale page runs the
 * handler and its payload is stored when the response is a 200 without Set-Cookie; concurrent
 * requests wait for it (missing) or get the stale page at once. The key defaults to the URL path;
 * bad page options throw a ValidationError when the route is added. Routes must be added after
 * the plugin is registered. Decorates `fastify.dogpile` ({@link FastifyDogpile}).
 */
export const dogpileFastify = Object.assign(
  async function dogpileFastify(fastify: FastifyInstance, options: DogpileFastifyOptions): Promise<void> {
    const { pages: pageSettings = {}, ...rest } = options ?? {};
    let setup: DogpileViewSetup | undefined;
    if (rest.engine !== undefined) {
      setup = dogpileViewOptions(rest as DogpileViewOptions);
      await fastify.register(createRequire(import.meta.url)('@fastify/view'), setup.viewOptions);
    }
    const regions = setup?.cache ?? rest.templateCache ?? rest.regions;
    if (regions === undefined) throw new ValidationError('dogpileFastify: give `regions` (or an `engine` and `templateCache`)');
    const { maxSize, ...keys } = pageSettings;
    if (!(maxSize === undefined || (typeof maxSize === 'number' && maxSize >= 0 && Number.isFinite(maxSize)))) {
      throw new ValidationError(`dogpileFastify: pages.maxSize must be a number of bytes, got ${describe(maxSize)}`);
    }
    const pages = new PageCache({
      regions,
      ...(rest.defaultRegion === undefined ? {} : { defaultRegion: rest.defaultRegion }),
      ...keys,
    });
    fastify.decorate('dogpile', { cache: setup?.cache, pages, env: setup?.env ?? (() => undefined) });
    installPageHooks(
      fastify,
      pages,
      maxSize ?? 4 * 1024 * 1024,
      setup?.cache.enabled ?? rest.templateCache?.enabled ?? rest.enabled ?? true,
    );
  },
  // Like fastify-plugin: the hooks and decorators apply to the registering scope.
  { [Symbol.for('skip-override')]: true, [Symbol.for('fastify.display-name')]: 'dogpile' },
);

// ------------------------------------------------------------------------------------------------

const PARSED = Symbol('dogpile page options');
const SOURCE = Symbol('dogpile handlebars source');

type PageState =
  | { readonly mode: 'hit' }
  | { readonly mode: 'create'; finish(page: StoredPage | undefined): void; body?: string | Uint8Array; unstorable?: boolean };

function installPageHooks(fastify: FastifyInstance, pages: PageCache, limit: number, enabled: boolean): void {
  const states = new WeakMap<FastifyRequest, PageState>();
  fastify.addHook('onRoute', (route) => {
    const page = route.config?.dogpile?.page;
    if (page === undefined) return;
    const parsed = parsePageOptions<FastifyRequest>(page, `route ${String(route.method)} ${route.url} config.dogpile.page`);
    pages.region(parsed.region);
    route.config = { ...route.config, dogpile: { ...route.config?.dogpile, [PARSED]: parsed } } as typeof route.config;
  });
  fastify.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const dogpile = request.routeOptions.config?.dogpile as { [PARSED]?: ParsedPageOptions<FastifyRequest> } | undefined;
    const parsed = dogpile?.[PARSED];
    if (parsed === undefined || !enabled || request.method !== 'GET') return;
    if (reply.statusCode !== 200 || reply.getHeader('set-cookie') !== undefined) return;
    const claim = await pages.claim(
      pages.key('route:GET', parsed, request),
      parsed as ParsedPageOptions<never>,
      pages.tags(parsed, request),
    );
    if (claim.kind === 'pass') return;
    if (claim.kind === 'hit') {
      states.set(request, { mode: 'hit' });
      const body = typeof claim.page.body === 'string' ? claim.page.body : Buffer.from(claim.page.body);
      return reply.code(200).headers(claim.page.headers).send(body);
    }
    states.set(request, { mode: 'create', finish: claim.finish });
    // A connection closed before the response finished: nothing to store, waiters render themselves.
    reply.raw.once('close', () => claim.finish(undefined));
  });
  fastify.addHook('onSend', async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    const state = states.get(request);
    // A payload already encoded by an earlier onSend hook (compression) is not the page itself.
    if (state?.mode === 'create' && reply.getHeader('content-encoding') !== undefined) state.unstorable = true;
    else if (state?.mode === 'create') {
      const size = typeof payload === 'string' ? Buffer.byteLength(payload) : payload instanceof Uint8Array ? payload.length : -1;
      if (size < 0 || size > limit) state.unstorable = true;
      else state.body = typeof payload === 'string' ? payload : Buffer.from(payload as Uint8Array);
    }
    return payload;
  });
  fastify.addHook('onResponse', async (request: FastifyRequest, reply: FastifyReply) => {
    const state = states.get(request);
    if (state?.mode !== 'create') return;
    const ok =
      !state.unstorable && state.body !== undefined && reply.statusCode === 200 && reply.getHeader('set-cookie') === undefined;
    state.finish(ok ? { headers: storableHeaders(reply.getHeaders()), body: state.body as string | Uint8Array } : undefined);
  });
}

/**
 * A Handlebars "engine" for @fastify/view: `compile` returns dogpile's async templates (blocks are
 * resolved after the synchronous pass), and `registerPartial` registers partials through dogpile
 * so that their own blocks are keyed by the partial's name.
 */
function handlebarsViewEngine(dh: DogpileHandlebars): {
  compile(source: string, options?: object): AsyncTemplate;
  registerPartial(name: string, partial: unknown): void;
} {
  return {
    compile(source, options) {
      const template = dh.compile(String(source), options as Parameters<DogpileHandlebars['compile']>[1]);
      return Object.assign(template, { [SOURCE]: String(source) });
    },
    registerPartial(name, partial) {
      const source = (partial as { [SOURCE]?: unknown } | null)?.[SOURCE];
      if (typeof source === 'string') dh.registerPartial(name, source);
      else if (typeof partial === 'string') dh.registerPartial(name, partial);
      else dh.handlebars.registerPartial(name, partial as never);
    },
  };
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null) return 'null';
  return typeof value === 'object' ? 'an object' : String(value);
}
