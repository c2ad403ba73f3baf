// CacheRegion: the public front. A region is made up front, configured with a backend and an
// expiration time, and then read and written by key or through wrapped functions.

import {
  BackendError,
  type BackendFactory,
  type CacheBackend,
  CachedValue,
  type CacheMutex,
  type Clock,
  DogpileError,
  describe,
  NO_VALUE,
  type NoValue,
  RegionAlreadyConfiguredError,
  RegionNotConfiguredError,
  type Serializer,
  SYNC_GET,
  type SyncReadable,
  toBackendError,
  VALUE_VERSION,
  ValidationError,
} from './api.js';
import { ProxyBackend } from './backends/base.js';
import { coarseClock } from './clock.js';
import { coerceConfig } from './config.js';
import {
  type CacheMultiOnArgumentsDecorator,
  type CacheMultiOnArgumentsOptions,
  type CacheOnArgumentsDecorator,
  type CacheOnArgumentsOptions,
  makeCacheMultiOnArguments,
  makeCacheOnArguments,
} from './decorators.js';
// Two tiers, tags and early refresh (each policy in its own module; the region only calls them).
import { checkEarlyRefresh, shouldRefreshEarly } from './early-refresh.js';
import { DefaultInvalidationStrategy, type RegionInvalidationStrategy } from './invalidation.js';
import {
  functionKeyGenerator as defaultKeyGenerator,
  functionMultiKeyGenerator as defaultMultiKeyGenerator,
  type FunctionKeyGenerator,
  type FunctionMultiKeyGenerator,
  type KeyMangler,
} from './keys.js';
import { type AsyncHandOff, DogpileLock, type Lookup, MISSING } from './lock.js';
import { lookupBackend } from './registry.js';
import { defaultSerializer } from './serialization.js';
import { checkTags, DEFAULT_TAG_REFRESH_SECONDS, TAGS_HARD, TAGS_OK, TAGS_SOFT, TAGS_UNKNOWN, TagIndex } from './tags.js';
import { checkL1Options, checkL1Placement, type L1Options, makeTier, type TieredBackend } from './tiered.js';

/** What a creator receives: the key, and a signal aborted if the distributed lock is lost. */
export interface CreatorContext {
  readonly key: string;
  readonly signal: AbortSignal | undefined;
}

/**
 * Runs a regeneration in the background so that even the caller that won the lock returns the
 * stale value at once. `creator()` runs the region's creator and stores its value (honouring
 * `shouldCacheFn`); the runner must call `mutex.release()` when it is done, success or not.
 */
export type AsyncCreationRunner = (
  region: CacheRegion,
  key: string,
  creator: () => Promise<unknown>,
  mutex: { release(): Promise<void> },
) => void | Promise<void>;

/** Where a backend failure happened, for {@link RegionOptions.onError}. */
export interface BackendErrorInfo {
  readonly operation: 'get' | 'getMulti' | 'set' | 'setMulti' | 'lock' | 'create';
  readonly key: string | undefined;
}

/** Options of {@link makeRegion}. All optional. */
export interface RegionOptions {
  /** A label, used in messages and passed to backends. */
  name?: string;
  /** Builds keys for {@link CacheRegion.cacheOnArguments}. Default {@link defaultKeyGenerator}. */
  functionKeyGenerator?: FunctionKeyGenerator;
  /** Builds keys for {@link CacheRegion.cacheMultiOnArguments}. */
  functionMultiKeyGenerator?: FunctionMultiKeyGenerator;
  /** Applied to every key before it reaches the backend (and the lock), e.g. `sha1MangleKey`. */
  keyMangler?: KeyMangler;
  /** Payload serializer for byte-oriented backends. Default: Node's structured clone (`node:v8`). */
  serializer?: Serializer;
  /** Background regeneration of stale values (see {@link AsyncCreationRunner}). */
  asyncCreationRunner?: AsyncCreationRunner;
  /**
   * Built-in background refresh: a stale value is returned at once to every caller, the lock
   * winner included, and regenerated after the current turn. Ignored when `asyncCreationRunner`
   * is set. Default false.
   */
  backgroundRefresh?: boolean;
  /** Longest wait, in seconds, for another caller's creation in this process. Default 30. */
  lockWaitTimeout?: number;
  /**
   * When true (the default), a failing backend read is a miss and a failing write is skipped, both
   * reported to `onError`: a cache outage does not become an application outage. When false, they
   * reject with {@link BackendError}. Deletes and invalidation always reject on failure.
   */
  failOpen?: boolean;
  /** Told about every backend failure the region absorbed. Default: one process warning. */
  onError?: (error: BackendError, info: BackendErrorInfo) => void;
  /** Time source for expiry (ms since the epoch). Default: a coarse wall clock. */
  clock?: Clock;
  /**
   * An in-process memory tier (L1) in front of the backend (L2), kept coherent across processes by
   * an invalidation bus; see {@link L1Options}. `configure({ l1 })` overrides it. Default none.
   */
  l1?: L1Options;
  /**
   * Probabilistic early refresh (XFetch) with this beta (> 0; 1 is the paper's optimum, larger
   * refreshes earlier): a fresh value near its expiry is regenerated in the background by one
   * caller, with a chance that rises as expiry nears, weighted by how long its creation took.
   * Callers keep getting the current value. Per call: `getOrCreate(..., { earlyRefresh })`.
   * Default 0 (off).
   */
  earlyRefresh?: number;
  /**
   * Seconds a process trusts the tag invalidation times it read from the backend before reading
   * them again (a tagged hit costs at most one extra read per interval; invalidations announced
   * on an L1 bus arrive at once). Default 1.
   */
  tagRefreshInterval?: number;
}

/** A proxy class (instantiated with no arguments) or instance, for `configure({ wrap })`. */
export type ProxySpec = ProxyBackend | (new () => ProxyBackend);

