// The memory backend: values live in this process, in an LRU cache (lru-cache) with a bound.
// Values are stored by reference, as in dogpile.cache: mutating a returned object mutates the cache.

import { LRUCache } from 'lru-cache';
import { type CachedValue, describe, NO_VALUE, type NoValue, SYNC_GET, type SyncReadable, ValidationError } from '../api.js';
import { BaseBackend } from './base.js';

/** Default `max` when neither `max` nor `maxSize` is given: an unbounded cache is a memory leak. */
export const DEFAULT_MEMORY_MAX = 10_000;

/** Arguments of the `memory` backend. */
export interface MemoryBackendArguments {
  /** Most entries kept; the least recently used go first. Default 10,000 (when `maxSize` is absent). */
  max?: number;
  /** Most total size kept, in the units of `sizeCalculation` (default: approximate bytes). */
  maxSize?: number;
  /** Size of one entry for `maxSize`; default estimates the payload's bytes. */
  sizeCalculation?: (value: CachedValue, key: string) => number;
  /** Physical time-to-live in seconds: entries are dropped this long after being set. Default none. */
  ttl?: number;
}

/** In-process LRU storage. Registered as `memory`. */
export class MemoryBackend extends BaseBackend implements SyncReadable {
  /** The underlying lru-cache, for inspection. */
  readonly cache: LRUCache<string, CachedValue>;

  constructor(args: Readonly<MemoryBackendArguments> = {}) {
    super();
    const { max, maxSize, sizeCalculation, ttl } = args;
    checkPositiveInteger('max', max);
    checkPositiveInteger('maxSize', maxSize);
    if (ttl !== undefined && !(typeof ttl === 'number' && ttl > 0 && Number.isFinite(ttl))) {
      throw new ValidationError(`memory backend: ttl must be a positive number of seconds, got ${describe(ttl)}`);
    }
    if (sizeCalculation !== undefined && typeof sizeCalculation !== 'function') {
      throw new ValidationError(`memory backend: sizeCalculation must be a function, got ${describe(sizeCalculation)}`);
    }
    const options: LRUCache.Options<string, CachedValue, unknown> = {
      max: max ?? (maxSize === undefined ? DEFAULT_MEMORY_MAX : 0),
    };
    if (maxSize !== undefined) {
      options.maxSize = maxSize;
      options.sizeCalculation = sizeCalculation ?? ((value) => estimateSize(value.payload));
    }
    if (ttl !== undefined) options.ttl = ttl * 1000;
    this.cache = new LRUCache(options);
    // A subclass that overrides get or getMulti (a test double, say) must be read through them.
    if (this.get !== MemoryBackend.prototype.get || this.getMulti !== MemoryBackend.prototype.getMulti) {
      Object.defineProperty(this, SYNC_GET, { value: undefined });
    }
  }

  [SYNC_GET](key: string): CachedValue | undefined {
    return this.cache.get(key);
  }

  async get(key: string): Promise<CachedValue | NoValue> {
    return this.cache.get(key) ?? NO_VALUE;
  }

  override async getMulti(keys: string[]): Promise<(CachedValue | NoValue)[]> {
    return keys.map((key) => this.cache.get(key) ?? NO_VALUE);
  }

  async set(key: string, value: CachedValue): Promise<void> {
    this.cache.set(key, value);
  }

  override async setMulti(entries: Map<string, CachedValue>): Promise<void> {
    for (const [key, value] of entries) this.cache.set(key, value);
  }

  async delete(key: string): Promise<void> {
    this.cache.delete(key);
  }

  override async deleteMulti(keys: string[]): Promise<void> {
    for (const key of keys) this.cache.delete(key);
  }

  async close(): Promise<void> {
    this.cache.clear();
  }
}

function checkPositiveInteger(name: string, value: unknown): void {
  if (value !== undefined && !(Number.isSafeInteger(value) && (value as number) > 0)) {
    throw new ValidationError(`memory backend: ${name} must be a positive integer, got ${describe(value)}`);
  }
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
