// The memory backend: values live in this process, in an LRU cache (lru-cache) with a bound.
// By default values are stored by reference, as in dogpile.cache: mutating a returned object
// mutates the cache. `clone: true` stores and returns structured clones instead (memory_pickle).
//
// A `compact` store is bound to the expiration of the region it serves (BIND_EXPIRY). A value that
// is only a payload and a creation time is then kept bare: the payload itself is the entry, and the
// creation time is lru-cache's per-entry start, with the region's expiration as the entry's ttl.
// The CachedValue object around it (40 bytes) is not kept, and lru-cache's get, which checks the
// ttl, tells the region's hit path whether the value is fresh; that check is a call on every read,
// which makes a hit about 13% slower, hence opt-in. Values with more metadata (a duration, a
// deadline, tags) are kept as CachedValue objects, as in any store.

import { LRUCache } from 'lru-cache';
import {
  BARE_CT,
  CachedValue,
  type Clock,
  describe,
  NO_VALUE,
  type NoValue,
  SYNC_GET,
  type SyncReadable,
  type SyncReader,
  VALUE_VERSION,
  ValidationError,
} from '../api.js';
import { BaseBackend } from './base.js';

/** What a memory store's lru-cache holds: a CachedValue, or a bare payload (see BIND_EXPIRY). */
export type StoredEntry = NonNullable<unknown>;

/** Default `max` when neither `max` nor `maxSize` is given: an unbounded cache is a memory leak. */
export const DEFAULT_MEMORY_MAX = 10_000;

/** Arguments of the `memory` backend. Unknown names are rejected with a ValidationError. */
export interface MemoryBackendArguments {
  /** Most entries kept; the least recently used go first. Default 10,000 (when `maxSize` is absent). */
  max?: number;
  /** Most total size kept, in the units of `sizeCalculation` (default: approximate bytes). Default none. */
  maxSize?: number;
  /**
   * Size of one entry for `maxSize` (needs `maxSize`); a positive number, fractions rounded up.
   * Default: an estimate of the payload's bytes.
   */
  sizeCalculation?: (value: CachedValue, key: string) => number;
  /**
   * Physical time-to-live in seconds (fractions allowed, kept to the millisecond, rounded up):
   * entries are dropped this long after being set. Default none. Make it longer than the region's
   * `expirationTime`, or expired values vanish before they can be served while one caller
   * regenerates them.
   */
  ttl?: number;
  /**
   * Store and return structured clones (`structuredClone`) instead of references, so that a caller
   * mutating a value it got (or one it stored) cannot change the cached copy; the analogue of
   * dogpile.cache's `memory_pickle`. Values must be structured-cloneable (no functions, class
   * instances come back as plain objects). Costs one clone per write and one per read. Default false.
   */
  clone?: boolean;
  /**
   * An existing `LRUCache` to store into (the analogue of dogpile.cache's `cache_dict`), for example
   * one shared with code that inspects or clears it. Configure its bounds on it (`max`, `maxSize`,
   * `ttl`, ...), so `max`, `maxSize`, `sizeCalculation` and `ttl` may not be given with it. dogpile
   * stores `CachedValue` objects in it: nothing else may write to it. Its own `ttl`, if any, is a
   * physical TTL as above; `allowStale`, `updateAgeOnGet` and `dispose` work as lru-cache documents.
   */
  cache?: LRUCache<string, CachedValue>;
  /**
   * Keep a value that is only a payload and a creation time (no tags, fail-safe deadline or
   * early-refresh duration) without its 40-byte `CachedValue` object: the payload is the lru-cache
   * entry, its creation time the entry's lru-cache `start` and the region's expiration its `ttl`
   * (lru-cache then keeps two 8-byte numbers per slot of `max`, allocated up front). About 40 bytes
   * less per entry (100,000 ~200-byte records: 1.06x raw lru-cache's memory instead of 1.10x), and
   * a fresh hit about 13% slower, since lru-cache checks the ttl with a call on every read. The
   * store takes effect once a region is configured with it while it is empty; values then read
   * back as CachedValues everywhere but in {@link MemoryBackend.cache}. No effect in a region with
   * `failSafe`, `earlyRefresh` or its own `regionInvalidator` (their values carry more). Not with
   * `cache`, `clone` or `ttl`. Default false.
   */
  compact?: boolean;
}

