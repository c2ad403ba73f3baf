// Fail-safe: when a regeneration fails (the creator throws or hits hardTimeout) and a stale value
// exists that is at most `maxStale` past its expiry, callers get that value instead of the error,
// and nobody calls the creator for that key again before `retryAfter`.
//
// The throttle holds in two places: in this process (a map of retry times by key, so 1,000
// callers a second cause one creator call per retryAfter), and across processes through the
// backend: the stale value is written back with a retry time (`ra` in its metadata), so every
// process that shares the backend serves it without calling the creator until then. When the
// backend itself is down, the region falls back to the copies this process wrote or regenerated
// (`FailSafeMemory`, a bounded LRU), so a cache outage with a failing database still serves stale.

import { LRUCache } from 'lru-cache';
import { CachedValue, describe, ValidationError } from './api.js';

/** `failSafe` option: both in seconds. */
export interface FailSafeOptions {
  /** How long past its expiry a value may still be served when its regeneration fails, seconds (> 0). */
  readonly maxStale: number;
  /** After a failed regeneration, how long the stale value is served before the creator is tried again, seconds (> 0). */
  readonly retryAfter: number;
}

/** A parsed {@link FailSafeOptions}, in milliseconds. */
export interface FailSafePolicy {
  readonly maxStaleMs: number;
  readonly retryAfterMs: number;
}

/** How many stale fallback copies a region keeps in memory for a backend outage. */
export const FALLBACK_COPIES = 10_000;
const NEVER = -1;

/**
 * Validates a `failSafe` option. `undefined`: not given (inherit); `false`: explicitly off (per
 * call); otherwise `{ maxStale, retryAfter }` with both positive finite seconds.
 */
export function parseFailSafe(value: unknown, where: string): FailSafePolicy | false | undefined {
  if (value === undefined) return undefined;
  if (value === false || value === null) return false;
  if (typeof value !== 'object') {
    throw new ValidationError(`${where}: failSafe must be { maxStale, retryAfter } (seconds) or false, got ${describe(value)}`);
  }
  const { maxStale, retryAfter } = value as Partial<FailSafeOptions>;
  for (const [name, v] of [
    ['maxStale', maxStale],
    ['retryAfter', retryAfter],
  ] as const) {
    if (typeof v !== 'number' || !Number.isFinite(v) || !(v > 0)) {
      throw new ValidationError(`${where}: failSafe.${name} must be a positive number of seconds, got ${describe(v)}`);
    }
  }
  for (const k of Object.keys(value)) {
    if (k !== 'maxStale' && k !== 'retryAfter') {
      throw new ValidationError(`${where}: failSafe has an unknown field ${JSON.stringify(k)} (allowed: maxStale, retryAfter)`);
    }
  }
  return { maxStaleMs: (maxStale as number) * 1000, retryAfterMs: (retryAfter as number) * 1000 };
}

/** Until when (ms) `value` may be served as a fail-safe fallback under `expMs` (NEVER: always). */
export function servableUntil(value: CachedValue, expMs: number, policy: FailSafePolicy): number {
  const { fs, ct } = value.metadata;
  if (fs !== undefined) return fs;
  return expMs === NEVER ? Number.POSITIVE_INFINITY : ct + expMs + policy.maxStaleMs;
}

/**
 * The metadata field `fs` for a value created at `ct` under `expMs`: undefined without fail-safe
 * (`policy` undefined) or when the value never expires.
 */
export function fallbackDeadline(ct: number, expMs: number, policy: FailSafePolicy | undefined): number | undefined {
  return policy === undefined || expMs === NEVER ? undefined : ct + expMs + policy.maxStaleMs;
}

/** The region's in-process fail-safe state: retry times and fallback copies, by mangled key. */
export class FailSafeMemory {
  private readonly retryAt = new Map<string, number>();
  private readonly copies = new LRUCache<string, CachedValue>({ max: FALLBACK_COPIES });

  /** Whether the creator of `key` must not be called yet (this process's throttle or the value's `ra`). */
  throttled(key: string, value: CachedValue, now: number): boolean {
    const ra = value.metadata.ra;
    if (ra !== undefined && now < ra) return true;
    const local = this.retryAt.get(key);
    if (local === undefined) return false;
    if (now < local) return true;
    this.retryAt.delete(key);
    return false;
  }

  /** Starts the retry wait for `key`; returns the value to write back (with its retry time). */
  throttle(key: string, value: CachedValue, now: number, policy: FailSafePolicy): CachedValue {
    if (this.retryAt.size >= FALLBACK_COPIES) this.prune(now);
    const until = now + policy.retryAfterMs;
    this.retryAt.set(key, until);
    const copy = new CachedValue(value.payload, { ...value.metadata, ra: until });
    this.copies.set(key, copy);
    return copy;
  }

  /**
   * Whether values are copied at all. Off over the in-process memory backend read directly (no
   * proxy, no L1): its reads cannot fail, so a copy would only double the heap the values take.
   */
  keepCopies = true;

  /** Keeps `value` as the fallback for `key` (a value this process wrote or regenerated). */
  remember(key: string, value: CachedValue): void {
    this.retryAt.delete(key);
    if (this.keepCopies) this.copies.set(key, value);
  }

  /** The fallback copy of `key`, for when the backend cannot be read. */
  copy(key: string): CachedValue | undefined {
    return this.copies.get(key);
  }

  /** Drops what is known about `key` (it was deleted). */
  forget(key: string): void {
    this.retryAt.delete(key);
    this.copies.delete(key);
  }

  private prune(now: number): void {
    for (const [k, until] of this.retryAt) if (until <= now) this.retryAt.delete(k);
  }
}
