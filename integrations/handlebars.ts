// dogpile/handlebars: `{{#cache}}…{{/cache}}` blocks and `{{cachedPartial}}` for Handlebars, over
// TemplateCache. Handlebars helpers are synchronous, so inside a render started by this module's
// compile() a block records its body as a deferred thunk and leaves an unforgeable token; after the
// synchronous pass the tokens are resolved through TemplateCache.getOrCreate (real single flight
// against async backends) and substituted. A helper called by a bare Handlebars render falls back to
// TemplateCache's synchronous in-process tier.

import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, extname, join, relative } from 'node:path';
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
import type { HandlebarsCompileOptions, HandlebarsEnv, HandlebarsRuntimeOptions } from './handlebars-env.js';
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
  TemplateCache as TemplateCacheClass,
  type TemplateCacheOptions,
  toTemplateCache,
} from './templates.js';

export type {
  HandlebarsCompileOptions,
  HandlebarsEnv,
  HandlebarsRuntimeOptions,
  HandlebarsSafeStringClass,
} from './handlebars-env.js';
export { TemplateCache, type TemplateCacheOptions } from './templates.js';

/** Handlebars-only settings of {@link installHandlebars}. */
export interface HandlebarsSettings {
  /**
   * Names under which the helpers are registered. A helper shadows a context value of the same
   * name (with the defaults, `{{cache}}` for a variable named `cache` stops working): choose other
   * names if your data uses these. Default `{ cache: 'cache', partial: 'cachedPartial' }`.
   */
  helperNames?: {
    /** The block helper's name. Default `cache`. */
    cache?: string;
    /** The cached-partial helper's name. Default `cachedPartial`. */
    partial?: string;
    /** The cached-collection helper's name (see README, "Cached collections"). Default `cachedEach`. */
    each?: string;
    /**
     * The subexpression helper that joins its arguments into one string of comma-separated tags,
     * e.g. `tags=(cacheTags "products,user:" user.id)` (see README, "Tags on fragments"). Default `cacheTags`.
     */
    tags?: string;
  };
}

/** Options of {@link installHandlebars}: TemplateCache options (plus Handlebars settings), or an existing TemplateCache. */
export type HandlebarsCacheOptions = (TemplateCacheOptions & HandlebarsSettings) | TemplateCache;

/** A compiled template: renders to a Promise of the final HTML, every cached block resolved. */
export type AsyncTemplate = (context?: unknown, runtimeOptions?: HandlebarsRuntimeOptions) => Promise<string>;

/** What {@link installHandlebars} returns. */
export interface DogpileHandlebars {
  /** Compiles `source`; `name` identifies the template in fragment keys (default: its digest). */
  compile(source: string, options?: { name?: string } & CompileOptions): AsyncTemplate;
  /** Registers a partial, compiled so that its own cache blocks get keys of their own. */
  registerPartial(name: string, source: string): void;
  /** The TemplateCache behind the helpers. */
  readonly cache: TemplateCache;
  /** The Handlebars environment the helpers are installed on. */
  readonly handlebars: HandlebarsEnv;
}

/** Handlebars compile options (passed through). */
export type CompileOptions = HandlebarsCompileOptions;

interface HelperOptions {
  fn: (context: unknown, options?: { data?: unknown; blockParams?: unknown[] }) => string;
  hash: Record<string, unknown>;
  data?: Record<string, unknown> & { root?: unknown };
  loc?: { start: { line: number; column: number } };
}

interface Deferred {
  index: number;
  key: string;
  /** TemplateCache.storedKey(key). */
  stored: string;
  fragment: FragmentOptions | undefined;
  thunk: () => string;
  /** A cached collection: its items' keys and each item's render (resolved by renderCollection). */
  many?: { keys: readonly string[]; item: (index: number) => string; itemTags: string[][] | undefined };
}

/** Tokens of one render; `current` is the collector of the synchronous pass in progress. */
class Collector {
  readonly entries: Deferred[] = [];
  /** Starts every token; the nonce makes tokens unforgeable by user data. */
  readonly marker: string;
  constructor(
    readonly nonce: string,
    readonly counter: { n: number },
  ) {
    this.marker = `\u0000dp${nonce}:`;
  }
  /** Records a deferred body and returns its token (`marker + index + NUL`). */
  add(key: string, stored: string, fragment: FragmentOptions | undefined, thunk: () => string): string {
    const index = this.counter.n++;
    this.entries.push({ index, key, stored, fragment, thunk });
    return `${this.marker}${index}\u0000`;
  }
  /** Records a deferred cached collection and returns its token. */
  addMany(
    keys: readonly string[],
    fragment: FragmentOptions | undefined,
    item: (index: number) => string,
    itemTags: string[][] | undefined,
  ): string {
    const index = this.counter.n++;
    this.entries.push({ index, key: keys[0] ?? '', stored: '', fragment, thunk: () => '', many: { keys, item, itemTags } });
    return `${this.marker}${index}\u0000`;
  }
}