/** Options of {@link CacheRegion.configure}. */
export interface ConfigureOptions {
  /** Seconds until a value is stale. `null`, absent or `-1`: never. `0`: always. */
  expirationTime?: number | null;
  /** Passed to the backend factory; never mutated. */
  arguments?: Readonly<Record<string, unknown>>;
  /** Proxies around the backend; the first is the outermost. */
  wrap?: readonly ProxySpec[];
  /** Allows configuring a region that already has a backend. */
  replaceExistingBackend?: boolean;
  /** Custom invalidation (for example one shared through the backend). */
  regionInvalidator?: RegionInvalidationStrategy;
  /** An in-process memory tier in front of this backend (overrides the region's `l1`). */
  l1?: L1Options;
}

/** Options of {@link CacheRegion.set} and {@link CacheRegion.setMulti}. */
export interface SetOptions {
  /** Tags stored with the value; {@link CacheRegion.invalidateTags} invalidates by them. */
  tags?: readonly string[];
}

/** Per-read options. */
export interface GetOptions {
  /** Overrides the region's expiration for this read (seconds, `-1` never). */
  expirationTime?: number | null;
  /** Return the value even if it is expired or invalidated. */
  ignoreExpiration?: boolean;
}

/** Options of {@link CacheRegion.getOrCreate}. */
export interface GetOrCreateOptions<T> {
  /** Overrides the region's expiration for this call (seconds, `-1` never). */
  expirationTime?: number | null;
  /** When it returns false the value is returned to the waiting callers but not stored. */
  shouldCacheFn?: (value: T) => boolean;
  /** Tags stored with a value this call creates (see {@link CacheRegion.invalidateTags}). */
  tags?: readonly string[];
  /** XFetch beta for this call (overrides the region's `earlyRefresh`; 0 turns it off). */
  earlyRefresh?: number;
}

const NEVER = -1;
const DEFAULT_LOCK_WAIT_SECONDS = 30;

/** Creates a {@link CacheRegion}; configure it before use. */
export function makeRegion(options: RegionOptions = {}): CacheRegion {
  return new CacheRegion(options);
}

/** A cache region: configured once with a backend, then used by key or through wrapped functions. */
export class CacheRegion {
  readonly name: string | undefined;
  readonly functionKeyGenerator: FunctionKeyGenerator;
  readonly functionMultiKeyGenerator: FunctionMultiKeyGenerator;
  readonly keyMangler: KeyMangler | undefined;
  readonly serializer: Serializer;
  readonly asyncCreationRunner: AsyncCreationRunner | undefined;
  readonly clock: Clock;

  private outer: CacheBackend | undefined;
  private inner: CacheBackend | undefined;
  private syncGet: ((key: string) => CachedValue | NoValue) | undefined;
  private loading: Promise<void> | undefined;
  private loadError: unknown;
  private expirationMs = NEVER;
  private invalidator: RegionInvalidationStrategy;
  private stampFloor = 0;
  private readonly lock = new DogpileLock();
  private readonly waitTimeoutMs: number;
  private readonly failOpen: boolean;
  private readonly handOffEnabled: boolean;
  private readonly onError: (error: BackendError, info: BackendErrorInfo) => void;
  /** L1 + bus in front of the backend, when `l1` is configured (it is then `outer`). */
  private tier: TieredBackend | undefined;
  private readonly regionL1: L1Options | undefined;
  private pendingL1: L1Options | undefined;
  /** XFetch beta; 0 = off (the fresh-hit path then tests this one field). */
  private readonly earlyBeta: number;
  private readonly tagIndex: TagIndex;

  constructor(options: RegionOptions = {}) {
    if (options === null || typeof options !== 'object') {
      throw new ValidationError(`makeRegion: options must be an object, got ${describe(options)}`);
    }
    checkFunction('keyMangler', options.keyMangler);
    checkFunction('functionKeyGenerator', options.functionKeyGenerator);
    checkFunction('functionMultiKeyGenerator', options.functionMultiKeyGenerator);
    checkFunction('asyncCreationRunner', options.asyncCreationRunner);
    checkFunction('onError', options.onError);
    if (options.serializer !== undefined) {
      const s = options.serializer as Partial<Serializer> | null;
      if (!s || typeof s.serialize !== 'function' || typeof s.deserialize !== 'function') {
        throw new ValidationError(`serializer must have serialize() and deserialize() methods, got ${describe(s)}`);
      }
    }
    if (options.clock !== undefined && typeof options.clock?.now !== 'function') {
      throw new ValidationError(`clock must have a now() method, got ${describe(options.clock)}`);
    }
    const wait = options.lockWaitTimeout ?? DEFAULT_LOCK_WAIT_SECONDS;
    if (typeof wait !== 'number' || !(wait > 0) || !Number.isFinite(wait)) {
      throw new ValidationError(`lockWaitTimeout must be a positive number of seconds, got ${describe(wait)}`);
    }
    this.name = options.name;
    this.functionKeyGenerator = options.functionKeyGenerator ?? defaultKeyGenerator;
    this.functionMultiKeyGenerator = options.functionMultiKeyGenerator ?? defaultMultiKeyGenerator;
    this.keyMangler = options.keyMangler;
    this.serializer = options.serializer ?? defaultSerializer;
    this.asyncCreationRunner = options.asyncCreationRunner;
    this.handOffEnabled = options.asyncCreationRunner !== undefined || options.backgroundRefresh === true;
    this.clock = options.clock ?? coarseClock;
    this.waitTimeoutMs = wait * 1000;
    this.failOpen = options.failOpen ?? true;
    this.onError = options.onError ?? warnOnce;
    this.invalidator = new DefaultInvalidationStrategy(this.clock);
    if (options.l1 !== undefined) checkL1Options(options.l1);
    this.regionL1 = options.l1;
    checkEarlyRefresh(options.earlyRefresh);
    this.earlyBeta = options.earlyRefresh ?? 0;
    const tagRefresh = options.tagRefreshInterval ?? DEFAULT_TAG_REFRESH_SECONDS;
    if (typeof tagRefresh !== 'number' || !(tagRefresh >= 0) || !Number.isFinite(tagRefresh)) {
      throw new ValidationError(`tagRefreshInterval must be a number of seconds >= 0, got ${describe(tagRefresh)}`);
    }
    this.tagIndex = new TagIndex(this.clock, tagRefresh * 1000, (tag) => this.mangle(`dogpile:tag:${tag}`));
  }

