// dogpile/nunjucks: `{% cache %}` and `{% cachedinclude %}` tags for Nunjucks, over TemplateCache.
// Only Nunjucks syntax lives here (parsing the tags, obtaining the body); keys, regions, error policy
// and single flight are TemplateCache's. Async rendering (a callback, or renderNunjucks()) is the
// normal path; a synchronous render uses TemplateCache's in-process tier and never returns null.

import { createRequire } from 'node:module';
import { DogpileError, ValidationError } from '../src/index.js';
import {
  applyPartialOptOut,
  BLOCK_OPTIONS,
  digestOnce,
  digestSource,
  type FragmentOptions,
  PARTIAL_OPTIONS,
  parseFragmentOptions,
  renderEnabled,
  type TemplateCache,
  type TemplateCacheOptions,
  toTemplateCache,
} from './templates.js';

export { TemplateCache, type TemplateCacheOptions } from './templates.js';

/** The parts of a Nunjucks `Environment` this module uses. */
export interface NunjucksEnvironment {
  /** Adds a tag extension. */
  addExtension(name: string, extension: object): unknown;
  /** Loads a template (callback form). */
  getTemplate(
    name: string,
    eagerCompile: boolean | undefined,
    cb: (err: Error | null, tmpl: NunjucksTemplate | null) => void,
  ): unknown;
  /** Renders a named template asynchronously. */
  render(name: string, ctx: object | undefined, cb: (err: Error | null, res: string | null) => void): unknown;
  /** Fired by loaders with each template's name and source (used for readable keys). */
  on?(event: 'load', listener: (name: string, source: { src?: unknown }) => void): unknown;
}

/** The parts of a Nunjucks `Template` this module uses. */
export interface NunjucksTemplate {
  /** The template source, when compiled from a string. */
  tmplStr?: unknown;
  /** The file path, when loaded from a file. */
  path?: string;
  /** Renders with only `ctx` as variables. */
  render(ctx: object, cb: (err: Error | null, res: string | null) => void): unknown;
}

/** Options of {@link installNunjucks}: TemplateCache options, or an existing TemplateCache. */
export type NunjucksCacheOptions = TemplateCacheOptions | TemplateCache;

type Callback = (err: unknown, value?: unknown) => void;
type Body = (cb?: (err: unknown, html?: string) => void) => unknown;

interface ParserLike {
  nextToken(): { value: string; lineno: number; colno: number };
  parseSignature(tolerant: null, noParens: boolean): { children: unknown[] };
  advanceAfterBlockEnd(name?: string): void;
  parseUntilBlocks(...names: string[]): unknown;
  fail(message: string, lineno?: number, colno?: number): never;
  tokens: { str: string };
  breakOnBlocks?: string[] | null;
}

interface NodesLike {
  Literal: new (lineno: number, colno: number, value: string) => unknown;
  CallExtensionAsync: new (ext: object, prop: string, args: unknown, contentArgs: unknown[]) => unknown;
}

interface ContextLike {
  ctx: Record<string, unknown>;
}

const FORBIDDEN_PARENTS = new Set(['endmacro', 'endset', 'endcall', 'endfilter']);

// Depth of synchronous (callback-less) Template.render calls in progress. A synchronous render
// cannot interleave with anything, so a module-level counter is exact.
let syncDepth = 0;
let patched = false;
// Nunjucks' SafeString marker. `autoescape: false` on the extension is not enough: the transformer
// rebuilds CallExtensionAsync nodes whose bodies contain async filters and drops that flag.
let markSafe: (html: string) => unknown = (html) => html;

/** Makes callback-less `Template.render` calls visible to the tags (once per process). */
function watchSyncRenders(): void {
  if (patched) return;
  patched = true;
  // Loaded here, not at import time: dogpile/express imports this module without needing nunjucks.
  const nunjucks = createRequire(import.meta.url)('nunjucks') as {
    Template: { prototype: { render: (...args: unknown[]) => unknown } };
    runtime: { markSafe: (html: string) => unknown };
  };
  markSafe = nunjucks.runtime.markSafe;
  const proto = nunjucks.Template.prototype;
  const original = proto.render;
  proto.render = function render(this: unknown, ...args: unknown[]): unknown {
    if (args.some((a) => typeof a === 'function')) return original.apply(this, args);
    syncDepth++;
    try {
      return original.apply(this, args);
    } finally {
      syncDepth--;
    }
  };
}