/**
 * The outputs of one collector's fragments as they arrive, in entry order; the first error
 * rejects (as Promise.all would, with less overhead). A class rather than a closure made per render
 * or per entry: under tsx/esbuild (keepNames) every named closure created at run time costs a
 * __name (Object.defineProperty) call.
 */
class Gathered {
  readonly out: string[];
  private left: number;
  private failed = false;
  constructor(
    n: number,
    private readonly resolveAll: (parts: string[]) => void,
    private readonly rejectAll: (err: unknown) => void,
  ) {
    this.out = new Array(n);
    this.left = n;
  }
  settle(i: number, err: unknown, html: string | undefined): void {
    if (this.failed) return;
    if (err) {
      this.failed = true;
      this.rejectAll(err);
      return;
    }
    this.out[i] = html ?? '';
    if (--this.left === 0) this.resolveAll(this.out);
  }
}

let current: Collector | undefined;

// Token nonces: a per-process secret (user data cannot contain what it cannot know) plus a
// per-render counter (tokens of two renders never match). One randomBytes call per process
// instead of one per render, which cost more than a cached block.
const NONCE_SECRET = randomBytes(9).toString('base64url');
let renders = 0;
function nextNonce(): string {
  renders = (renders + 1) % Number.MAX_SAFE_INTEGER;
  return `${NONCE_SECRET}${renders.toString(36)}`;
}

function collect<R>(collector: Collector, fn: () => R): R {
  const previous = current;
  current = collector;
  try {
    return fn();
  } finally {
    current = previous;
  }
}

// The hidden hash pair the compile step adds to every cache block: a JSON BlockMeta.
const META_KEY = '__dp';
const META = [META_KEY];

/** What the compile step knows about a block (injected as its `__dp` hash pair). */
interface BlockMeta {
  /** Template name ('' for none). */
  t: string;
  /** Source digest of the template. */
  d: string;
  /** Block id in the template. */
  b: string;
  /** Render in place (synchronous form) instead of deferring the body. */
  s: boolean;
  /** Whether the tag has options of its own (region=, expire=). */
  o: boolean;
}

/** A block's meta plus what its renders reuse: its messages, digest memo and key stem. */
interface BlockRecord extends BlockMeta {
  where: string;
  memo: DigestMemo;
  stem: string;
  stemDigest: string;
  /** The last key built. */
  key: KeyMemo;
}

// What produced each compiled template function we have seen: the digest of its source (compile)
// or of its precompiled code (template(spec)). A precompiled template's String() is Handlebars'
// generic wrapper, identical for all of them, so it cannot serve as identity.
const functionIdentities = new WeakMap<object, string>();
const wrappedEnvs = new WeakSet<object>();

/** Records the identity of every template `env.compile` / `env.template` makes (once per env). */
function recordIdentities(env: HandlebarsEnv): void {
  if (wrappedEnvs.has(env)) return;
  wrappedEnvs.add(env);
  const compile = env.compile.bind(env);
  (env as { compile: unknown }).compile = (input: unknown, options?: CompileOptions) => {
    const fn = compile(input as string, options);
    if (typeof input === 'string') functionIdentities.set(fn, digestSource(input));
    return fn;
  };
  const template = env.template.bind(env);
  (env as { template: unknown }).template = (spec: unknown) => {
    const fn = template(spec as Parameters<HandlebarsEnv['template']>[0]);
    functionIdentities.set(fn, digestSource(specText(spec)));
    return fn;
  };
}

/** The code of a precompiled template spec, in a stable order (its functions' source text). */
function specText(spec: unknown): string {
  if (spec === null || typeof spec !== 'object') return String(spec);
  return Object.keys(spec)
    .sort()
    .map((k) => `${k}=${String((spec as Record<string, unknown>)[k])}`)
    .join('\n');
}