  // -------------------------------------------------------------------------------------------
  // Configuration

  /**
   * Gives the region its backend: a registered name (`'memory'`, `'null'`, `'redis'`, …), a module
   * specifier to import, or a backend instance. Returns the region, so it chains off `makeRegion()`.
   * Backends that load asynchronously are awaited by the first operation (or {@link ready}).
   */
  configure(backend: string | CacheBackend, options: ConfigureOptions = {}): this {
    if (options === null || typeof options !== 'object') {
      throw new ValidationError(`configure: options must be an object, got ${describe(options)}`);
    }
    if ((this.outer || this.loading) && !options.replaceExistingBackend) {
      throw new RegionAlreadyConfiguredError(
        `region ${this.label()} is already configured with backend ${describeBackend(this.inner, this.loading)}; pass replaceExistingBackend: true to replace it`,
      );
    }
    const expirationMs = toExpirationMs(options.expirationTime, 'expirationTime');
    const args = options.arguments ?? {};
    if (args === null || typeof args !== 'object') {
      throw new ValidationError(`configure: arguments must be an object, got ${describe(args)}`);
    }
    const proxies = (options.wrap ?? []).map(toProxy);
    const invalidator = options.regionInvalidator ?? new DefaultInvalidationStrategy(this.clock);
    checkInvalidator(invalidator);
    const l1 = options.l1 ?? this.regionL1;
    if (l1 !== undefined) {
      checkL1Options(l1, options.l1 === undefined ? 'l1' : 'configure: l1');
      checkL1Placement(l1, backend, expirationMs === NEVER ? null : expirationMs / 1000);
    }

    let made: CacheBackend | Promise<CacheBackend>;
    if (typeof backend === 'string') {
      const factory: BackendFactory = lookupBackend(backend);
      made = factory(Object.freeze({ ...args }), {
        serializer: this.serializer,
        regionName: this.name,
        expirationTime: expirationMs === NEVER ? null : expirationMs / 1000,
      });
    } else if (backend && typeof backend === 'object' && typeof backend.get === 'function') {
      made = backend;
    } else {
      throw new ValidationError(
        `configure: backend must be a name, a module specifier or a backend instance, got ${describe(backend)}`,
      );
    }

    this.expirationMs = expirationMs;
    this.invalidator = invalidator;
    this.pendingL1 = l1;
    this.outer = this.inner = this.syncGet = this.tier = undefined;
    this.loadError = undefined;
    if (isPromise(made)) {
      const loading = made.then(
        (b) => {
          if (this.loading === loading) this.install(b, proxies);
        },
        (err: unknown) => {
          if (this.loading === loading) this.loadError = err;
        },
      );
      this.loading = loading;
    } else {
      this.loading = undefined;
      this.install(made, proxies);
    }
    return this;
  }

  /**
   * Configures from a flat config object such as `process.env` or a parsed ini file:
   * `<prefix>backend`, `<prefix>expiration_time` (or `expirationTime`), `<prefix>arguments.<name>`
   * and `<prefix>replace_existing_backend`. Strings are coerced (`"60"` → 60, `"true"` → true,
   * `"None"`/`"null"` → null, JSON arrays and objects parsed); snake_case argument names become
   * camelCase (`redis_expiration_time` → `redisExpirationTime`).
   */
  configureFromConfig(config: Readonly<Record<string, unknown>>, prefix: string): this {
    const { backend, options } = coerceConfig(config, prefix);
    return this.configure(backend, options);
  }

  /** Resolves once the backend is loaded (rejects if loading failed). */
  async ready(): Promise<this> {
    await this.requireBackend();
    return this;
  }

  /** Whether the region has a backend (or is loading one). */
  get isConfigured(): boolean {
    return this.outer !== undefined || this.loading !== undefined;
  }

  /** The backend as the region calls it: the outermost proxy, if any. */
  get backend(): CacheBackend {
    if (this.outer) return this.outer;
    throw this.notReadyError();
  }

  /** The real backend under any proxies. */
  get actualBackend(): CacheBackend {
    if (this.inner) return this.inner;
    throw this.notReadyError();
  }

  /** The region's expiration in seconds, or null for never. */
  get expirationTime(): number | null {
    return this.expirationMs === NEVER ? null : this.expirationMs / 1000;
  }

  /** The invalidation strategy in use. */
  get regionInvalidator(): RegionInvalidationStrategy {
    return this.invalidator;
  }

  /** Wraps the current backend in one more proxy (outermost). */
  wrap(proxy: ProxySpec): this {
    const p = toProxy(proxy);
    p.wrap(this.backend);
    this.outer = p;
    this.syncGet = undefined;
    return this;
  }

  /** Closes the backend (connections, files, timers). */
  async close(): Promise<void> {
    const backend = await this.requireBackend();
    await backend.close?.();
  }

  // -------------------------------------------------------------------------------------------
  // Reading and writing

  /** The value under `key`, or {@link NO_VALUE} when missing, expired or invalidated. */
  async get<T = unknown>(key: string, options?: GetOptions): Promise<T | NoValue> {
    const found = await this.readUsable(key, options);
    return found === NO_VALUE ? NO_VALUE : (found.payload as T);
  }

