// dogpile/nunjucks: `{% cache %}` and `{% cachedinclude %}` tags for Nunjucks, over TemplateCache.
// Only Nunjucks syntax lives here (parsing the tags, obtaining the body); keys, regions, error policy
// and single flight are TemplateCache's. Async rendering (a callback, or renderNunjucks()) is the
// normal path; a synchronous render uses TemplateCache's in-process tier and never returns null.

import { createRequire } from 'node:module';
import { posix } from 'node:path';
import { DogpileError, ValidationError } from '../src/index.js';
import {
  COLLECTION_OPTIONS,
  collectionKeys,
  collectionStem,
  itemFragment,
  itemKeys,
  itemTagLists,
  renderCollection,
} from './collections.js';
import { DependencyDigests, type DigestMemo, type ResolvedTemplate, type TemplateDeps } from './digests.js';
import {
  applyPartialOptOut,
  applyRenderDevOptions,
  blockOptions,
  digestOnce,
  digestSource,
  type FragmentOptions,
  type KeyMemo,
  keyMemo,
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
  /** Loads a template synchronously (a synchronous loader), relative to `parentName`. */
  getTemplate(name: string, eagerCompile?: boolean, parentName?: string): NunjucksTemplate | null | undefined;
  /** Renders a named template asynchronously. */
  render(name: string, ctx: object | undefined, cb: (err: Error | null, res: string | null) => void): unknown;
  /** Fired by loaders with each template's name and source (used for readable keys). */
  on?(event: 'load', listener: (name: string, source: { src?: unknown; path?: unknown }) => void): unknown;
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

interface TokenLike {
  value: string;
  lineno: number;
  colno: number;
}

interface ParserLike {
  nextToken(): TokenLike;
  peekToken(): TokenLike | null;
  parseSignature(tolerant: null, noParens: boolean): { children: unknown[] };
  advanceAfterBlockEnd(name?: string): void;
  parseUntilBlocks(...names: string[]): unknown;
  fail(message: string, lineno?: number, colno?: number): never;
  tokens: { str: string };
  extensions?: unknown[];
}

/** A Nunjucks AST node as the walker sees it (`fields` names its child slots). */
interface NodeLike {
  typename: string;
  fields: readonly string[];
  [field: string]: unknown;
}

interface NodesLike {
  Literal: new (lineno: number, colno: number, value: string) => unknown;
  CallExtension: new (ext: object, prop: string, args: unknown, contentArgs: unknown[]) => NodeLike;
  CallExtensionAsync: new (ext: object, prop: string, args: unknown, contentArgs: unknown[]) => NodeLike;
}

interface ContextLike {
  ctx: Record<string, unknown>;
}

/** What a block's compile-time literal says, parsed once per environment. */
interface BlockRecord {
  name: string | undefined;
  digest: string;
  block: string;
  line: number;
  /** `{% cache %} at line N`, for messages. */
  where: string;
  memo: DigestMemo;
  /** The key up to the arguments, for the digest in `memo`. */
  stem: string;
  /** The last key built. */
  key: KeyMemo;
}

/** Per-environment state reached from the parser hook (every Nunjucks parse in the process). */
interface Analyzer {
  analyze(root: NodeLike, source: string): void;
}
const ANALYZER = Symbol('dogpile.nunjucks.analyzer');

// Depth of synchronous (callback-less) Template.render calls in progress. A synchronous render
// cannot interleave with anything, so a module-level counter is exact.
let syncDepth = 0;
let patched = false;
// Nunjucks' SafeString marker. `autoescape: false` on the extension is not enough: the transformer
// rebuilds CallExtensionAsync nodes whose bodies contain async filters and drops that flag.
let markSafe: (html: string) => unknown = (html) => html;
let nodeTypes: Record<string, new (...args: never[]) => unknown> = {};

/**
 * Patches Nunjucks once per process: callback-less `Template.render` calls become visible to the
 * tags, and every parsed template (whose environment has the tags) goes through its environment's
 * analyzer before Nunjucks' transformer and compiler see it.
 */
function patchNunjucks(): void {
  if (patched) return;
  patched = true;
  // Loaded here, not at import time: dogpile/express imports this module without needing nunjucks.
  const nunjucks = createRequire(import.meta.url)('nunjucks') as {
    Template: { prototype: { render: (...args: unknown[]) => unknown } };
    runtime: { markSafe: (html: string) => unknown };
    parser: { Parser: { prototype: { parseAsRoot: (this: ParserLike) => NodeLike } } };
    nodes: Record<string, new (...args: never[]) => unknown>;
    lib: { TemplateError: new (...args: never[]) => unknown };
  };
  markSafe = nunjucks.runtime.markSafe;
  nodeTypes = { ...nunjucks.nodes, TemplateErrorClass: nunjucks.lib.TemplateError };
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
  const parserProto = nunjucks.parser.Parser.prototype;
  const parseAsRoot = parserProto.parseAsRoot;
  parserProto.parseAsRoot = function parseAsRootWithDogpile(this: ParserLike): NodeLike {
    const root = parseAsRoot.call(this);
    const ext = this.extensions?.find((e) => e !== null && typeof e === 'object' && ANALYZER in e) as
      | { [ANALYZER]: Analyzer }
      | undefined;
    ext?.[ANALYZER].analyze(root, this.tokens.str);
    return root;
  };
}

/**
 * Installs the `cache` and `cachedinclude` tags on a Nunjucks environment and returns the
 * {@link TemplateCache} behind them.
 *
 * ```njk
 * {% cache "sidebar", user.id, region="pages", expire=300 %}…{% endcache %}
 * {% cachedinclude "card.njk", key=product.id, expire=60, product=product %}
 * {% cachedeach "card.njk", products, key="id", as="product" %}
 * ```
 *
 * `cachedeach` is the collection form (README "Cached collections"): one multi-read for every
 * item, only the missing items rendered, the items' HTML in order. A record item (`cacheKey`, or
 * `id` plus `updatedAt` / `version`) adds its version to its key, so bumping it re-renders that item
 * only; `key` may be left out when every item is a record. `if` / `unless` turn caching off.
 *
 * Positional arguments of `cache` form the key; `cachedinclude` renders the partial with only its
 * other keyword arguments as variables. Render asynchronously (with a callback, or
 * {@link renderNunjucks}); a synchronous render works through the in-process tier. A tag inside a
 * macro, `{% call %}`, `{% set %}` capture or `{% filter %}` block (at any depth), where Nunjucks
 * cannot wait for asynchronous output, is compiled to its synchronous form (the in-process tier).
 *
 * Fragment keys digest the template and every template it renders (`include`, `import`,
 * `from … import`, `cachedinclude`, and the parents those extend), found with Nunjucks' parser.
 */
export function installNunjucks(env: NunjucksEnvironment, options: NunjucksCacheOptions): TemplateCache {
  const cache = toTemplateCache(options);
  patchNunjucks();
  const digests = new DependencyDigests(cache, 'nunjucks');
  // Template name and path by source digest (from the loaders' load events), and what each parsed
  // source renders (from the parser hook).
  const names = new Map<string, { name: string; path: string | undefined }>();
  const deps = new Map<string, TemplateDeps>();
  env.on?.('load', (name, source) => {
    if (typeof source?.src !== 'string') return;
    const digest = digestSource(source.src);
    names.set(digest, { name, path: typeof source.path === 'string' ? source.path : undefined });
    digests.loaded(name, digest);
  });
  // Watching loaders fire 'update' when a file changes (not in @types/nunjucks' event list).
  (env.on as ((event: string, listener: () => void) => unknown) | undefined)?.call(env, 'update', () => digests.changed());
  const ordinals = new WeakMap<object, number>();

  const metaFor = (parser: ParserLike, line: number): string => {
    const digest = digestSource(parser.tokens.str);
    const n = (ordinals.get(parser) ?? 0) + 1;
    ordinals.set(parser, n);
    return JSON.stringify([names.get(digest)?.name ?? '', digest, `b${n}`, line + 1]);
  };

  const paths = new Map<string, string>();
  const resolve = (name: string, from: string | undefined): ResolvedTemplate => {
    const id = from !== undefined && /^\.\.?\//.test(name) ? posix.normalize(posix.join(posix.dirname(from), name)) : name;
    const tmpl = env.getTemplate(name, true, from === undefined ? undefined : (paths.get(from) ?? from));
    if (tmpl === null || typeof tmpl !== 'object') return { id, deps: undefined };
    if (typeof tmpl.path === 'string') paths.set(id, tmpl.path);
    const source = typeof tmpl.tmplStr === 'string' ? tmpl.tmplStr : '';
    const digest = digestSource(source);
    return { id, deps: deps.get(digest) ?? { digest, renders: [], dynamic: false } };
  };

  const blocks = new Map<string, BlockRecord>();
  const recordFor = (meta: string): BlockRecord => {
    let rec = blocks.get(meta);
    if (rec === undefined) {
      const [name, digest, block, line] = JSON.parse(meta) as [string, string, string, number];
      const memo = { generation: -1, digest };
      rec = {
        name: name || undefined,
        digest,
        block,
        line,
        where: `{% cache %} in ${name ? JSON.stringify(name) : 'a string template'} at line ${line}`,
        memo,
        stem: '',
        key: keyMemo(),
      };
      blocks.set(meta, rec);
    }
    return rec;
  };
  /** The block's key: its template's dependency digest, its id and its arguments. */
  const blockKey = (rec: BlockRecord, positional: unknown[]): string => {
    const before = rec.memo.digest;
    const digest = !cache.digest
      ? rec.digest
      : digests.fresh(rec.memo)
        ? rec.memo.digest
        : digests.current(
            rec.memo,
            rec.name,
            deps.get(rec.digest) ?? { digest: rec.digest, renders: [], dynamic: false },
            resolve,
          );
    if (rec.stem === '' || digest !== before) rec.stem = cache.keyStem('nunjucks', rec.name, digest, rec.block);
    return cache.keyWithArgs(rec.stem, positional, rec.key, rec.where);
  };

  // Whether rendering a template (by source digest) can call back asynchronously.
  const waits = new Map<string, boolean>();
  const including = new Set<string>();
  const analyzer: Analyzer = {
    analyze(root, source) {
      const digest = digestSource(source);
      const from = names.get(digest)?.path;
      const result = analyzeTemplate(root, digest, {
        blockExt: blockExtension,
        includeExt: includeExtension,
        eachExt: eachExtension,
        includeWaits(name) {
          // Loading (and so analysing) the included template now; a cycle counts as not waiting.
          const id = `${from ?? ''}\u0000${name}`;
          if (including.has(id)) return false;
          including.add(id);
          try {
            const tmpl = env.getTemplate(name, true, from);
            return tmpl !== null && typeof tmpl === 'object' && typeof tmpl.tmplStr === 'string'
              ? waits.get(digestSource(tmpl.tmplStr)) === true
              : false;
          } catch {
            return false; // a missing or broken include fails when it renders, as without dogpile
          } finally {
            including.delete(id);
          }
        },
      });
      deps.set(digest, result.deps);
      waits.set(digest, result.waits);
    },
  };

  const checkArgs = (parser: ParserLike, tag: string, args: { children: unknown[] }, tok: TokenLike): void => {
    for (const arg of args.children) {
      if ((arg as NodeLike | null)?.typename === 'Dict') {
        parser.fail(
          `dogpile: {% ${tag} %} takes options as keyword arguments (region="pages", expire=60), not an object literal: an object here would only be part of the key`,
          tok.lineno,
          tok.colno,
        );
      }
    }
  };

  const blockExtension = {
    tags: ['cache'],
    autoescape: false,
    [ANALYZER]: analyzer,
    parse(parser: ParserLike, nodes: NodesLike) {
      const tok = parser.nextToken();
      const args = parser.parseSignature(null, true);
      checkArgs(parser, 'cache', args, tok);
      parser.advanceAfterBlockEnd(tok.value);
      const meta = metaFor(parser, tok.lineno);
      const body = parser.parseUntilBlocks('endcache');
      if (parser.peekToken()?.value !== 'endcache') {
        parser.fail(
          `dogpile: {% cache %} opened at line ${tok.lineno + 1} has no matching {% endcache %} (got end of file)`,
          tok.lineno,
          tok.colno,
        );
      }
      parser.advanceAfterBlockEnd();
      args.children.unshift(new nodes.Literal(tok.lineno, tok.colno, meta));
      return new nodes.CallExtensionAsync(this, 'run', args, [body]);
    },
    run(context: ContextLike, meta: string, ...rest: unknown[]): void {
      const callback = rest.pop() as Callback;
      const body = rest.pop() as Body;
      let key: string;
      let rec: BlockRecord;
      let opts: FragmentOptions | undefined;
      try {
        rec = recordFor(meta);
        opts = blockOptions(popKwargs(rest), rec.where, context.ctx, KWARGS_MARKER);
        key = blockKey(rec, rest);
      } catch (err) {
        callback(err);
        return;
      }
      if (syncDepth > 0) {
        runSync(callback, () => cache.getOrCreateSync(key, () => renderBodySync(body), opts));
        return;
      }
      cache.getOrCreateStoredThen(
        key,
        rec.key.stored,
        () => renderBody(body),
        opts,
        (err, html) => (err ? callback(err) : continueWith(callback, html ?? '')),
      );
    },
    /** Placed beside an include under if/for whose template has cache tags: makes Nunjucks wait. */
    waitHere(_context: ContextLike, _unused: string, callback: Callback): void {
      callback(null, '');
    },
    /** The synchronous form, for tags inside macros, call, set capture and filter blocks. */
    runInline(context: ContextLike, meta: string, ...rest: unknown[]): unknown {
      const body = rest.pop() as Body;
      const rec = recordFor(meta);
      const opts = blockOptions(popKwargs(rest), rec.where, context.ctx, KWARGS_MARKER);
      return markSafe(cache.getOrCreateSync(blockKey(rec, rest), () => renderBodySync(body), opts));
    },
  };

  interface PartialCall {
    name: string;
    vars: Record<string, unknown>;
    optionKwargs: Record<string, unknown>;
    opts: FragmentOptions;
    where: string;
  }
  const partialCall = (context: ContextLike, line: string, rest: unknown[]): PartialCall => {
    const { positional, kwargs } = splitKwargs(rest);
    const [template, lineNo] = JSON.parse(line) as [string, number];
    const where = `{% cachedinclude %} in ${template ? JSON.stringify(template) : 'a string template'} at line ${lineNo}`;
    const name = positional[0];
    if (typeof name !== 'string' || positional.length !== 1) {
      throw new ValidationError(`${where}: expected one template name, then keyword arguments`);
    }
    const vars: Record<string, unknown> = {};
    const optionKwargs: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(kwargs)) (PARTIAL_OPTIONS.has(k) ? optionKwargs : vars)[k] = v;
    const opts = parseFragmentOptions(optionKwargs, PARTIAL_OPTIONS, where);
    applyPartialOptOut(context.ctx, opts, vars);
    return { name, vars, optionKwargs, opts, where };
  };
  const partialKey = (call: PartialCall, tmpl: NunjucksTemplate): string => {
    const source = typeof tmpl.tmplStr === 'string' ? tmpl.tmplStr : call.name;
    const own = digestOnce(tmpl, () => source);
    const digest = cache.digest
      ? digests.compute(call.name, deps.get(own) ?? { digest: own, renders: [], dynamic: false }, resolve)
      : own;
    const args = 'key' in call.optionKwargs ? [call.optionKwargs.key] : [call.vars];
    return cache.fragmentKey({ engine: 'nunjucks', template: call.name, digest, block: 'partial', args }, call.where);
  };

  const includeExtension = {
    tags: ['cachedinclude'],
    autoescape: false,
    parse(parser: ParserLike, nodes: NodesLike) {
      const tok = parser.nextToken();
      const args = parser.parseSignature(null, true);
      checkArgs(parser, 'cachedinclude', args, tok);
      parser.advanceAfterBlockEnd(tok.value);
      const template = names.get(digestSource(parser.tokens.str))?.name ?? '';
      args.children.unshift(new nodes.Literal(tok.lineno, tok.colno, JSON.stringify([template, tok.lineno + 1])));
      return new nodes.CallExtensionAsync(this, 'run', args, []);
    },
    run(context: ContextLike, line: string, ...rest: unknown[]): void {
      const callback = rest.pop() as Callback;
      let call: PartialCall;
      try {
        call = partialCall(context, line, rest);
      } catch (err) {
        callback(err);
        return;
      }
      env.getTemplate(call.name, false, (err, tmpl) => {
        if (err || !tmpl) {
          callback(err ?? new DogpileError(`${call.where}: template ${JSON.stringify(call.name)} not found`));
          return;
        }
        let key: string;
        try {
          key = partialKey(call, tmpl);
        } catch (e) {
          callback(e);
          return;
        }
        if (syncDepth > 0) {
          runSync(callback, () => cache.getOrCreateSync(key, () => renderSyncPartial(tmpl, call.vars), call.opts));
          return;
        }
        const renderPartial = (): Promise<string> =>
          new Promise((res, rej) => tmpl.render(call.vars, (e, html) => (e ? rej(e) : res(html ?? ''))));
        cache.getOrCreate(key, renderPartial, call.opts).then(
          (html) => continueWith(callback, html),
          (e: unknown) => callback(e),
        );
      });
    },
    /** The synchronous form, for tags inside macros, call, set capture and filter blocks. */
    runInline(context: ContextLike, line: string, ...rest: unknown[]): unknown {
      const call = partialCall(context, line, rest);
      const tmpl = env.getTemplate(call.name, false);
      if (tmpl === null || typeof tmpl !== 'object') {
        throw new DogpileError(`${call.where}: template ${JSON.stringify(call.name)} not found`);
      }
      return markSafe(cache.getOrCreateSync(partialKey(call, tmpl), () => renderSyncPartial(tmpl, call.vars), call.opts));
    },
  };

  // --- Cached collections: {% cachedeach %} (integrations/collections.ts) ----------------------

  interface EachCall {
    name: string;
    items: unknown[];
    keys: unknown[][];
    as: string;
    shared: Record<string, unknown>;
    fragment: FragmentOptions;
    /** Each item's own tags (`itemTags`), or undefined. */
    itemTags: string[][] | undefined;
    where: string;
  }
  const eachCall = (context: ContextLike, meta: string, rest: unknown[]): EachCall => {
    const [template, line] = JSON.parse(meta) as [string, number];
    const { positional, kwargs } = splitKwargs(rest);
    const first = positional[0];
    const where = `{% cachedeach ${typeof first === 'string' ? JSON.stringify(first) : ''} %} in ${template ? JSON.stringify(template) : 'a string template'} at line ${line}`;
    if (typeof first !== 'string' || positional.length !== 2) {
      throw new ValidationError(
        `${where}: expected a template name and a collection, then keyword arguments (key="id", as="item")`,
      );
    }
    const shared: Record<string, unknown> = {};
    const optionKwargs: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(kwargs)) (COLLECTION_OPTIONS.has(k) ? optionKwargs : shared)[k] = v;
    const fragment = parseFragmentOptions(optionKwargs, COLLECTION_OPTIONS, where);
    const as = optionKwargs.as ?? 'item';
    if (typeof as !== 'string' || !/^[A-Za-z_$][\w$]*$/.test(as)) {
      throw new ValidationError(`${where}: as must be a variable name, got ${JSON.stringify(as)}`);
    }
    const keys = itemKeys(positional[1], optionKwargs.key, where);
    const itemTags = itemTagLists(optionKwargs.itemTags, positional[1] as unknown[], optionKwargs.key, keys, where);
    applyRenderDevOptions(context.ctx, fragment);
    if (!renderEnabled(context.ctx)) {
      fragment.enabled = false;
      shared.dogpile = { enabled: false };
    }
    return { name: first, items: positional[1] as unknown[], keys, as, shared, fragment, itemTags, where };
  };
  /** Every item's fragment key: the partial's name and dependency digest, `each…`, the item's key. */
  const eachKeys = (call: EachCall, tmpl: NunjucksTemplate): string[] => {
    const source = typeof tmpl.tmplStr === 'string' ? tmpl.tmplStr : call.name;
    const own = digestOnce(tmpl, () => source);
    const digest = cache.digest
      ? digests.compute(call.name, deps.get(own) ?? { digest: own, renders: [], dynamic: false }, resolve)
      : own;
    const { dogpile: _, ...sharedVars } = call.shared;
    const stem = collectionStem(cache, 'nunjucks', call.name, digest, call.as, sharedVars, call.where);
    return collectionKeys(cache, stem, call.keys, call.where);
  };
  const itemVars = (call: EachCall, i: number): Record<string, unknown> => ({ ...call.shared, [call.as]: call.items[i] });
  const renderEachSync = (call: EachCall, tmpl: NunjucksTemplate): string => {
    const keys = eachKeys(call, tmpl);
    let out = '';
    for (let i = 0; i < keys.length; i++) {
      const fragment = itemFragment(call.fragment, call.itemTags, i);
      out += cache.getOrCreateSync(keys[i] as string, () => renderSyncPartial(tmpl, itemVars(call, i)), fragment);
    }
    return out;
  };

  const eachExtension = {
    tags: ['cachedeach'],
    autoescape: false,
    parse(parser: ParserLike, nodes: NodesLike) {
      const tok = parser.nextToken();
      const args = parser.parseSignature(null, true);
      checkArgs(parser, 'cachedeach', args, tok);
      parser.advanceAfterBlockEnd(tok.value);
      const template = names.get(digestSource(parser.tokens.str))?.name ?? '';
      args.children.unshift(new nodes.Literal(tok.lineno, tok.colno, JSON.stringify([template, tok.lineno + 1])));
      return new nodes.CallExtensionAsync(this, 'run', args, []);
    },
    run(context: ContextLike, meta: string, ...rest: unknown[]): void {
      const callback = rest.pop() as Callback;
      let call: EachCall;
      try {
        call = eachCall(context, meta, rest);
      } catch (err) {
        callback(err);
        return;
      }
      env.getTemplate(call.name, false, (err, tmpl) => {
        if (err || !tmpl) {
          callback(err ?? new DogpileError(`${call.where}: template ${JSON.stringify(call.name)} not found`));
          return;
        }
        if (syncDepth > 0) {
          runSync(callback, () => renderEachSync(call, tmpl));
          return;
        }
        let keys: string[];
        try {
          keys = eachKeys(call, tmpl);
        } catch (e) {
          callback(e);
          return;
        }
        const renderItem = (i: number): Promise<string> =>
          new Promise((res, rej) => tmpl.render(itemVars(call, i), (e, html) => (e ? rej(e) : res(html ?? ''))));
        renderCollection(cache, keys, renderItem, call.fragment, call.itemTags).then(
          (parts) => continueWith(callback, parts.join('')),
          (e: unknown) => callback(e),
        );
      });
    },
    /** The synchronous form, for tags inside macros, call, set capture and filter blocks. */
    runInline(context: ContextLike, meta: string, ...rest: unknown[]): unknown {
      const call = eachCall(context, meta, rest);
      const tmpl = env.getTemplate(call.name, false);
      if (tmpl === null || typeof tmpl !== 'object') {
        throw new DogpileError(`${call.where}: template ${JSON.stringify(call.name)} not found`);
      }
      return markSafe(renderEachSync(call, tmpl));
    },
  };
  env.addExtension('DogpileCachedEach', eachExtension);

  // --- end of cached collections ---------------------------------------------------------------

  env.addExtension('DogpileCache', blockExtension);
  env.addExtension('DogpileCachedInclude', includeExtension);
  return cache;
}

