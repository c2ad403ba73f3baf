// Creator timeouts. `hardTimeout`: the creation is abandoned after this long; the creator's
// signal is aborted with a CreatorTimeoutError and the caller gets that error (or, with
// fail-safe, the stale value); a result that lands later is dropped. `softTimeout`: with a stale
// value, callers get it after this long while the creation goes on and stores its result (the
// lock holds the key meanwhile; see `softTimeoutMs` in lock.ts).

import { CreatorTimeoutError, describe, ValidationError } from './api.js';

/** The creator-timeout options of a region, a call or a wrapper (seconds; `null`: none). */
export interface CreatorTimeoutOptions {
  /** With a stale value, callers get it after this long while the creation goes on (>= 0, below hardTimeout). */
  softTimeout?: number | null;
  /** The creation is abandoned after this long (its signal aborts with CreatorTimeoutError) (> 0). */
  hardTimeout?: number | null;
}

/** Parsed creator timeouts, ms (undefined: none). */
export interface CreatorTimeouts {
  readonly softMs: number | undefined;
  readonly hardMs: number | undefined;
}

export const NO_TIMEOUTS: CreatorTimeouts = Object.freeze({ softMs: undefined, hardMs: undefined });

/**
 * Validates `softTimeout` / `hardTimeout` (seconds; `null` or absent: none; soft may be 0, hard
 * must be > 0; soft must be below hard). `inherited` supplies the values a call does not give.
 */
export function parseTimeouts(
  soft: unknown,
  hard: unknown,
  where: string,
  inherited: CreatorTimeouts = NO_TIMEOUTS,
): CreatorTimeouts {
  const softMs = soft === undefined ? inherited.softMs : seconds(soft, 'softTimeout', where, 0);
  const hardMs = hard === undefined ? inherited.hardMs : seconds(hard, 'hardTimeout', where, Number.MIN_VALUE);
  if (softMs !== undefined && hardMs !== undefined && softMs >= hardMs) {
    throw new ValidationError(`${where}: softTimeout (${softMs / 1000}s) must be shorter than hardTimeout (${hardMs / 1000}s)`);
  }
  if (softMs === undefined && hardMs === undefined) return NO_TIMEOUTS;
  return { softMs, hardMs };
}

/**
 * Calls `creator` with a signal that aborts when `parent` does (the lock was lost) or, with
 * `hardMs`, when the time is up; in the latter case the returned promise rejects with the
 * CreatorTimeoutError at once, whatever the creator does with its signal.
 */
export function runCreator<T>(
  creator: (signal: AbortSignal | undefined) => T | Promise<T>,
  parent: AbortSignal | undefined,
  hardMs: number | undefined,
  key: string,
): Promise<T> {
  if (hardMs === undefined) return call(creator, parent);
  const controller = new AbortController();
  const forward = (): void => controller.abort(parent?.reason);
  if (parent?.aborted) forward();
  else parent?.addEventListener('abort', forward, { once: true });
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      const error = new CreatorTimeoutError(
        `the creation of ${JSON.stringify(key)} took longer than hardTimeout (${hardMs / 1000}s)`,
      );
      controller.abort(error);
      reject(error);
    }, hardMs);
    const done = (): void => {
      clearTimeout(timer);
      parent?.removeEventListener('abort', forward);
    };
    call(creator, controller.signal).then(
      (value) => {
        done();
        resolve(value);
      },
      (err: unknown) => {
        done();
        reject(err);
      },
    );
  });
}

/** Calls `creator` now; its result (or what it throws) as a promise. */
function call<T>(creator: (signal: AbortSignal | undefined) => T | Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  try {
    return Promise.resolve(creator(signal));
  } catch (err) {
    return Promise.reject(err);
  }
}

function seconds(value: unknown, name: string, where: string, min: number): number | undefined {
  if (value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new ValidationError(
      `${where}: ${name} must be a number of seconds ${min === 0 ? '>= 0' : '> 0'} or null, got ${describe(value)}`,
    );
  }
  return value * 1000;
}