  /** Values for `keys`, aligned with them, {@link NO_VALUE} where there is none. */
  async getMulti<T = unknown>(keys: readonly string[], options?: GetOptions): Promise<(T | NoValue)[]> {
    checkKeys(keys);
    if (keys.length === 0) return [];
    const backend = await this.requireBackend();
    await this.invalidator.sync?.();
    const expMs = this.expirationFor(options?.expirationTime);
    const found = await this.read('getMulti', undefined, () => backend.getMulti(keys.map((k) => this.mangle(k))));
    if (found !== NO_VALUE) await this.settleTagsMulti(found);
    return keys.map((_, i) => {
      const v = this.usable(found === NO_VALUE ? NO_VALUE : (found[i] ?? NO_VALUE), expMs, options);
      return v === NO_VALUE ? NO_VALUE : (v.payload as T);
    });
  }

  /** The stored {@link CachedValue} (payload, metadata, age) under `key`, or null. */
  async getValueMetadata<T = unknown>(key: string, options?: GetOptions): Promise<CachedValue<T> | null> {
    const v = await this.readUsable(key, options);
    return v === NO_VALUE ? null : new CachedValue(v.payload as T, v.metadata, () => this.clock.now());
  }

  /** The stored value under `key` when it is fresh (or `ignoreExpiration`), else NO_VALUE. */
  private async readUsable(key: string, options: GetOptions | undefined): Promise<CachedValue | NoValue> {
    checkKey(key);
    const backend = await this.requireBackend();
    await this.invalidator.sync?.();
    const expMs = this.expirationFor(options?.expirationTime);
    const found = await this.read('get', key, () => backend.get(this.mangle(key)));
    await this.settleTags(found);
    return this.usable(found, expMs, options);
  }

  private usable(v: CachedValue | NoValue, expMs: number, options: GetOptions | undefined): CachedValue | NoValue {
    return v !== NO_VALUE && (options?.ignoreExpiration || this.isFresh(v, expMs)) ? v : NO_VALUE;
  }

  /**
   * The dogpile path: a fresh value is returned after one backend read; otherwise exactly one
   * caller runs `creator` while the others get the stale value (or wait for the new one).
   */
  async getOrCreate<T>(
    key: string,
    creator: (context: CreatorContext) => T | Promise<T>,
    options?: GetOrCreateOptions<T>,
  ): Promise<T> {
    const backend = this.outer;
    if (backend === undefined || typeof key !== 'string' || this.invalidator.sync !== undefined) {
      return this.getOrCreateSlow(key, creator, options);
    }
    const mangled = this.keyMangler === undefined ? key : this.keyMangler(key);
    const expMs = options?.expirationTime === undefined ? this.expirationMs : this.expirationFor(options.expirationTime);
    const syncGet = this.syncGet;
    let found: CachedValue | NoValue;
    if (syncGet !== undefined) found = syncGet(mangled);
    else {
      // Inlined `read` (no closure, one async frame fewer): this is the hit path of every backend.
      try {
        found = await backend.get(mangled);
      } catch (err) {
        found = this.readFailed(err, 'get', key);
      }
    }
    if (found !== NO_VALUE && this.isFresh(found, expMs)) {
      if (this.earlyBeta === 0 && options?.earlyRefresh === undefined) return found.payload as T;
      return this.freshHit(backend, key, mangled, found, expMs, creator, options);
    }
    // Not a fresh hit. An L1 miss still reads L2; tagged values may need their tag times first.
    if (this.tier !== undefined || (found !== NO_VALUE && found.metadata.tags !== undefined)) {
      return this.afterFirstRead(backend, key, mangled, found, expMs, creator, options, this.tier !== undefined);
    }
    return this.regenerate(backend, key, mangled, found, expMs, creator, options);
  }

  /** The rest of getOrCreate after a first read that was not a fresh hit (or an L1-only peek). */
  private async afterFirstRead<T>(
    backend: CacheBackend,
    key: string,
    mangled: string,
    first: CachedValue | NoValue,
    expMs: number,
    creator: (context: CreatorContext) => T | Promise<T>,
    options: GetOrCreateOptions<T> | undefined,
    onlyPeeked: boolean,
  ): Promise<T> {
    let found = first;
    if (onlyPeeked && found === NO_VALUE) found = await this.read('get', key, () => backend.get(mangled));
    await this.settleTags(found);
    if (found !== NO_VALUE && this.isFresh(found, expMs))
      return this.freshHit(backend, key, mangled, found, expMs, creator, options);
    return this.regenerate(backend, key, mangled, found, expMs, creator, options);
  }

  /** A fresh hit, with early refresh on: maybe start one background regeneration, return the value. */
  private freshHit<T>(
    backend: CacheBackend,
    key: string,
    mangled: string,
    found: CachedValue,
    expMs: number,
    creator: (context: CreatorContext) => T | Promise<T>,
    options: GetOrCreateOptions<T> | undefined,
  ): T {
    const beta = options?.earlyRefresh ?? this.earlyBeta;
    if (options?.earlyRefresh !== undefined) checkEarlyRefresh(options.earlyRefresh);
    if (
      beta > 0 &&
      typeof creator === 'function' &&
      !this.lock.isFlying(mangled) &&
      shouldRefreshEarly(found.metadata.ct, found.metadata.d, expMs, this.clock.now(), beta)
    ) {
      this.refreshEarly(backend, key, mangled, found, expMs, creator, options);
    }
    return found.payload as T;
  }