// Nodes inside which Nunjucks renders synchronously (macro and caller bodies, set and filter
// captures): an asynchronous tag there is silently dropped, so ours become synchronous.
const INLINE_PARENTS = ['Macro', 'Capture'];

/** What one pass over a parsed template found. */
interface TemplateAnalysis {
  deps: TemplateDeps;
  /** Whether rendering it can call back asynchronously (a dogpile tag outside macros/captures). */
  waits: boolean;
}

/**
 * Context of one analysis: the environment's tags, and whether an included template (by name,
 * relative to this one) waits, so that an include under `if` / `for` is waited for.
 */
interface AnalysisContext {
  blockExt: object;
  includeExt: object;
  /** The `cachedeach` tag (a cached partial too, for dependencies and the inline form). */
  eachExt: object;
  includeWaits(name: string): boolean;
}

/**
 * One pass over a parsed template: finds the names it renders (for dependency digests), turns
 * the dogpile tags inside macros and captures into their synchronous form, and makes Nunjucks
 * wait for an `include` under `if` / `for` whose template has cache tags (Nunjucks would drop
 * that output): a no-op asynchronous node beside it makes its transformer compile the enclosing
 * `if` / `for` in callback style. Such an include inside a macro or capture, where nothing can
 * wait, is a template error naming the line.
 */
