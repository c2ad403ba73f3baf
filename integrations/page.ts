// dogpile page caching: whole rendered pages (Mako's `<%page cached="True">`) stored through a region
// with the dogpile guarantee: one render per key under a stampede, the stale page for everyone else
// while one request re-renders. This module is framework-neutral (options, keys with their vary
// dimensions, the claim protocol, the views digest); dogpile/express and dogpile/fastify wire it to
// their request and response objects. A page is stored only when the response that produced it was
// a 200 without Set-Cookie.

import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { BackendError, type CacheRegion, type DogpileError, encodeArg, LockTimeoutError, ValidationError } from '../src/index.js';
import { collectFragmentTags, fragmentTags, TemplateCache } from './templates.js';

/** What the vary dimensions and a key function may read from a request. */
export interface PageRequestLike {
  /** The request URL (path and query), as received; Express's `originalUrl` is preferred. */
  url?: string | undefined;
  /** Express: the URL before mounting rewrote `url`. */
  originalUrl?: string | undefined;
  /** Request headers, names in lower case (as Node gives them). */
  headers: Readonly<Record<string, string | string[] | undefined>>;
}

/**
 * The dimensions a cached page varies by, besides its key. Each one becomes part of the key, so two
 * requests that differ in one of them never share a page.
 */
export interface PageVaryBy<Req = PageRequestLike> {
  /** Request header names (case-insensitive), e.g. `['accept-language']`. */
  headers?: readonly string[];
  /** Query parameter names, or `true` for the whole query string (parameters sorted by name). */
  query?: readonly string[] | true;
  /** Any value computed from the request (e.g. the user's role); encoded like cache-key arguments. */
  request?: (req: Req) => unknown;
}

/** Options of one cached page (the render option `dogpile.page`, a route's page config, or `pageCache()`). */
export interface PageOptions<Req = PageRequestLike> {
  /**
   * The page's key: a string or number, or a function of the request returning one. Default: the
   * URL path (without the query string; name query parameters in `varyBy.query`).
   */
  key?: string | number | ((req: Req) => string | number);
  /** Seconds until the page is stale (then one request re-renders it). Default: the region's expiration. `-1`/`null`: never. */
  expire?: number | null;
  /** The dimensions the page varies by (see {@link PageVaryBy}). Default: none. */
  varyBy?: PageVaryBy<Req>;
  /** Region name (one of the regions given to the cache). Default: the default region. */
  region?: string;
  /**
   * Tags stored with the page (a string is one tag), or a function of the request returning them:
   * `region.invalidateTags` / `TemplateCache.invalidateTags` with one of them makes the page miss
   * (hard) or stale (soft). Tags of cached fragments rendered into the page are stored with it
   * too. Not part of the key. Default none.
   */
  tags?: string | readonly string[] | ((req: Req) => string | readonly string[]);
}

/** Options of a {@link PageCache}. */
export interface PageCacheOptions {
  /** One region, regions by name, or a TemplateCache whose regions pages share. Required. */
  regions: CacheRegion | Readonly<Record<string, CacheRegion>> | TemplateCache;
  /** Default region name, when `regions` is a record. Default: the only region, or `"default"`. */
  defaultRegion?: string;
  /** First component of every page key. Default `"page"`. */
  keyPrefix?: string;
  /** Part of every page key: changing it makes every cached page miss once. */
  version?: string | number;
  /**
   * Told about a backend failure the page cache absorbed (the page is then rendered without the
   * cache). Default: one process warning.
   */
  onError?: (error: DogpileError, info: { key: string }) => void;
}

/** A page as stored: the response headers worth replaying and the body. */
export interface StoredPage {
  /** Response headers (lower-case names) except per-response ones (Set-Cookie, Date, Content-Length, hop-by-hop). */
  headers: Record<string, string | string[]>;
  /** The body as sent. */
  body: string | Uint8Array;
}

