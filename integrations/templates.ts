// dogpile/templates: the engine-agnostic fragment cache that the Nunjucks, Eta and Handlebars
// integrations build on (the counterpart of dogpile.cache's Mako plugin). Fragment keys, template
// digests, region lookup, the backend-error policy and single flight live here, once; the engine
// adapters only parse their syntax and hand over a function that renders the block's body.

import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import {
  BackendError,
  CachedValue,
  type CacheRegion,
  type CompactLru,
  type DogpileError,
  type GetOrCreateOptions,
  LockTimeoutError,
  MemoryBackend,
  NO_VALUE,
  VALUE_VERSION,
  ValidationError,
} from '../src/index.js';
import { annotateFragment, annotationPolicy, type FragmentSummary, recordFragment, stripAnnotations } from './dev-annotations.js';
import { type FragmentRef, FragmentRegistry } from './fragment-registry.js';
import { encodeFragmentArg } from './record-keys.js';
import {
  collectFragmentTags,
  enclosingFragmentTags,
  NestedFragmentCall,
  renderFragment,
  reportFragmentTags,
  widenedTags,
} from './tag-scope.js';

export {
  createFragmentSummary,
  type FragmentEntry,
  type FragmentSummary,
} from './dev-annotations.js';
export type { FragmentRef } from './fragment-registry.js';
export { encodeFragmentArg } from './record-keys.js';
export { collectFragmentTags, reportFragmentTags } from './tag-scope.js';

/** Options shared by every template integration (`TemplateCacheOptions` in the API). */
export interface TemplateCacheOptions {
  /** One region, or regions by name (blocks choose one with `region="name"`). Required. */
  regions: CacheRegion | Readonly<Record<string, CacheRegion>>;
  /** Name of the region used when a block names none. Default: the only region, or `"default"`. */
  defaultRegion?: string;
  /**
   * Include a digest of the template source in every fragment key (default `true`), so an edited
   * template never serves old markup. With `false` keys are stable across edits: bump `version`.
   */
  digest?: boolean;
  /** First component of every stored key. Default `"tpl"`. */
  keyPrefix?: string;
  /** Part of every key: changing it makes every fragment miss (an explicit "bust everything"). Default none. */
  version?: string | number;
  /**
   * What a backend failure (`BackendError`, `LockTimeoutError`) does to a render. `'render'`
   * (default): render the body inline and emit `'error'` (or a process warning when nobody
   * listens). `'throw'`: the render rejects with the error. This policy only sees failures when the
   * region is created with `failOpen: false`; a fail-open region absorbs them itself.
   */
  onError?: 'render' | 'throw';
  /** Master switch; `false` renders every block inline. Default `true`. */
  enabled?: boolean;
  /** Most entries of the in-process tier used by synchronous renders. Default 10,000. */
  syncMax?: number;
  /**
   * Templates each template can render that its parser cannot see: names computed at render time
   * (`{% include tpl %}`, `include(it.name)`, `{{> (lookup . "p")}}`). Keys are template names as
   * the engine knows them (Nunjucks names, Eta paths relative to `views`, Handlebars partial names
   * or `compile` names); values are names of what it can render, resolved like a literal include
   * there. Without an entry, a template that renders a dynamic name gets a one-time warning. Default `{}`.
   */
  dependencies?: Readonly<Record<string, readonly string[]>>;
  /**
   * Development: wrap every fragment's output in `<!-- dogpile: hit|miss key=... -->` …
   * `<!-- /dogpile -->` (annotations are never stored). `true` is refused (a ValidationError) when
   * `NODE_ENV` is `'production'`; `'force'` allows it there. Without it, one render can ask with
   * `dogpile: { annotate: true }` in its context, which is ignored (with a warning) in production.
   * Default `false`.
   */
  annotate?: boolean | 'force';
  /**
   * Seconds the synchronous in-process tier trusts a tagged fragment before it asks the region
   * (in the background) whether one of its tags was invalidated elsewhere: by another process, or
   * by `region.invalidateTags` called directly. {@link TemplateCache.invalidateTags} reaches this
   * tier at once. Default 1.
   */
  syncTagRefresh?: number;
}

/** Per-fragment options: Mako's `cache_region` / `cache_timeout`, plus a per-render opt-out. */
export interface FragmentOptions {
  /** Region name (see {@link TemplateCacheOptions.regions}). Default {@link TemplateCacheOptions.defaultRegion}. */
  region?: string;
  /** Seconds until the fragment is stale; overrides the region's expiration. `-1`/`null`: never. Default: the region's. */
  expire?: number | null;
  /**
   * `false` renders without the cache (and without touching the backend). Default true. The tags'
   * `if=` / `unless=` options set it: `if=cond` caches only when `cond` is truthy, `unless=cond`
   * only when it is falsy (Rails' `cache_if` / `cache_unless`).
   */
  enabled?: boolean;
  /** Set from the render's `dogpile: { annotate: true }` (see {@link TemplateCacheOptions.annotate}). */
  annotate?: boolean;
  /** Set from the render's `dogpile: { summary }`: the fragment is counted there. */
  summary?: FragmentSummary;
  /**
   * Tags stored with the fragment (the tags' `tags=` option, see {@link fragmentTags}):
   * {@link TemplateCache.invalidateTags} drops every fragment carrying one. Not part of the key.
   * Default none.
   */
  tags?: readonly string[];
}

