// The per-call option and context types of a region (get / set / getOrCreate and their multi
// forms, what a creator receives, backend error reports): the region's public vocabulary,
// kept apart from the class that implements it (exported from src/index.ts).

import type { FailSafeOptions } from './failsafe.js';

/**
 * What a creator receives: the key, and a signal aborted if the distributed lock is lost (reason
 * LockLostError) or `hardTimeout` passes (reason CreatorTimeoutError).
 */
export interface CreatorContext {
  /** The key being created, as the caller gave it (before the region's key mangler). */
  readonly key: string;
  /**
   * Aborted when the distributed lock guarding this creation is lost (its reason is a
   * `LockLostError`); `undefined` when the backend's lock gives no signal. Pass it on to `fetch` or a
   * database call to stop work whose result may no longer be wanted.
   */
  readonly signal: AbortSignal | undefined;
  /**
   * Adds tags to the value this creation stores, on top of the call's `tags` option: for tags the
   * creator only finds while it works (the template layer adds those of the fragments rendered
   * inside a fragment). Read when the creator returns; later calls, and calls on a creation whose
   * value is not stored (`shouldCacheFn`, a failure), change nothing. Tags must be non-empty
   * strings (a `ValidationError` otherwise, which fails the creation).
   */
  addTags(tags: readonly string[]): void;
}

/** Where a backend failure happened, for {@link RegionOptions.onError}. */
export interface BackendErrorInfo {
  /** The backend call that failed (`lock`: taking or releasing the distributed lock). */
  readonly operation: 'get' | 'getMulti' | 'set' | 'setMulti' | 'lock' | 'create';
  /** The key involved (as given to the region), or `undefined` for multi-key calls. */
  readonly key: string | undefined;
}

/** Options of {@link CacheRegion.set} and {@link CacheRegion.setMulti}. */
export interface SetOptions {
  /** Tags stored with the value; {@link CacheRegion.invalidateTags} invalidates by them. Default none. */
  tags?: readonly string[];
}

/**
 * Tags for the multi-key forms: the same tags for every key, or a function of each key (as the
 * caller gave it, before the key mangler) returning that key's tags.
 */
export type KeyTags = readonly string[] | ((key: string) => readonly string[]);

/** Options of {@link CacheRegion.setMulti}. */
export interface SetMultiOptions {
  /** Tags stored with each value (see {@link KeyTags}). Default none. */
  tags?: KeyTags;
}

/** Per-read options. */
export interface GetOptions {
  /** Overrides the region's expiration for this read (seconds, `-1` never). Default: the region's. */
  expirationTime?: number | null;
  /** Return the value even if it is expired or invalidated. Default false. */
  ignoreExpiration?: boolean;
}

/** Options of {@link CacheRegion.getOrCreate}. */
export interface GetOrCreateOptions<T> {
  /** Overrides the region's expiration for this call (seconds, `-1` never). Default: the region's. */
  expirationTime?: number | null;
  /** When it returns false the value is returned to the waiting callers but not stored. Default: store every value. */
  shouldCacheFn?: (value: T) => boolean;
  /** Overrides the region's `failSafe` for this call (`false`: off). */
  failSafe?: FailSafeOptions | false;
  /** Overrides the region's `softTimeout` (seconds; `null`: none). */
  softTimeout?: number | null;
  /** Overrides the region's `hardTimeout` (seconds; `null`: none). */
  hardTimeout?: number | null;
  /** Attributes added to this call's event payloads (the template layer sets `template`, `block`). */
  attributes?: Readonly<Record<string, string>>;
  /** Tags stored with a value this call creates (see {@link CacheRegion.invalidateTags}). */
  tags?: readonly string[];
  /**
   * XFetch beta for this call (overrides the region's `earlyRefresh`; 0 turns it off). A value this
   * call creates records its creation duration when the beta in effect is not 0.
   */
  earlyRefresh?: number;
}

/** Options of {@link CacheRegion.getOrCreateMulti}: those of getOrCreate but early refresh, with per-key tags. */
export interface GetOrCreateMultiOptions<T> extends Omit<GetOrCreateOptions<T>, 'tags' | 'earlyRefresh'> {
  /** Tags stored with each value this call creates: the same for every key, or a function of the key. */
  tags?: KeyTags;
}
