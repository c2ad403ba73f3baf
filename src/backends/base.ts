// Base classes for backends: BaseBackend fills in the *Multi methods from get/set/delete, and
// ProxyBackend is the middleware shape (`configure(..., { wrap: [...] })`).

import type { CacheBackend, CachedValue, CacheMutex, NoValue } from '../api.js';

/**
 * Extend this to write a backend: implement `get`, `set` and `delete`; `getMulti`, `setMulti` and
 * `deleteMulti` default to loops over them (override them when the store has batch operations).
 */
export abstract class BaseBackend implements CacheBackend {
  abstract get(key: string): Promise<CachedValue | NoValue>;
  abstract set(key: string, value: CachedValue): Promise<void>;
  abstract delete(key: string): Promise<void>;

  getMulti(keys: string[]): Promise<(CachedValue | NoValue)[]> {
    return Promise.all(keys.map((key) => this.get(key)));
  }

  async setMulti(entries: Map<string, CachedValue>): Promise<void> {
    await Promise.all([...entries].map(([key, value]) => this.set(key, value)));
  }

  async deleteMulti(keys: string[]): Promise<void> {
    await Promise.all(keys.map((key) => this.delete(key)));
  }
}

/**
 * Middleware around a backend. Every method forwards to `proxied`; override the ones to change.
 * Proxies see `CachedValue` objects whatever the backend stores, so one proxy works everywhere.
 *
 * ```ts
 * class CountingProxy extends ProxyBackend {
 *   sets = 0;
 *   override set(key: string, value: CachedValue) { this.sets++; return super.set(key, value); }
 * }
 * region.configure('memory', { wrap: [CountingProxy] });
 * ```
 */
export class ProxyBackend implements CacheBackend {
  private inner: CacheBackend | undefined;

  /** The backend this proxy forwards to (set by {@link ProxyBackend.wrap}). */
  get proxied(): CacheBackend {
    if (!this.inner) throw new TypeError(`${this.constructor.name} is not wrapping a backend yet`);
    return this.inner;
  }

  /** Wraps `backend` and returns this proxy. */
  wrap(backend: CacheBackend): this {
    this.inner = backend;
    return this;
  }

  get(key: string): Promise<CachedValue | NoValue> {
    return this.proxied.get(key);
  }
  getMulti(keys: string[]): Promise<(CachedValue | NoValue)[]> {
    return this.proxied.getMulti(keys);
  }
  set(key: string, value: CachedValue): Promise<void> {
    return this.proxied.set(key, value);
  }
  setMulti(entries: Map<string, CachedValue>): Promise<void> {
    return this.proxied.setMulti(entries);
  }
  delete(key: string): Promise<void> {
    return this.proxied.delete(key);
  }
  deleteMulti(keys: string[]): Promise<void> {
    return this.proxied.deleteMulti(keys);
  }
  getMutex(key: string): CacheMutex | null {
    return this.proxied.getMutex?.(key) ?? null;
  }
  async close(): Promise<void> {
    await this.proxied.close?.();
  }
}
