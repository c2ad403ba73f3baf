// CacheRegion: the public front. A region is made up front, configured with a backend and an
// expiration time, and then read and written by key or through wrapped functions.

import {
  type BackendError,
  type CacheBackend,
  CachedValue,
  type Clock,
  CURRENT_CT,
  type DogpileError,
  describe,
  NO_VALUE,
  type NoValue,
  RegionAlreadyConfiguredError,
  type Serializer,
  SYNC_GET,
  type SyncReadable,
  type SyncReader,
  UNTAGGED_CT,
  VALUE_TAGS,
  VALUE_VERSION,
  ValidationError,
} from './api.js';
import type { BackendArgumentsMap, BuiltinBackendName } from './backend-arguments.js';
import { BackendGuard } from './backend-guard.js';
import type { ProxyBackend } from './backends/base.js';
import { CompactLru } from './backends/compact-lru.js';
import { type BreakerOptions, parseBackendTimeout, parseBreaker } from './breaker.js';
import { coarseClock } from './clock.js';
import { type ConfigureOptions, coerceConfig } from './config.js';
import { Creations } from './creation.js';
import type { CreatorTimeoutOptions } from './creator-timeouts.js';
import {
  type CacheMultiOnArgumentsDecorator,
  type CacheMultiOnArgumentsOptions,
  type CacheOnArgumentsDecorator,
  type CacheOnArgumentsOptions,
  makeCacheMultiOnArguments,
  makeCacheOnArguments,
  type UncheckedValue,
} from './decorators.js';
import { checkEarlyRefresh } from './early-refresh.js';
import { type RegionEventName, RegionEvents, type RegionListener, type RegionStats } from './events.js';
import type { FailSafeOptions } from './failsafe.js';
import { applyRemoteInvalidation, DefaultInvalidationStrategy, type RegionInvalidationStrategy } from './invalidation.js';
import {
  functionKeyGenerator as defaultKeyGenerator,
  functionMultiKeyGenerator as defaultMultiKeyGenerator,
  type FunctionKeyGenerator,
  type FunctionMultiKeyGenerator,
  type KeyMangler,
} from './keys.js';
import { DogpileLock, type Lookup, MISSING } from './lock.js';
import { checkConfigureOptionNames } from './options.js';
import { claimProxies, type ProxySpec, toProxy } from './proxies.js';
import { Regeneration } from './regeneration.js';
import { type GuardSettings, notReadyError, openBackend, parseConfigure, stackBackend } from './region-backend.js';
import {
  backendKeyMangler,
  badMangledKey,
  checkKey,
  checkKeys,
  checkRegionOptions,
  describeBackend,
  isPlainRecord,
  isPromise,
  NEVER,
  toExpirationMs,
  warnOnce,
  withinExpiry,
} from './region-checks.js';
import type { RegionCore } from './region-core.js';
import { getOrCreateMulti } from './region-multi.js';
import type {
  BackendErrorInfo,
  CreatorContext,
  GetOptions,
  GetOrCreateMultiOptions,
  GetOrCreateOptions,
  SetMultiOptions,
  SetOptions,
} from './region-options.js';
import { trackRegion } from './region-registry.js';
import { defaultSerializer } from './serialization.js';
import { checkTags, DEFAULT_TAG_REFRESH_SECONDS, keyTags, TAGS_HARD, TAGS_OK, TAGS_SOFT, TagIndex, tagsOf } from './tags.js';
import { checkL1Options, type L1Options, makeTier, type TieredBackend } from './tiered.js';
import { checkSeconds } from './validate.js';

export type { ConfigureOptions } from './config.js';
export type { ProxySpec } from './proxies.js';

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