const ARGUMENT_NAMES: readonly string[] = ['max', 'maxSize', 'sizeCalculation', 'ttl', 'clone', 'cache', 'compact'];

/**
 * Internal: `backend[BIND_EXPIRY](expirationMs, clock)` binds a `compact` memory store (or a tier's
 * compact L1) to the expiration of the region it serves; `expirationMs` -1 = never. It returns the
 * {@link BoundStore} the region reads through, or undefined when the store cannot be bound: it is
 * not compact, already holds values, or is bound already. Not public.
 */
export const BIND_EXPIRY: unique symbol = Symbol('dogpile.bindExpiry') as typeof BIND_EXPIRY;

/** Internal: what {@link BoundStore.fresh} returns for anything but a fresh bare value. */
export const NOT_A_BARE_HIT: unique symbol = Symbol('dogpile.notABareHit') as typeof NOT_A_BARE_HIT;

/**
 * Internal: what a region reads of a store bound to its expiration. The store's own SYNC_GET reader
 * and `get` then return CachedValues (a bare value rebuilt with its creation time); `fresh` is the
 * region's hit path, which builds nothing.
 */
export interface BoundStore {
  /**
   * The payload under `key` when it is a bare value, fresh by the region's expiration and created
   * after `invalidatedAt` (ms); else NOT_A_BARE_HIT (a miss, a CachedValue, or a bare value that is
   * stale or may be invalidated).
   */
  fresh(key: string, invalidatedAt: number): unknown;
  /**
   * The CachedValue that the last call of `fresh` found (it returned NOT_A_BARE_HIT for it), or
   * undefined: read right after that call, it saves the region a second lookup.
   */
  readonly envelope: CachedValue | undefined;
}

/**
 * Bare entries' times are kept as offsets from this origin (a day before this module loaded): an
 * offset within ±2^30 ms (about 12 days) is a small integer, which lru-cache's start array, the
 * clock's readings and their comparisons handle without boxing a heap number on every hit.
 */
const BARE_ORIGIN = Math.floor(Date.now()) - 86_400_000;

/**
 * lru-cache's clock for a compact store, remembering its last reading; once bound, also the
 * {@link BoundStore} the region reads through (plain fields: the hit path reads `lastNow`).
 */
class StoreClock implements BoundStore {
  lastNow = 0;
  /** The ttl of bare entries once bound (ms). */
  ttl = 0;
  /** The store's lru-cache, once bound. */
  cache: LRUCache<string, StoredEntry> | undefined;
  envelope: CachedValue | undefined = undefined;
  constructor(public source: Clock) {}
  /** The region's time, as an offset from BARE_ORIGIN (lru-cache's clock). */
  now(): number {
    const t = this.source.now() - BARE_ORIGIN;
    this.lastNow = t;
    return t;
  }
  fresh(key: string, invalidatedAt: number): unknown {
    const found = (this.cache as LRUCache<string, StoredEntry>).get(key);
    if (found instanceof CachedValue) {
      this.envelope = found;
      return NOT_A_BARE_HIT;
    }
    this.envelope = undefined;
    // lru-cache's get returns a bare value only while its ttl (the region's expiration) has not run
    // out at lastNow, so it was created at lastNow − ttl or later: after invalidatedAt, if that is.
    return found !== undefined && this.lastNow - this.ttl > invalidatedAt - BARE_ORIGIN ? found : NOT_A_BARE_HIT;
  }
}

/** The ttl of bare entries in a store bound to a region that never expires (a bound lru-cache accepts). */
const NEVER_TTL = 2 ** 52;