/** The `dogpile` object a render context may carry (Express: also `res.locals.dogpile`). */
export interface RenderCacheOptions {
  /** `false` renders every fragment of this render without the cache. Default true. */
  enabled?: boolean;
  /** Annotate this render's fragments (development only; see {@link TemplateCacheOptions.annotate}). */
  annotate?: boolean;
  /** Count this render's fragments here (see `createFragmentSummary`). */
  summary?: FragmentSummary;
}

/**
 * Validates the options written on a tag (`region`, `expire`) for the engine adapters: names
 * outside `allowed` (other than those in `ignore`) are a {@link ValidationError} naming `where`.
 */
export function parseFragmentOptions(
  options: Readonly<Record<string, unknown>>,
  allowed: ReadonlySet<string>,
  where: string,
  ignore: readonly string[] = [],
): FragmentOptions {
  const out: FragmentOptions = {};
  for (const [k, v] of Object.entries(options)) {
    if (ignore.includes(k)) continue;
    if (!allowed.has(k)) {
      throw new ValidationError(`${where}: unknown option ${JSON.stringify(k)} (allowed: ${[...allowed].join(', ')})`);
    }
    if (k === 'region') {
      if (typeof v !== 'string') throw new ValidationError(`${where}: region must be a region name, got ${typeof v}`);
      out.region = v;
    } else if (k === 'if') {
      if (!v) out.enabled = false;
    } else if (k === 'unless') {
      if (v) out.enabled = false;
    } else if (k === 'tags') {
      out.tags = fragmentTags(v, where);
    } else if (k === 'expire') {
      if (!(v === null || (typeof v === 'number' && (v >= 0 || v === -1)))) {
        throw new ValidationError(`${where}: expire must be a number of seconds, got ${String(v)}`);
      }
      out.expire = v;
    }
  }
  return out;
}

/**
 * Checks and normalises a fragment's `tags` option: a string is one tag, an array of strings is
 * several (empty strings are not tags). Anything else is a {@link ValidationError} naming the
 * value and `where` (the tag, the template and the line). Returns a new array.
 */
export function fragmentTags(value: unknown, where: string): string[] {
  if (typeof value === 'string') {
    if (value === '') throw new ValidationError(`${where}: tags must be non-empty strings, got the empty string`);
    return [value];
  }
  if (!Array.isArray(value)) {
    throw new ValidationError(`${where}: tags must be a string (one tag) or an array of strings, got ${describeTag(value)}`);
  }
  const out: string[] = [];
  for (let i = 0; i < value.length; i++) {
    const tag: unknown = value[i];
    if (typeof tag !== 'string' || tag === '') {
      throw new ValidationError(`${where}: tag ${i} must be a non-empty string, got ${describeTag(tag)}`);
    }
    if (!out.includes(tag)) out.push(tag);
  }
  return out;
}

/** A value named in a tags message: strings quoted, objects by kind. */
function describeTag(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null || value === undefined) return String(value);
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return `an object (${Object.prototype.toString.call(value).slice(8, -1)})`;
  return `${typeof value} ${String(value)}`;
}

/** The parts a fragment key is made of; see {@link TemplateCache.fragmentKey}. */
export interface FragmentKeyParts {
  /** Engine tag: `"nunjucks"`, `"eta"`, `"handlebars"`, or a custom one. */
  engine: string;
  /** The template's name or path, when the engine knows it. */
  template?: string | undefined;
  /** {@link digestSource} of the template source. */
  digest: string;
  /** Identifies the block inside the template (an ordinal, or `partial` for cached partials). */
  block: string;
  /**
   * The block's own arguments, encoded injectively; a record argument (`cacheKey`, or `id` plus
   * `updatedAt` / `version`) contributes its key and version (see {@link encodeFragmentArg}).
   */
  args: readonly unknown[];
}

/** The last key built for one block (see {@link TemplateCache.keyWithArgs}). */
export interface KeyMemo {
  /** The key's stem (engine, template, digest, block) the memo was built for. */
  stem: string;
  /** The block arguments the memo was built for (compared by identity). */
  args: readonly unknown[];
  /** The fragment key (what `get` / `set` / `invalidate` take). */
  key: string;
  /** {@link TemplateCache.storedKey} of `key`. */
  stored: string;
  /** The block name (string first argument) last recorded for the fragment-key API. */
  name: string;
}

/** A fresh {@link KeyMemo}. */
export function keyMemo(): KeyMemo {
  return { stem: '', args: [], key: '', stored: '', name: '' };
}

/** What the `'error'` event receives besides the error. */
export interface TemplateErrorInfo {
  /** The fragment key (before prefix and version). */
  key: string;
}

/** A short digest (12 hex chars of SHA-1) of a template or block source. */
export function digestSource(source: string): string {
  return createHash('sha1').update(source, 'utf8').digest('hex').slice(0, 12);
}

const digestsByOwner = new WeakMap<object, string>();

/**
 * {@link digestSource} of `source()`, computed once per `owner` (a compiled template or partial
 * function, which is replaced, not changed, when its source is edited): no hashing on a hit.
 */
export function digestOnce(owner: object, source: () => string): string {
  let digest = digestsByOwner.get(owner);
  if (digest === undefined) {
    digest = digestSource(source());
    digestsByOwner.set(owner, digest);
  }
  return digest;
}