/** Options of {@link makeRegion}. All optional. */
export interface RegionOptions extends CreatorTimeoutOptions {
  /** A label, used in messages and passed to backends. Default none. */
  name?: string;
  /** Builds keys for {@link CacheRegion.cacheOnArguments}. Default {@link defaultKeyGenerator}. */
  functionKeyGenerator?: FunctionKeyGenerator;
  /** Builds keys for {@link CacheRegion.cacheMultiOnArguments}. Default {@link defaultMultiKeyGenerator}. */
  functionMultiKeyGenerator?: FunctionMultiKeyGenerator;
  /** Applied to every key before it reaches the backend (and the lock), e.g. `sha1MangleKey`. Default none. */
  keyMangler?: KeyMangler;
  /**
   * Payload serializer for byte-oriented backends (redis, memcached, file). Default
   * {@link defaultSerializer}: JSON when JSON carries the value exactly, else Node's structured clone
   * (`node:v8`). The memory backend stores values by reference and does not serialize.
   */
  serializer?: Serializer;
  /** Background regeneration of stale values (see {@link AsyncCreationRunner}). Default none. */
  asyncCreationRunner?: AsyncCreationRunner;
  /**
   * Built-in background refresh: a stale value is returned at once to every caller, the lock
   * winner included, and regenerated after the current turn. Ignored when `asyncCreationRunner`
   * is set. Default false.
   */
  backgroundRefresh?: boolean;
  /**
   * Longest wait, in seconds (fractions allowed, at most 2,147,483.647), for another caller's
   * creation in this process; then LockTimeoutError (or the stale value). The timer is unref'd:
   * it never keeps the process alive by itself. Default 30.
   */
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
   * Fail-safe (default off): when a creation fails (throws, or hits `hardTimeout`) and a value
   * exists that expired at most `maxStale` seconds ago, callers get it instead of the error, and
   * the creator is not called again for that key before `retryAfter` seconds. See README.
   */
  failSafe?: FailSafeOptions;
  /**
   * Circuit breaker for the backend (default off): after `failures` consecutive failed backend
   * operations, the backend is not called for `duration` seconds (reads miss, writes are skipped,
   * no distributed lock), then one probe decides.
   */
  breaker?: BreakerOptions;
  /**
   * Upper bound, in seconds, for any backend operation (default none: the backend's own bounds,
   * such as redis `commandTimeout`, 5 s, and memcached `timeout`, 2 s). A read that takes longer
   * is a miss on a fail-open region; a write is skipped.
   */
  backendTimeout?: number | null;
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
   * Values record their creation duration only while early refresh is on (8 bytes more each in a
   * memory store); a value created without it is never refreshed early. Default 0 (off).
   */
  earlyRefresh?: number;
  /**
   * Seconds a process trusts the tag invalidation times it read from the backend before reading
   * them again (a tagged hit costs at most one extra read per interval; invalidations announced
   * on an L1 bus arrive at once). Default 1.
   */
  tagRefreshInterval?: number;
}

const DEFAULT_LOCK_WAIT_SECONDS = 30;

/** Creates a {@link CacheRegion}; configure it before use. */
export function makeRegion(options: RegionOptions = {}): CacheRegion {
  return new CacheRegion(options);
}

/** A cache region: configured once with a backend, then used by key or through wrapped functions. */
export class CacheRegion {
  /** The region's name from {@link RegionOptions.name}, or `undefined`. */
  readonly name: string | undefined;
  /** The key generator of {@link CacheRegion.cacheOnArguments} (from the options, or the default). */
  readonly functionKeyGenerator: FunctionKeyGenerator;
  /** The key generator of {@link CacheRegion.cacheMultiOnArguments}. */
  readonly functionMultiKeyGenerator: FunctionMultiKeyGenerator;
  private readonly ownKeyMangler: KeyMangler | undefined;
  /** The mangler in use: the region's own, else the backend's (`backend.keyMangler`), else none. */
  private mangler: KeyMangler | undefined;
  /** The payload serializer handed to byte-oriented backends. */
  readonly serializer: Serializer;
  /** The background regeneration runner, or `undefined` (stale values are regenerated in the caller). */
  readonly asyncCreationRunner: AsyncCreationRunner | undefined;
  /** The time source for expiry (milliseconds since the epoch). */
  readonly clock: Clock;

  private outer: CacheBackend | undefined;
  private inner: CacheBackend | undefined;
  /** The backend's synchronous reader (SYNC_GET), when it has one and no proxy wraps it. */
  private syncReader: SyncReader | undefined;
  /**
   * The synchronous reader when it is the memory store's CompactLru: the hit path then reads a bare
   * payload and its creation time in place, building no CachedValue.
   */
  private slots: CompactLru | undefined;
  private loading: Promise<void> | undefined;
  private loadError: unknown;
  private expirationMs = NEVER;
  private invalidator: RegionInvalidationStrategy;
  private stampFloor = 0;
  private readonly lock = new DogpileLock();
  private readonly events: RegionEvents;
  private readonly creations: Creations;
  /** What backend failures become (fail open or closed, reports). */
  private readonly guard: BackendGuard;
  /** The breaker and backend timeout put around each backend installed. */
  private readonly guardSettings: GuardSettings;
  /** The parts shared with the regeneration and multi-key paths. */
  private readonly core: RegionCore;
  private readonly regeneration: Regeneration;
  /** L1 + bus in front of the backend, when `l1` is configured (it is then `outer`). */
  private tier: TieredBackend | undefined;
  private readonly regionL1: L1Options | undefined;
  private pendingL1: L1Options | undefined;
  private readonly tagIndex: TagIndex;