/**
 * Installs the `cache` block helper and the `cachedPartial` helper on a Handlebars environment.
 *
 * ```hbs
 * {{#cache "sidebar" user.id region="pages" expire=60}}…{{/cache}}
 * {{cachedPartial "card" key=product.id expire=60 product=product}}
 * {{cachedEach "card" products key="id" as="product"}}
 * ```
 *
 * `cachedEach` is the collection form (README "Cached collections"): one multi-read for every
 * item, only the missing items rendered, the items' HTML in order. A record item (`cacheKey`, or
 * `id` plus `updatedAt` / `version`) adds its version to its key, so bumping it re-renders that item
 * only; `key` may be left out when every item is a record. `if` / `unless` turn caching off.
 *
 * Positional parameters of `cache` form the key; `cachedPartial` renders the partial with only its
 * other hash pairs as context. Templates from the returned `compile` return `Promise<string>`.
 * String partials registered on `hbs` (before or after this call) are compiled so that their own
 * cache blocks are keyed by the partial's name: `hbs.registerPartial` is wrapped for that.
 * Limits: inline partials (`{{#*inline}}`) defined outside a cache block are not visible inside it;
 * a cache block inside another helper that transforms its output (e.g. upper-casing) is an error.
 */
export function installHandlebars(
  hbs: HandlebarsEnv,
  options: HandlebarsCacheOptions,
  settings?: HandlebarsSettings,
): DogpileHandlebars {
  const cache = toTemplateCache(options);
  const given = settings?.helperNames ?? (options instanceof TemplateCacheClass ? undefined : options.helperNames);
  const cacheName = given?.cache ?? 'cache';
  const partialName = given?.partial ?? 'cachedPartial';
  const eachName = given?.each ?? 'cachedEach';
  const tagsName = given?.tags ?? 'cacheTags';
  for (const [k, v] of [
    ['cache', cacheName],
    ['partial', partialName],
    ['each', eachName],
    ['tags', tagsName],
  ] as const) {
    if (typeof v !== 'string' || !/^[A-Za-z_$][\w$-]*$/.test(v)) {
      throw new ValidationError(`installHandlebars: helperNames.${k} must be a helper name, got ${JSON.stringify(v)}`);
    }
  }
  // `parse` exists only on the main export, not on create() instances. Loaded here, not at import
  // time, so that dogpile/express can import this module without handlebars installed.
  const main = createRequire(import.meta.url)('handlebars') as HandlebarsEnv;
  const parse = main.parse;
  recordIdentities(hbs);
  recordIdentities(main);
  const digests = new DependencyDigests(cache, 'handlebars');
  // What each template source renders (by its digest), and each registered partial's own deps.
  const templates = new Map<string, TemplateDeps>();
  const partialDeps = new Map<string, TemplateDeps>();

  const inject = (source: string, name: string | undefined): unknown => {
    const ast = parse(source);
    const digest = digestSource(source);
    templates.set(digest, partialReferences(ast, digest, partialName, eachName));
    const inlineNames = inlinePartialNames(ast);
    let ordinal = 0;
    const visit = (node: unknown): void => {
      if (node === null || typeof node !== 'object') return;
      if (Array.isArray(node)) {
        for (const child of node) visit(child);
        return;
      }
      const n = node as {
        type?: string;
        path?: { original?: unknown };
        hash?: { pairs: unknown[] } | null;
        loc?: unknown;
        program?: unknown;
      };
      if (n.type === 'BlockStatement' && n.path?.original === cacheName) {
        ordinal++;
        n.hash ??= { type: 'Hash', pairs: [], loc: n.loc } as unknown as { pairs: unknown[] };
        // A body using an inline partial defined outside it renders in place (the synchronous
        // form): a deferred body would run after Handlebars has removed that inline partial.
        const usesOuterInline = [...partialReferences(n.program, '', partialName, eachName).renders].some(
          (p) => inlineNames.has(p) && !inlinePartialNames(n.program).has(p),
        );
        const meta: BlockMeta = { t: name ?? '', d: digest, b: `b${ordinal}`, s: usesOuterInline, o: n.hash.pairs.length > 0 };
        const value = JSON.stringify(meta);
        n.hash.pairs.push({
          type: 'HashPair',
          key: META_KEY,
          value: { type: 'StringLiteral', value, original: value, loc: n.loc },
          loc: n.loc,
        });
      }
      if (n.type === 'MustacheStatement' && (n.path?.original === eachName || n.path?.original === partialName)) {
        // Cached collections and partials: the template's name, for the messages of bad options.
        n.hash ??= { type: 'Hash', pairs: [], loc: n.loc } as unknown as { pairs: unknown[] };
        const value = name ?? '';
        n.hash.pairs.push({
          type: 'HashPair',
          key: META_KEY,
          value: { type: 'StringLiteral', value, original: value, loc: n.loc },
          loc: n.loc,
        });
      }
      for (const [k, v] of Object.entries(node)) if (k !== 'loc' && k !== 'hash') visit(v);
    };
    visit(ast);
    return ast;
  };

  const compileSync = (source: string, name: string | undefined, compileOptions?: CompileOptions) =>
    hbs.compile(inject(source, name), compileOptions);

  // Partials registered as strings are compiled through the injector, so their blocks are keyed by
  // the partial's own name and digest.
  const originalRegister = hbs.registerPartial.bind(hbs) as (name: string, partial: unknown) => void;
  const registerPartial = (name: string, partial: unknown): void => {
    if (typeof partial === 'string') {
      const compiled = compileSync(partial, `partial:${name}`);
      const digest = digestSource(partial);
      partialDeps.set(name, templates.get(digest) ?? { digest, renders: [], dynamic: false });
      digests.loaded(name, digest);
      originalRegister(name, compiled);
    } else {
      partialDeps.delete(name);
      if (typeof partial === 'function') digests.loaded(name, functionIdentity(partial, name));
      originalRegister(name, partial);
    }
  };
  /** A partial's identity and what it renders, from its registration or the partials map. */
  const resolvePartial = (name: string): ResolvedTemplate => {
    const known = partialDeps.get(name);
    if (known !== undefined) return { id: name, deps: known };
    const partial = (hbs.partials as Record<string, unknown>)[name];
    if (typeof partial === 'string') {
      registerPartial(name, partial);
      return { id: name, deps: partialDeps.get(name) };
    }
    if (typeof partial !== 'function') return { id: name, deps: undefined };
    return { id: name, deps: { digest: functionIdentity(partial, name), renders: [], dynamic: false } };
  };
  const functionIdentity = (fn: object, name: string): string => {
    const known = functionIdentities.get(fn);
    if (known !== undefined) return known;
    if ('_setup' in fn || 'isTop' in fn) {
      cache.warnOnce(
        `hbs-fn:${name}`,
        `dogpile/handlebars: the partial ${JSON.stringify(name)} is a compiled template this integration did not see being made, so its edits cannot reach fragment keys. Create it with this environment's compile() or template(spec), or register its source.`,
      );
    }
    return digestSource(String(fn));
  };
  const blockMemos = new Map<string, DigestMemo>();
  /** The dependency digest of the template `tpl` (source digest `dg`), memoised per template. */
  const treeDigest = (tpl: string, dg: string, given?: DigestMemo): string => {
    if (!cache.digest) return dg;
    let memo = given;
    if (memo === undefined) {
      const memoKey = `${tpl}\u0000${dg}`;
      memo = blockMemos.get(memoKey);
      if (memo === undefined) {
        memo = { generation: -1, digest: dg };
        blockMemos.set(memoKey, memo);
      }
    }
    const rootId = tpl === '' ? undefined : tpl.startsWith('partial:') ? tpl.slice(8) : tpl;
    return digests.current(memo, rootId, templates.get(dg) ?? { digest: dg, renders: [], dynamic: false }, resolvePartial);
  };
  (hbs as { registerPartial: unknown }).registerPartial = (nameOrSpec: unknown, partial?: unknown) => {
    if (typeof nameOrSpec === 'string') registerPartial(nameOrSpec, partial);
    else if (nameOrSpec !== null && typeof nameOrSpec === 'object') {
      for (const [k, v] of Object.entries(nameOrSpec)) registerPartial(k, v);
    }
  };
  for (const [name, partial] of Object.entries(hbs.partials as Record<string, unknown>)) {
    if (typeof partial === 'string') registerPartial(name, partial);
  }

  const records = new Map<string, BlockRecord>();
  /** The record of a block, from its injected meta (or, for an AST compiled elsewhere, its location). */
  const recordFor = (options: HelperOptions): BlockRecord => {
    const raw = options.hash?.[META_KEY];
    const id = typeof raw === 'string' ? raw : `loc${options.loc?.start.line ?? '?'}:${options.loc?.start.column ?? '?'}`;
    let rec = records.get(id);
    if (rec === undefined) {
      const meta: BlockMeta =
        typeof raw === 'string' ? (JSON.parse(raw) as BlockMeta) : { t: '', d: id, b: 'b?', s: false, o: true };
      const where = `{{#${cacheName}}} in ${meta.t ? JSON.stringify(meta.t) : 'a template'} at line ${options.loc?.start.line ?? '?'}`;
      rec = { ...meta, where, memo: { generation: -1, digest: meta.d }, stem: '', stemDigest: '', key: keyMemo() };
      records.set(id, rec);
    }
    return rec;
  };
  /** The key up to the arguments, rebuilt only when the dependency digest changes. */
  const stemOf = (rec: BlockRecord): string => {
    const digest = rec.b === 'b?' ? rec.d : digests.fresh(rec.memo) ? rec.memo.digest : treeDigest(rec.t, rec.d, rec.memo);
    if (rec.stem === '' || rec.stemDigest !== digest) {
      rec.stem = cache.keyStem('handlebars', rec.t || undefined, digest, rec.b);
      rec.stemDigest = digest;
    }
    return rec.stem;
  };

  // `tags=(cacheTags "products,user:" user.id)`: the arguments joined into one comma-separated list.
  hbs.registerHelper(tagsName, (...params: unknown[]) => {
    const options = params.pop() as HelperOptions;
    let out = '';
    params.forEach((p, i) => {
      if (p === undefined || p === null || typeof p === 'object' || typeof p === 'function') {
        throw new ValidationError(
          `(${tagsName}) at line ${options.loc?.start.line ?? '?'}: argument ${i + 1} must be a string or a number, got ${p === null ? 'null' : typeof p}`,
        );
      }
      out += String(p);
    });
    return out;
  });

  hbs.registerHelper(cacheName, function cacheHelper(this: unknown, ...params: unknown[]) {
    const options = params.pop() as HelperOptions;
    if (typeof options.fn !== 'function')
      throw new ValidationError(
        `{{#${cacheName}}} at line ${options.loc?.start.line ?? '?'}: ${cacheName} is a block helper ({{#${cacheName} …}}…{{/${cacheName}}}); to print a value named ${JSON.stringify(cacheName)}, install with helperNames: { cache: 'otherName' }`,
      );
    const rec = recordFor(options);
    const fragment = blockOptions(rec.o ? withTagList(options.hash) : undefined, rec.where, options.data?.root, META);
    if (fragment?.enabled === false) return options.fn(this, { data: options.data });
    const key = cache.keyWithArgs(stemOf(rec), params, rec.key, rec.where);
    const collector = current;
    if (collector === undefined || rec.s) {
      return cache.getOrCreateSync(key, () => options.fn(this, { data: options.data }), fragment);
    }
    const data = snapshot(options.data);
    return collector.add(key, rec.key.stored, fragment, () => options.fn(this, { data }));
  });

  hbs.registerHelper(partialName, function cachedPartialHelper(this: unknown, ...params: unknown[]) {
    const options = params.pop() as HelperOptions;
    const name = params[0];
    const template = options.hash?.[META_KEY];
    const where = `{{${partialName}${typeof name === 'string' ? ` ${JSON.stringify(name)}` : ''}}} in ${typeof template === 'string' && template !== '' ? JSON.stringify(template) : 'a template'} at line ${options.loc?.start.line ?? '?'}`;
    if (typeof name !== 'string' || params.length !== 1) throw new ValidationError(`${where}: expected one partial name`);
    const vars: Record<string, unknown> = {};
    const optionHash: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(options.hash ?? {})) {
      if (k !== META_KEY) (PARTIAL_OPTIONS.has(k) ? optionHash : vars)[k] = v;
    }
    const fragment = fragmentOptions(withTagList(optionHash), PARTIAL_OPTIONS, where);
    const exphbs = options.data?.exphbs as { partials?: Record<string, unknown> } | undefined;
    let partial = exphbs?.partials?.[name] ?? (hbs.partials as Record<string, unknown>)[name];
    if (partial === undefined) throw new DogpileError(`${where}: the partial ${JSON.stringify(name)} could not be found`);
    if (typeof partial === 'string') {
      registerPartial(name, partial);
      partial = (hbs.partials as Record<string, unknown>)[name];
    }
    const render = partial as (ctx: unknown, opts?: unknown) => string;
    const enabled = applyPartialOptOut(options.data?.root, fragment, vars);
    const own = exphbs?.partials?.[name] !== undefined ? undefined : partialDeps.get(name);
    const digest =
      own === undefined ? digestOnce(render, () => functionIdentity(render, name)) : treeDigest(`partial:${name}`, own.digest);
    const keyArg = 'key' in optionHash ? optionHash.key : vars;
    const key = cache.fragmentKey(
      {
        engine: 'handlebars',
        template: `partial:${name}`,
        digest,
        block: 'partial',
        args: [keyArg],
      },
      where,
    );
    const thunk = () => render(vars, { data: { root: vars } });
    const collector = current;
    if (collector === undefined || !enabled) {
      return new hbs.SafeString(collector === undefined ? cache.getOrCreateSync(key, thunk, fragment) : thunk());
    }
    return new hbs.SafeString(collector.add(key, cache.storedKey(key), fragment, thunk));
  });

  // --- Cached collections: {{cachedEach}} (integrations/collections.ts) ------------------------

  hbs.registerHelper(eachName, function cachedEachHelper(this: unknown, ...params: unknown[]) {
    const options = params.pop() as HelperOptions;
    const name = params[0];
    const template = options.hash?.[META_KEY];
    const where = `{{${eachName}${typeof name === 'string' ? ` ${JSON.stringify(name)}` : ''}}} in ${typeof template === 'string' && template !== '' ? JSON.stringify(template) : 'a template'} at line ${options.loc?.start.line ?? '?'}`;
    if (typeof name !== 'string' || params.length !== 2) {
      throw new ValidationError(`${where}: expected a partial name and a collection, then key="field"`);
    }
    const shared: Record<string, unknown> = {};
    const optionHash: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(options.hash ?? {})) {
      if (k !== META_KEY) (COLLECTION_OPTIONS.has(k) ? optionHash : shared)[k] = v;
    }
    const fragment = parseFragmentOptions(withTagList(optionHash), COLLECTION_OPTIONS, where);
    const as = optionHash.as;
    if (as !== undefined && (typeof as !== 'string' || !/^[A-Za-z_$][\w$]*$/.test(as))) {
      throw new ValidationError(`${where}: as must be a variable name, got ${JSON.stringify(as)}`);
    }
    const items = params[1];
    const ownKeys = itemKeys(items, optionHash.key, where);
    const list = items as unknown[];
    const itemTags = itemTagLists(optionHash.itemTags, list, optionHash.key, ownKeys, where);
    const exphbs = options.data?.exphbs as { partials?: Record<string, unknown> } | undefined;
    let partial = exphbs?.partials?.[name] ?? (hbs.partials as Record<string, unknown>)[name];
    if (partial === undefined) throw new DogpileError(`${where}: the partial ${JSON.stringify(name)} could not be found`);
    if (typeof partial === 'string') {
      registerPartial(name, partial);
      partial = (hbs.partials as Record<string, unknown>)[name];
    }
    const render = partial as (ctx: unknown, opts?: unknown) => string;
    const optOut = renderEnabled(options.data?.root) ? undefined : { enabled: false };
    if (optOut !== undefined) fragment.enabled = false;
    applyRenderDevOptions(options.data?.root, fragment);
    const own = exphbs?.partials?.[name] !== undefined ? undefined : partialDeps.get(name);
    const digest =
      own === undefined ? digestOnce(render, () => functionIdentity(render, name)) : treeDigest(`partial:${name}`, own.digest);
    const stem = collectionStem(cache, 'handlebars', `partial:${name}`, digest, as as string | undefined, shared, where);
    const keys = collectionKeys(cache, stem, ownKeys, where);
    // Like {{> name}} inside {{#each}}: the item is the context (merged with the shared hash), or
    // is given under `as`.
    const hasShared = Object.keys(shared).length > 0;
    const item = (i: number): string => {
      const value = list[i];
      let ctx: unknown;
      if (typeof as === 'string') ctx = { ...shared, [as]: value, ...(optOut && { dogpile: optOut }) };
      else if (!hasShared && optOut === undefined) ctx = value;
      else ctx = { ...(value as object), ...shared, ...(optOut && { dogpile: optOut }) };
      return render(ctx, { data: { root: ctx } });
    };
    const collector = current;
    if (collector === undefined) {
      let out = '';
      for (let i = 0; i < keys.length; i++) {
        out += cache.getOrCreateSync(keys[i] as string, () => item(i), itemFragment(fragment, itemTags, i));
      }
      return new hbs.SafeString(out);
    }
    if (optOut !== undefined) {
      let out = '';
      for (let i = 0; i < keys.length; i++) out += item(i);
      return new hbs.SafeString(out);
    }
    return new hbs.SafeString(collector.addMany(keys, fragment, item, itemTags));
  });

  /** One collection of a render: one multi-read, the missing items rendered (their own blocks resolved). */
  const resolveMany = (
    many: NonNullable<Deferred['many']>,
    fragment: FragmentOptions | undefined,
    collector: Collector,
  ): Promise<string> =>
    renderCollection(
      cache,
      many.keys,
      (i) => {
        const inner = new Collector(collector.nonce, collector.counter);
        const body = collect(inner, () => many.item(i));
        return resolve(body, inner);
      },
      fragment,
      many.itemTags,
    ).then((parts) => parts.join(''));

  // --- end of cached collections ---------------------------------------------------------------

  const resolve = async (html: string, collector: Collector): Promise<string> => {
    if (collector.entries.length === 0) return html;
    const entries = collector.entries;
    // Every fragment at once; the first error rejects (as Promise.all would, with less overhead).
    const parts = await new Promise<string[]>((resolveAll, rejectAll) => {
      const all = new Gathered(entries.length, resolveAll, rejectAll);
      for (let i = 0; i < entries.length; i++) {
        const entry = entries[i] as Deferred;
        if (entry.many !== undefined) {
          resolveMany(entry.many, entry.fragment, collector).then(
            (h) => all.settle(i, null, h),
            (err: unknown) => all.settle(i, err, undefined),
          );
          continue;
        }
        cache.getOrCreateStoredThen(
          entry.key,
          entry.stored,
          () => {
            const inner = new Collector(collector.nonce, collector.counter);
            const body = collect(inner, entry.thunk);
            return resolve(body, inner);
          },
          entry.fragment,
          (err, html) => all.settle(i, err, html),
        );
      }
    });
    // One pass over the output. Tokens of one collector are numbered consecutively from its first.
    const pieces = html.split(collector.marker);
    const first = entries[0]?.index ?? 0;
    const seen = new Uint8Array(entries.length);
    if (pieces.length - 1 !== entries.length) throw transformedError();
    let out = pieces[0] ?? '';
    for (let j = 1; j < pieces.length; j++) {
      const piece = pieces[j] as string;
      const end = piece.indexOf('\u0000');
      const i = Number(piece.slice(0, end)) - first;
      if (end < 0 || !(i >= 0 && i < entries.length) || seen[i]) throw transformedError();
      seen[i] = 1;
      out += parts[i] + piece.slice(end + 1);
    }
    return out;
  };

  return {
    cache,
    handlebars: hbs,
    registerPartial,
    compile(source, compileOptions) {
      const { name, ...rest } = compileOptions ?? {};
      const template = compileSync(source, name, rest);
      return (context, runtimeOptions) => {
        const collector = new Collector(nextNonce(), { n: 0 });
        let html: string;
        try {
          html = collect(collector, () => template(context, runtimeOptions));
        } catch (err) {
          return Promise.reject(err);
        }
        return resolve(html, collector);
      };
    },
  };
}

