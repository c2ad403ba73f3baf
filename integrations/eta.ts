// dogpile/eta: an Eta plugin adding `<% cache … %>…<% endcache %>` blocks and `cachedInclude()`,
// over TemplateCache. Only Eta syntax lives here: a processAST rewrite turns the two tags into a
// call that captures the body's output buffer, and processFnString picks the async form (renderAsync)
// or the synchronous one (render, through TemplateCache's in-process tier).

import { relative } from 'node:path';
import { DogpileError, ValidationError } from '../src/index.js';
import {
  applyPartialOptOut,
  BLOCK_OPTIONS,
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
  /** Eta hook: rewrites `cache` / `endcache` tags into a call that captures the body. */
  processAST(ast: EtaAstNode[]): EtaAstNode[];
  /** Eta hook: chooses the async or synchronous form and defines `cachedInclude`. */
  processFnString(fnString: string): string;
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
  ): Promise<string>;
  /** `cachedInclude` in a synchronous template (served from the in-process tier). */
  includeSync(
    eta: EtaLike,
    options: EtaRenderOptions | undefined,
    it: unknown,
    name: string,
    data: unknown,
    opts: unknown,
  ): string;
}

/** The `options` (meta) argument of a compiled Eta template. */
export interface EtaRenderOptions {
  /** Absolute path of the file template being rendered (absent for string templates). */
  filepath?: string;
}

