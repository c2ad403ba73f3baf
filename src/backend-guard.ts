// The region's guard on backend I/O: what a failing backend call becomes. Reads and writes fail
// open (a miss, a skipped write, reported to `onError` and the `backendError` event) or closed (a
// BackendError), as the region's `failOpen` says; deletes and invalidation always fail closed
// (`strict`). It also wraps the backend's distributed lock the same way (`mutexFor`) and turns the
// circuit breaker's moves into `breaker` events. The breaker and backend timeouts themselves are
// src/breaker.ts, a proxy around the backend; this module decides what their errors mean.

import {
  type BackendError,
  type CacheBackend,
  type CachedValue,
  type CacheMutex,
  NO_VALUE,
  type NoValue,
  toBackendError,
} from './api.js';
import { type BreakerState, CircuitOpenError } from './breaker.js';
import type { Creations } from './creation.js';
import type { RegionEvents } from './events.js';
import { rethrowIfNotBackendFailure } from './region-checks.js';
import type { BackendErrorInfo } from './region-options.js';

type Operation = BackendErrorInfo['operation'];

/** How one region treats backend failures. Internal: the region and its parts call it. */
export class BackendGuard {
  constructor(
    private readonly failOpen: boolean,
    private readonly onError: (error: BackendError, info: BackendErrorInfo) => void,
    private readonly events: RegionEvents,
    private readonly creations: Creations,
  ) {}

  /** Runs a backend read; a failure is {@link readFailed}'s answer (a miss, when failing open). */
  async read<R>(operation: Operation, key: string | undefined, op: () => Promise<R>): Promise<R | NoValue> {
    try {
      return await op();
    } catch (err) {
      return this.readFailed(err, operation, key);
    }
  }

  /**
   * A failed backend call: rethrown (fail closed, or not a backend failure) or reported (unless
   * the circuit is open: that was reported when it opened); a miss.
   */
  readFailed(err: unknown, operation: Operation, key: string | undefined): NoValue {
    rethrowIfNotBackendFailure(err);
    if (!this.failOpen) throw toBackendError(err, `${operation} failed`);
    if (!(err instanceof CircuitOpenError)) this.report(err, operation, key);
    return NO_VALUE;
  }

  /** {@link readFailed} for a getOrCreate read: with fail-safe, the fallback copy of `mangled` if there is one. */
  getFailed(err: unknown, key: string, mangled: string): CachedValue | NoValue {
    this.readFailed(err, 'get', key);
    return this.creations.memory?.copy(mangled) ?? NO_VALUE;
  }

  /** Runs a backend write; a failure is skipped and reported when failing open, else a BackendError. */
  async write(operation: Operation, key: string | undefined, op: () => Promise<void>): Promise<void> {
    try {
      await op();
    } catch (err) {
      this.readFailed(err, operation, key);
    }
  }

  /** Runs a backend call that must not fail silently (deletes, invalidation): a failure is a BackendError. */
  async strict<R>(op: () => Promise<R>, what: string): Promise<R> {
    try {
      return await op();
    } catch (err) {
      rethrowIfNotBackendFailure(err);
      throw toBackendError(err, `${what} failed`);
    }
  }

  /** Counts and reports an absorbed failure: the `backendError` event, then `onError` (whose throws are ignored). */
  report(err: unknown, operation: Operation, key: string | undefined): void {
    const error = toBackendError(err, `${operation}${key === undefined ? '' : ` ${JSON.stringify(key)}`} failed`);
    const events = this.events;
    events.backendErrors++;
    if (events.heard.backendError) events.emit('backendError', { region: events.region, key, operation, error });
    try {
      this.onError(error, { operation, key });
    } catch {}
  }

  /** Emits the `breaker` event for a move of the circuit breaker. */
  breakerMoved(state: BreakerState): void {
    if (this.events.heard.breaker) this.events.emit('breaker', { region: this.events.region, state });
  }

  /**
   * The backend's distributed lock for `mangled` (null when it has none), timing waits for the
   * `lockWait` event. Fail open: a lock service that is down must not stop creation (local single
   * flight remains); fail closed: its error reaches the caller.
   */
  mutexFor(backend: CacheBackend, mangled: string, key: string): CacheMutex | null {
    const mutex = backend.getMutex?.(mangled) ?? null;
    if (!mutex) return null;
    const failOpen = this.failOpen;
    return {
      acquire: async (wait) => {
        const t0 = wait ? performance.now() : 0;
        try {
          const acquired = await mutex.acquire(wait);
          if (wait) this.creations.lockWaited(key, performance.now() - t0);
          return acquired;
        } catch (err) {
          if (!failOpen) throw err;
          this.report(err, 'lock', mangled);
          return true;
        }
      },
      release: async () => {
        try {
          await mutex.release();
        } catch (err) {
          if (!failOpen) throw err;
          this.report(err, 'lock', mangled);
        }
      },
      locked: () => mutex.locked(),
      get signal() {
        return mutex.signal;
      },
    };
  }
}