/** Options of {@link handlebarsEngine}. */
export interface HandlebarsEngineOptions {
  /** The views directory (template names in keys are relative to it). */
  views: string;
  /** Directory of partials, registered by file name without extension. Default `<views>/partials`. */
  partialsDir?: string;
  /** Layout view (relative to `views`, without extension) wrapping every page via `{{{body}}}`; `false` for none. Default `layouts/main` if it exists. */
  layout?: string | false;
  /** View file extension. Default `.hbs`. */
  extname?: string;
}

/**
 * A bare Express engine for `app.engine('hbs', handlebarsEngine(dh, { views }))`: compiles each view
 * with {@link DogpileHandlebars.compile} (cached while Express's `view cache` is on), registers the
 * partials directory, and wraps pages in a layout. A render option `layout: false` disables the
 * layout for one render.
 */
export function handlebarsEngine(
  dh: DogpileHandlebars,
  options: HandlebarsEngineOptions,
): (file: string, locals: object, cb: (err: unknown, html?: string) => void) => void {
  const ext = options.extname ?? '.hbs';
  const partialsDir = options.partialsDir ?? join(options.views, 'partials');
  let registered = false;
  const registerPartials = (): void => {
    let files: string[] = [];
    try {
      files = readdirSync(partialsDir).filter((f) => extname(f) === ext);
    } catch {
      return;
    }
    for (const file of files) dh.registerPartial(basename(file, ext), readFileSync(join(partialsDir, file), 'utf8'));
  };
  const compiled = new Map<string, AsyncTemplate>();
  const load = (file: string, cacheViews: boolean): AsyncTemplate | undefined => {
    let template = cacheViews ? compiled.get(file) : undefined;
    if (template) return template;
    let source: string;
    try {
      source = readFileSync(file, 'utf8');
    } catch {
      return undefined;
    }
    template = dh.compile(source, { name: relative(options.views, file) });
    compiled.set(file, template);
    return template;
  };
  return (file, locals, cb) => {
    const cacheViews = (locals as { cache?: unknown }).cache === true;
    if (!registered || !cacheViews) {
      registerPartials();
      registered = true;
    }
    const run = async (): Promise<string> => {
      const page = load(file, cacheViews);
      if (!page) throw new DogpileError(`dogpile/handlebars: cannot read view ${file}`);
      const body = await page(locals);
      const layoutOpt = (locals as { layout?: unknown }).layout;
      const layoutName =
        layoutOpt === false ? false : typeof layoutOpt === 'string' ? layoutOpt : (options.layout ?? 'layouts/main');
      if (layoutName === false) return body;
      const layout = load(join(options.views, layoutName + ext), cacheViews);
      if (!layout) {
        if (options.layout === undefined && typeof layoutOpt !== 'string') return body;
        throw new DogpileError(`dogpile/handlebars: layout ${JSON.stringify(layoutName)} not found`);
      }
      return layout({ ...locals, body });
    };
    run().then(
      (html) => cb(null, html),
      (err: unknown) => cb(err),
    );
  };
}