/** In-process LRU storage. Registered as `memory`. */
export class MemoryBackend extends BaseBackend implements SyncReadable {
  /**
   * The underlying lru-cache, for inspection (the `cache` argument when one was given). Its values
   * are {@link CachedValue}s, except in a `compact` store: there a value that is only a payload and
   * a creation time is the payload itself, with the creation time as the entry's lru-cache start
   * and the region's expiration as its ttl. {@link MemoryBackend.get} returns every value as a
   * CachedValue.
   */
  readonly cache: LRUCache<string, StoredEntry>;
  /**
   * Internal: the region's hit path reads through this (see SYNC_GET). Once the store is bound, a
   * reader that returns every value as a CachedValue: bare payloads are read by BoundStore.fresh.
   */
  [SYNC_GET]: SyncReader | undefined;
  private readonly clone: boolean;
  /** lru-cache's clock, for a `compact` store (which can be bound). */
  private readonly storeClock: StoreClock | undefined;
  /** Once bound: the ttl of bare entries (ms); 0 while unbound. */
  private bareTtl = 0;
  /** `size` for lru-cache when a compact store has `maxSize` (it must not size bare payloads itself). */
  private readonly sizeOf: ((value: CachedValue, key: string) => number) | undefined;
  /** set's options for lru-cache, reused (lru-cache writes `status` into them). */
  private readonly bareOptions: { ttl: number; start: number; size?: number } = { ttl: 0, start: 0 };
  private readonly envelopeOptions: { ttl: number; size?: number } = { ttl: 0 };

  constructor(args: Readonly<MemoryBackendArguments> = {}) {
    super();
    if (args === null || typeof args !== 'object') {
      throw new ValidationError(`memory backend: arguments must be an object, got ${describe(args)}`);
    }
    for (const name of Object.keys(args)) {
      if (!ARGUMENT_NAMES.includes(name)) {
        throw new ValidationError(
          `memory backend: unknown argument ${JSON.stringify(name)}; the memory backend takes ${ARGUMENT_NAMES.join(', ')}`,
        );
      }
    }
    const { clone = false, cache } = args;
    if (typeof clone !== 'boolean') {
      throw new ValidationError(`memory backend: clone must be true or false, got ${describe(clone)}`);
    }
    this.clone = clone;
    const { compact = false } = args;
    if (typeof compact !== 'boolean') {
      throw new ValidationError(`memory backend: compact must be true or false, got ${describe(compact)}`);
    }
    for (const name of ['cache', 'clone', 'ttl'] as const) {
      if (compact && args[name] !== undefined && args[name] !== false) {
        throw new ValidationError(`memory backend: compact cannot be used with ${name} (got ${describe(args[name])})`);
      }
    }
    this.storeClock = compact ? new StoreClock({ now: Date.now }) : undefined;
    this.cache = cache === undefined ? makeCache(args, this.storeClock) : checkCache(cache, args);
    this.sizeOf = compact && args.maxSize !== undefined ? sizer(args.sizeCalculation) : undefined;
    // Without clone the region reads the LRUCache itself. A subclass that overrides get or getMulti
    // (a test double, say) must be read through them.
    const overridden = this.get !== MemoryBackend.prototype.get || this.getMulti !== MemoryBackend.prototype.getMulti;
    this[SYNC_GET] = overridden ? undefined : clone ? { get: (key) => this.read(key) } : (this.cache as SyncReader);
  }

  async get(key: string): Promise<CachedValue | NoValue> {
    return this.read(key) ?? NO_VALUE;
  }

  override async getMulti(keys: string[]): Promise<(CachedValue | NoValue)[]> {
    return keys.map((key) => this.read(key) ?? NO_VALUE);
  }

  async set(key: string, value: CachedValue): Promise<void> {
    if (this.bareTtl !== 0) this.store(key, value);
    else this.cache.set(key, this.clone ? cloneValue(value) : value);
  }

  override async setMulti(entries: Map<string, CachedValue>): Promise<void> {
    if (this.bareTtl !== 0) {
      for (const [key, value] of entries) this.store(key, value);
      return;
    }
    // Clone all first, so that one value that cannot be cloned stores none of them.
    const stored = this.clone ? [...entries].map(([key, value]) => [key, cloneValue(value)] as const) : entries;
    for (const [key, value] of stored) this.cache.set(key, value);
  }