function analyzeTemplate(root: NodeLike, digest: string, context: AnalysisContext): TemplateAnalysis {
  const { blockExt, includeExt, eachExt } = context;
  const renders: string[] = [];
  let parent: string | undefined;
  let dynamic = false;
  let waits = false;
  const staticName = (node: unknown): string | undefined => {
    const n = node as NodeLike | undefined;
    if (n?.typename === 'Literal' && typeof n.value === 'string') return n.value;
    dynamic = true;
    return undefined;
  };
  const isA = (node: NodeLike, type: string): boolean => node instanceof (nodeTypes[type] as new () => unknown);
  const inline = (ancestors: NodeLike[]): NodeLike | undefined =>
    ancestors.find((a) => INLINE_PARENTS.some((t) => isA(a, t)) || a.typename === 'Switch');
  const seen = new WeakSet<object>();
  const visit = (node: NodeLike, ancestors: NodeLike[]): NodeLike | undefined => {
    if (seen.has(node)) return undefined;
    seen.add(node);
    switch (node.typename) {
      case 'Include': {
        const name = staticName(node.template);
        if (name === undefined) return undefined;
        renders.push(name);
        if (!context.includeWaits(name)) return undefined;
        const outer = inline(ancestors);
        if (outer === undefined) waits = true;
        if (outer !== undefined) {
          const what = outer.typename === 'Capture' ? 'set / filter' : outer.typename.toLowerCase();
          throw new (nodeTypes.TemplateErrorClass as unknown as new (m: string, l: number, c: number) => Error)(
            `dogpile: {% include "${name}" %} inside a {% ${what} %} block renders cached blocks, which Nunjucks cannot wait for there; use {% cachedinclude "${name}", … %} instead`,
            (node.lineno as number) + 1, // node positions are 0-based; messages are 1-based
            (node.colno as number) + 1,
          );
        }
        if (!ancestors.some((a) => a.typename === 'If' || a.typename === 'For')) return undefined;
        const NodeList = nodeTypes.NodeList as unknown as new (l: unknown, c: unknown, children: unknown[]) => NodeLike;
        const Literal = nodeTypes.Literal as unknown as NodesLike['Literal'];
        const Async = nodeTypes.CallExtensionAsync as unknown as NodesLike['CallExtensionAsync'];
        const args = new NodeList(node.lineno, node.colno, [new Literal(node.lineno as number, node.colno as number, '')]);
        return new NodeList(node.lineno, node.colno, [node, new Async(blockExt, 'waitHere', args, [])]);
      }
      case 'Import':
      case 'FromImport': {
        const name = staticName(node.template);
        if (name !== undefined) renders.push(name);
        return undefined;
      }
      case 'Extends': {
        const name = staticName(node.template);
        if (name !== undefined) {
          parent = name;
          if (context.includeWaits(name)) waits = true;
        }
        return undefined;
      }
      case 'CallExtensionAsync': {
        const mine = node.extName === (blockExt as { __name?: string }).__name;
        const each = node.extName === (eachExt as { __name?: string }).__name;
        const partial = each || node.extName === (includeExt as { __name?: string }).__name;
        if (!mine && !partial) return undefined;
        if (node.prop === 'waitHere') return undefined;
        if (partial) {
          const args = (node.args as { children: unknown[] } | null)?.children ?? [];
          const name = staticName(args[1]);
          if (name !== undefined) renders.push(name);
        }
        if (inline(ancestors) === undefined) {
          waits = true;
          return undefined;
        }
        const Sync = nodeTypes.CallExtension as unknown as NodesLike['CallExtension'];
        const replacement = new Sync(
          mine ? blockExt : each ? eachExt : includeExt,
          'runInline',
          node.args,
          node.contentArgs as unknown[],
        );
        replacement.lineno = node.lineno;
        replacement.colno = node.colno;
        return replacement;
      }
      default:
        return undefined;
    }
  };
  walk(root, [], visit);
  return { deps: { digest, renders, parent, dynamic }, waits };
}