// ------------------------------------------------------------------------------------------------

function fragmentOptions(hash: Record<string, unknown>, allowed: ReadonlySet<string>, where: string): FragmentOptions {
  return parseFragmentOptions(hash, allowed, where, META);
}

/**
 * Handlebars has no array literal, so a `tags=` string is a comma-separated list of tags
 * (`tags="products,featured"`; spaces around commas are dropped). An array from the context is
 * taken as it is. Returns `hash` itself when there is nothing to split.
 */
function withTagList(hash: Record<string, unknown>): Record<string, unknown> {
  const tags = hash.tags;
  if (typeof tags !== 'string' || tags === '') return hash;
  const list = tags
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
  return { ...hash, tags: list.length === 0 ? '' : list };
}

function transformedError(): DogpileError {
  return new DogpileError(
    'dogpile/handlebars: a cached block’s output was transformed by an enclosing helper (its placeholder was lost or duplicated); move the cache block outside that helper',
  );
}

/**
 * Copies a data frame and its parents: `each` mutates one frame across iterations (`@index`,
 * `@first`), so a deferred body must keep the values of its own iteration.
 */
function snapshot(data: unknown): unknown {
  if (data === null || typeof data !== 'object') return data;
  const copy: Record<string, unknown> = { ...(data as Record<string, unknown>) };
  if ('_parent' in copy) copy._parent = snapshot(copy._parent);
  return copy;
}