  /**
   * Regenerates a fresh value in the background through the dogpile lock, as if it were stale: a
   * creation already in flight here, or a distributed lock held elsewhere, means someone else is
   * at it (a try-lock: nobody waits). Having the lock, the key is read again; a value with another
   * creation time means it was refreshed meanwhile and nothing is done.
   */
  private refreshEarly<T>(
    backend: CacheBackend,
    key: string,
    mangled: string,
    found: CachedValue,
    expMs: number,
    creator: (context: CreatorContext) => T | Promise<T>,
    options: GetOrCreateOptions<T> | undefined,
  ): void {
    const current: Lookup<T> = { state: 'stale', value: found.payload as T };
    const create = this.creation(backend, key, mangled, creator, options);
    this.lock
      .getOrCreate<T>(current, {
        key: mangled,
        mutex: () => this.mutexFor(backend, mangled),
        read: async () => {
          const now = await this.read('get', key, () => backend.get(mangled));
          return now !== NO_VALUE && now.metadata.ct !== found.metadata.ct ? this.lookup<T>(now, expMs) : current;
        },
        create,
        handOff: (release) => this.runInBackground(key, () => create(undefined), release),
        waitTimeoutMs: this.waitTimeoutMs,
      })
      .catch((err: unknown) => this.report(err, 'create', key));
  }

  private async getOrCreateSlow<T>(
    key: string,
    creator: (context: CreatorContext) => T | Promise<T>,
    options?: GetOrCreateOptions<T>,
  ): Promise<T> {
    checkKey(key);
    if (typeof creator !== 'function')
      throw new ValidationError(`getOrCreate: creator must be a function, got ${describe(creator)}`);
    const backend = await this.requireBackend();
    await this.invalidator.sync?.();
    const mangled = this.mangle(key);
    const expMs = this.expirationFor(options?.expirationTime);
    const found = await this.read('get', key, () => backend.get(mangled));
    return this.afterFirstRead(backend, key, mangled, found, expMs, creator, options, false);
  }

  private regenerate<T>(
    backend: CacheBackend,
    key: string,
    mangled: string,
    found: CachedValue | NoValue,
    expMs: number,
    creator: (context: CreatorContext) => T | Promise<T>,
    options: GetOrCreateOptions<T> | undefined,
  ): Promise<T> {
    if (typeof creator !== 'function') {
      return Promise.reject(new ValidationError(`getOrCreate: creator must be a function, got ${describe(creator)}`));
    }
    if (options?.tags !== undefined) {
      try {
        checkTags(options.tags, 'getOrCreate: tags');
      } catch (err) {
        return Promise.reject(err);
      }
    }
    const create = this.creation(backend, key, mangled, creator, options);
    let handOff: AsyncHandOff | undefined;
    if (this.handOffEnabled) {
      handOff = (release) => this.runInBackground(key, () => create(undefined), release);
    }
    return this.lock.getOrCreate<T>(this.lookup<T>(found, expMs), {
      key: mangled,
      mutex: () => this.mutexFor(backend, mangled),
      read: async () => {
        const now = await this.read('get', key, () => backend.get(mangled));
        await this.settleTags(now);
        return this.lookup<T>(now, expMs);
      },
      create,
      handOff,
      waitTimeoutMs: this.waitTimeoutMs,
    });
  }

  /** Runs the creator and stores its value (unless shouldCacheFn says no), with its duration and tags. */
  private creation<T>(
    backend: CacheBackend,
    key: string,
    mangled: string,
    creator: (context: CreatorContext) => T | Promise<T>,
    options: GetOrCreateOptions<T> | undefined,
  ): (signal: AbortSignal | undefined) => Promise<T> {
    const shouldCache = options?.shouldCacheFn;
    const tags = options?.tags;
    return async (signal) => {
      const started = this.clock.now();
      const value = await creator({ key, signal });
      if (shouldCache && !shouldCache(value)) return value;
      const stored = this.newValue(value, started, tags);
      await this.write('set', key, () => backend.set(mangled, stored));
      return value;
    };
  }

  /**
   * Multi-key dogpile: one backend read for all keys; `creator(...keysToCreate)` is called once
   * with the keys that need a value and must return their values in that order. Concurrent callers
   * share creations key by key, so each missing key is created once.
   */
  async getOrCreateMulti<T>(
    keys: readonly string[],
    creator: (...keys: string[]) => readonly T[] | Promise<readonly T[]>,
    options?: GetOrCreateOptions<T>,
  ): Promise<T[]> {
    checkKeys(keys);
    if (typeof creator !== 'function') {
      throw new ValidationError(`getOrCreateMulti: creator must be a function, got ${describe(creator)}`);
    }
    if (keys.length === 0) return [];
    const backend = await this.requireBackend();
    await this.invalidator.sync?.();
    const expMs = this.expirationFor(options?.expirationTime);
    const mangledKeys = keys.map((k) => this.mangle(k));
    const originalOf = new Map(mangledKeys.map((m, i) => [m, keys[i] as string]));
    const mangled = [...originalOf.keys()].sort();
    const readMulti = async (ks: readonly string[]): Promise<Lookup<T>[]> => {
      const found = await this.read('getMulti', undefined, () => backend.getMulti([...ks]));
      if (found !== NO_VALUE) await this.settleTagsMulti(found);
      return ks.map((_, i) => this.lookup<T>(found === NO_VALUE ? NO_VALUE : (found[i] ?? NO_VALUE), expMs));
    };
    const shouldCache = options?.shouldCacheFn;
    const values = await this.lock.getOrCreateMulti<T>(await readMulti(mangled), {
      keys: mangled,
      mutexFor: (k) => this.mutexFor(backend, k),
      readMulti,
      createMulti: async (ks) => {
        const started = this.clock.now();
        const originals = ks.map((k) => originalOf.get(k) as string);
        const created = await creator(...originals);
        if (!Array.isArray(created) || created.length !== ks.length) {
          throw new ValidationError(
            `getOrCreateMulti: creator must return an array of ${ks.length} values (one per key it was given), got ${describe(created)}`,
          );
        }
        const entries = new Map<string, CachedValue>();
        ks.forEach((k, i) => {
          const value = created[i] as T;
          if (!shouldCache || shouldCache(value)) entries.set(k, this.newValue(value, started));
        });
        if (entries.size) await this.write('setMulti', undefined, () => backend.setMulti(entries));
        return created as T[];
      },
      waitTimeoutMs: this.waitTimeoutMs,
    });
    const byKey = new Map<string, T>();
    mangled.forEach((k, i) => {
      byKey.set(k, values[i] as T);
    });
    return mangledKeys.map((m) => byKey.get(m) as T);
  }