/**
 * How a request takes part in a page's single flight ({@link PageCache.claim}):
 * - `hit`: serve `page` (fresh, or stale while another request re-renders it);
 * - `create`: this request renders the page; call `finish` once when its response is complete, with
 *   the page to store, or `undefined` when the response must not be cached;
 * - `pass`: render this request normally, without the cache (the page's creator produced a response
 *   that may not be shared, or the cache is failing).
 */
export type PageClaim =
  | {
      /** Serve the stored page. */
      readonly kind: 'hit';
      /** The page to serve. */
      readonly page: StoredPage;
    }
  | {
      /** This request renders the page. */
      readonly kind: 'create';
      /** Call once when the response is complete: the page to store, or `undefined` to store nothing. */
      finish(page: StoredPage | undefined): void;
    }
  | {
      /** Render this request without the cache. */
      readonly kind: 'pass';
    };

/** Validated page options (see {@link parsePageOptions}). */
export interface ParsedPageOptions<Req = PageRequestLike> {
  /** {@link PageOptions.key}. */
  readonly key: string | number | ((req: Req) => string | number) | undefined;
  /** {@link PageOptions.expire}, in seconds. */
  readonly expire: number | null | undefined;
  /** {@link PageVaryBy.headers}, lower-cased. */
  readonly headers: readonly string[];
  /** {@link PageVaryBy.query}. */
  readonly query: readonly string[] | true | undefined;
  /** {@link PageVaryBy.request}. */
  readonly request: ((req: Req) => unknown) | undefined;
  /** {@link PageOptions.region}. */
  readonly region: string | undefined;
  /** {@link PageOptions.tags}: the tags, or a function of the request. */
  readonly tags?: readonly string[] | ((req: Req) => string | readonly string[]) | undefined;
}

const PAGE_OPTIONS = new Set(['key', 'expire', 'varyBy', 'region', 'tags']);
const VARY_OPTIONS = new Set(['headers', 'query', 'request']);
/**
 * Headers that describe one response or one connection, never replayed from the cache. The body is
 * recorded as the handler wrote it (before any compression), so its Content-Encoding is not stored
 * either: a compression layer encodes the replay afresh for the request at hand.
 */
const UNSTORED_HEADERS = new Set([
  'set-cookie',
  'content-encoding',
  'date',
  'content-length',
  'connection',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
  'proxy-connection',
]);
/** What a creator stores when its response may not be shared; never written (shouldCacheFn). */
const NOT_CACHEABLE = Object.freeze({ notCacheable: true as const });
type Entry = StoredPage | typeof NOT_CACHEABLE;

/**
 * Validates page options; a bad one is a {@link ValidationError} naming `where`, the option and the
 * value. `true` means "all defaults".
 */