interface AstNode {
  type?: string;
  name?: { type?: string; original?: unknown; value?: unknown };
  path?: { original?: unknown };
  params?: Array<{ type?: string; value?: unknown }>;
}

/** Visits every node of a Handlebars AST (or part of one). */
function eachNode(node: unknown, visit: (node: AstNode) => void): void {
  if (node === null || typeof node !== 'object') return;
  if (Array.isArray(node)) {
    for (const child of node) eachNode(child, visit);
    return;
  }
  visit(node as AstNode);
  for (const [k, v] of Object.entries(node)) if (k !== 'loc') eachNode(v, visit);
}

/**
 * The partials a template (or a block's program) renders, from Handlebars' AST: `{{> name}}`,
 * partial blocks `{{#> name}}`, and `{{cachedPartial "name"}}`. Inline partials it defines and
 * `@partial-block` are its own; a name that is an expression makes it `dynamic`.
 */
function partialReferences(ast: unknown, digest: string, partialHelper: string, eachHelper?: string): TemplateDeps {
  const local = inlinePartialNames(ast);
  const renders = new Set<string>();
  let dynamic = false;
  eachNode(ast, (n) => {
    if (n.type === 'PartialStatement' || n.type === 'PartialBlockStatement') {
      const name = n.name;
      if (name?.type === 'PathExpression' && typeof name.original === 'string') {
        if (!name.original.startsWith('@') && !local.has(name.original)) renders.add(name.original);
      } else if (name?.type === 'StringLiteral' && typeof name.value === 'string') {
        if (!local.has(name.value)) renders.add(name.value);
      } else dynamic = true;
    } else if (n.type === 'MustacheStatement' && (n.path?.original === partialHelper || n.path?.original === eachHelper)) {
      const first = n.params?.[0];
      if (first?.type === 'StringLiteral' && typeof first.value === 'string') renders.add(first.value);
      else dynamic = true;
    }
  });
  return { digest, renders: [...renders], dynamic };
}

/** Names of the inline partials (`{{#*inline "name"}}`) defined in a template or program. */
function inlinePartialNames(ast: unknown): Set<string> {
  const names = new Set<string>();
  eachNode(ast, (n) => {
    if (n.type === 'DecoratorBlock' && n.path?.original === 'inline') {
      const first = n.params?.[0];
      if (first?.type === 'StringLiteral' && typeof first.value === 'string') names.add(first.value);
    }
  });
  return names;
}