  /** Stores `value` under `key` with fresh metadata (and `options.tags`, if given). */
  async set(key: string, value: unknown, options?: SetOptions): Promise<void> {
    checkKey(key);
    const tags = tagsOf(options, 'set');
    const backend = await this.requireBackend();
    const stored = this.newValue(value, undefined, tags);
    await this.write('set', key, () => backend.set(this.mangle(key), stored));
  }

  /** Stores several values (a record or a Map), all with the same creation time (and tags). */
  async setMulti(entries: Readonly<Record<string, unknown>> | ReadonlyMap<string, unknown>, options?: SetOptions): Promise<void> {
    const pairs = entries instanceof Map ? [...entries] : Object.entries(entries ?? {});
    checkKeys(pairs.map(([k]) => k));
    const tags = tagsOf(options, 'setMulti');
    if (pairs.length === 0) return;
    const backend = await this.requireBackend();
    const started = this.clock.now();
    const map = new Map<string, CachedValue>();
    for (const [k, v] of pairs) map.set(this.mangle(k), this.newValue(v, started, tags));
    await this.write('setMulti', undefined, () => backend.setMulti(map));
  }

  /** Removes `key`. Idempotent. Rejects with {@link BackendError} if the backend fails. */
  async delete(key: string): Promise<void> {
    checkKey(key);
    const backend = await this.requireBackend();
    await this.strict(() => backend.delete(this.mangle(key)), `delete ${JSON.stringify(key)}`);
  }

  /** Removes several keys. Idempotent. */
  async deleteMulti(keys: readonly string[]): Promise<void> {
    checkKeys(keys);
    if (keys.length === 0) return;
    const backend = await this.requireBackend();
    await this.strict(() => backend.deleteMulti(keys.map((k) => this.mangle(k))), `deleteMulti of ${keys.length} keys`);
  }

  /**
   * Invalidates every value created before now. Hard (default): they read as missing, and callers
   * wait for one regeneration. Soft: they read as expired, and one caller regenerates while the
   * others get the old value. Nothing is deleted from the backend.
   */
  async invalidate(options: { hard?: boolean } = {}): Promise<void> {
    this.requireConfigured();
    const hard = options.hard ?? true;
    const at = this.clock.now();
    await this.strict(async () => this.invalidator.invalidate(hard), 'invalidate');
    // Values created from now on must read as newer than the invalidation, even within its millisecond.
    this.stampFloor = this.clock.now() + 1;
    // With an L1, the other processes apply it too and drop their L1 copies.
    const tier = this.tier;
    if (tier !== undefined) await this.strict(() => tier.announce({ kind: 'invalidate', at, hard }), 'invalidate (bus)');
  }

  /**
   * Invalidates every value written with one of `tags` before now, in every process sharing the
   * backend. Hard (default): they read as missing. Soft: as expired (one caller regenerates, the
   * others get the old value). Each tag's time is stored in the backend under `dogpile:tag:<tag>`.
   */
  async invalidateTags(tags: readonly string[], options: { hard?: boolean } = {}): Promise<void> {
    checkTags(tags, 'invalidateTags: tags');
    const hard = options?.hard ?? true;
    if (typeof hard !== 'boolean') throw new ValidationError(`invalidateTags: hard must be true or false, got ${describe(hard)}`);
    await this.requireBackend();
    if (tags.length === 0) return;
    const at = this.clock.now();
    await this.strict(() => this.tagIndex.invalidate(tags, hard, at), 'invalidateTags');
    this.stampFloor = Math.max(this.stampFloor, at + 1);
    const tier = this.tier;
    if (tier !== undefined) {
      await this.strict(() => tier.announce({ kind: 'tags', tags: [...tags], at, hard }), 'invalidateTags (bus)');
    }
    // Hook point: an `invalidate` event ({ region, tags, hard }) is emitted here once events exist.
  }

  /** Whether a creator currently holds the lock of `key` (honours the key mangler). */
  async keyIsLocked(key: string): Promise<boolean> {
    checkKey(key);
    const backend = await this.requireBackend();
    const mangled = this.mangle(key);
    if (this.lock.isFlying(mangled)) return true;
    const mutex = backend.getMutex?.(mangled);
    return mutex ? await this.strict(() => mutex.locked(), `keyIsLocked ${JSON.stringify(key)}`) : false;
  }

  // -------------------------------------------------------------------------------------------
  // Function wrappers

  /**
   * Wraps a function so that its results are cached by its arguments. The wrapper has the
   * function's parameter types and returns `Promise<Awaited<R>>`, plus `invalidate`, `set`,
   * `get`, `refresh`, `key` and `original`. Also usable as a standard method decorator.
   */
  cacheOnArguments(options: CacheOnArgumentsOptions = {}): CacheOnArgumentsDecorator {
    return makeCacheOnArguments(this, options);
  }

  /**
   * Wraps a function that takes keys as its arguments and returns one value per key (or, with
   * `asDict`, an object by key). Calls it once with only the keys not cached.
   */
  cacheMultiOnArguments<D extends boolean = false>(
    options: CacheMultiOnArgumentsOptions & { asDict?: D } = {},
  ): CacheMultiOnArgumentsDecorator<D> {
    return makeCacheMultiOnArguments(this, options);
  }