  /** @internal See {@link BIND_EXPIRY}. */
  [BIND_EXPIRY](expirationMs: number, clock: Clock): BoundStore | undefined {
    const storeClock = this.storeClock;
    if (storeClock === undefined || this.bareTtl !== 0 || this.cache.size !== 0 || this[SYNC_GET] !== this.cache)
      return undefined;
    if (!(expirationMs === -1 || (Number.isSafeInteger(expirationMs) && expirationMs > 0))) return undefined;
    this.bareTtl = expirationMs === -1 ? NEVER_TTL : expirationMs;
    storeClock.source = clock;
    storeClock.ttl = this.bareTtl;
    storeClock.cache = this.cache;
    this[SYNC_GET] = { get: (key) => this.read(key) };
    return storeClock;
  }

  /** A bound store's write: bare when the value is only a payload and a creation time. */
  private store(key: string, value: CachedValue): void {
    const ct = value[BARE_CT];
    const payload = value.payload;
    const size = this.sizeOf?.(value, key);
    // undefined would delete the entry (and lru-cache takes no null); a payload that is itself a
    // CachedValue would read as one; lru-cache reads a start of 0 as "no ttl".
    if (ct > 0 && ct !== BARE_ORIGIN && payload !== undefined && payload !== null && !(payload instanceof CachedValue)) {
      const options = this.bareOptions;
      options.ttl = this.bareTtl;
      options.start = ct - BARE_ORIGIN;
      if (size !== undefined) options.size = size;
      this.cache.set(key, payload, options);
    } else {
      const options = this.envelopeOptions;
      if (size !== undefined) options.size = size;
      this.cache.set(key, value, options); // ttl 0: judged by the region, as in an unbound store
    }
  }

  async delete(key: string): Promise<void> {
    this.cache.delete(key);
  }

  override async deleteMulti(keys: string[]): Promise<void> {
    for (const key of keys) this.cache.delete(key);
  }

  /** Empties the cache (it holds no connection or timer). */
  async close(): Promise<void> {
    this.cache.clear();
  }

  /**
   * @internal The stored value of `key` read synchronously (in a bound store a stale one too, as
   * {@link get} returns it), or undefined: what the tier's L1 reads.
   */
  peekValue(key: string): CachedValue | undefined {
    return this.read(key);
  }

  private read(key: string): CachedValue | undefined {
    if (this.bareTtl !== 0) return this.readBound(key);
    const found = this.cache.get(key) as CachedValue | undefined;
    return this.clone && found !== undefined ? cloneValue(found) : found;
  }

  /** A bound store's read: the value (stale too), a bare one with its creation time put back. */
  private readBound(key: string): CachedValue | undefined {
    const found = this.cache.get(key, { allowStale: true });
    if (found === undefined || found instanceof CachedValue) return found;
    // remaining = ttl − (now − start), with now the store clock's reading during that call.
    const remaining = this.cache.getRemainingTTL(key);
    const ct = BARE_ORIGIN + Math.round((this.storeClock as StoreClock).lastNow - this.bareTtl + remaining);
    return new CachedValue(found, { ct, v: VALUE_VERSION });
  }
}

/** The size of an entry of a bound store with `maxSize`: the user's sizeCalculation, or an estimate. */
function sizer(
  sizeCalculation: ((value: CachedValue, key: string) => number) | undefined,
): (value: CachedValue, key: string) => number {
  return sizeCalculation ? checkedSize(sizeCalculation) : (value) => estimateSize(value.payload);
}

