// The null backend: stores nothing. Every read misses, so getOrCreate always runs the creator
// (concurrent callers in one process still share one creation).

import { type CachedValue, NO_VALUE, type NoValue } from '../api.js';
import { checkKnownNames } from '../validate.js';
import { BaseBackend } from './base.js';

/**
 * Stores nothing; every read is {@link NO_VALUE}. Useful to switch caching off by configuration.
 * It takes no arguments: any is a ValidationError (as for every backend, an argument it does not
 * know is a mistake worth hearing about).
 */
export class NullBackend extends BaseBackend {
  constructor(args: Readonly<Record<string, unknown>> = {}) {
    super();
    checkKnownNames('null backend', 'argument', args, []);
  }

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