export function parsePageOptions<Req = PageRequestLike>(value: unknown, where: string): ParsedPageOptions<Req> {
  if (value === true)
    return { key: undefined, expire: undefined, headers: [], query: undefined, request: undefined, region: undefined };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ValidationError(`${where}: page options must be true or an object, got ${describe(value)}`);
  }
  const options = value as Record<string, unknown>;
  for (const name of Object.keys(options)) {
    if (!PAGE_OPTIONS.has(name)) {
      throw new ValidationError(
        `${where}: unknown page option ${JSON.stringify(name)} (allowed: ${[...PAGE_OPTIONS].join(', ')})`,
      );
    }
  }
  const { key, expire, varyBy, region } = options;
  const tags =
    options.tags === undefined || typeof options.tags === 'function'
      ? (options.tags as ((req: Req) => string | readonly string[]) | undefined)
      : fragmentTags(options.tags, `${where}: page option tags`);
  if (
    !(
      key === undefined ||
      typeof key === 'string' ||
      typeof key === 'function' ||
      (typeof key === 'number' && Number.isFinite(key))
    )
  ) {
    throw new ValidationError(
      `${where}: page option key must be a string, a number or a function of the request, got ${describe(key)}`,
    );
  }
  if (
    !(
      expire === undefined ||
      expire === null ||
      (typeof expire === 'number' && (expire >= 0 || expire === -1) && Number.isFinite(expire))
    )
  ) {
    throw new ValidationError(
      `${where}: page option expire must be a number of seconds (or -1/null for never), got ${describe(expire)}`,
    );
  }
  if (!(region === undefined || typeof region === 'string')) {
    throw new ValidationError(`${where}: page option region must be a region name, got ${describe(region)}`);
  }
  let headers: readonly string[] = [];
  let query: readonly string[] | true | undefined;
  let request: ((req: Req) => unknown) | undefined;
  if (varyBy !== undefined) {
    if (varyBy === null || typeof varyBy !== 'object' || Array.isArray(varyBy)) {
      throw new ValidationError(
        `${where}: page option varyBy must be an object ({ headers, query, request }), got ${describe(varyBy)}`,
      );
    }
    const vary = varyBy as Record<string, unknown>;
    for (const name of Object.keys(vary)) {
      if (!VARY_OPTIONS.has(name)) {
        throw new ValidationError(
          `${where}: unknown varyBy option ${JSON.stringify(name)} (allowed: ${[...VARY_OPTIONS].join(', ')})`,
        );
      }
    }
    if (vary.headers !== undefined) {
      if (!isNameList(vary.headers)) {
        throw new ValidationError(`${where}: varyBy.headers must be an array of header names, got ${describe(vary.headers)}`);
      }
      headers = vary.headers.map((h) => h.toLowerCase());
    }
    if (vary.query !== undefined) {
      if (!(vary.query === true || isNameList(vary.query))) {
        throw new ValidationError(
          `${where}: varyBy.query must be an array of parameter names or true, got ${describe(vary.query)}`,
        );
      }
      query = vary.query === true ? true : [...vary.query];
    }
    if (vary.request !== undefined) {
      if (typeof vary.request !== 'function') {
        throw new ValidationError(`${where}: varyBy.request must be a function of the request, got ${describe(vary.request)}`);
      }
      request = vary.request as (req: Req) => unknown;
    }
  }
  return {
    key: key as ParsedPageOptions<Req>['key'],
    expire: expire as number | null | undefined,
    headers,
    query,
    request,
    region: region as string | undefined,
    tags,
  };
}

/**
 * Whole-page cache over one or more regions. `claim` is for pages produced by a request's own
 * handler (route middleware, Fastify routes); `render` is for pages produced by a render function
 * that needs no response object (Express `res.render` with a page option).
 */
export class PageCache {
  private readonly lookup: (name?: string) => CacheRegion;
  private readonly prefix: string;
  private readonly onError: (error: DogpileError, info: { key: string }) => void;

  constructor(options: PageCacheOptions) {
    if (options === null || typeof options !== 'object') {
      throw new ValidationError(`PageCache: options must be an object with at least \`regions\`, got ${describe(options)}`);
    }
    const { regions } = options;
    if (regions instanceof TemplateCache) {
      this.lookup = (name) => regions.region(name);
    } else {
      // TemplateCache validates `regions` and `defaultRegion` and resolves names the same way.
      const resolver = new TemplateCache({
        regions: regions as TemplateCacheRegions,
        syncMax: 1,
        ...(options.defaultRegion === undefined ? {} : { defaultRegion: options.defaultRegion }),
      });
      this.lookup = (name) => resolver.region(name);
    }
    const version = options.version === undefined ? '' : String(options.version);
    this.prefix = `${options.keyPrefix ?? 'page'}|${version}|`;
    if (options.onError !== undefined && typeof options.onError !== 'function') {
      throw new ValidationError(`PageCache: onError must be a function, got ${describe(options.onError)}`);
    }
    this.onError = options.onError ?? warnOnce();
  }

  /** The region a page uses; an unknown name is a {@link ValidationError}. */
  region(name?: string): CacheRegion {
    return this.lookup(name);
  }

