// Whole-page caching for Express, in two forms over PageCache (./page.ts):
// - the render option: `res.render(view, { dogpile: { page: { key, expire, varyBy } } })` on an app
//   set up by dogpileViews (installPageOption patches that app's `res.render`); the render itself is
//   the creator, so only the winner of a stampede renders and stale pages can refresh in the background;
// - the route middleware `pageCache(options)`, for any handler: the first request runs the handler
//   and its finished response is recorded; concurrent requests get that page (or the stale one).
// Either way a response that is not a 200 or that sets a cookie is never stored.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { ValidationError } from '../src/index.js';
import {
  type PageCache,
  type PageCacheOptions,
  type PageClaim,
  type PageOptions,
  type PageRequestLike,
  type ParsedPageOptions,
  parsePageOptions,
  type StoredPage,
  storableHeaders,
  toPageCache,
  viewsDigest,
} from './page.js';
import { renderEnabled } from './templates.js';

export { PageCache, type PageCacheOptions, type PageOptions, type PageVaryBy } from './page.js';

/** The request as the page options' functions see it (an Express request). */
export type ExpressPageRequest = IncomingMessage &
  PageRequestLike & {
    /** The URL before mounting rewrote `url`. */
    originalUrl: string;
    /** The HTTP method. */
    method: string;
  };

/** Page options for Express (`key` and `varyBy.request` receive the Express request). */
export type ExpressPageOptions<Req = ExpressPageRequest> = PageOptions<Req>;

/** Options of {@link pageCache}: where pages live, and the page options of the route. */
export type PageCacheMiddlewareOptions<Req = ExpressPageRequest> = PageCacheOptions &
  PageOptions<Req> & {
    /** Largest body recorded, in bytes; a bigger response is sent but not cached. Default 4 MiB. */
    maxSize?: number;
  };

type Done = (err: unknown, html?: string) => void;

interface ExpressResponseLike extends ServerResponse {
  req: ExpressPageRequest & { next?: (err?: unknown) => void };
  locals: Record<string, unknown>;
  render(view: string, options?: object | Done, callback?: Done): void;
  send(body: unknown): unknown;
  status(code: number): unknown;
}

/**
 * Makes `res.render(view, { dogpile: { page } })` cache the whole page on `app` (called by
 * dogpileViews). `page` is `true` or {@link PageOptions}. The page key is the view name, a digest
 * of every file under `views` (so an edited template never serves an old page), the key (default:
 * the URL path) and the vary dimensions. Responses whose status is not 200 or that already set a
 * cookie when rendering render uncached and store nothing. `dogpile: { enabled: false }` (render
 * option or `res.locals`) turns the page cache off for one render too, and `enabled: false` (the
 * TemplateCache's master switch) for all of them.
 */
export function installPageOption(app: { response?: object }, pages: PageCache, views: string, enabled = true): void {
  const proto = app.response as ExpressResponseLike | undefined;
  if (proto === undefined || typeof proto.render !== 'function') return;
  const original = proto.render;
  proto.render = function render(this: ExpressResponseLike, view: string, options?: object | Done, callback?: Done) {
    const locals = typeof options === 'function' ? undefined : (options as { dogpile?: { page?: unknown } } | undefined);
    const page = locals?.dogpile?.page;
    if (page === undefined || page === false) return original.call(this, view, options, callback);
    const done: Done =
      (typeof options === 'function' ? (options as Done) : callback) ??
      ((err, html) => (err ? this.req.next?.(err) : this.send(html)));
    let parsed: ParsedPageOptions<ExpressPageRequest>;
    let key: string;
    let tags: readonly string[] | undefined;
    try {
      parsed = parsePageOptions<ExpressPageRequest>(page, `res.render(${JSON.stringify(view)}) dogpile.page`);
      if (!enabled || !renderEnabled(locals) || !renderEnabled(this.locals) || !shareable(this)) {
        return original.call(this, view, locals, done);
      }
      const app = (this.req as { app?: { enabled?(setting: string): boolean } }).app;
      const cacheViews = app?.enabled?.('view cache') ?? true;
      key = pages.key(`view:${view}@${viewsDigest(views, !cacheViews)}`, parsed, this.req);
      tags = pages.tags(parsed, this.req);
    } catch (err) {
      return done(err);
    }
    const renderPage = () =>
      new Promise<string>((resolve, reject) => {
        original.call(this, view, locals, (err, html) => (err ? reject(err) : resolve(html ?? '')));
      });
    pages.render(key, renderPage, parsed as ParsedPageOptions<never>, tags).then(
      (html) => done(null, html),
      (err: unknown) => done(err),
    );
  };
}