  // -------------------------------------------------------------------------------------------
  // Internals

  private install(backend: CacheBackend, proxies: ProxyBackend[]): void {
    let outer = backend;
    for (let i = proxies.length - 1; i >= 0; i--) outer = (proxies[i] as ProxyBackend).wrap(outer);
    this.inner = backend;
    this.outer = outer;
    this.invalidator.bind?.(outer, this.clock);
    this.tagIndex.bind(outer);
    const sync = outer === backend ? (backend as Partial<SyncReadable>)[SYNC_GET] : undefined;
    this.syncGet = typeof sync === 'function' ? sync.bind(backend) : undefined;
    if (this.pendingL1 !== undefined) this.installTier(this.pendingL1, outer, backend);
  }

  /** Puts L1 in front of `outer`; a fresh hit then reads L1 exactly as a memory region reads its store. */
  private installTier(l1: L1Options, outer: CacheBackend, actual: CacheBackend): void {
    const tier = makeTier(outer, actual, l1, this.expirationTime, this.name);
    tier.remote = {
      invalidate: (at, hard) => {
        const s = this.invalidator as Partial<{ apply(at: number, hard: boolean): void; invalidatedAt: number }>;
        if (typeof s.apply === 'function' && !((s.invalidatedAt ?? Number.NEGATIVE_INFINITY) > at)) s.apply(at, hard);
      },
      tags: (tags, at, hard) => this.tagIndex.received(tags, hard, at),
    };
    this.tier = tier;
    this.outer = tier;
    this.syncGet = tier.l1[SYNC_GET].bind(tier.l1);
  }

  /** Loads the tag times a read value needs (at most one backend read); a failure is reported, not fatal. */
  private settleTags(v: CachedValue | NoValue): Promise<void> | undefined {
    if (v === NO_VALUE) return undefined;
    const tags = v.metadata.tags;
    if (tags === undefined || this.tagIndex.state(tags, v.metadata.ct) !== TAGS_UNKNOWN) return undefined;
    return this.loadTags(tags);
  }

  private settleTagsMulti(values: readonly (CachedValue | NoValue)[]): Promise<void> | undefined {
    let needed: Set<string> | undefined;
    for (const v of values) {
      const tags = v === NO_VALUE ? undefined : v.metadata.tags;
      if (tags !== undefined && this.tagIndex.state(tags, (v as CachedValue).metadata.ct) === TAGS_UNKNOWN) {
        needed ??= new Set();
        for (const t of tags) needed.add(t);
      }
    }
    return needed === undefined ? undefined : this.loadTags([...needed]);
  }

  private async loadTags(tags: readonly string[]): Promise<void> {
    try {
      await this.tagIndex.load(tags);
    } catch (err) {
      this.readFailed(err, 'get', undefined);
      this.tagIndex.assumeKnown(tags); // fail open: as last known, until the next refresh
    }
  }

  private async requireBackend(): Promise<CacheBackend> {
    if (this.outer) return this.outer;
    if (this.loading) {
      await this.loading;
      if (this.outer) return this.outer;
    }
    throw this.notReadyError();
  }

  private requireConfigured(): void {
    if (!this.outer && !this.loading) throw this.notReadyError();
  }

  private notReadyError(): DogpileError {
    if (this.loadError !== undefined) {
      return this.loadError instanceof DogpileError
        ? this.loadError
        : new BackendError(`region ${this.label()}: the backend failed to load`, { cause: this.loadError });
    }
    if (this.loading) return new DogpileError(`region ${this.label()}: the backend is still loading; await region.ready() first`);
    return new RegionNotConfiguredError(`region ${this.label()} is not configured: call configure() before using it`);
  }

  private label(): string {
    return this.name === undefined ? '(unnamed)' : JSON.stringify(this.name);
  }

  /** Applies the key mangler. */
  mangle(key: string): string {
    return this.keyMangler === undefined ? key : this.keyMangler(key);
  }

  private expirationFor(expirationTime: number | null | undefined): number {
    return expirationTime === undefined || expirationTime === null
      ? this.expirationMs
      : toExpirationMs(expirationTime, 'expirationTime');
  }

  private isFresh(v: CachedValue, expMs: number): boolean {
    const ct = v.metadata.ct;
    if (v.metadata.v !== VALUE_VERSION || this.invalidator.isInvalidated(ct)) return false;
    const tags = v.metadata.tags;
    if (tags !== undefined && this.tagIndex.state(tags, ct) !== TAGS_OK) return false;
    return withinExpiry(ct, expMs, this.clock.now());
  }

  private lookup<T>(v: CachedValue | NoValue, expMs: number): Lookup<T> {
    if (v === NO_VALUE || v.metadata.v !== VALUE_VERSION) return MISSING;
    const ct = v.metadata.ct;
    if (this.invalidator.isHardInvalidated(ct)) return MISSING;
    const tagState = v.metadata.tags === undefined ? TAGS_OK : this.tagIndex.state(v.metadata.tags, ct);
    if (tagState === TAGS_HARD) return MISSING;
    const value = v.payload as T;
    if (tagState === TAGS_SOFT || this.invalidator.isSoftInvalidated(ct)) return { state: 'stale', value };
    return { state: withinExpiry(ct, expMs, this.clock.now()) ? 'fresh' : 'stale', value };
  }

  private newValue(payload: unknown, started?: number, tags?: readonly string[]): CachedValue {
    const now = this.clock.now();
    const ct = Math.max(now, this.stampFloor);
    const metadata = started === undefined ? { ct, v: VALUE_VERSION } : { ct, v: VALUE_VERSION, d: now - started };
    return new CachedValue(payload, tags === undefined || tags.length === 0 ? metadata : { ...metadata, tags: [...tags] });
  }