/** Options a cached block accepts (its key is its position and arguments). */
export const BLOCK_OPTIONS: ReadonlySet<string> = new Set(['region', 'expire', 'if', 'unless', 'tags']);
/** Options a cached partial/include accepts (`key` replaces its variables as the key). */
export const PARTIAL_OPTIONS: ReadonlySet<string> = new Set(['key', 'region', 'expire', 'if', 'unless', 'tags']);

/**
 * Applies the per-render opt-out of `context` to a cached partial: when the render is uncached,
 * the fragment is not cached and the partial's own blocks see the opt-out too (through `vars`).
 * Returns whether caching is enabled.
 */
export function applyPartialOptOut(context: unknown, fragment: FragmentOptions, vars: Record<string, unknown>): boolean {
  const dev = renderDevOptions(context);
  if (dev !== undefined) {
    if (dev.annotate === true) fragment.annotate = true;
    if (dev.summary !== undefined) fragment.summary = dev.summary;
  }
  if (renderEnabled(context)) return fragment.enabled !== false;
  fragment.enabled = false;
  vars.dogpile = { enabled: false };
  return false;
}

/**
 * The options of one block render: `undefined` (no allocation) when the tag gives none and the
 * render is cached, else the validated options, with `enabled: false` under the per-render opt-out.
 * `given` is the tag's option object (names in `ignore` are the adapter's own markers).
 */
export function blockOptions(
  given: Readonly<Record<string, unknown>> | undefined,
  where: string,
  context: unknown,
  ignore?: readonly string[],
): FragmentOptions | undefined {
  let out: FragmentOptions | undefined;
  if (given !== undefined) out = parseFragmentOptions(given, BLOCK_OPTIONS, where, ignore);
  // The usual hit: a context without `dogpile` and `_locals` has neither the opt-out nor the
  // render's annotate / summary requests (what renderEnabled and renderDevOptions would find).
  if (
    context === null ||
    typeof context !== 'object' ||
    ((context as { dogpile?: unknown }).dogpile === undefined && (context as { _locals?: unknown })._locals === undefined)
  ) {
    return out;
  }
  if (!renderEnabled(context)) {
    out ??= {};
    out.enabled = false;
  }
  const dev = renderDevOptions(context);
  if (dev !== undefined) {
    out ??= {};
    if (dev.annotate === true) out.annotate = true;
    if (dev.summary !== undefined) out.summary = dev.summary;
  }
  return out;
}

/**
 * Copies the render's `annotate` / `summary` requests (`dogpile: { annotate, summary }` in
 * `context`) onto a collection's fragment options, so each item is annotated and counted like a
 * cached partial. (The per-render opt-out is the adapter's: it also reaches the items' variables.)
 */
export function applyRenderDevOptions(context: unknown, fragment: FragmentOptions): void {
  const dev = renderDevOptions(context);
  if (dev === undefined) return;
  if (dev.annotate === true) fragment.annotate = true;
  if (dev.summary !== undefined) fragment.summary = dev.summary;
}

/** The render's `annotate` / `summary` requests (top level first, then Express' `_locals`), or `undefined`. */
function renderDevOptions(context: unknown): RenderCacheOptions | undefined {
  if (context === null || typeof context !== 'object') return undefined;
  const own = (context as { dogpile?: unknown }).dogpile;
  const locals = (context as { _locals?: { dogpile?: unknown } })._locals?.dogpile;
  const a = own !== null && typeof own === 'object' ? (own as RenderCacheOptions) : undefined;
  const b = locals !== null && typeof locals === 'object' && locals !== own ? (locals as RenderCacheOptions) : undefined;
  const annotate = a?.annotate ?? b?.annotate;
  const summary = a?.summary ?? b?.summary;
  if (annotate !== true && summary === undefined) return undefined;
  return { annotate: annotate === true, ...(summary === undefined ? {} : { summary }) };
}

/** Reads the per-render opt-out from a render context: `{ dogpile: { enabled: false } }`. */
export function renderEnabled(context: unknown): boolean {
  if (context === null || typeof context !== 'object') return true;
  const opt = (context as { dogpile?: unknown }).dogpile;
  if (opt === false) return false;
  if (opt !== null && typeof opt === 'object' && (opt as { enabled?: unknown }).enabled === false) return false;
  // Express: res.locals.dogpile arrives inside _locals as well as at the top level.
  const locals = (context as { _locals?: unknown })._locals;
  if (locals !== null && typeof locals === 'object' && locals !== context) return renderEnabled(locals);
  return true;
}

/**
 * A cache of rendered template fragments over dogpile regions, with the shape of Mako's cache
 * plugin: `getOrCreate`, `get`, `set`, `invalidate`. Keys given to these methods are prefixed with
 * `keyPrefix` and `version`; the engine adapters pass {@link TemplateCache.fragmentKey} keys, so a
 * block's entry can be read or invalidated here with the same parts.
 *
 * Emits `'error'` `(error, info: TemplateErrorInfo)` for backend failures absorbed under
 * `onError: 'render'`; with no listener a process warning is emitted instead (never a crash).
 */