  /**
   * The stored key of a page: `prefix | version | scope | key | vary`, where `scope` tells the kind
   * of page (`view:<name>@<views digest>` for rendered views, `route:<method>` for handlers). A key
   * function or `varyBy.request` that returns something unkeyable is a {@link ValidationError}.
   */
  key<Req extends PageRequestLike>(scope: string, options: ParsedPageOptions<Req>, req: Req): string {
    const url = req.originalUrl ?? req.url ?? '/';
    const q = url.indexOf('?');
    let base: unknown;
    if (options.key === undefined) base = q < 0 ? url : url.slice(0, q);
    else if (typeof options.key === 'function') {
      base = options.key(req);
      if (!(typeof base === 'string' || (typeof base === 'number' && Number.isFinite(base)))) {
        throw new ValidationError(`page option key: the key function must return a string or a number, got ${describe(base)}`);
      }
    } else base = options.key;
    let vary = '';
    for (const name of options.headers) vary += `|h${encodeArg(name)}=${encodeArg(req.headers[name])}`;
    if (options.query !== undefined) {
      const params = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
      if (options.query === true) {
        const pairs = [...params].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
        vary += `|q${encodeArg(pairs)}`;
      } else {
        for (const name of options.query) vary += `|q${encodeArg(name)}=${encodeArg(params.getAll(name))}`;
      }
    }
    if (options.request !== undefined) vary += `|r${encodeArg(options.request(req))}`;
    return `${this.prefix}${scope}|${encodeArg(base)}${vary}`;
  }

  /**
   * The tags of a page for `req`: {@link PageOptions.tags}, computed when it is a function (a bad
   * result is a {@link ValidationError}); `undefined` without tags.
   */
  tags<Req extends PageRequestLike>(options: ParsedPageOptions<Req>, req: Req): readonly string[] | undefined {
    const tags = options.tags;
    if (tags === undefined || typeof tags !== 'function') return tags;
    return fragmentTags(tags(req), 'page option tags: the tags function');
  }

  /**
   * The page under `key`, or the one `render()` produces (stored), with single flight. `render` must
   * not depend on anything outside the key. A backend failure renders without the cache.
   */
  async render(
    key: string,
    render: () => Promise<string>,
    options: ParsedPageOptions<never>,
    tags?: readonly string[],
  ): Promise<string> {
    const region = this.lookup(options.region);
    // Set by our creator, so a failure after the render (the store) does not render twice.
    const state: { html?: string } = {};
    let storedItself = false;
    try {
      return await region.getOrCreate<string>(
        key,
        async () => {
          // The tags of the cached fragments rendered into the page are stored with it (the page
          // holds their HTML): the creator then stores the page itself, under the region's lock.
          const collected = new Set<string>(tags);
          const declared = collected.size;
          const html = String(await collectFragmentTags(collected, render));
          state.html = html;
          if (collected.size > declared) {
            await region.set(key, html, { tags: [...collected] });
            storedItself = true;
          }
          return html;
        },
        {
          ...(options.expire === undefined ? {} : { expirationTime: options.expire }),
          ...(tags === undefined || tags.length === 0 ? {} : { tags }),
          shouldCacheFn: () => !storedItself,
        },
      );
    } catch (err) {
      if (!isCacheFailure(err)) throw err;
      this.onError(err, { key });
      return state.html ?? render();
    }
  }

