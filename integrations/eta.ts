// dogpile/eta: an Eta plugin adding `<% cache … %>…<% endcache %>` blocks and `cachedInclude()`,
// over TemplateCache. Only Eta syntax lives here: a processAST rewrite turns the two tags into a
// call that captures the body's output buffer, and processFnString picks the async form (renderAsync)
// or the synchronous one (render, through TemplateCache's in-process tier).

import { join, relative } from 'node:path';
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
import { DependencyDigests, type DigestMemo, type TemplateDeps, type TemplateResolver } from './digests.js';
import {
  applyPartialOptOut,
  applyRenderDevOptions,
  blockOptions,
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

/** Options of {@link dogpileEta}: TemplateCache options, or an existing TemplateCache. */
export type EtaCacheOptions = TemplateCacheOptions | TemplateCache;

/** An Eta AST node as plugins see it: a text chunk, or a tag. */
export type EtaAstNode =
  | string
  | {
      /** The tag's kind: `'e'` (evaluate), `'r'` (raw output) or `'i'` (escaped output). */
      t: string;
      /** The tag's JavaScript source. */
      val: string;
      /** The tag's line in the template (1-based), when Eta records it. */
      lineNo?: number;
    };

/** The Eta plugin returned by {@link dogpileEta} (pass it in `plugins`). */
export interface DogpileEtaPlugin {
  /** Eta hook: remembers the source (for the template digest and line numbers in errors). */
  processTemplate(source: string): string;
  /**
   * Eta hook: records what the template renders (for dependency digests) and rewrites `cache` /
   * `endcache` tags into a call that captures the body.
   */
  processAST(ast: EtaAstNode[], config?: { varName?: string }): EtaAstNode[];
  /**
   * Eta hook: chooses, per block, the async form or (in a sync template, or inside a non-async
   * callback) the synchronous one, and defines `cachedInclude`.
   */
  processFnString(fnString: string, config?: { varName?: string }): string;
  /** The TemplateCache behind the plugin (for `get`, `set`, `invalidate`, `'error'` events). */
  readonly cache: TemplateCache;
  /** Identifies the plugin to the compiled templates. */
  readonly __dogpileId: string;
  /** Called by compiled templates; not for direct use. */
  readonly runtime: EtaRuntime;
}

/** The parts of an `Eta` instance the runtime uses (`this` inside compiled templates). */
export interface EtaLike {
  /** Eta's configuration (`views`, escaping, template caching). */
  config: {
    /** The views directory. */
    views?: string;
    /** Whether `<%= %>` output is escaped. */
    autoEscape?: boolean;
    /** Whether compiled templates are kept. */
    cache?: boolean;
  };
  /** Resolves a template name to a file path (relative to `options.filepath` when given). */
  resolvePath(name: string, options?: object): string;
  /** Reads a template file's source. */
  readFile(path: string): string;
  /** Eta's parser (runs the plugins' processTemplate / processAST hooks). */
  parse?(source: string): unknown;
  /** Compiled templates loaded by `@name` (`loadTemplate`). */
  templatesAsync?: {
    /** The compiled template, if loaded. */
    get(name: string): unknown;
  };
  /** Compiled synchronous templates loaded by `@name`. */
  templatesSync?: {
    /** The compiled template, if loaded. */
    get(name: string): unknown;
  };
  /** Renders a named template synchronously. */
  render(name: string, data: object, meta?: object): string;
  /** Renders a named template asynchronously (every cached block resolved). */
  renderAsync(name: string, data: object, meta?: object): Promise<string>;
}

/** What compiled templates call; internal but stable for the lifetime of one plugin. */
export interface EtaRuntime {
  /** A cache block in an async template: the body runs only on a miss. */
  block(
    eta: EtaLike,
    options: EtaRenderOptions | undefined,
    it: unknown,
    meta: string,
    args: unknown[],
    opts: unknown,
    body: () => Promise<string>,
  ): Promise<string>;
  /** A cache block in a synchronous template (served from the in-process tier). */
  blockSync(
    eta: EtaLike,
    options: EtaRenderOptions | undefined,
    it: unknown,
    meta: string,
    args: unknown[],
    opts: unknown,
    body: () => string,
  ): string;
  /** `cachedInclude` in an async template: renders the partial only on a miss. */
  include(
    eta: EtaLike,
    options: EtaRenderOptions | undefined,
    it: unknown,
    name: string,
    data: unknown,
    opts: unknown,
    line?: number | string,
  ): Promise<string>;
  /** `cachedEach` in an async template: one multi-read, only the missing items rendered. */
  each(
    eta: EtaLike,
    options: EtaRenderOptions | undefined,
    it: unknown,
    line: number | string,
    name: string,
    items: unknown,
    opts: unknown,
  ): Promise<string>;
  /** `cachedEach` in a synchronous template (each item from the in-process tier). */
  eachSync(
    eta: EtaLike,
    options: EtaRenderOptions | undefined,
    it: unknown,
    line: number | string,
    name: string,
    items: unknown,
    opts: unknown,
  ): string;
  /** `cachedInclude` in a synchronous template (served from the in-process tier). */
  includeSync(
    eta: EtaLike,
    options: EtaRenderOptions | undefined,
    it: unknown,
    name: string,
    data: unknown,
    opts: unknown,
    line?: number | string,
  ): string;
}

/** The `options` (meta) argument of a compiled Eta template. */
export interface EtaRenderOptions {
  /** Absolute path of the file template being rendered (absent for string templates). */
  filepath?: string;
}

const OPEN_RE = /^\s*cache\s+(?![=.([])([\s\S]*?)\s*;?\s*$/;
const CLOSE_RE = /^\s*endcache\s*;?\s*$/;
// Markers the AST rewrite leaves for processFnString, per block number: `await ` / `async ` and
// the runtime entry (`block` or `blockSync`) are chosen there, once the whole function is known.
const MARKER_RE = /\/\*__dp_(await|async|block):(\d+)\*\//g;
const AsyncFunction = (async () => {}).constructor as new (...args: string[]) => unknown;
let nextId = 0;

/**
 * An Eta plugin: `new Eta({ views, plugins: [dogpileEta({ regions })] })`.
 *
 * ```eta
 * <% cache "sidebar", it.user.id, { region: "pages", expire: 60 } %>…<% endcache %>
 * <%~ await cachedInclude("card", { product }, { key: product.id, expire: 60 }) %>
 * <%~ await cachedEach("card", it.products, { key: "id", as: "product" }) %>
 * ```
 *
 * `cachedEach` is the collection form (README "Cached collections"): one multi-read for every
 * item, only the missing items rendered, the items' HTML in order. A record item (`cacheKey`, or
 * `id` plus `updatedAt` / `version`) adds its version to its key, so bumping it re-renders that item
 * only; `key` may be left out when every item is a record. `if` / `unless` turn caching off.
 *
 * The arguments of `cache` form the key; a trailing object literal holds the options.
 * `cachedInclude` renders the partial with only the given data. Render with `renderAsync`; a
 * synchronous `render` uses TemplateCache's in-process tier (and `cachedInclude` without `await`).
 * A block inside a non-async callback (`it.items.forEach(function (p) { %>…<% })`, `map((p) => …)`)
 * cannot await, so it uses the synchronous form (the in-process tier) there too.
 *
 * Fragment keys digest the template and every template it renders (`include`, `includeAsync`,
 * `cachedInclude` with a literal name, and the layouts of those), found in Eta's parse output.
 */
export function dogpileEta(options: EtaCacheOptions): DogpileEtaPlugin {
  const cache = toTemplateCache(options);
  const id = `dp${nextId++}`;
  let source = '';
  const templates = new Map<string, TemplateDeps>();
  const digests = new DependencyDigests(cache, 'eta');
  const runtime = makeRuntime(cache, templates, digests);
  return {
    cache,
    __dogpileId: id,
    runtime,
    processTemplate(src: string): string {
      source = src;
      return src;
    },
    processAST(ast: EtaAstNode[], config?: { varName?: string }): EtaAstNode[] {
      const digest = digestSource(source);
      const varName = config?.varName ?? 'it';
      // A source parsed again is a reload (Eta `cache: false`): retire the memoised digests.
      digests.loaded(`#${digest}`, digest);
      templates.set(digest, templateDeps(ast, digest));
      ast = withCallLines(withEachLines(ast, source), source, INCLUDE_CALL_RE, '__dp_incl');
      const out: EtaAstNode[] = [];
      let depth = 0;
      let ordinal = 0;
      let opens = 0;
      let closes = 0;
      for (const node of ast) {
        if (typeof node === 'string' || node.t !== 'e') {
          out.push(node);
          continue;
        }
        const open = OPEN_RE.exec(node.val);
        if (open) {
          opens++;
          depth++;
          ordinal++;
          const line = lineOf(source, 'cache', opens);
          const { args, opts, assignment } = splitArgs(open[1] ?? '');
          const error =
            assignment === undefined
              ? ''
              : `${JSON.stringify(assignment)} is an assignment (it would set a global variable), not an option; write options as a trailing object: <% cache "key", { ${assignment.replace(/\s*=\s*/, ': ')} } %>`;
          const meta = JSON.stringify(`${digest}|b${ordinal}|${line}|${error}`);
          const n = ordinal;
          out.push({
            ...node,
            val: `{ const __dp_v = /*__dp_await:${n}*/__dp./*__dp_block:${n}*/(__dp_eta, options, ${varName}, ${meta}, [${error ? '' : args}], ${(!error && opts) || 'undefined'}, /*__dp_async:${n}*/() => { const __dp_s = __eta.res; __eta.res = ''; try {`,
          });
          continue;
        }
        if (CLOSE_RE.test(node.val)) {
          closes++;
          if (depth === 0)
            throw parseError(`<% endcache %> without a matching <% cache %> at line ${lineOf(source, 'endcache', closes)}`);
          depth--;
          out.push({ ...node, val: 'return __eta.res; } finally { __eta.res = __dp_s; } }); __eta.res += __dp_v; }' });
          continue;
        }
        out.push(node);
      }
      if (depth > 0) {
        throw parseError(`<% cache %> at line ${lineOf(source, 'cache', opens - depth + 1)} has no matching <% endcache %>`);
      }
      return out;
    },
    processFnString(fn: string, config?: { varName?: string }): string {
      const isAsync = fn.includes('await includeAsync (__eta.layout');
      const varName = config?.varName ?? 'it';
      const header =
        // `this` is the Eta instance here, but not inside a user's `function () {}` callback.
        `const __dp_eta = this;\nconst __dp = this.config.plugins.find((p) => p && p.__dogpileId === ${JSON.stringify(id)}).runtime;\n` +
        (isAsync
          ? `const __dp_incl = (__l, __n, __d, __o) => __dp.include(this, options, ${varName}, __n, __d, __o, __l);\n`
          : `const __dp_incl = (__l, __n, __d, __o) => __dp.includeSync(this, options, ${varName}, __n, __d, __o, __l);\n`) +
        `const cachedInclude = (__n, __d, __o) => __dp_incl('?', __n, __d, __o);\n` +
        // Cached collections: calls written in tags carry their line (see withEachLines).
        `const __dp_each = (__l, __n, __c, __o) => __dp.${isAsync ? 'each' : 'eachSync'}(this, options, ${varName}, __l, __n, __c, __o);\n` +
        `const cachedEach = (__n, __c, __o) => __dp_each('?', __n, __c, __o);\n`;
      const body = header + fn;
      if (!isAsync) return withBlockForms(body, () => false);
      const all = withBlockForms(body, () => true);
      if (compiles(varName, all) !== 'await') return all;
      // Some block sits in a non-async function (a forEach / map callback): it cannot await.
      // Each block is tried alone in the async form (V8's parser decides); the others stay sync.
      const asyncBlocks = new Set<string>();
      for (const n of new Set([...body.matchAll(MARKER_RE)].map((m) => m[2] as string))) {
        if (
          compiles(
            varName,
            withBlockForms(body, (k) => k === n),
          ) === true
        )
          asyncBlocks.add(n);
      }
      return withBlockForms(body, (k) => asyncBlocks.has(k));
    },
  };
}

/** Fills the markers: block `n` awaits the async runtime entry when `isAsync(n)`, else runs sync. */
function withBlockForms(fn: string, isAsync: (n: string) => boolean): string {
  return fn.replace(MARKER_RE, (_m, what: string, n: string) => {
    const a = isAsync(n);
    if (what === 'await') return a ? 'await ' : '';
    if (what === 'async') return a ? 'async ' : '';
    return a ? 'block' : 'blockSync';
  });
}

/** Whether an async template function body compiles: `true`, `'await'` (misplaced await), or `false`. */
function compiles(varName: string, body: string): true | 'await' | false {
  try {
    new AsyncFunction(varName, 'options', body);
    return true;
  } catch (err) {
    return err instanceof SyntaxError && /await/.test(err.message) ? 'await' : false;
  }
}

/**
 * A bare Express engine for an Eta instance: `app.engine('eta', etaEngine(eta))`. Views are rendered
 * with `renderAsync` by their path relative to `eta.config.views` (Eta rejects absolute paths).
 * While Express's `view cache` setting is on (its default under `NODE_ENV=production`), the engine
 * also turns on Eta's own template cache (`eta.config.cache`), so views and partials are read and
 * compiled once, not on every render; it never turns it off.
 */
export function etaEngine(eta: EtaLike): (file: string, options: object, cb: (err: unknown, html?: string) => void) => void {
  return (file, options, cb) => {
    const views = eta.config.views;
    const name = views ? relative(views, file) : file;
    // Express passes `cache: true` while its `view cache` setting is on (the default under
    // NODE_ENV=production). Eta re-reads and recompiles every template file on each render unless
    // its own `cache` is on, so turn that on too (never off: a cache the app asked for stays).
    if ((options as { cache?: unknown }).cache === true && eta.config.cache !== true) eta.config.cache = true;
    eta.renderAsync(name, options).then(
      (html) => cb(null, html),
      (err: unknown) => cb(err),
    );
  };
}

// ------------------------------------------------------------------------------------------------

function makeRuntime(cache: TemplateCache, templates: Map<string, TemplateDeps>, digests: DependencyDigests): EtaRuntime {
  // path.relative is slow for a per-block call; a view's name never changes.
  const names = new Map<string, string>();
  const viewName = (eta: EtaLike, file: string): string => {
    const views = eta.config.views;
    const memo = views ? `${views}\0${file}` : file;
    let name = names.get(memo);
    if (name === undefined) {
      name = views ? relative(views, file) : file;
      names.set(memo, name);
    }
    return name;
  };
  const templateName = (eta: EtaLike, options: EtaRenderOptions | undefined): string | undefined =>
    options?.filepath ? viewName(eta, options.filepath) : undefined;
  /** A template found by name relative to `from` (a view name): its view name and dependencies. */
  const resolver =
    (eta: EtaLike): TemplateResolver =>
    (name, from) => {
      if (name.startsWith('@')) {
        const fn = eta.templatesAsync?.get(name) ?? eta.templatesSync?.get(name);
        return {
          id: name,
          deps: fn === undefined ? undefined : { digest: digestSource(String(fn)), renders: [], dynamic: false },
        };
      }
      const views = eta.config.views;
      const path = eta.resolvePath(name, from === undefined ? undefined : { filepath: views ? join(views, from) : from });
      return { id: viewName(eta, path), deps: depsOf(eta, path) };
    };
  const depsOf = (eta: EtaLike, path: string): TemplateDeps | undefined => {
    let src: string;
    try {
      src = eta.readFile(path);
    } catch {
      return undefined;
    }
    const digest = digestSource(src);
    // Eta's own parser fills `templates` (through this plugin's processAST).
    if (!templates.has(digest)) eta.parse?.(src);
    return templates.get(digest) ?? { digest, renders: [], dynamic: false };
  };
  const noDeps = (digest: string): TemplateDeps => ({ digest, renders: [], dynamic: false });
  interface BlockRecord {
    template: string | undefined;
    digest: string;
    block: string;
    line: string;
    error: string;
    /** `<% cache %> at line N`, for messages. */
    where: string;
    memo: DigestMemo;
    /** The key up to the arguments, for the engine and digest it was built with. */
    stem: string;
    stemEngine: string;
    stemDigest: string;
    /** The last key built. */
    key: KeyMemo;
  }
  // Records by the block's compile-time literal, then by the file being rendered ('' for strings).
  const records = new Map<string, Map<string, BlockRecord>>();
  const resolvers = new WeakMap<EtaLike, TemplateResolver>();
  const resolverOf = (eta: EtaLike): TemplateResolver => {
    let r = resolvers.get(eta);
    if (r === undefined) {
      r = resolver(eta);
      resolvers.set(eta, r);
    }
    return r;
  };
  const engine = (eta: EtaLike): string => (eta.config.autoEscape === false ? 'eta-raw' : 'eta');
  const recordFor = (eta: EtaLike, options: EtaRenderOptions | undefined, meta: string): BlockRecord => {
    let byFile = records.get(meta);
    if (byFile === undefined) {
      byFile = new Map();
      records.set(meta, byFile);
    }
    const file = options?.filepath ?? '';
    let rec = byFile.get(file);
    if (rec === undefined) {
      const [digest = '', block = '', line = '?', ...error] = meta.split('|');
      const template = file === '' ? undefined : viewName(eta, file);
      rec = {
        template,
        digest,
        block,
        line,
        error: error.join('|'),
        where: `<% cache %> in ${template === undefined ? 'a string template' : JSON.stringify(template)} at line ${line}`,
        memo: { generation: -1, digest },
        stem: '',
        stemEngine: '',
        stemDigest: '',
        key: keyMemo(),
      };
      byFile.set(file, rec);
    }
    if (rec.error !== '') {
      throw new ValidationError(`<% cache %> in ${rec.template ?? 'a string template'} at line ${rec.line}: ${rec.error}`);
    }
    return rec;
  };
  const blockKey = (eta: EtaLike, rec: BlockRecord, args: unknown[]): string => {
    const digest = !cache.digest
      ? rec.digest
      : digests.fresh(rec.memo)
        ? rec.memo.digest
        : digests.current(rec.memo, rec.template, templates.get(rec.digest) ?? noDeps(rec.digest), resolverOf(eta));
    const eng = engine(eta);
    if (rec.stemDigest !== digest || rec.stemEngine !== eng) {
      rec.stem = cache.keyStem(eng, rec.template, digest, rec.block);
      rec.stemDigest = digest;
      rec.stemEngine = eng;
    }
    return cache.keyWithArgs(rec.stem, args, rec.key, rec.where);
  };
  const partials = new Map<string, { id: string; own: TemplateDeps; memo: DigestMemo }>();
  const includeKey = (
    eta: EtaLike,
    options: EtaRenderOptions | undefined,
    it: unknown,
    name: string,
    data: unknown,
    opts: unknown,
    line: number | string = '?',
  ) => {
    if (typeof name !== 'string') throw new ValidationError('cachedInclude: the first argument must be a template name');
    if (data !== undefined && (data === null || typeof data !== 'object')) {
      throw new ValidationError('cachedInclude: the second argument must be the partial’s data object');
    }
    const from = templateName(eta, options);
    const fragment = fragmentOptions(
      opts,
      PARTIAL_OPTIONS,
      `cachedInclude(${JSON.stringify(name)}) in ${from === undefined ? 'a string template' : JSON.stringify(from)} at line ${line}`,
    );
    const vars: Record<string, unknown> = { ...(data as Record<string, unknown> | undefined) };
    applyPartialOptOut(it, fragment, vars);
    const memoKey = `${from ?? ''}\u0000${name}`;
    let partial = partials.get(memoKey);
    if (partial === undefined || partial.memo.generation !== digests.generationNow()) {
      const resolve = resolver(eta);
      const found = resolve(name, from);
      const own = found.deps ?? noDeps(digestSource(name));
      partial = { id: found.id, own, memo: partial?.memo ?? { generation: -1, digest: own.digest } };
      partials.set(memoKey, partial);
    }
    const id = partial.id;
    const digest = cache.digest ? digests.current(partial.memo, id, partial.own, resolverOf(eta)) : partial.own.digest;
    const keyArg = opts !== null && typeof opts === 'object' && 'key' in opts ? (opts as { key: unknown }).key : vars;
    const key = cache.fragmentKey(
      { engine: engine(eta), template: id, digest, block: 'partial', args: [keyArg] },
      `cachedInclude(${JSON.stringify(name)})`,
    );
    return { key, fragment, vars };
  };
  // --- Cached collections: cachedEach (integrations/collections.ts) -----------------------------

  interface EachCall {
    keys: string[];
    fragment: FragmentOptions;
    /** Each item's own tags (`itemTags`), or undefined. */
    itemTags: string[][] | undefined;
    vars(i: number): Record<string, unknown>;
  }
  const eachCall = (
    eta: EtaLike,
    options: EtaRenderOptions | undefined,
    it: unknown,
    line: number | string,
    name: unknown,
    items: unknown,
    opts: unknown,
  ): EachCall => {
    const from = templateName(eta, options);
    const where = `cachedEach(${typeof name === 'string' ? JSON.stringify(name) : ''}) in ${from === undefined ? 'a string template' : JSON.stringify(from)} at line ${line}`;
    if (typeof name !== 'string') throw new ValidationError(`${where}: the first argument must be a template name`);
    if (opts !== undefined && (opts === null || typeof opts !== 'object')) {
      throw new ValidationError(
        `${where}: the third argument must be the options object (e.g. { key: "id" }; key may be left out when the items are records)`,
      );
    }
    const o = (opts ?? {}) as { key?: unknown; as?: unknown; data?: unknown };
    const fragment = parseFragmentOptions(o as Record<string, unknown>, EACH_OPTIONS, where);
    if (o.as !== undefined && (typeof o.as !== 'string' || !/^[A-Za-z_$][\w$]*$/.test(o.as))) {
      throw new ValidationError(`${where}: as must be a variable name, got ${JSON.stringify(o.as)}`);
    }
    if (o.data !== undefined && (o.data === null || typeof o.data !== 'object')) {
      throw new ValidationError(`${where}: data must be an object of variables shared by every item`);
    }
    const as = o.as as string | undefined;
    const data = o.data as Record<string, unknown> | undefined;
    const list = items as unknown[];
    const ownKeys = itemKeys(items, o.key, where);
    const itemTags = itemTagLists((o as { itemTags?: unknown }).itemTags, list, o.key, ownKeys, where);
    if (as === undefined) {
      list.forEach((item, i) => {
        if (item === null || typeof item !== 'object') {
          throw new ValidationError(`${where}: item ${i} is not an object, so it cannot be the partial's data; give as: "name"`);
        }
      });
    }
    const enabled = renderEnabled(it);
    if (!enabled) fragment.enabled = false;
    applyRenderDevOptions(it, fragment);
    // The partial's identity and dependency digest, memoised like cachedInclude's.
    const memoKey = `${from ?? ''}\u0000${name}`;
    let partial = partials.get(memoKey);
    if (partial === undefined || partial.memo.generation !== digests.generationNow()) {
      const found = resolver(eta)(name, from);
      const own = found.deps ?? noDeps(digestSource(name));
      partial = { id: found.id, own, memo: partial?.memo ?? { generation: -1, digest: own.digest } };
      partials.set(memoKey, partial);
    }
    const digest = cache.digest ? digests.current(partial.memo, partial.id, partial.own, resolverOf(eta)) : partial.own.digest;
    const stem = collectionStem(cache, engine(eta), partial.id, digest, as, data, where);
    const keys = collectionKeys(cache, stem, ownKeys, where);
    const optOut = enabled ? undefined : { enabled: false };
    const vars = (i: number): Record<string, unknown> => {
      const item = list[i];
      if (as !== undefined) return optOut ? { ...data, [as]: item, dogpile: optOut } : { ...data, [as]: item };
      if (data === undefined && optOut === undefined) return item as Record<string, unknown>;
      return { ...(item as Record<string, unknown>), ...data, ...(optOut && { dogpile: optOut }) };
    };
    return { keys, fragment, itemTags, vars };
  };

  // --- end of cached collections ---------------------------------------------------------------

  return {
    block(eta, options, it, meta, args, opts, body) {
      const rec = recordFor(eta, options, meta);
      const fragment = blockOptions(objectOptions(opts, rec.where), rec.where, it);
      return cache.getOrCreateStored(blockKey(eta, rec, args), rec.key.stored, body, fragment);
    },
    /** A cache block in a synchronous template (TemplateCache's in-process tier). */
    blockSync(eta, options, it, meta, args, opts, body) {
      const rec = recordFor(eta, options, meta);
      const fragment = blockOptions(objectOptions(opts, rec.where), rec.where, it);
      return cache.getOrCreateSync(blockKey(eta, rec, args), body, fragment);
    },
    /** `await cachedInclude(name, data, opts)` in an async template. */
    include(eta, options, it, name, data, opts, line) {
      const { key, fragment, vars } = includeKey(eta, options, it, name, data, opts, line);
      return cache.getOrCreate(key, () => eta.renderAsync(name, vars, options), fragment);
    },
    /** `cachedInclude(name, data, opts)` in a synchronous template. */
    includeSync(eta, options, it, name, data, opts, line) {
      const { key, fragment, vars } = includeKey(eta, options, it, name, data, opts, line);
      return cache.getOrCreateSync(key, () => eta.render(name, vars, options), fragment);
    },
    /** `await cachedEach(name, items, { key?, as?, data?, region?, expire?, if?, unless? })` in an async template. */
    each(eta, options, it, line, name, items, opts) {
      let call: EachCall;
      try {
        call = eachCall(eta, options, it, line, name, items, opts);
      } catch (err) {
        return Promise.reject(err);
      }
      return renderCollection(
        cache,
        call.keys,
        (i) => eta.renderAsync(name, call.vars(i), options),
        call.fragment,
        call.itemTags,
      ).then((parts) => parts.join(''));
    },
    /** `cachedEach(…)` in a synchronous template: each item through the in-process tier. */
    eachSync(eta, options, it, line, name, items, opts) {
      const call = eachCall(eta, options, it, line, name, items, opts);
      let out = '';
      for (let i = 0; i < call.keys.length; i++) {
        const fragment = itemFragment(call.fragment, call.itemTags, i);
        out += cache.getOrCreateSync(call.keys[i] as string, () => eta.render(name, call.vars(i), options), fragment);
      }
      return out;
    },
  };
}

/** A block's trailing options argument: `undefined`, or an object (anything else is an error). */
function objectOptions(opts: unknown, where: string): Record<string, unknown> | undefined {
  if (opts === undefined || opts === null) return undefined;
  if (typeof opts !== 'object') throw new ValidationError(`${where}: options must be an object literal`);
  return opts as Record<string, unknown>;
}

function fragmentOptions(opts: unknown, allowed: ReadonlySet<string>, where: string): FragmentOptions {
  if (opts === undefined || opts === null) return {};
  if (typeof opts !== 'object') throw new ValidationError(`${where}: options must be an object literal`);
  return parseFragmentOptions(opts as Record<string, unknown>, allowed, where);
}

/**
 * Splits `a, b, { expire: 60 }` at top-level commas; a trailing object literal is the options.
 * `assignment` is the first argument written as `name=value` (a Nunjucks-style option by mistake).
 */
function splitArgs(text: string): { args: string; opts: string; assignment?: string } {
  const parts: string[] = [];
  let depth = 0;
  let quote: string | undefined;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = undefined;
      continue;
    }
    if (c === '"' || c === "'" || c === '`') quote = c;
    else if (c === '(' || c === '[' || c === '{') depth++;
    else if (c === ')' || c === ']' || c === '}') depth--;
    else if (c === ',' && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  const trimmed = parts.map((p) => p.trim()).filter((p) => p !== '');
  const assignment = trimmed.find((p) => /^[A-Za-z_$][\w$]*\s*=(?![=>])/.test(p));
  const last = trimmed[trimmed.length - 1];
  const split = last?.startsWith('{')
    ? { args: trimmed.slice(0, -1).join(', '), opts: last }
    : { args: trimmed.join(', '), opts: '' };
  return assignment === undefined ? split : { ...split, assignment };
}

const TEMPLATE_CALLS = new Set(['include', 'includeAsync', 'cachedInclude', 'cachedEach', 'layout']);

/**
 * What a parsed Eta template renders: calls of include / includeAsync / cachedInclude / layout in
 * its tags' code (text chunks are never code), with a literal name (static) or any other (dynamic).
 */
function templateDeps(ast: readonly EtaAstNode[], digest: string): TemplateDeps {
  const renders: string[] = [];
  let parent: string | undefined;
  let dynamic = false;
  for (const node of ast) {
    if (typeof node === 'string') continue;
    for (const call of templateCalls(node.val)) {
      if (call.name === undefined) dynamic = true;
      else if (call.fn === 'layout') parent = call.name;
      else renders.push(call.name);
    }
  }
  return { digest, renders, parent, dynamic };
}

/** Scans JavaScript code for template calls, skipping strings and comments; `name` if literal. */
function templateCalls(code: string): Array<{ fn: string; name: string | undefined }> {
  const calls: Array<{ fn: string; name: string | undefined }> = [];
  let previous = '';
  let i = 0;
  while (i < code.length) {
    const c = code[i] as string;
    if (c === '/' && code[i + 1] === '/') {
      const end = code.indexOf('\n', i);
      i = end < 0 ? code.length : end;
    } else if (c === '/' && code[i + 1] === '*') {
      const end = code.indexOf('*/', i + 2);
      i = end < 0 ? code.length : end + 2;
    } else if (c === '"' || c === "'" || c === '`') {
      i = readString(code, i).end;
      previous = c;
    } else if (/[A-Za-z_$]/.test(c)) {
      let j = i + 1;
      while (j < code.length && /[\w$]/.test(code[j] as string)) j++;
      const word = code.slice(i, j);
      if (TEMPLATE_CALLS.has(word) && previous !== '.') {
        let k = j;
        while (/\s/.test(code[k] ?? '')) k++;
        if (code[k] === '(') {
          k++;
          while (/\s/.test(code[k] ?? '')) k++;
          const q = code[k];
          let name: string | undefined;
          if (q === '"' || q === "'" || q === '`') {
            const str = readString(code, k);
            let after = str.end;
            while (/\s/.test(code[after] ?? '')) after++;
            if (str.value !== undefined && (code[after] === ',' || code[after] === ')')) name = str.value;
          }
          calls.push({ fn: word, name });
        }
      }
      previous = word.slice(-1);
      i = j;
    } else {
      if (!/\s/.test(c)) previous = c;
      i++;
    }
  }
  return calls;
}

/** Reads a string literal starting at `start`; `value` only for plain literals (no escapes, no `${`). */
function readString(code: string, start: number): { end: number; value: string | undefined } {
  const quote = code[start];
  let plain = true;
  let i = start + 1;
  while (i < code.length && code[i] !== quote) {
    if (code[i] === '\\') {
      plain = false;
      i++;
    } else if (quote === '`' && code[i] === '$' && code[i + 1] === '{') plain = false;
    i++;
  }
  return { end: i + 1, value: plain ? code.slice(start + 1, i) : undefined };
}

/** The line of the n-th `<% cache` (or `endcache`) tag in the source, for messages. */
function lineOf(source: string, tag: 'cache' | 'endcache', n: number): number {
  const re = tag === 'cache' ? /<%[-_]?\s*cache\s/g : /<%[-_]?\s*endcache\b/g;
  let match: RegExpExecArray | null = null;
  for (let i = 0; i < n; i++) {
    match = re.exec(source);
    if (!match) return 0;
  }
  return match ? source.slice(0, match.index).split('\n').length : 0;
}

function parseError(message: string): DogpileError {
  const err = new DogpileError(`dogpile/eta: ${message}`);
  err.name = 'EtaParseError';
  return err;
}

// --- Cached collections: line numbers for cachedEach calls --------------------------------------

/** Options `cachedEach` accepts: the collection options plus `data` (variables shared by every item). */
const EACH_OPTIONS: ReadonlySet<string> = new Set([...COLLECTION_OPTIONS, 'data']);
const EACH_CALL_RE = /(?<![.\w$])cachedEach\s*\(/g;

/**
 * Rewrites `cachedEach(` in the tags' code into `__dp_each(<line>, `, so a bad collection's error
 * names its line (Eta records lines only in debug mode). Lines come from the n-th call inside a
 * tag of the source, in order.
 */
function withEachLines(ast: EtaAstNode[], source: string): EtaAstNode[] {
  return withCallLines(ast, source, EACH_CALL_RE, '__dp_each');
}

const INCLUDE_CALL_RE = /(?<![.\w$])cachedInclude\s*\(/g;

/** As {@link withEachLines}, for calls matching `re` rewritten to `target(<line>, `. */
function withCallLines(ast: EtaAstNode[], source: string, re: RegExp, target: string): EtaAstNode[] {
  re.lastIndex = 0;
  if (!re.test(source)) return ast;
  re.lastIndex = 0;
  const lines: number[] = [];
  for (const m of source.matchAll(re)) {
    const before = source.slice(0, m.index);
    if (before.lastIndexOf('<%') > before.lastIndexOf('%>')) lines.push(before.split('\n').length);
  }
  let n = 0;
  return ast.map((node) => {
    re.lastIndex = 0;
    if (typeof node === 'string' || !re.test(node.val)) return node;
    re.lastIndex = 0;
    return {
      ...node,
      val: node.val.replace(re, (call) => {
        const line = lines[n++];
        return line === undefined ? call : `${target}(${line}, `;
      }),
    };
  });
}