  constructor(options: RegionOptions = {}) {
    checkRegionOptions(options);
    const wait = checkSeconds('makeRegion', 'lockWaitTimeout', options.lockWaitTimeout, DEFAULT_LOCK_WAIT_SECONDS);
    this.name = options.name;
    this.functionKeyGenerator = options.functionKeyGenerator ?? defaultKeyGenerator;
    this.functionMultiKeyGenerator = options.functionMultiKeyGenerator ?? defaultMultiKeyGenerator;
    this.ownKeyMangler = this.mangler = options.keyMangler;
    this.serializer = options.serializer ?? defaultSerializer;
    this.asyncCreationRunner = options.asyncCreationRunner;
    this.clock = options.clock ?? coarseClock;
    this.invalidator = new DefaultInvalidationStrategy(this.clock);
    const policy = Creations.parse(options);
    const breaker = parseBreaker(options.breaker);
    const backendTimeoutMs = parseBackendTimeout(options.backendTimeout);
    if (options.l1 !== undefined) checkL1Options(options.l1);
    this.regionL1 = options.l1;
    checkEarlyRefresh(options.earlyRefresh);
    const earlyBeta = options.earlyRefresh ?? 0;
    const tagRefresh = checkSeconds('makeRegion', 'tagRefreshInterval', options.tagRefreshInterval, DEFAULT_TAG_REFRESH_SECONDS, {
      allowZero: true,
    });
    this.tagIndex = new TagIndex(
      this.clock,
      tagRefresh * 1000,
      (tag) => this.mangle(`dogpile:tag:${tag}`),
      (err) => this.guard.readFailed(err, 'get', undefined),
    );
    const events = new RegionEvents(this.name);
    this.events = events;
    if (earlyBeta !== 0) events.hookHits();
    this.creations = new Creations(
      {
        name: this.name,
        clock: this.clock,
        stamp: (payload, started, fs, tags) => this.newValue(payload, started, fs, tags),
        write: (key, op) => this.guard.write('set', key, op),
        owner: this,
      },
      events,
      policy,
    );
    this.guard = new BackendGuard(options.failOpen ?? true, options.onError ?? warnOnce, events, this.creations);
    this.guardSettings = {
      breaker,
      timeoutMs: backendTimeoutMs,
      onState: (state) => this.guard.breakerMoved(state),
      label: `region ${this.label()}`,
      maxWaitMs: wait * 1000 + (backendTimeoutMs ?? 0),
    };
    this.core = {
      clock: this.clock,
      events,
      creations: this.creations,
      guard: this.guard,
      tagIndex: this.tagIndex,
      lock: this.lock,
      waitTimeoutMs: wait * 1000,
      backendForRead: async () => {
        const backend = await this.requireBackend();
        await this.invalidator.sync?.();
        return backend;
      },
      expirationFor: (expirationTime) => this.expirationFor(expirationTime),
      mangle: (key) => this.mangle(key),
      lookup: <T>(v: CachedValue | NoValue, expMs: number) => this.lookup<T>(v, expMs),
      isFresh: (v: CachedValue | NoValue, expMs: number) => v !== NO_VALUE && this.isFresh(v, expMs),
      timesCreations: earlyBeta !== 0,
      newValue: (payload, started, fs, tags) => this.newValue(payload, started, fs, tags),
    };
    const runner = options.asyncCreationRunner;
    this.regeneration = new Regeneration(
      this.core,
      runner && ((key, create, mutex) => runner(this, key, create, mutex)),
      runner !== undefined || options.backgroundRefresh === true,
      earlyBeta,
    );
    trackRegion(this);
  }

  // -------------------------------------------------------------------------------------------
  // Events and stats

  /** Adds a listener for a region event (see README, "Events"). Returns the region. */
  on<E extends RegionEventName>(event: E, listener: RegionListener<E>): this {
    this.events.on(event, listener);
    return this;
  }

  /** Removes a listener added with {@link on}. Returns the region. */
  off<E extends RegionEventName>(event: E, listener: RegionListener<E>): this {
    this.events.off(event, listener);
    return this;
  }

  /** Number of listeners for `event`. */
  listenerCount(event: RegionEventName): number {
    return this.events.listenerCount(event);
  }

  /** Counters since the region was made, for health endpoints. */
  stats(): RegionStats {
    return this.events.snapshot();
  }

  // -------------------------------------------------------------------------------------------
  // Configuration