  /**
   * Joins this request to the single flight of the page under `key` (see {@link PageClaim}). The
   * first request for a missing or stale page gets `create` and runs its handler; concurrent ones
   * wait for its page (missing) or get the stale one at once. A creator that finishes with
   * `undefined` stores nothing and its waiters get `pass`.
   */
  claim(key: string, options: ParsedPageOptions<never>, tags?: readonly string[]): Promise<PageClaim> {
    const region = this.lookup(options.region);
    return new Promise<PageClaim>((resolve) => {
      let decided = false;
      const result = region.getOrCreate<Entry>(
        key,
        () => {
          if (decided) {
            // The region regenerates in the background (backgroundRefresh / asyncCreationRunner)
            // after this request already took the stale page: a page needs a request to render it.
            // Dropping the entry makes the next request render it (waited for, once).
            return region.delete(key).then(
              () => NOT_CACHEABLE,
              () => NOT_CACHEABLE,
            );
          }
          decided = true;
          return new Promise<Entry>((done) => {
            let finished = false;
            resolve({
              kind: 'create',
              finish(page) {
                if (finished) return;
                finished = true;
                done(page ?? NOT_CACHEABLE);
              },
            });
          });
        },
        {
          ...(options.expire === undefined ? {} : { expirationTime: options.expire }),
          ...(tags === undefined || tags.length === 0 ? {} : { tags }),
          shouldCacheFn: (entry) => !isNotCacheable(entry),
        },
      );
      result.then(
        (entry) => {
          if (decided) return;
          decided = true;
          resolve(isNotCacheable(entry) ? { kind: 'pass' } : { kind: 'hit', page: entry });
        },
        (err: unknown) => {
          if (isCacheFailure(err)) this.onError(err, { key });
          if (decided) return;
          decided = true;
          resolve({ kind: 'pass' });
        },
      );
    });
  }
}

/** Builds a {@link PageCache} from options, or passes an existing one through. */
export function toPageCache(options: PageCacheOptions | PageCache): PageCache {
  return options instanceof PageCache ? options : new PageCache(options);
}

/**
 * The response headers of a page worth storing: everything except Set-Cookie, Date, Content-Length,
 * Content-Encoding and connection headers; numbers become strings.
 */
export function storableHeaders(headers: Readonly<Record<string, unknown>>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (UNSTORED_HEADERS.has(lower) || value === undefined) continue;
    out[lower] = Array.isArray(value) ? value.map(String) : String(value);
  }
  return out;
}

/**
 * A digest of every file under `dir` (names and contents), so that editing any view, layout or
 * partial makes every cached page of those views miss once. Computed once per directory unless
 * `refresh` (e.g. while templates are not cached, in development).
 */
export function viewsDigest(dir: string, refresh = false): string {
  let digest = refresh ? undefined : digests.get(dir);
  if (digest === undefined) {
    const hash = createHash('sha1');
    const walk = (path: string): void => {
      let names: string[];
      try {
        names = readdirSync(path).sort();
      } catch {
        return;
      }
      for (const name of names) {
        const full = join(path, name);
        let stat: ReturnType<typeof statSync>;
        try {
          stat = statSync(full);
        } catch {
          continue;
        }
        if (stat.isDirectory()) walk(full);
        else if (stat.isFile()) {
          hash.update(relative(dir, full)).update('\0');
          hash.update(readFileSync(full)).update('\0');
        }
      }
    };
    walk(dir);
    digest = hash.digest('hex').slice(0, 12);
    digests.set(dir, digest);
  }
  return digest;
}

// ------------------------------------------------------------------------------------------------

type TemplateCacheRegions = CacheRegion | Readonly<Record<string, CacheRegion>>;

const digests = new Map<string, string>();

function isNotCacheable(entry: Entry): entry is typeof NOT_CACHEABLE {
  return (entry as { notCacheable?: unknown }).notCacheable === true;
}

function isNameList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string' && v !== '');
}

function isCacheFailure(err: unknown): err is DogpileError {
  return err instanceof BackendError || err instanceof LockTimeoutError;
}

function warnOnce(): (error: DogpileError) => void {
  let warned = false;
  return (error) => {
    if (warned) return;
    warned = true;
    process.emitWarning(
      `dogpile pages: a cache backend failed and a page was rendered without it (${error.message}). Pass onError to see every failure.`,
      'DogpileWarning',
    );
  };
}

function describe(value: unknown): string {
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  if (typeof value === 'object') return 'an object';
  return String(value);
}