/**
 * Installs the `cache` and `cachedinclude` tags on a Nunjucks environment and returns the
 * {@link TemplateCache} behind them.
 *
 * ```njk
 * {% cache "sidebar", user.id, region="pages", expire=300 %}…{% endcache %}
 * {% cachedinclude "card.njk", key=product.id, expire=60, product=product %}
 * ```
 *
 * Positional arguments of `cache` form the key; `cachedinclude` renders the partial with only its
 * other keyword arguments as variables. Render asynchronously (with a callback, or
 * {@link renderNunjucks}); a synchronous render works through the in-process tier.
 */
export function installNunjucks(env: NunjucksEnvironment, options: NunjucksCacheOptions): TemplateCache {
  const cache = toTemplateCache(options);
  watchSyncRenders();
  const names = new Map<string, string>();
  env.on?.('load', (name, source) => {
    if (typeof source?.src === 'string') names.set(digestSource(source.src), name);
  });
  const ordinals = new WeakMap<object, number>();

  const metaFor = (parser: ParserLike, line: number): string => {
    const digest = digestSource(parser.tokens.str);
    const n = (ordinals.get(parser) ?? 0) + 1;
    ordinals.set(parser, n);
    return JSON.stringify([names.get(digest) ?? '', digest, `b${n}`, line + 1]);
  };

  const checkParent = (parser: ParserLike, tag: string, tok: { lineno: number; colno: number }): void => {
    const end = parser.breakOnBlocks?.find((b) => FORBIDDEN_PARENTS.has(b));
    if (end !== undefined) {
      parser.fail(
        `dogpile: {% ${tag} %} cannot be used inside {% ${end.slice(3)} %} (Nunjucks drops async output there)`,
        tok.lineno,
        tok.colno,
      );
    }
  };

  const blockExtension = {
    tags: ['cache'],
    autoescape: false,
    parse(parser: ParserLike, nodes: NodesLike) {
      const tok = parser.nextToken();
      checkParent(parser, 'cache', tok);
      const args = parser.parseSignature(null, true);
      parser.advanceAfterBlockEnd(tok.value);
      const meta = metaFor(parser, tok.lineno);
      const body = parser.parseUntilBlocks('endcache');
      parser.advanceAfterBlockEnd();
      args.children.unshift(new nodes.Literal(tok.lineno, tok.colno, meta));
      return new nodes.CallExtensionAsync(this, 'run', args, [body]);
    },
    run(context: ContextLike, meta: string, ...rest: unknown[]): void {
      const callback = rest.pop() as Callback;
      const body = rest.pop() as Body;
      const [name, digest, block, line] = parseMeta(meta);
      let key: string;
      let opts: FragmentOptions;
      try {
        const { positional, kwargs } = splitKwargs(rest);
        opts = parseFragmentOptions(kwargs, BLOCK_OPTIONS, `{% cache %} at line ${line}`);
        if (!renderEnabled(context.ctx)) opts.enabled = false;
        key = cache.fragmentKey({ engine: 'nunjucks', template: name || undefined, digest, block, args: positional });
      } catch (err) {
        callback(err);
        return;
      }
      if (syncDepth > 0) {
        runSync(callback, () => cache.getOrCreateSync(key, () => renderBodySync(body), opts));
        return;
      }
      cache
        .getOrCreate(key, () => renderBody(body), opts)
        .then(
          (html) => continueWith(callback, html),
          (err: unknown) => callback(err),
        );
    },
  };

  const includeExtension = {
    tags: ['cachedinclude'],
    autoescape: false,
    parse(parser: ParserLike, nodes: NodesLike) {
      const tok = parser.nextToken();
      checkParent(parser, 'cachedinclude', tok);
      const args = parser.parseSignature(null, true);
      parser.advanceAfterBlockEnd(tok.value);
      args.children.unshift(new nodes.Literal(tok.lineno, tok.colno, JSON.stringify(tok.lineno + 1)));
      return new nodes.CallExtensionAsync(this, 'run', args, []);
    },
    run(context: ContextLike, line: string, ...rest: unknown[]): void {
      const callback = rest.pop() as Callback;
      const { positional, kwargs } = splitKwargs(rest);
      const where = `{% cachedinclude %} at line ${line}`;
      const name = positional[0];
      if (typeof name !== 'string' || positional.length !== 1) {
        callback(new ValidationError(`${where}: expected one template name, then keyword arguments`));
        return;
      }
      const vars: Record<string, unknown> = {};
      const optionKwargs: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(kwargs)) (PARTIAL_OPTIONS.has(k) ? optionKwargs : vars)[k] = v;
      let opts: FragmentOptions;
      try {
        opts = parseFragmentOptions(optionKwargs, PARTIAL_OPTIONS, where);
      } catch (err) {
        callback(err);
        return;
      }
      applyPartialOptOut(context.ctx, opts, vars);
      env.getTemplate(name, false, (err, tmpl) => {
        if (err || !tmpl) {
          callback(err ?? new DogpileError(`${where}: template ${JSON.stringify(name)} not found`));
          return;
        }
        let key: string;
        try {
          const digest = digestOnce(tmpl, () => (typeof tmpl.tmplStr === 'string' ? tmpl.tmplStr : name));
          const args = 'key' in optionKwargs ? [optionKwargs.key] : [vars];
          key = cache.fragmentKey({ engine: 'nunjucks', template: name, digest, block: 'partial', args });
        } catch (e) {
          callback(e);
          return;
        }
        const renderPartial = (): Promise<string> =>
          new Promise((resolve, reject) => tmpl.render(vars, (e, html) => (e ? reject(e) : resolve(html ?? ''))));
        if (syncDepth > 0) {
          runSync(callback, () => cache.getOrCreateSync(key, () => renderSyncPartial(tmpl, vars), opts));
          return;
        }
        cache.getOrCreate(key, renderPartial, opts).then(
          (html) => continueWith(callback, html),
          (e: unknown) => callback(e),
        );
      });
    },
  };

  env.addExtension('DogpileCache', blockExtension);
  env.addExtension('DogpileCachedInclude', includeExtension);
  return cache;
}