export class TemplateCache extends EventEmitter {
  /** Whether fragments are cached at all. */
  readonly enabled: boolean;
  /** Whether keys include the template digest. */
  readonly digest: boolean;
  /** The backend-error policy. */
  readonly onError: 'render' | 'throw';
  private readonly prefix: string;
  private readonly regions: ReadonlyMap<string, CacheRegion>;
  private readonly defaultRegionName: string;
  /** The in-process tier of synchronous renders (a memory backend's CompactLru: bare fragments). */
  private readonly sync: CompactLru;
  private readonly dependencies: Readonly<Record<string, readonly string[]>>;
  private readonly warnings = new Set<string>();
  private readonly registry = new FragmentRegistry();
  /** Whether every fragment is annotated / whether a render may ask for it. */
  private readonly annotateAll: boolean;
  private readonly annotatePerRender: boolean;
  /** The last miss render time (ms) per stored key, for the summary's `savedMs` (bounded). */
  private readonly missTimes = new Map<string, number>();
  /** When each tagged entry of the synchronous tier was last checked against its region (ms). */
  private readonly syncChecked = new Map<string, number>();
  private readonly syncTagRefreshMs: number;

  constructor(options: TemplateCacheOptions) {
    super();
    if (options === null || typeof options !== 'object') {
      throw new ValidationError('TemplateCache: options must be an object with at least `regions`');
    }
    const { regions } = options;
    const map = new Map<string, CacheRegion>();
    if (isRegion(regions)) {
      // A single region answers to "default" (or defaultRegion) and to its own name.
      map.set(options.defaultRegion ?? 'default', regions);
      if (typeof regions.name === 'string' && regions.name !== '') map.set(regions.name, regions);
    } else if (regions !== null && typeof regions === 'object') {
      for (const [name, region] of Object.entries(regions)) {
        if (!isRegion(region)) throw new ValidationError(`TemplateCache: regions.${name} is not a CacheRegion`);
        map.set(name, region);
      }
    } else {
      throw new ValidationError('TemplateCache: `regions` must be a CacheRegion or a record of them');
    }
    if (map.size === 0) throw new ValidationError('TemplateCache: `regions` is empty');
    const first = map.keys().next().value as string;
    this.defaultRegionName = options.defaultRegion ?? (isRegion(regions) || map.size === 1 ? first : 'default');
    if (!map.has(this.defaultRegionName)) {
      throw new ValidationError(
        `TemplateCache: defaultRegion ${JSON.stringify(this.defaultRegionName)} is not one of the regions (${[...map.keys()].join(', ')})`,
      );
    }
    const onError = options.onError ?? 'render';
    if (onError !== 'render' && onError !== 'throw') {
      throw new ValidationError(`TemplateCache: onError must be 'render' or 'throw', got ${JSON.stringify(onError)}`);
    }
    this.regions = map;
    this.onError = onError;
    this.enabled = options.enabled ?? true;
    this.digest = options.digest ?? true;
    const version = options.version === undefined ? '' : String(options.version);
    this.prefix = `${options.keyPrefix ?? 'tpl'}|${version}|`;
    this.sync = new MemoryBackend({ max: options.syncMax ?? 10_000 }).cache as CompactLru; // validates syncMax
    const deps = options.dependencies ?? {};
    if (deps === null || typeof deps !== 'object') {
      throw new ValidationError('TemplateCache: `dependencies` must be a record of template name → template names');
    }
    for (const [name, list] of Object.entries(deps)) {
      if (!Array.isArray(list) || list.some((n) => typeof n !== 'string')) {
        throw new ValidationError(`TemplateCache: dependencies[${JSON.stringify(name)}] must be an array of template names`);
      }
    }
    this.dependencies = deps;
    const policy = annotationPolicy(options.annotate, process.env.NODE_ENV);
    this.annotateAll = policy.all;
    this.annotatePerRender = policy.perRender;
    const refresh = options.syncTagRefresh ?? 1;
    if (typeof refresh !== 'number' || !(refresh >= 0) || !Number.isFinite(refresh)) {
      throw new ValidationError(`TemplateCache: syncTagRefresh must be a number of seconds, got ${String(refresh)}`);
    }
    this.syncTagRefreshMs = refresh * 1000;
  }

  /** The names declared in the `dependencies` option for `template`, or `undefined`. */
  declaredDependencies(template: string): readonly string[] | undefined {
    return Object.hasOwn(this.dependencies, template) ? this.dependencies[template] : undefined;
  }

  /** Emits a process warning once per `id` (for mistakes that cannot fail the render). */
  warnOnce(id: string, message: string): void {
    if (this.warnings.has(id)) return;
    this.warnings.add(id);
    process.emitWarning(message, 'DogpileWarning');
  }

  /**
   * The key an adapter uses for a block: `engine | template id + digest | block id | encoded args`.
   * The template id is the name (plus `@digest` when digests are on) or, for nameless templates,
   * `#digest` (always, so two string templates never share fragments).
   */
  fragmentKey(parts: FragmentKeyParts | FragmentRef, where?: string): string {
    if (typeof (parts as FragmentKeyParts).digest === 'string') {
      const p = parts as FragmentKeyParts;
      return this.keyWithArgs(this.keyStem(p.engine, p.template, p.digest, p.block), p.args, undefined, where);
    }
    const keys = this.fragmentKeys(parts as FragmentRef);
    if (keys.length !== 1) {
      throw new ValidationError(
        `fragmentKey: ${keys.length} blocks of ${JSON.stringify(parts.template)} are named ${JSON.stringify(parts.block)}; name one by its ordinal id, or use invalidateFragment (which drops them all)`,
      );
    }
    return keys[0] as string;
  }

