// The memory backend: values live in this process, in a bounded LRU. By default values are stored
// by reference, as in dogpile.cache: mutating a returned object mutates the cache. `clone: true`
// stores and returns structured clones instead (memory_pickle).
//
// A store bounded by `max` alone (the default) is a CompactLru: a value that is only a payload and
// a creation time is kept without its 40-byte CachedValue object. Stores that need lru-cache's
// features (`maxSize` / `sizeCalculation`, a physical `ttl`, a given `cache`) are lru-cache
// LRUCaches holding CachedValues.

import { LRUCache } from 'lru-cache';
import {
  CachedValue,
  describe,
  NO_VALUE,
  type NoValue,
  SYNC_GET,
  type SyncReadable,
  type SyncReader,
  ValidationError,
} from '../api.js';
import { BaseBackend } from './base.js';
import { COMPACT_LRU_MAX, CompactLru } from './compact-lru.js';

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
}

const ARGUMENT_NAMES: readonly string[] = ['max', 'maxSize', 'sizeCalculation', 'ttl', 'clone', 'cache'];

/** The store of a memory backend: a CompactLru, or an lru-cache LRUCache holding CachedValues. */
export type MemoryStore = CompactLru | LRUCache<string, CachedValue>;

/** In-process LRU storage. Registered as `memory`. */
export class MemoryBackend extends BaseBackend implements SyncReadable {
  /**
   * The underlying store, for inspection. Without `maxSize`, `ttl` or `cache`, a {@link CompactLru};
   * with one of them, an lru-cache `LRUCache` (the `cache` argument
   * when one was given). Both map keys to {@link CachedValue}s with `get`, `peek`, `has`, `set`,
   * `delete`, `clear`, `size`, `max` and iteration from the most recently used.
   */
  readonly cache: MemoryStore;
  /**
   * Internal: the region's hit path reads through this (see SYNC_GET): the store itself, unless
   * values are cloned or a subclass reads differently.
   */
  readonly [SYNC_GET]: SyncReader | undefined;
  private readonly clone: boolean;

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
    this.cache = cache === undefined ? makeStore(args) : checkCache(cache, args);
    // Without clone the region reads the store itself. A subclass that overrides get or getMulti
    // (a test double, say) must be read through them.
    const overridden = this.get !== MemoryBackend.prototype.get || this.getMulti !== MemoryBackend.prototype.getMulti;
    this[SYNC_GET] = overridden ? undefined : clone ? { get: (key) => this.read(key) } : this.cache;
  }

  async get(key: string): Promise<CachedValue | NoValue> {
    return this.read(key) ?? NO_VALUE;
  }

  override async getMulti(keys: string[]): Promise<(CachedValue | NoValue)[]> {
    return keys.map((key) => this.read(key) ?? NO_VALUE);
  }

  async set(key: string, value: CachedValue): Promise<void> {
    this.cache.set(key, this.clone ? cloneValue(value) : value);
  }

  override async setMulti(entries: Map<string, CachedValue>): Promise<void> {
    // Clone all first, so that one value that cannot be cloned stores none of them.
    const stored = this.clone ? [...entries].map(([key, value]) => [key, cloneValue(value)] as const) : entries;
    for (const [key, value] of stored) this.cache.set(key, value);
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

  private read(key: string): CachedValue | undefined {
    const found = this.cache.get(key);
    return this.clone && found !== undefined ? cloneValue(found) : found;
  }
}

/** The store for `max` / `maxSize` / `sizeCalculation` / `ttl`, validated: a CompactLru unless lru-cache's features are needed. */
function makeStore(args: Readonly<MemoryBackendArguments>): MemoryStore {
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
  if (maxSize === undefined && ttl === undefined) {
    if ((max ?? DEFAULT_MEMORY_MAX) > COMPACT_LRU_MAX) {
      throw new ValidationError(`memory backend: max must be at most 2^32 - 1, got ${describe(max)}`);
    }
    return new CompactLru(max ?? DEFAULT_MEMORY_MAX);
  }
  const options: LRUCache.Options<string, CachedValue, unknown> = {
    max: max ?? (maxSize === undefined ? DEFAULT_MEMORY_MAX : 0),
  };
  if (maxSize !== undefined) {
    options.maxSize = maxSize;
    options.sizeCalculation = sizeCalculation ? checkedSize(sizeCalculation) : (value) => estimateSize(value.payload);
  }
  // lru-cache takes whole milliseconds (at least 1).
  if (ttl !== undefined) options.ttl = Math.max(1, Math.ceil(ttl * 1000));
  return new LRUCache(options);
}

/** A given `cache` argument, checked. */
function checkCache(cache: unknown, args: Readonly<MemoryBackendArguments>): LRUCache<string, CachedValue> {
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
  return cache as LRUCache<string, CachedValue>;
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