const AWAIT = '/*__dp_await__*/';
const ASYNC = '/*__dp_async__*/';
const BLOCK = '/*__dp_block__*/';
const OPEN_RE = /^\s*cache\s+(?![=.([])([\s\S]*?)\s*;?\s*$/;
const CLOSE_RE = /^\s*endcache\s*;?\s*$/;
let nextId = 0;

/**
 * An Eta plugin: `new Eta({ views, plugins: [dogpileEta({ regions })] })`.
 *
 * ```eta
 * <% cache "sidebar", it.user.id, { region: "pages", expire: 60 } %>…<% endcache %>
 * <%~ await cachedInclude("card", { product }, { key: product.id, expire: 60 }) %>
 * ```
 *
 * The arguments of `cache` form the key; a trailing object literal holds the options.
 * `cachedInclude` renders the partial with only the given data. Render with `renderAsync`; a
 * synchronous `render` uses TemplateCache's in-process tier (and `cachedInclude` without `await`).
 */
export function dogpileEta(options: EtaCacheOptions): DogpileEtaPlugin {
  const cache = toTemplateCache(options);
  const id = `dp${nextId++}`;
  let source = '';
  const runtime = makeRuntime(cache);
  return {
    cache,
    __dogpileId: id,
    runtime,
    processTemplate(src: string): string {
      source = src;
      return src;
    },
    processAST(ast: EtaAstNode[]): EtaAstNode[] {
      const digest = digestSource(source);
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
          const { args, opts } = splitArgs(open[1] ?? '');
          const meta = JSON.stringify(`${digest}|b${ordinal}|${lineOf(source, 'cache', opens)}`);
          out.push({
            ...node,
            val: `{ const __dp_v = ${AWAIT}__dp.${BLOCK}(this, options, ${'it'}, ${meta}, [${args}], ${opts || 'undefined'}, ${ASYNC}() => { const __dp_s = __eta.res; __eta.res = ''; try {`,
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
    processFnString(fn: string): string {
      const isAsync = fn.includes('await includeAsync (__eta.layout');
      const header =
        `const __dp = this.config.plugins.find((p) => p && p.__dogpileId === ${JSON.stringify(id)}).runtime;\n` +
        (isAsync
          ? 'const cachedInclude = (__n, __d, __o) => __dp.include(this, options, it, __n, __d, __o);\n'
          : 'const cachedInclude = (__n, __d, __o) => __dp.includeSync(this, options, it, __n, __d, __o);\n');
      return (
        header +
        fn
          .replaceAll(AWAIT, isAsync ? 'await ' : '')
          .replaceAll(ASYNC, isAsync ? 'async ' : '')
          .replaceAll(BLOCK, isAsync ? 'block' : 'blockSync')
      );
    },
  };
}

/**
 * A bare Express engine for an Eta instance: `app.engine('eta', etaEngine(eta))`. Views are rendered
 * with `renderAsync` by their path relative to `eta.config.views` (Eta rejects absolute paths).
 */
export function etaEngine(eta: EtaLike): (file: string, options: object, cb: (err: unknown, html?: string) => void) => void {
  return (file, options, cb) => {
    const views = eta.config.views;
    const name = views ? relative(views, file) : file;
    eta.renderAsync(name, options).then(
      (html) => cb(null, html),
      (err: unknown) => cb(err),
    );
  };
}

// ------------------------------------------------------------------------------------------------

function makeRuntime(cache: TemplateCache): EtaRuntime {
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
  const metas = new Map<string, string[]>();
  const engine = (eta: EtaLike): string => (eta.config.autoEscape === false ? 'eta-raw' : 'eta');
  const blockKey = (
    eta: EtaLike,
    options: EtaRenderOptions | undefined,
    it: unknown,
    meta: string,
    args: unknown[],
    opts: unknown,
  ) => {
    let parts = metas.get(meta);
    if (parts === undefined) {
      parts = meta.split('|');
      metas.set(meta, parts);
    }
    const [digest = '', block = '', line = '?'] = parts;
    const fragment = fragmentOptions(opts, BLOCK_OPTIONS, `<% cache %> at line ${line}`);
    if (!renderEnabled(it)) fragment.enabled = false;
    const key = cache.fragmentKey({ engine: engine(eta), template: templateName(eta, options), digest, block, args });
    return { key, fragment };
  };
  const digests = new Map<string, string>();
  const includeKey = (
    eta: EtaLike,
    options: EtaRenderOptions | undefined,
    it: unknown,
    name: string,
    data: unknown,
    opts: unknown,
  ) => {
    if (typeof name !== 'string') throw new ValidationError('cachedInclude: the first argument must be a template name');
    if (data !== undefined && (data === null || typeof data !== 'object')) {
      throw new ValidationError('cachedInclude: the second argument must be the partial’s data object');
    }
    const fragment = fragmentOptions(opts, PARTIAL_OPTIONS, `cachedInclude(${JSON.stringify(name)})`);
    const vars: Record<string, unknown> = { ...(data as Record<string, unknown> | undefined) };
    applyPartialOptOut(it, fragment, vars);
    let digest: string;
    let id = name;
    if (name.startsWith('@')) {
      digest = digestSource(name);
    } else {
      const path = eta.resolvePath(name, options);
      id = viewName(eta, path);
      const known = eta.config.cache ? digests.get(path) : undefined;
      digest = known ?? digestSource(eta.readFile(path));
      if (eta.config.cache) digests.set(path, digest);
    }
    const keyArg = opts !== null && typeof opts === 'object' && 'key' in opts ? (opts as { key: unknown }).key : vars;
    const key = cache.fragmentKey({ engine: engine(eta), template: id, digest, block: 'partial', args: [keyArg] });
    return { key, fragment, vars };
  };
  return {
    block(eta, options, it, meta, args, opts, body) {
      const { key, fragment } = blockKey(eta, options, it, meta, args, opts);
      return cache.getOrCreate(key, body, fragment);
    },
    /** A cache block in a synchronous template (TemplateCache's in-process tier). */
    blockSync(eta, options, it, meta, args, opts, body) {
      const { key, fragment } = blockKey(eta, options, it, meta, args, opts);
      return cache.getOrCreateSync(key, body, fragment);
    },
    /** `await cachedInclude(name, data, opts)` in an async template. */
    include(eta, options, it, name, data, opts) {
      const { key, fragment, vars } = includeKey(eta, options, it, name, data, opts);
      return cache.getOrCreate(key, () => eta.renderAsync(name, vars, options), fragment);
    },
    /** `cachedInclude(name, data, opts)` in a synchronous template. */
    includeSync(eta, options, it, name, data, opts) {
      const { key, fragment, vars } = includeKey(eta, options, it, name, data, opts);
      return cache.getOrCreateSync(key, () => eta.render(name, vars, options), fragment);
    },
  };
}

function fragmentOptions(opts: unknown, allowed: ReadonlySet<string>, where: string): FragmentOptions {
  if (opts === undefined || opts === null) return {};
  if (typeof opts !== 'object') throw new ValidationError(`${where}: options must be an object literal`);
  return parseFragmentOptions(opts as Record<string, unknown>, allowed, where);
}

/** Splits `a, b, { expire: 60 }` at top-level commas; a trailing object literal is the options. */
function splitArgs(text: string): { args: string; opts: string } {
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
  const last = trimmed[trimmed.length - 1];
  if (last?.startsWith('{')) return { args: trimmed.slice(0, -1).join(', '), opts: last };
  return { args: trimmed.join(', '), opts: '' };
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