  /**
   * The keys of the fragments `ref` designates (Django's `make_template_fragment_key`), with the
   * template digest the last render in this process used: one key, or several when blocks of the
   * template share the name. Without a recorded render it is a {@link ValidationError}, unless the
   * cache was built with `digest: false` and the block is named by ordinal (`"b1"`) or `"partial"`.
   */
  fragmentKeys(ref: FragmentRef): string[] {
    let found: { stems: string[]; args: readonly unknown[] };
    try {
      found = this.registry.find(ref);
    } catch (err) {
      if (this.digest || !/^(b\d+|partial)$/.test(String(ref?.block))) throw err;
      found = { stems: [this.keyStem(ref.engine, ref.template, '', ref.block)], args: ref.args ?? [] };
    }
    return found.stems.map((stem) => this.keyWithArgs(stem, found.args, undefined, `fragmentKey(${JSON.stringify(ref.block)})`));
  }

  /**
   * Deletes the fragment(s) `ref` designates (see {@link TemplateCache.fragmentKeys}) from `region`
   * (default: the default region), e.g. from a model's save hook. Rejects if the backend fails.
   */
  async invalidateFragment(ref: FragmentRef & { region?: string }): Promise<void> {
    const keys = this.fragmentKeys(ref);
    for (const key of keys) await this.invalidate(key, { region: ref.region });
  }

  /**
   * The part of {@link TemplateCache.fragmentKey} before the arguments. Adapters keep it per block
   * (it changes only with the digest), so a hit only encodes the arguments.
   */
  keyStem(engine: string, template: string | undefined, digest: string, block: string): string {
    let key = `${engine}|`;
    if (template === undefined || template === '') key += `#${digest}`;
    else key += this.digest ? `${template}@${digest}` : template;
    const stem = `${key}|${block}|`;
    this.registry.stem(engine, template, block, stem);
    return stem;
  }

  /**
   * A {@link TemplateCache.keyStem} followed by the injectively encoded arguments. With a `memo`
   * (one per block), a render whose arguments are the same primitives as the block's previous
   * render reuses that key instead of encoding them again. `where` (e.g. `{% cache %} at line 3`)
   * names the tag in the {@link ValidationError} of a record whose `cacheKey` throws or is not a string.
   */
  keyWithArgs(stem: string, args: readonly unknown[], memo?: KeyMemo, where?: string): string {
    if (memo !== undefined && memo.stem === stem && samePrimitives(memo.args, args)) return memo.key;
    let key = stem;
    for (let i = 0; i < args.length; i++) key += (i === 0 ? '' : ',') + encodeFragmentArg(args[i], stem, where);
    if (memo !== undefined) {
      memo.stem = stem;
      memo.args = args;
      memo.key = key;
      memo.stored = this.storedKey(key);
      const name = args[0];
      if (typeof name === 'string' && memo.name !== name) {
        memo.name = name;
        this.registry.name(stem, name);
      }
    }
    return key;
  }

  /** The key a fragment is stored under in its region: `key` behind `keyPrefix` and `version`. */
  storedKey(key: string): string {
    return this.prefix + key;
  }

  /** The region a fragment uses; an unknown name throws a {@link ValidationError} naming it. */
  region(name?: string): CacheRegion {
    const region = this.regions.get(name ?? this.defaultRegionName);
    if (region === undefined) {
      throw new ValidationError(
        `dogpile templates: unknown region ${JSON.stringify(name)} (known: ${[...this.regions.keys()].join(', ')})`,
      );
    }
    return region;
  }

  /**
   * The cached fragment under `key`, or the result of `render()`, stored with single flight: of
   * concurrent callers of a cold key one renders, the others wait (or get the stale fragment).
   * A render that throws stores nothing and its error reaches every waiter.
   */
  getOrCreate(key: string, render: () => string | Promise<string>, options?: FragmentOptions): Promise<string> {
    return this.getOrCreateStored(key, this.prefix + key, render, options);
  }

  /**
   * {@link TemplateCache.getOrCreate} with the stored key already built (`stored` must be
   * `storedKey(key)`, e.g. a {@link KeyMemo}'s): a block hit then looks up the same string object
   * every render, whose hash the engine has cached, instead of concatenating a new one.
   */
  getOrCreateStored(
    key: string,
    stored: string,
    render: () => string | Promise<string>,
    options?: FragmentOptions,
  ): Promise<string> {
    if (this.annotateAll || options?.annotate === true || options?.summary !== undefined) {
      return this.observed(key, stored, render, options);
    }
    return this.fetch(key, stored, render, options);
  }

  private fetch(
    key: string,
    stored: string,
    render: () => string | Promise<string>,
    options: FragmentOptions | undefined,
  ): Promise<string> {
    if (!this.enabled || options?.enabled === false) return renderInline(render);
    let region: CacheRegion;
    try {
      region = this.region(options?.region);
    } catch (err) {
      return Promise.reject(err);
    }
    const parent = enclosingFragmentTags();
    if (parent === undefined) {
      // No fragment around this one (the usual hit): no call object; the creator hands the tags
      // its body collects to the region itself.
      let created: string | undefined;
      return region
        .getOrCreate<string>(
          stored,
          async (context) => {
            created = await renderFragment(render, context, undefined);
            return created;
          },
          regionCallOptions(region, key, options),
        )
        .then(undefined, (err: unknown) => this.recover(err, key, created, render));
    }
    const call = new NestedFragmentCall(region, stored, render, parent, options?.tags);
    return region
      .getOrCreate<string>(stored, (context) => call.create(context), regionCallOptions(region, key, options))
      .then(
        (html) => call.settle(html),
        (err: unknown) => this.recover(err, key, call.created, render),
      );
  }