/** Depth-first over a Nunjucks AST; `visit` may return a node that replaces the visited one. */
function walk(
  node: NodeLike,
  ancestors: NodeLike[],
  visit: (node: NodeLike, ancestors: NodeLike[]) => NodeLike | undefined,
): NodeLike {
  const replaced = visit(node, ancestors) ?? node;
  ancestors.push(replaced);
  // A Set's capture body is not among its declared fields.
  const fields = replaced.typename === 'Set' ? [...replaced.fields, 'body'] : (replaced.fields ?? []);
  for (const field of fields) {
    const value = replaced[field];
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        if (isNode(value[i])) value[i] = walk(value[i] as NodeLike, ancestors, visit);
      }
    } else if (isNode(value)) {
      replaced[field] = walk(value, ancestors, visit);
    }
  }
  ancestors.pop();
  return replaced;
}

function isNode(value: unknown): value is NodeLike {
  return value !== null && typeof value === 'object' && typeof (value as NodeLike).typename === 'string';
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

const KWARGS_MARKER = ['__keywords'];

/** Removes and returns the trailing keyword-arguments object of a tag call, if there is one. */
function popKwargs(args: unknown[]): Record<string, unknown> | undefined {
  const last = args[args.length - 1];
  if (last !== null && typeof last === 'object' && (last as { __keywords?: unknown }).__keywords === true) {
    args.pop();
    return last as Record<string, unknown>;
  }
  return undefined;
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