/**
 * Renders a named template asynchronously (the path on which cache tags single-flight against any
 * backend). Equivalent to `env.render(name, ctx, cb)` as a Promise.
 */
export function renderNunjucks(env: NunjucksEnvironment, name: string, context?: object): Promise<string> {
  return new Promise((resolve, reject) => {
    env.render(name, context ?? {}, (err, html) => (err ? reject(err) : resolve(html ?? '')));
  });
}

/**
 * A bare Express engine (`app.engine('njk', nunjucksEngine(env))`): renders the view at the absolute
 * path Express resolves (it must lie under one of the environment's search paths).
 */
export function nunjucksEngine(
  env: NunjucksEnvironment,
): (file: string, options: object, cb: (err: unknown, html?: string) => void) => void {
  return (file, options, cb) => {
    env.render(file, options, (err, html) => (err ? cb(err) : cb(null, html ?? '')));
  };
}

// ------------------------------------------------------------------------------------------------

const metaCache = new Map<string, [string, string, string, number]>();

/** The compile-time literal of a block (template name, digest, block id, line), parsed once. */
function parseMeta(meta: string): [string, string, string, number] {
  let parsed = metaCache.get(meta);
  if (parsed === undefined) {
    parsed = JSON.parse(meta) as [string, string, string, number];
    metaCache.set(meta, parsed);
  }
  return parsed;
}

function splitKwargs(args: unknown[]): { positional: unknown[]; kwargs: Record<string, unknown> } {
  const last = args[args.length - 1];
  if (last !== null && typeof last === 'object' && (last as { __keywords?: unknown }).__keywords === true) {
    const { __keywords: _, ...kwargs } = last as Record<string, unknown>;
    return { positional: args.slice(0, -1), kwargs };
  }
  return { positional: args, kwargs: {} };
}

/** Renders a block body through its callback (bodies with async filters or nested tags need it). */
function renderBody(body: Body): Promise<string> {
  return new Promise((resolve, reject) => {
    try {
      body((err, html) => (err ? reject(err) : resolve(html ?? '')));
    } catch (err) {
      reject(err);
    }
  });
}

function renderBodySync(body: Body): string {
  let done = false;
  let out = '';
  let error: unknown;
  body((err, html) => {
    done = true;
    error = err;
    out = html ?? '';
  });
  if (error) throw error;
  if (!done) throw asyncInSyncError();
  return out;
}

function renderSyncPartial(tmpl: NunjucksTemplate, vars: object): string {
  // Without a callback Template.render runs synchronously and returns null if something was async.
  const out = (tmpl.render as (ctx: object) => unknown)(vars);
  if (typeof out !== 'string') throw asyncInSyncError();
  return out;
}

function asyncInSyncError(): DogpileError {
  return new DogpileError(
    'dogpile/nunjucks: a cached block contains asynchronous work but the template is rendered synchronously; pass a callback to render() or use renderNunjucks()',
  );
}

function runSync(callback: Callback, produce: () => string): void {
  let html: string;
  try {
    html = produce();
  } catch (err) {
    callback(err);
    return;
  }
  callback(null, markSafe(html));
}

/** Calls the template's continuation; an error further down the template reaches the render once. */
function continueWith(callback: Callback, html: string): void {
  try {
    callback(null, markSafe(html));
  } catch (err) {
    callback(err);
  }
}