  /**
   * {@link TemplateCache.getOrCreateStored} for engines that continue in callbacks (Nunjucks, the
   * Handlebars token resolution): `done(error)` or `done(null, html)`, with one promise reaction per
   * fragment instead of a promise the caller must chain on again.
   */
  getOrCreateStoredThen(
    key: string,
    stored: string,
    render: () => string | Promise<string>,
    options: FragmentOptions | undefined,
    done: (err: unknown, html?: string) => void,
  ): void {
    if (this.annotateAll || options?.annotate === true || options?.summary !== undefined) {
      this.observed(key, stored, render, options).then((html) => done(null, html), done);
      return;
    }
    if (!this.enabled || options?.enabled === false) {
      renderInline(render).then((html) => done(null, html), done);
      return;
    }
    let region: CacheRegion;
    try {
      region = this.region(options?.region);
    } catch (err) {
      done(err);
      return;
    }
    const parent = enclosingFragmentTags();
    if (parent === undefined) {
      // As in fetch: no call object without a fragment around this one.
      let created: string | undefined;
      region
        .getOrCreate<string>(
          stored,
          async (context) => {
            created = await renderFragment(render, context, undefined);
            return created;
          },
          regionCallOptions(region, key, options),
        )
        .then(
          (html) => done(null, html),
          (err: unknown) => this.recover(err, key, created, render).then((html) => done(null, html), done),
        );
      return;
    }
    const call = new NestedFragmentCall(region, stored, render, parent, options?.tags);
    region
      .getOrCreate<string>(stored, (context) => call.create(context), regionCallOptions(region, key, options))
      .then(
        (html) => {
          const out = call.settle(html);
          if (typeof out === 'string') done(null, out);
          else out.then((h) => done(null, h), done);
        },
        (err: unknown) => this.recover(err, key, call.created, render).then((html) => done(null, html), done),
      );
  }

  /**
   * The backend-error policy for one fragment: a body error, or any error under `onError:
   * 'throw'`, rejects; a backend failure is reported and answered with the body's output (the one
   * our creator already rendered, if the failure came after it: the body never runs twice).
   */
  private recover(
    err: unknown,
    key: string,
    created: string | undefined,
    render: () => string | Promise<string>,
  ): Promise<string> {
    if (!isCacheFailure(err) || this.onError === 'throw') return Promise.reject(err);
    this.report(err, key);
    return created === undefined ? renderInline(render) : Promise.resolve(created);
  }

  /**
   * The synchronous path, for engines rendered without a callback or promise: an in-process tier
   * (per `TemplateCache`) answers hits; a miss renders inline and is written behind to the region.
   * There is no cross-process single flight here. Region invalidation (`region.invalidate()`, soft
   * or hard) reaches this tier through the region's invalidation strategy: an entry created before
   * it is rendered again. A tagged entry is dropped by {@link TemplateCache.invalidateTags} at once
   * (soft or hard: this tier has no single flight, so the next render renders it), and, for
   * invalidations made elsewhere, when a background check against the region finds it invalid
   * (at most every `syncTagRefresh` seconds per entry; the render after that check renders it).
   */
  getOrCreateSync(key: string, render: () => string, options?: FragmentOptions): string {
    if (this.annotateAll || options?.annotate === true || options?.summary !== undefined) {
      if (!this.enabled || options?.enabled === false) return String(render());
      const seen = this.observe(key, this.prefix + key, render, options);
      return seen.finish(this.fetchSync(key, seen.render, options));
    }
    return this.fetchSync(key, render, options);
  }

  private fetchSync(key: string, render: () => string, options: FragmentOptions | undefined): string {
    if (!this.enabled || options?.enabled === false) return String(render());
    const region = this.region(options?.region);
    const full = this.prefix + key;
    // Read in place: an untagged fragment is a bare string with its creation time; a tagged one a CachedValue.
    const sync = this.sync;
    const slot = sync.find(full);
    const time = slot < 0 ? Number.NaN : (sync.times[slot] as number);
    const found = slot < 0 || !Number.isNaN(time) ? undefined : (sync.items[slot] as CachedValue);
    const createdAt = found === undefined ? time : found.metadata.ct;
    const ttl = options?.expire === undefined ? region.expirationTime : options.expire;
    const ttlMs = ttl === null || ttl === -1 ? -1 : ttl * 1000;
    if (
      slot >= 0 &&
      (ttlMs === -1 || (ttlMs !== 0 && Date.now() - createdAt <= ttlMs)) &&
      !region.regionInvalidator.isInvalidated(createdAt)
    ) {
      if (found === undefined) return sync.items[slot] as string;
      const tags = found.metadata.tags;
      if (tags !== undefined) {
        this.recheckSync(region, full, found, ttl);
        reportFragmentTags(tags);
      }
      return found.payload as string;
    }
    const declared = options?.tags;
    const collected = new Set<string>();
    const html = String(collectFragmentTags(collected, render));
    const tags = widenedTags(declared, collected) ?? (declared !== undefined && declared.length > 0 ? declared : undefined);
    reportFragmentTags(tags);
    const ct = Date.now();
    this.sync.set(
      full,
      new CachedValue(html, tags === undefined ? { ct, v: VALUE_VERSION } : { ct, v: VALUE_VERSION, tags: [...tags] }),
    );
    region.set(full, html, tags === undefined ? undefined : { tags }).catch((err: unknown) => {
      if (isCacheFailure(err)) this.report(err, key);
    });
    return html;
  }