  private mutexFor(backend: CacheBackend, mangled: string): CacheMutex | null {
    const mutex = backend.getMutex?.(mangled) ?? null;
    if (!mutex || !this.failOpen) return mutex;
    // Fail open: a lock service that is down must not stop creation (local single-flight remains).
    return {
      acquire: async (wait) => {
        try {
          return await mutex.acquire(wait);
        } catch (err) {
          this.report(err, 'lock', mangled);
          return true;
        }
      },
      release: async () => {
        try {
          await mutex.release();
        } catch (err) {
          this.report(err, 'lock', mangled);
        }
      },
      locked: () => mutex.locked(),
      get signal() {
        return mutex.signal;
      },
    };
  }

  private runInBackground(key: string, create: () => Promise<unknown>, release: () => Promise<void>): void {
    const releaseOnce = once(release);
    if (this.asyncCreationRunner) {
      Promise.resolve()
        .then(() => (this.asyncCreationRunner as AsyncCreationRunner)(this, key, create, { release: releaseOnce }))
        .catch((err: unknown) => {
          this.report(err, 'create', key);
          return releaseOnce();
        });
      return;
    }
    setImmediate(() => {
      create()
        .catch((err: unknown) => this.report(err, 'create', key))
        .finally(releaseOnce);
    });
  }

  private async read<R>(
    operation: BackendErrorInfo['operation'],
    key: string | undefined,
    op: () => Promise<R>,
  ): Promise<R | NoValue> {
    try {
      return await op();
    } catch (err) {
      return this.readFailed(err, operation, key);
    }
  }

  /** A failed backend call: rethrown (fail closed, or not a backend failure) or reported; a miss. */
  private readFailed(err: unknown, operation: BackendErrorInfo['operation'], key: string | undefined): NoValue {
    rethrowIfNotBackendFailure(err);
    if (!this.failOpen) throw toBackendError(err, `${operation} failed`);
    this.report(err, operation, key);
    return NO_VALUE;
  }

  private async write(operation: BackendErrorInfo['operation'], key: string | undefined, op: () => Promise<void>): Promise<void> {
    try {
      await op();
    } catch (err) {
      this.readFailed(err, operation, key);
    }
  }

  private async strict<R>(op: () => Promise<R>, what: string): Promise<R> {
    try {
      return await op();
    } catch (err) {
      rethrowIfNotBackendFailure(err);
      throw toBackendError(err, `${what} failed`);
    }
  }

  private report(err: unknown, operation: BackendErrorInfo['operation'], key: string | undefined): void {
    const error = toBackendError(err, `${operation}${key === undefined ? '' : ` ${JSON.stringify(key)}`} failed`);
    try {
      this.onError(error, { operation, key });
    } catch {}
  }
}

let warned = false;
function warnOnce(error: BackendError): void {
  if (warned) return;
  warned = true;
  process.emitWarning(
    `dogpile: a cache backend failed and the region carried on without it (${error.message}). Pass onError to a region to see every failure.`,
    'DogpileWarning',
  );
}

/** Whether a value created at `ct` is still within `expMs` at `now` (NEVER: always; 0: never fresh). */
function withinExpiry(ct: number, expMs: number, now: number): boolean {
  return expMs === NEVER || (expMs !== 0 && now - ct <= expMs);
}

/** Errors that are not a backend failure (a ValidationError, a LockTimeoutError…) pass through. */
function rethrowIfNotBackendFailure(err: unknown): void {
  if (err instanceof DogpileError && !(err instanceof BackendError)) throw err;
}

function once(fn: () => Promise<void>): () => Promise<void> {
  let result: Promise<void> | undefined;
  return () => {
    result ??= fn();
    return result;
  };
}

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

/** Converts seconds to ms, `null`/`undefined`/`-1` to NEVER; anything else invalid throws. */
function toExpirationMs(value: unknown, name: string): number {
  if (value === undefined || value === null || value === -1) return NEVER;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new ValidationError(`${name} must be a number of seconds >= 0, -1 or null (never expires), got ${describe(value)}`);
  }
  return value * 1000;
}

function tagsOf(options: SetOptions | undefined, where: string): readonly string[] | undefined {
  if (options === undefined) return undefined;
  if (options === null || typeof options !== 'object') {
    throw new ValidationError(`${where}: options must be an object, got ${describe(options)}`);
  }
  if (options.tags !== undefined) checkTags(options.tags, `${where}: tags`);
  return options.tags;
}

function checkKey(key: unknown): asserts key is string {
  if (typeof key !== 'string') throw new ValidationError(`cache keys must be strings, got ${describe(key)}`);
}

function checkKeys(keys: unknown): asserts keys is string[] {
  if (!Array.isArray(keys)) throw new ValidationError(`expected an array of keys, got ${describe(keys)}`);
  for (const key of keys) checkKey(key);
}

function checkFunction(name: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'function') {
    throw new ValidationError(`${name} must be a function, got ${describe(value)}`);
  }
}

function checkInvalidator(s: unknown): void {
  const needed = ['invalidate', 'isInvalidated', 'isHardInvalidated', 'isSoftInvalidated'] as const;
  for (const m of needed) {
    if (typeof (s as Record<string, unknown> | null)?.[m] !== 'function') {
      throw new ValidationError(`regionInvalidator must implement ${m}(), got ${describe(s)}`);
    }
  }
}

function toProxy(spec: ProxySpec): ProxyBackend {
  if (spec instanceof ProxyBackend) return spec;
  if (typeof spec === 'function' && spec.prototype instanceof ProxyBackend) return new spec();
  throw new ValidationError(`wrap: ${describe(spec)} is not a ProxyBackend class or instance`);
}

function describeBackend(backend: CacheBackend | undefined, loading: Promise<void> | undefined): string {
  if (backend) return backend.constructor?.name ?? 'backend';
  return loading ? '(loading)' : '(none)';
}
