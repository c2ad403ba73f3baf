// Small helpers of region.ts: argument checks, expiry arithmetic and the default onError.

import { BackendError, type CacheBackend, type Clock, DogpileError, describe, type Serializer, ValidationError } from './api.js';
import type { KeyMangler } from './keys.js';
import { checkRegionOptionNames } from './options.js';

/** `expirationTime` of "never", in ms. */
export const NEVER = -1;

let warned = false;
/** The default onError: one process warning. */
export function warnOnce(error: BackendError): void {
  if (warned) return;
  warned = true;
  process.emitWarning(
    `dogpile: a cache backend failed and the region carried on without it (${error.message}). Pass onError to a region to see every failure.`,
    'DogpileWarning',
  );
}

/** Whether a value created at `ct` is still within `expMs` at `now` (NEVER: always; 0: never fresh). */
export function withinExpiry(ct: number, expMs: number, clock: Clock): boolean {
  // The clock is read only when the answer depends on it.
  return expMs === NEVER || (expMs !== 0 && clock.now() - ct <= expMs);
}

/** Errors that are not a backend failure (a ValidationError, a LockTimeoutError…) pass through. */
export function rethrowIfNotBackendFailure(err: unknown): void {
  if (err instanceof DogpileError && !(err instanceof BackendError)) throw err;
}

export function once(fn: () => Promise<void>): () => Promise<void> {
  let result: Promise<void> | undefined;
  return () => {
    result ??= fn();
    return result;
  };
}

export function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

/** Converts seconds to ms, `null`/`undefined`/`-1` to NEVER; anything else invalid throws. */
export function toExpirationMs(value: unknown, name: string): number {
  if (value === undefined || value === null || value === -1) return NEVER;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new ValidationError(`${name} must be a number of seconds >= 0, -1 or null (never expires), got ${describe(value)}`);
  }
  return value * 1000;
}

export function checkKey(key: unknown): asserts key is string {
  if (typeof key !== 'string') throw new ValidationError(`cache keys must be strings, got ${describe(key)}`);
}

export function checkKeys(keys: unknown): asserts keys is string[] {
  if (!Array.isArray(keys)) throw new ValidationError(`expected an array of keys, got ${describe(keys)}`);
  for (const key of keys) checkKey(key);
}

export function checkFunction(name: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'function') {
    throw new ValidationError(`${name} must be a function, got ${describe(value)}`);
  }
}

export function checkInvalidator(s: unknown): void {
  const needed = ['invalidate', 'isInvalidated', 'isHardInvalidated', 'isSoftInvalidated'] as const;
  for (const m of needed) {
    if (typeof (s as Record<string, unknown> | null)?.[m] !== 'function') {
      throw new ValidationError(`regionInvalidator must implement ${m}(), got ${describe(s)}`);
    }
  }
}

export function describeBackend(backend: CacheBackend | undefined, loading: Promise<void> | undefined): string {
  if (backend) return backend.constructor?.name ?? 'backend';
  return loading ? '(loading)' : '(none)';
}

/** `subset` (unique keys of `request`) ordered by where each first appears in `request`. */
export function inRequestOrder(subset: readonly string[], request: readonly string[]): string[] {
  const wanted = new Set(subset);
  const out: string[] = [];
  for (const k of request) {
    if (wanted.delete(k)) out.push(k);
  }
  return out;
}

export function badShouldCacheFn(where: string, value: unknown): ValidationError {
  return new ValidationError(`${where}: shouldCacheFn must be a function, got ${describe(value)}`);
}

export function isPlainRecord(value: unknown): value is Readonly<Record<string, unknown>> {
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

export function badMangledKey(key: string, mangled: unknown): ValidationError {
  return new ValidationError(
    `keyMangler returned ${describe(mangled)} for key ${JSON.stringify(key)}: it must return a string (else different keys would share one entry)`,
  );
}

/** The key mangler a backend supplies (dogpile.cache's `backend.key_mangler`), if it is a function. */
export function backendKeyMangler(backend: CacheBackend): KeyMangler | undefined {
  const supplied = backend.keyMangler;
  if (supplied === undefined || supplied === null) return undefined;
  if (typeof supplied !== 'function') {
    throw new ValidationError(`the backend's keyMangler must be a function, got ${describe(supplied)}`);
  }
  return supplied.bind(backend);
}

/**
 * The shape checks of makeRegion()'s options: an object of known option names, functions where
 * functions go, a serializer and a clock with their methods (values are checked where they are
 * parsed).
 */
export function checkRegionOptions(options: object): void {
  if (options === null || typeof options !== 'object') {
    throw new ValidationError(`makeRegion: options must be an object, got ${describe(options)}`);
  }
  checkRegionOptionNames(options);
  const o = options as Readonly<Record<string, unknown>>;
  for (const name of ['keyMangler', 'functionKeyGenerator', 'functionMultiKeyGenerator', 'asyncCreationRunner', 'onError']) {
    checkFunction(name, o[name]);
  }
  if (o.serializer !== undefined) {
    const s = o.serializer as Partial<Serializer> | null;
    if (!s || typeof s.serialize !== 'function' || typeof s.deserialize !== 'function') {
      throw new ValidationError(`serializer must have serialize() and deserialize() methods, got ${describe(s)}`);
    }
  }
  const clock = o.clock as Partial<Clock> | null | undefined;
  if (clock !== undefined && typeof clock?.now !== 'function') {
    throw new ValidationError(`clock must have a now() method, got ${describe(clock)}`);
  }
}