/**
 * Route middleware caching the whole response of the handlers after it:
 * `app.get('/products', pageCache({ regions: region, expire: 60, varyBy: { query: ['page'] } }), handler)`.
 * Only GET requests are cached (HEAD and others pass through). The first request for a missing or
 * stale page runs the handler and its response is sent and recorded; concurrent requests wait for
 * it (missing) or get the stale page at once. Stored only when the response is a 200 without
 * Set-Cookie, was sent completely and is at most `maxSize` bytes; a request that arrives with a
 * cookie already set on its response (e.g. by a session middleware) bypasses the cache. Mount
 * compression before `pageCache` (pages are recorded uncompressed and compressed again per request);
 * a response whose write/end were wrapped again after `pageCache` is not stored.
 */
export function pageCache<Req extends ExpressPageRequest = ExpressPageRequest>(
  options: PageCacheMiddlewareOptions<Req>,
): (req: Req, res: ServerResponse, next: (err?: unknown) => void) => void {
  if (options === null || typeof options !== 'object') {
    throw new ValidationError(`pageCache: options must be an object with at least \`regions\`, got ${String(options)}`);
  }
  const { regions, defaultRegion, keyPrefix, version, onError, maxSize, ...page } = options;
  if (!(maxSize === undefined || (typeof maxSize === 'number' && maxSize >= 0 && Number.isFinite(maxSize)))) {
    throw new ValidationError(`pageCache: maxSize must be a number of bytes, got ${String(maxSize)}`);
  }
  const limit = maxSize ?? 4 * 1024 * 1024;
  const parsed = parsePageOptions<Req>(page, 'pageCache');
  const pages = toPageCache({
    regions,
    ...(defaultRegion === undefined ? {} : { defaultRegion }),
    ...(keyPrefix === undefined ? {} : { keyPrefix }),
    ...(version === undefined ? {} : { version }),
    ...(onError === undefined ? {} : { onError }),
  });
  pages.region(parsed.region); // an unknown region name fails here, not on the first request
  return (req, res, next) => {
    if (req.method !== 'GET' || !shareable(res)) return next();
    let key: string;
    let tags: readonly string[] | undefined;
    try {
      key = pages.key('route:GET', parsed, req);
      tags = pages.tags(parsed, req);
    } catch (err) {
      return next(err);
    }
    pages.claim(key, parsed as ParsedPageOptions<never>, tags).then(
      (claim: PageClaim) => {
        if (claim.kind === 'hit') return sendStored(res as ExpressResponseLike, claim.page);
        if (claim.kind === 'create') record(res, limit, claim.finish);
        next();
      },
      (err: unknown) => next(err),
    );
  };
}

// ------------------------------------------------------------------------------------------------

/** Whether this response may take part in page caching: a 200 with no cookie set so far. */
function shareable(res: ServerResponse): boolean {
  return res.statusCode === 200 && res.getHeader('set-cookie') === undefined;
}

/** Replays a stored page (Express's `send` adds ETag handling and answers 304 when fresh). */
function sendStored(res: ExpressResponseLike, page: StoredPage): void {
  for (const [name, value] of Object.entries(page.headers)) res.setHeader(name, value);
  const body = typeof page.body === 'string' ? page.body : Buffer.from(page.body);
  if (typeof res.send === 'function') res.send(body);
  else res.end(body);
}

/**
 * Records what the handler writes on `res`, and calls `finish` once: with the page when the
 * response completed as a 200 without Set-Cookie within `limit` bytes, with `undefined` otherwise.
 */
function record(res: ServerResponse, limit: number, finish: (page: StoredPage | undefined) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let overflow = false;
  const keep = (chunk: unknown, encoding: unknown): void => {
    if (overflow || chunk === undefined || chunk === null || typeof chunk === 'function') return;
    const buf =
      typeof chunk === 'string'
        ? Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8')
        : Buffer.from(chunk as Uint8Array);
    size += buf.length;
    if (size > limit) {
      overflow = true;
      chunks.length = 0;
    } else chunks.push(buf);
  };
  const write = res.write;
  const end = res.end;
  const recordingWrite = function (this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
    keep(chunk, rest[0]);
    return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
  } as typeof res.write;
  const recordingEnd = function (this: ServerResponse, chunk?: unknown, ...rest: unknown[]) {
    keep(chunk, rest[0]);
    return (end as (...a: unknown[]) => ServerResponse).call(this, chunk, ...rest);
  } as typeof res.end;
  res.write = recordingWrite;
  res.end = recordingEnd;
  res.once('finish', () => {
    // A layer that wrapped write/end after us (e.g. compression mounted after pageCache) may have
    // changed the bytes the handler wrote: what we recorded is then not what was sent.
    const outermost = res.write === recordingWrite && res.end === recordingEnd;
    const ok = outermost && !overflow && res.statusCode === 200 && res.getHeader('set-cookie') === undefined;
    finish(ok ? { headers: storableHeaders(res.getHeaders()), body: Buffer.concat(chunks) } : undefined);
  });
  // A connection closed before the response finished: nothing to store, waiters render themselves.
  res.once('close', () => finish(undefined));
}