  /**
   * Asks the region, in the background and at most every `syncTagRefresh` seconds, whether a tagged
   * entry of the synchronous tier is still valid there (a tag may have been invalidated by another
   * process); drops it when it is not, so the next render renders it.
   */
  private recheckSync(region: CacheRegion, full: string, found: CachedValue, ttl: number | null): void {
    const now = Date.now();
    const checked = this.syncChecked.get(full) ?? found.metadata.ct;
    if (now - checked <= this.syncTagRefreshMs) return;
    if (this.syncChecked.size >= 10_000) this.syncChecked.clear();
    this.syncChecked.set(full, now);
    region.getValueMetadata(full, { expirationTime: ttl }).then(
      (v) => {
        if (v === null && this.sync.peek(full) === found) this.sync.delete(full);
      },
      () => {}, // a failing backend: keep serving this tier's copy (as the region's fail-open would)
    );
  }

  /** {@link TemplateCache.fetch} that annotates the fragment and / or counts it in the render's summary. */
  private observed(
    key: string,
    stored: string,
    render: () => string | Promise<string>,
    options: FragmentOptions | undefined,
  ): Promise<string> {
    if (!this.enabled || options?.enabled === false) return renderInline(render);
    const seen = this.observe(key, stored, render, options);
    return this.fetch(key, stored, seen.render, options).then(seen.finish);
  }

  /**
   * @internal For the collection renderer: whether fragments rendered with `options` are annotated
   * or counted (then each item goes through {@link TemplateCache.observe}).
   */
  observes(options: FragmentOptions | undefined): boolean {
    return this.annotateAll || options?.annotate === true || options?.summary !== undefined;
  }

  /**
   * @internal Wraps a fragment's render to time it and strip inner annotations from what is
   * stored, and gives the function that turns the fetched fragment into this render's output.
   */
  observe<R extends string | Promise<string>>(
    key: string,
    stored: string,
    render: () => R,
    options: FragmentOptions | undefined,
  ): { render: () => R; finish: (html: string) => string } {
    const annotate = this.annotates(options);
    let raw: string | undefined;
    let ms = 0;
    const wrapped = (): R => {
      const t0 = performance.now();
      const done = (html: string): string => {
        ms = performance.now() - t0;
        raw = String(html);
        return annotate ? stripAnnotations(raw) : raw;
      };
      const out = render();
      return (typeof out === 'string' ? done(out) : (out as Promise<string>).then(done)) as R;
    };
    const finish = (html: string): string => this.settleFragment(key, stored, options, raw, ms, html, annotate);
    return { render: wrapped, finish };
  }

  /** Whether fragments rendered with `options` are annotated (warns once when production ignores the request). */
  private annotates(options: FragmentOptions | undefined): boolean {
    if (this.annotateAll || options?.annotate !== true) return this.annotateAll;
    if (this.annotatePerRender) return true;
    this.warnOnce(
      'annotate',
      "dogpile templates: dogpile: { annotate: true } is ignored when NODE_ENV is 'production' (construct the TemplateCache with annotate: 'force' to allow it)",
    );
    return false;
  }

  /**
   * @internal Counts one fragment in the render's summary and annotates it. `raw` is the body's
   * output when this render ran it (a miss that took `ms`), `undefined` on a hit (then `html` is
   * the fragment that was read). Used by {@link TemplateCache.observe} and the collection renderer.
   */
  settleFragment(
    key: string,
    stored: string,
    options: FragmentOptions | undefined,
    raw: string | undefined,
    ms: number,
    html: string,
    annotate: boolean = this.annotates(options),
  ): string {
    const miss = raw !== undefined;
    if (miss) {
      if (this.missTimes.size >= 10_000) this.missTimes.clear();
      this.missTimes.set(stored, ms);
    }
    const summary = options?.summary;
    if (summary !== undefined) {
      recordFragment(summary, { key, outcome: miss ? 'miss' : 'hit', ms: miss ? ms : (this.missTimes.get(stored) ?? 0) });
    }
    const out = miss ? raw : html;
    return annotate ? annotateFragment(out, miss ? 'miss' : 'hit', key) : out;
  }

  /** The cached fragment under `key`, or `undefined`. */
  async get(key: string, options?: Pick<FragmentOptions, 'region' | 'expire'>): Promise<string | undefined> {
    const region = this.region(options?.region);
    const value = await this.guard(key, () =>
      region.get<string>(this.prefix + key, options?.expire === undefined ? undefined : { expirationTime: options.expire }),
    );
    return value === NO_VALUE || value === undefined ? undefined : value;
  }

  /** Stores `html` under `key` (for example a fragment rendered elsewhere), with `options.tags` if given. */
  async set(key: string, html: string, options?: Pick<FragmentOptions, 'region' | 'tags'>): Promise<void> {
    const region = this.region(options?.region);
    const tags = options?.tags === undefined ? undefined : fragmentTags(options.tags, 'TemplateCache.set');
    await this.guard(key, () => region.set(this.prefix + key, String(html), tags === undefined ? undefined : { tags }));
  }