  /**
   * Gives the region its backend: a registered name (`'memory'`, `'null'`, `'redis'`, …), a module
   * specifier to import, or a backend instance. Returns the region, so it chains off `makeRegion()`.
   * Backends that load asynchronously are awaited by the first operation (or {@link ready}).
   */
  configure<N extends BuiltinBackendName>(backend: N, options?: ConfigureOptions<BackendArgumentsMap[N]>): this;
  configure<S extends string>(backend: S extends BuiltinBackendName ? never : S, options?: ConfigureOptions): this;
  configure(backend: CacheBackend, options?: ConfigureOptions): this;
  configure(backend: string | CacheBackend, options: ConfigureOptions<object> = {}): this {
    if (options === null || typeof options !== 'object') {
      throw new ValidationError(`configure: options must be an object, got ${describe(options)}`);
    }
    checkConfigureOptionNames(options);
    if ((this.outer || this.loading) && !options.replaceExistingBackend) {
      throw new RegionAlreadyConfiguredError(
        `region ${this.label()} is already configured with backend ${describeBackend(this.inner, this.loading)}; pass replaceExistingBackend: true to replace it`,
      );
    }
    const { expirationMs, args, proxies, invalidator, l1 } = parseConfigure(backend, options, this, this.clock, this.regionL1);
    const made = openBackend(backend, args, {
      serializer: this.serializer,
      regionName: this.name,
      expirationTime: expirationMs === NEVER ? null : expirationMs / 1000,
      ...(this.creations.policy.failSafe && expirationMs !== NEVER
        ? { minimumTtl: (expirationMs + this.creations.policy.failSafe.maxStaleMs) / 1000 }
        : {}),
    });

    claimProxies(proxies, this); // now, not once loaded: a second region must not take them meanwhile
    this.expirationMs = expirationMs;
    this.invalidator = invalidator;
    this.pendingL1 = l1;
    this.outer = this.inner = this.syncReader = this.slots = this.tier = undefined;
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
    const p = toProxy(proxy, this);
    const current = this.backend;
    if (p === current) throw new ValidationError("wrap: this proxy already wraps this region's backend");
    claimProxies([p], this);
    p.wrap(current);
    this.outer = p;
    this.syncReader = this.slots = undefined;
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
  get<T = unknown>(key: string, options?: GetOptions): Promise<T | NoValue> {
    // Not `async`, as getOrCreate: the memory backend's hit path is one synchronous read.
    const sync = this.syncReader;
    if (sync === undefined || typeof key !== 'string' || this.invalidator.sync !== undefined) {
      return this.getAsync(key, options);
    }
    // With an L1 bounded by creation time, a read judged by other terms must check that bound.
    if (options !== undefined && this.tier?.creationBoundMs !== undefined) return this.getAsync(key, options);
    try {
      const mangled = this.mangler === undefined ? key : this.mangle(key);
      const events = this.events;
      const slots = this.slots;
      let hit: CachedValue | undefined;
      if (slots !== undefined && options === undefined) {
        // The memory store's CompactLru: a bare payload is judged by its time, read in place.
        const slot = slots.find(mangled);
        const ct = slot < 0 ? Number.NaN : (slots.times[slot] as number);
        if (!Number.isNaN(ct) && this.isFreshTime(ct, this.expirationMs)) {
          events.hits++;
          if (events.hearsHit) events.emit('hit', { region: this.name, key });
          return Promise.resolve(slots.items[slot] as T);
        }
        hit = slot < 0 ? undefined : slots.valueAt(slot);
      } else {
        hit = sync.get(mangled);
      }
      const expMs = options?.expirationTime === undefined ? this.expirationMs : this.expirationFor(options.expirationTime);
      if (hit === undefined || !(options?.ignoreExpiration || this.isFresh(hit, expMs))) {
        // An L1 miss still reads L2; a tagged value may need its tag times first.
        if (this.tier !== undefined || hit?.[VALUE_TAGS] !== undefined) return this.getAsync(key, options);
        events.misses++;
        if (events.heard.miss) events.emit('miss', { region: this.name, key });
        return Promise.resolve(NO_VALUE);
      }
      events.hits++;
      if (events.hearsHit) events.emit('hit', { region: this.name, key });
      return Promise.resolve(hit.payload as T);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private async getAsync<T>(key: string, options: GetOptions | undefined): Promise<T | NoValue> {
    return this.counted<T>(key, await this.readUsable(key, options));
  }

  /** What `get` returns for a usable-or-not read, counted and reported as a hit or a miss. */
  private counted<T>(key: string, found: CachedValue | NoValue): T | NoValue {
    const events = this.events;
    if (found === NO_VALUE) {
      events.misses++;
      if (events.heard.miss) events.emit('miss', { region: this.name, key });
      return NO_VALUE;
    }
    events.hit(key);
    return found.payload as T;
  }

  /** Values for `keys`, aligned with them, {@link NO_VALUE} where there is none. */
  async getMulti<T = unknown>(keys: readonly string[], options?: GetOptions): Promise<(T | NoValue)[]> {
    checkKeys(keys);
    if (keys.length === 0) return [];
    const backend = await this.requireBackend();
    await this.invalidator.sync?.();
    const expMs = this.expirationFor(options?.expirationTime);
    const sync = this.tier === undefined ? this.syncReader : undefined; // an L1 must fall back to L2
    const found =
      sync !== undefined
        ? keys.map((k) => sync.get(this.mangle(k)) ?? NO_VALUE)
        : await this.guard.read('getMulti', undefined, () => backend.getMulti(keys.map((k) => this.mangle(k))));
    await this.tagIndex.settleMulti(found);
    return keys.map((key, i) =>
      this.counted<T>(key, this.usable(found === NO_VALUE ? NO_VALUE : (found[i] ?? NO_VALUE), expMs, options)),
    );
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
    const found = await this.guard.read('get', key, () => backend.get(this.mangle(key)));
    await this.tagIndex.settle(found);
    return this.usable(found, expMs, options);
  }

  private usable(v: CachedValue | NoValue, expMs: number, options: GetOptions | undefined): CachedValue | NoValue {
    return v !== NO_VALUE && (options?.ignoreExpiration || this.isFresh(v, expMs)) ? v : NO_VALUE;
  }

  /**
   * The dogpile path: a fresh value is returned after one backend read; otherwise exactly one
   * caller runs `creator` while the others get the stale value (or wait for the new one).
   */
  getOrCreate<T>(key: string, creator: (context: CreatorContext) => T | Promise<T>, options?: GetOrCreateOptions<T>): Promise<T> {
    // Not `async`: an async function allocates and fills a frame for all its locals on every call,
    // hits included, which cost a fifth of a memory hit. Everything below must reject, not throw.
    const sync = this.syncReader;
    if (sync === undefined || typeof key !== 'string' || this.invalidator.sync !== undefined) {
      return this.getOrCreateAsync(key, creator, options);
    }
    try {
      const mangled = this.mangler === undefined ? key : this.mangle(key);
      if (options !== undefined) this.creations.policyFor(options); // a call's bad option fails on hits too
      // The value's creation time (NaN: nothing this path can serve) and, unless it is a bare
      // payload in the memory store's CompactLru (read in place, `slot`), its CachedValue.
      const slots = this.slots;
      let hit: CachedValue | undefined;
      let ct: number;
      let slot = -1;
      if (slots !== undefined && options?.expirationTime === undefined) {
        slot = slots.find(mangled);
        ct = slot < 0 ? Number.NaN : (slots.times[slot] as number);
        hit = slot < 0 || !Number.isNaN(ct) ? undefined : (slots.items[slot] as CachedValue);
      } else {
        hit = sync.get(mangled);
        ct = Number.NaN;
      }
      // A tagged value reads as NaN (UNTAGGED_CT) and is judged by afterRead, which knows its tags.
      if (hit !== undefined) ct = hit[UNTAGGED_CT];
      let expMs = this.expirationMs;
      if (options?.expirationTime !== undefined) {
        // A longer expiration than the region's would outlive an L1 bounded by creation time.
        if (this.tier?.creationBoundMs !== undefined) return this.getOrCreateAsync(key, creator, options);
        expMs = this.expirationFor(options.expirationTime);
      }
      // isFresh is written out here: when a process starts with misses, V8 spends its inlining
      // budget on the miss path and would leave isFresh a call (and its time a boxed number) on
      // every hit.
      if (
        !Number.isNaN(ct) &&
        !this.invalidator.isInvalidated(ct) &&
        (expMs === NEVER || (expMs !== 0 && this.clock.now() - ct <= expMs))
      ) {
        const events = this.events;
        events.hits++;
        // hearsHit is also set when the region refreshes early (events.hookHits); a call can ask for it too.
        if (events.hearsHit || options?.earlyRefresh !== undefined) {
          this.hitHooks(key, mangled, hit ?? (slots as CompactLru).valueAt(slot), expMs, creator, options);
        }
        return Promise.resolve((hit === undefined ? (slots as CompactLru).items[slot] : hit.payload) as T);
      }
      if (hit === undefined && slot >= 0) hit = (slots as CompactLru).valueAt(slot); // bare, not fresh
      // An L1 miss still reads L2; a tagged value may need its tag times loaded.
      if (this.tier !== undefined || hit?.[VALUE_TAGS] !== undefined) {
        return this.afterRead(this.outer as CacheBackend, key, mangled, hit ?? NO_VALUE, expMs, creator, options, true);
      }
      return this.regeneration.regenerate(this.outer as CacheBackend, key, mangled, hit ?? NO_VALUE, expMs, creator, options);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** getOrCreate on a backend read asynchronously (or not loaded yet, or with shared invalidation). */
  private async getOrCreateAsync<T>(
    key: string,
    creator: (context: CreatorContext) => T | Promise<T>,
    options?: GetOrCreateOptions<T>,
  ): Promise<T> {
    const backend = this.outer;
    if (backend === undefined || typeof key !== 'string' || this.invalidator.sync !== undefined) {
      return this.getOrCreateSlow(key, creator, options);
    }
    const mangled = this.mangler === undefined ? key : this.mangle(key);
    const expMs = options?.expirationTime === undefined ? this.expirationMs : this.expirationFor(options.expirationTime);
    if (options !== undefined) this.creations.policyFor(options);
    let found: CachedValue | NoValue;
    // Inlined `read` (no closure, one async frame fewer): this is the hit path of every backend.
    try {
      found = await backend.get(mangled);
    } catch (err) {
      found = this.guard.getFailed(err, key, mangled);
    }
    if (found !== NO_VALUE && this.isFresh(found, expMs)) return this.freshHit(key, mangled, found, expMs, creator, options);
    return this.afterRead(backend, key, mangled, found, expMs, creator, options, false);
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
    if (options !== undefined) this.creations.policyFor(options);
    let found: CachedValue | NoValue;
    try {
      found = await backend.get(mangled);
    } catch (err) {
      found = this.guard.getFailed(err, key, mangled);
    }
    return this.afterRead(backend, key, mangled, found, expMs, creator, options, false);
  }

  /**
   * The rest of getOrCreate after a first read that was not a fresh hit: an L1-only read that
   * missed (`peeked`) reads L2; a tagged value gets its tag times; then a hit, or regeneration.
   */
  private async afterRead<T>(
    backend: CacheBackend,
    key: string,
    mangled: string,
    first: CachedValue | NoValue,
    expMs: number,
    creator: (context: CreatorContext) => T | Promise<T>,
    options: GetOrCreateOptions<T> | undefined,
    peeked: boolean,
  ): Promise<T> {
    let found = first;
    // A stale L1 copy past L1's bound is not the value to serve while regenerating: read L2.
    if (peeked && (found === NO_VALUE || this.tier?.outlived(found))) {
      try {
        found = await backend.get(mangled);
      } catch (err) {
        found = this.guard.getFailed(err, key, mangled);
      }
    }
    await this.tagIndex.settle(found);
    if (found !== NO_VALUE && this.isFresh(found, expMs)) return this.freshHit(key, mangled, found, expMs, creator, options);
    return this.regeneration.regenerate(backend, key, mangled, found, expMs, creator, options);
  }

  /** A fresh hit off the memory fast path: counted, kept for fail-safe, maybe refreshed early. */
  private freshHit<T>(
    key: string,
    mangled: string,
    found: CachedValue,
    expMs: number,
    creator: (context: CreatorContext) => T | Promise<T>,
    options: GetOrCreateOptions<T> | undefined,
  ): T {
    this.events.hits++;
    // Fail-safe keeps a copy of what a remote backend returned, to serve if that backend goes down.
    this.creations.memory?.remember(mangled, found);
    this.hitHooks(key, mangled, found, expMs, creator, options);
    return found.payload as T;
  }

  /** What a fresh hit does besides returning: the `hit` event, and early refresh. */
  private hitHooks<T>(
    key: string,
    mangled: string,
    found: CachedValue,
    expMs: number,
    creator: (context: CreatorContext) => T | Promise<T>,
    options: GetOrCreateOptions<T> | undefined,
  ): void {
    const events = this.events;
    if (events.heard.hit) events.emit('hit', { region: this.name, key, attributes: options?.attributes });
    if (this.regeneration.earlyBeta !== 0 || options?.earlyRefresh !== undefined) {
      this.regeneration.refreshEarly(this.outer as CacheBackend, key, mangled, found, expMs, creator, options);
    }
  }

  /**
   * Multi-key dogpile: one backend read for all keys; `creator(...keysToCreate)` is called once
   * with the keys that need a value (missing or stale), in the order `keys` lists them (each key
   * once), and must return their values in that order. Concurrent callers
   * share creations key by key, so each missing key is created once.
   */
  getOrCreateMulti<T>(
    keys: readonly string[],
    creator: (...keys: string[]) => readonly T[] | Promise<readonly T[]>,
    options?: GetOrCreateMultiOptions<T>,
  ): Promise<T[]> {
    return getOrCreateMulti(this.core, keys, creator, options);
  }

  /** Stores `value` under `key` with fresh metadata (and `options.tags`, if given). */
  async set(key: string, value: unknown, options?: SetOptions): Promise<void> {
    checkKey(key);
    const tags = tagsOf(options, 'set');
    const backend = await this.requireBackend();
    const stored = this.newValue(value, undefined, undefined, tags);
    const mangled = this.mangle(key);
    this.creations.memory?.remember(mangled, stored);
    await this.guard.write('set', key, () => backend.set(mangled, stored));
  }

  /** Stores several values (a record or a Map), all with the same creation time (and tags: see {@link KeyTags}). */
  async setMulti(
    entries: Readonly<Record<string, unknown>> | ReadonlyMap<string, unknown>,
    options?: SetMultiOptions,
  ): Promise<void> {
    if (!(entries instanceof Map) && !isPlainRecord(entries)) {
      throw new ValidationError(`setMulti: entries must be a plain object or a Map of key to value, got ${describe(entries)}`);
    }
    const pairs = entries instanceof Map ? [...entries] : Object.entries(entries);
    checkKeys(pairs.map(([k]) => k));
    if (options !== undefined && (options === null || typeof options !== 'object')) {
      throw new ValidationError(`setMulti: options must be an object, got ${describe(options)}`);
    }
    const tagsFor = keyTags(options?.tags, 'setMulti');
    if (pairs.length === 0) return;
    const backend = await this.requireBackend();
    const map = new Map<string, CachedValue>();
    for (const [k, v] of pairs) map.set(this.mangle(k), this.newValue(v, undefined, undefined, tagsFor?.(k)));
    await this.guard.write('setMulti', undefined, () => backend.setMulti(map));
  }

  /** Removes `key`. Idempotent. Rejects with {@link BackendError} if the backend fails. */
  async delete(key: string): Promise<void> {
    checkKey(key);
    const backend = await this.requireBackend();
    const mangled = this.mangle(key);
    this.creations.memory?.forget(mangled);
    await this.guard.strict(() => backend.delete(mangled), `delete ${JSON.stringify(key)}`);
  }

  /** Removes several keys. Idempotent. */
  async deleteMulti(keys: readonly string[]): Promise<void> {
    checkKeys(keys);
    if (keys.length === 0) return;
    const backend = await this.requireBackend();
    const mangled = keys.map((k) => this.mangle(k));
    for (const m of mangled) this.creations.memory?.forget(m);
    await this.guard.strict(() => backend.deleteMulti(mangled), `deleteMulti of ${keys.length} keys`);
  }

  /**
   * Invalidates every value created before now. Hard (default): they read as missing, and callers
   * wait for one regeneration. Soft: they read as expired, and one caller regenerates while the
   * others get the old value. Nothing is deleted from the backend. Rejects with a ValidationError
   * for options that are not an object (`invalidate(false)`: write `invalidate({ hard: false })`).
   */
  async invalidate(options: { hard?: boolean } = {}): Promise<void> {
    // dogpile.cache's `invalidate(hard=False)` reads naturally as `invalidate(false)`, which would
    // otherwise be a hard invalidation: say so instead.
    if (options === null || typeof options !== 'object') {
      throw new ValidationError(`invalidate: options must be an object such as { hard: false }, got ${describe(options)}`);
    }
    if (options.hard !== undefined && typeof options.hard !== 'boolean') {
      throw new ValidationError(`invalidate: hard must be true or false, got ${describe(options.hard)}`);
    }
    this.requireConfigured();
    const hard = options.hard ?? true;
    // Not before the creation time of a value stamped in this millisecond (stampFloor), so a second
    // invalidation within one millisecond still covers a value written between the two.
    const at = Math.max(this.clock.now(), this.stampFloor);
    await this.guard.strict(async () => this.invalidator.invalidate(hard, at), 'invalidate');
    // Values created from now on must read as newer than the invalidation, even within its millisecond.
    this.stampFloor = Math.max(this.clock.now(), at) + 1;
    // With an L1, the other processes apply it too and drop their L1 copies.
    const tier = this.tier;
    if (tier !== undefined) await this.guard.strict(() => tier.announce({ kind: 'invalidate', at, hard }), 'invalidate (bus)');
    if (this.events.heard.invalidate) this.events.emit('invalidate', { region: this.name, hard });
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
    const at = Math.max(this.clock.now(), this.stampFloor); // see invalidate()
    await this.guard.strict(() => this.tagIndex.invalidate(tags, hard, at), 'invalidateTags');
    this.stampFloor = Math.max(this.stampFloor, at + 1);
    const tier = this.tier;
    if (tier !== undefined) {
      await this.guard.strict(() => tier.announce({ kind: 'tags', tags: [...tags], at, hard }), 'invalidateTags (bus)');
    }
    if (this.events.heard.invalidate) this.events.emit('invalidate', { region: this.name, hard, tags: [...tags] });
  }

  /** Whether a creator currently holds the lock of `key` (honours the key mangler). */
  async keyIsLocked(key: string): Promise<boolean> {
    checkKey(key);
    const backend = await this.requireBackend();
    const mangled = this.mangle(key);
    if (this.lock.isFlying(mangled)) return true;
    const mutex = backend.getMutex?.(mangled);
    return mutex ? await this.guard.strict(() => mutex.locked(), `keyIsLocked ${JSON.stringify(key)}`) : false;
  }

  // -------------------------------------------------------------------------------------------
  // Function wrappers

  /**
   * Wraps a function so that its results are cached by its arguments. The wrapper has the
   * function's parameter types and returns `Promise<Awaited<R>>`, plus `invalidate`, `set`,
   * `get`, `refresh`, `key` and `original`. Also usable as a standard method decorator.
   */
  cacheOnArguments<V = UncheckedValue>(options: CacheOnArgumentsOptions<V> = {}): CacheOnArgumentsDecorator<V> {
    return makeCacheOnArguments(this, options as CacheOnArgumentsOptions) as CacheOnArgumentsDecorator<V>;
  }

  /**
   * Wraps a function that takes keys as its arguments and returns one value per key (or, with
   * `asDict`, an object by key). Calls it once with only the keys not cached.
   */
  cacheMultiOnArguments<D extends boolean = false, V = UncheckedValue>(
    options: CacheMultiOnArgumentsOptions<V> & { asDict?: D } = {},
  ): CacheMultiOnArgumentsDecorator<D, V> {
    return makeCacheMultiOnArguments<D>(this, options as CacheMultiOnArgumentsOptions) as CacheMultiOnArgumentsDecorator<D, V>;
  }

  // -------------------------------------------------------------------------------------------
  // Internals

  private install(backend: CacheBackend, proxies: ProxyBackend[]): void {
    const outer = stackBackend(backend, proxies, this.guardSettings);
    this.inner = backend;
    this.outer = outer;
    this.mangler = this.ownKeyMangler ?? backendKeyMangler(backend);
    this.invalidator.bind?.(outer, this.clock);
    this.tagIndex.bind(outer); // tag times live in L2, behind the breaker guard
    // Proxies have no synchronous read; the breaker guard passes the memory backend's through.
    const reader = (outer as Partial<SyncReadable>)[SYNC_GET];
    this.syncReader = typeof reader?.get === 'function' ? reader : undefined;
    this.slots = this.syncReader instanceof CompactLru ? this.syncReader : undefined;
    const memory = this.creations.memory;
    if (memory !== undefined) memory.keepCopies = this.syncReader === undefined || this.pendingL1 !== undefined;
    if (this.pendingL1 !== undefined) this.installTier(this.pendingL1, outer, backend);
  }

  /**
   * Puts L1 in front of `outer` (proxies and breaker guard included, so an open circuit still
   * serves L1 hits); a fresh hit then reads L1 exactly as a memory region reads its store.
   */
  private installTier(l1: L1Options, outer: CacheBackend, actual: CacheBackend): void {
    const tier = makeTier(outer, actual, l1, this.expirationTime, this.name, this.clock);
    tier.remote = {
      invalidate: (at, hard) => applyRemoteInvalidation(this.invalidator, at, hard),
      tags: (tags, at, hard) => this.tagIndex.received(tags, hard, at),
    };
    this.tier = tier;
    this.outer = tier;
    this.syncReader = tier.l1[SYNC_GET];
    this.slots = this.syncReader instanceof CompactLru ? this.syncReader : undefined;
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
    return notReadyError(this.label(), this.loadError, this.loading !== undefined);
  }

  private label(): string {
    return this.name === undefined ? '(unnamed)' : JSON.stringify(this.name);
  }

  /**
   * The key mangler in use: the region's own `keyMangler`, else the one its backend supplies
   * (`backend.keyMangler`, read when the backend is installed), else none.
   */
  get keyMangler(): KeyMangler | undefined {
    return this.mangler;
  }

  /** Applies the key mangler; a result that is not a string is a ValidationError naming the key. */
  mangle(key: string): string {
    const mangler = this.mangler;
    if (mangler === undefined) return key;
    const mangled = mangler(key);
    if (typeof mangled !== 'string') throw badMangledKey(key, mangled);
    return mangled;
  }

  private expirationFor(expirationTime: number | null | undefined): number {
    return expirationTime === undefined || expirationTime === null
      ? this.expirationMs
      : toExpirationMs(expirationTime, 'expirationTime');
  }

  /** Whether a value created at `ct` (untagged, of this envelope version) is fresh by `expMs`. */
  private isFreshTime(ct: number, expMs: number): boolean {
    return !this.invalidator.isInvalidated(ct) && withinExpiry(ct, expMs, this.clock);
  }

  private isFresh(v: CachedValue, expMs: number): boolean {
    const ct = v[CURRENT_CT]; // NaN for another envelope version
    if (Number.isNaN(ct) || !this.isFreshTime(ct, expMs)) return false;
    const tags = v[VALUE_TAGS]; // unknown tag times read as not fresh: the caller settles them first
    return tags === undefined || this.tagIndex.state(tags, ct) === TAGS_OK;
  }

  private lookup<T>(v: CachedValue | NoValue, expMs: number): Lookup<T> {
    if (v === NO_VALUE) return MISSING;
    const ct = v[CURRENT_CT];
    if (Number.isNaN(ct) || this.invalidator.isHardInvalidated(ct)) return MISSING;
    const tagState = this.tagIndex.judge(v);
    if (tagState === TAGS_HARD) return MISSING;
    const value = v.payload as T;
    if (tagState === TAGS_SOFT || this.invalidator.isSoftInvalidated(ct)) return { state: 'stale', value };
    return { state: withinExpiry(ct, expMs, this.clock) ? 'fresh' : 'stale', value };
  }

  private newValue(payload: unknown, started?: number, fs?: number, tags?: readonly string[]): CachedValue {
    const now = this.clock.now();
    const ct = Math.max(now, this.stampFloor);
    if (tags !== undefined && tags.length > 0) {
      const d = started === undefined ? undefined : now - started;
      return new CachedValue(payload, {
        ct,
        v: VALUE_VERSION,
        ...(d === undefined ? {} : { d }),
        ...(fs === undefined ? {} : { fs }),
        tags: [...tags],
      });
    }
    if (started === undefined) {
      return new CachedValue(payload, fs === undefined ? { ct, v: VALUE_VERSION } : { ct, v: VALUE_VERSION, fs });
    }
    if (fs === undefined) return new CachedValue(payload, { ct, v: VALUE_VERSION, d: now - started });
    return new CachedValue(payload, { ct, v: VALUE_VERSION, d: now - started, fs });
  }
}