/** The LRUCache for `max` / `maxSize` / `sizeCalculation` / `ttl`, validated. */
function makeCache(args: Readonly<MemoryBackendArguments>, clock: StoreClock | undefined): LRUCache<string, StoredEntry> {
  const { max, maxSize, sizeCalculation, ttl } = args;
  checkPositiveInteger('max', max);
  checkPositiveInteger('maxSize', maxSize);
  if (ttl !== undefined && !(typeof ttl === 'number' && ttl > 0 && Number.isFinite(ttl))) {
    throw new ValidationError(`memory backend: ttl must be a positive number of seconds, got ${describe(ttl)}`);
  }
  if (sizeCalculation !== undefined && typeof sizeCalculation !== 'function') {
    throw new ValidationError(`memory backend: sizeCalculation must be a function, got ${describe(sizeCalculation)}`);
  }
  if (sizeCalculation !== undefined && maxSize === undefined) {
    throw new ValidationError('memory backend: sizeCalculation is used only with maxSize; give maxSize too');
  }
  const options: LRUCache.Options<string, StoredEntry, unknown> = {
    max: max ?? (maxSize === undefined ? DEFAULT_MEMORY_MAX : 0),
  };
  if (maxSize !== undefined) {
    options.maxSize = maxSize;
    const size = sizer(sizeCalculation);
    // A bound store passes each entry's size itself; this sizes the CachedValues of an unbound one.
    options.sizeCalculation = (value, key) => size(value as CachedValue, key);
  }
  if (clock !== undefined) {
    // Used only once the store is bound (entries with a ttl): the region's clock, read on every
    // check (no 1 ms reuse of a reading), and a stale entry stays for `peek` to find.
    options.perf = clock;
    options.ttlResolution = 0;
    options.noDeleteOnStaleGet = true;
  }
  // lru-cache takes whole milliseconds (at least 1).
  if (ttl !== undefined) options.ttl = Math.max(1, Math.ceil(ttl * 1000));
  return new LRUCache(options);
}

/** A given `cache` argument, checked. */
function checkCache(cache: unknown, args: Readonly<MemoryBackendArguments>): LRUCache<string, StoredEntry> {
  if (!(cache instanceof LRUCache)) {
    throw new ValidationError(`memory backend: cache must be an LRUCache (from lru-cache), got ${describe(cache)}`);
  }
  for (const name of ['max', 'maxSize', 'sizeCalculation', 'ttl'] as const) {
    if (args[name] !== undefined) {
      throw new ValidationError(
        `memory backend: ${name} cannot be given with cache (got ${describe(args[name])}); set it on the LRUCache itself`,
      );
    }
  }
  return cache as LRUCache<string, StoredEntry>;
}

function checkPositiveInteger(name: string, value: unknown): void {
  if (value !== undefined && !(Number.isSafeInteger(value) && (value as number) > 0)) {
    throw new ValidationError(`memory backend: ${name} must be a positive integer, got ${describe(value)}`);
  }
}

/** A user's sizeCalculation whose results are checked (and fractions rounded up) for lru-cache. */
function checkedSize(sizeCalculation: (value: CachedValue, key: string) => number): (value: CachedValue, key: string) => number {
  return (value, key) => {
    const size = sizeCalculation(value, key);
    if (typeof size !== 'number' || !(size > 0) || !Number.isFinite(size)) {
      throw new ValidationError(
        `memory backend: sizeCalculation must return a positive number, got ${describe(size)} for key ${JSON.stringify(key)}`,
      );
    }
    return Math.ceil(size);
  };
}

/** A copy of `value` whose payload is a structured clone; a ValidationError when it cannot be cloned. */
function cloneValue(value: CachedValue): CachedValue {
  let payload: unknown;
  try {
    payload = structuredClone(value.payload);
  } catch (err) {
    throw new ValidationError(
      `memory backend (clone: true): ${describe(value.payload)} cannot be structured-cloned: ${(err as Error).message}`,
      { cause: err },
    );
  }
  return new CachedValue(payload, value.metadata);
}

/** A rough byte size of a payload, for `maxSize` (at least 1). */
function estimateSize(payload: unknown): number {
  if (typeof payload === 'string') return Math.max(1, payload.length * 2);
  if (payload instanceof Uint8Array) return Math.max(1, payload.byteLength);
  if (payload === null || typeof payload !== 'object') return 8;
  try {
    return Math.max(1, (JSON.stringify(payload, (_k, v) => (typeof v === 'bigint' ? String(v) : v))?.length ?? 1) * 2);
  } catch {
    return 1024;
  }
}