  /**
   * Invalidates every fragment stored with one of `tags` (a string is one tag), in every region
   * this cache knows (each region once) and so in every process sharing their backends. Hard
   * (default): those fragments read as missing and the next render renders them (once, under
   * single flight). Soft (`{ hard: false }`): they read as stale, one render re-renders while the
   * others get the old HTML. The synchronous in-process tier drops its copies either way. Other
   * processes see it at once with an L1 bus, else within the regions' `tagRefreshInterval`.
   * Rejects with a {@link ValidationError} for bad tags, and with the region's error if a backend fails.
   */
  async invalidateTags(tags: string | readonly string[], options: { hard?: boolean } = {}): Promise<void> {
    const list = fragmentTags(tags, 'TemplateCache.invalidateTags');
    const hard = options?.hard ?? true;
    if (typeof hard !== 'boolean') {
      throw new ValidationError(`TemplateCache.invalidateTags: hard must be true or false, got ${String(hard)}`);
    }
    const drop = new Set(list);
    for (const [full, v] of this.sync.entries()) {
      const own = v.metadata.tags;
      if (own?.some((t) => drop.has(t))) this.sync.delete(full);
    }
    const regions = new Set(this.regions.values());
    await Promise.all([...regions].map((region) => region.invalidateTags(list, { hard })));
  }

  /** Deletes the fragment under `key` (also from the synchronous tier). Rejects if the backend fails. */
  async invalidate(key: string, options?: { region?: string | undefined }): Promise<void> {
    const region = this.region(options?.region);
    this.sync.delete(this.prefix + key);
    await region.delete(this.prefix + key);
  }

  private async guard<R>(key: string, op: () => Promise<R>): Promise<R | undefined> {
    try {
      return await op();
    } catch (err) {
      if (!isCacheFailure(err) || this.onError === 'throw') throw err;
      this.report(err, key);
      return undefined;
    }
  }

  // --- Cached collections (integrations/collections.ts) ----------------------------------------

  /**
   * The backend-error policy for code outside this class (the collection renderer): whether
   * `err` is a backend failure that `onError: 'render'` absorbs. When it is, it has been reported
   * (an `'error'` event, or a one-time warning) and the caller renders without the cache.
   */
  absorbFailure(err: unknown, key: string): boolean {
    if (!isCacheFailure(err) || this.onError === 'throw') return false;
    this.report(err, key);
    return true;
  }

  // --- end of cached collections ---------------------------------------------------------------

  /** Tells listeners about an absorbed backend failure, or warns once when nobody listens. */
  private report(error: DogpileError, key: string): void {
    if (this.listenerCount('error') > 0) {
      try {
        this.emit('error', error, { key } satisfies TemplateErrorInfo);
      } catch {}
      return;
    }
    this.warnOnce(
      'backend',
      `dogpile templates: a cache backend failed and the block was rendered without it (${error.message}). Listen for 'error' on the TemplateCache to see every failure.`,
    );
  }
}

/** Builds a {@link TemplateCache} from options, or passes an existing one through. */
export function toTemplateCache(options: TemplateCacheOptions | TemplateCache): TemplateCache {
  return options instanceof TemplateCache ? options : new TemplateCache(options);
}

/** Whether two argument lists hold the same primitives (objects never match: they can change). */
function samePrimitives(a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const v = b[i];
    if ((typeof v === 'object' && v !== null) || typeof v === 'function' || !Object.is(a[i], v)) return false;
  }
  return true;
}

async function renderInline(render: () => string | Promise<string>): Promise<string> {
  return String(await render());
}

function isRegion(value: unknown): value is CacheRegion {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as CacheRegion).getOrCreate === 'function' &&
    typeof (value as CacheRegion).configure === 'function'
  );
}

/**
 * The region call options of one fragment: its `expire` and `tags`, and `{ template, block }`
 * attributes when somebody listens for the region's hit/miss events; `undefined` (nothing built)
 * when there is none of these, as for most block hits.
 */
function regionCallOptions(
  region: CacheRegion,
  key: string,
  options: FragmentOptions | undefined,
): GetOrCreateOptions<string> | undefined {
  let out: GetOrCreateOptions<string> | undefined;
  if (options !== undefined) {
    const expire = options.expire;
    const tags = options.tags;
    if (expire !== undefined) out = { expirationTime: expire };
    if (tags !== undefined && tags.length > 0) {
      out ??= {};
      out.tags = tags;
    }
  }
  if (region.listenerCount('hit') + region.listenerCount('miss') > 0) {
    const attributes = fragmentAttributes(key);
    if (attributes !== undefined) {
      out ??= {};
      out.attributes = attributes;
    }
  }
  return out;
}

/**
 * `{ template, block }` of a key built by {@link TemplateCache.fragmentKey} (`engine|template|block|args`),
 * for the region's hit/miss events; undefined for keys of another shape.
 */
function fragmentAttributes(key: string): Readonly<Record<string, string>> | undefined {
  const a = key.indexOf('|');
  const b = key.indexOf('|', a + 1);
  const c = key.indexOf('|', b + 1);
  if (a < 0 || b < 0 || c < 0) return undefined;
  const id = key.slice(a + 1, b);
  const at = id.lastIndexOf('@');
  return { template: at > 0 ? id.slice(0, at) : id, block: key.slice(b + 1, c) };
}

function isCacheFailure(err: unknown): err is DogpileError {
  return err instanceof BackendError || err instanceof LockTimeoutError;
}
