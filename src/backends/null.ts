// The null backend: stores nothing. Every read misses, so getOrCreate always runs the creator
// (concurrent callers in one process still share one creation).

import { type CachedValue, NO_VALUE, type NoValue } from '../api.js';
import { BaseBackend } from './base.js';

/** Stores nothing; every read is {@link NO_VALUE}. Useful to switch caching off by configuration. */
export class NullBackend extends BaseBackend {
  async get(_key: string): Promise<CachedValue | NoValue> {
    return NO_VALUE;
  }
  override async getMulti(keys: string[]): Promise<(CachedValue | NoValue)[]> {
    return keys.map(() => NO_VALUE);
  }
  async set(_key: string, _value: CachedValue): Promise<void> {}
  override async setMulti(_entries: Map<string, CachedValue>): Promise<void> {}
  async delete(_key: string): Promise<void> {}
  override async deleteMulti(_keys: string[]): Promise<void> {}
}
