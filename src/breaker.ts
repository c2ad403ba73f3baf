// The backend guard: a circuit breaker and per-operation timeouts between the region and its
// backend. It sits under any in-process tier and over the user's `wrap` proxies:
//   region -> [L1 tier] -> GuardedBackend -> wrap proxies -> actual backend
//
// Breaker: after `failures` consecutive failed operations the circuit opens and, for `duration`,
// no operation reaches the backend: reads and writes reject at once with CircuitOpenError (the
// region reads that as a miss / a skipped write without reporting it again), and getMutex gives
// no distributed lock (in-process single flight remains). After `duration` one operation is let
// through as a probe: success closes the circuit, failure opens it for another `duration`.
// Timeout: no operation waits longer than `timeoutMs`; a late one fails with a BackendError (a
// read that times out is a miss on a fail-open region). Taking a lock starts with one try bounded
// by `timeoutMs`; only when the backend answered that the lock is held does `acquire(true)`, whose
// job is to wait, run, bounded by the region's lockWaitTimeout plus `timeoutMs` (a backend whose
// own wait does not end while its server is down cannot hold a caller longer). A probe that never settles (an operation
// that hangs with no timeout configured) is given up after `duration`, and another is let through.

import {
  BackendError,
  type CacheBackend,
  type CachedValue,
  type CacheMutex,
  DogpileError,
  describe,
  type NoValue,
  SYNC_GET,
  type SyncReadable,
  ValidationError,
} from './api.js';

/** `breaker` option. */
export interface BreakerOptions {
  /** Consecutive backend failures that open the circuit (integer >= 1). */
  readonly failures: number;
  /** Seconds the circuit stays open before one probe is let through (> 0). */
  readonly duration: number;
}

/** Circuit states, as the `breaker` event reports them. */
export type BreakerState = 'open' | 'half-open' | 'closed';

/** What an operation gets while the circuit is open. Read as a miss / skipped write by the region. */
export class CircuitOpenError extends BackendError {
  override name = 'CircuitOpenError';
}

/** Validates `breaker`. */
export function parseBreaker(value: unknown): { failures: number; durationMs: number } | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object') {
    throw new ValidationError(`breaker must be { failures, duration }, got ${describe(value)}`);
  }
  const { failures, duration } = value as Partial<BreakerOptions>;
  if (typeof failures !== 'number' || !Number.isInteger(failures) || failures < 1) {
    throw new ValidationError(`breaker.failures must be an integer >= 1, got ${describe(failures)}`);
  }
  if (typeof duration !== 'number' || !Number.isFinite(duration) || !(duration > 0)) {
    throw new ValidationError(`breaker.duration must be a positive number of seconds, got ${describe(duration)}`);
  }
  for (const k of Object.keys(value)) {
    if (k !== 'failures' && k !== 'duration') {
      throw new ValidationError(`breaker has an unknown field ${JSON.stringify(k)} (allowed: failures, duration)`);
    }
  }
  return { failures, durationMs: duration * 1000 };
}

/** Validates `backendTimeout` (seconds > 0, or null/absent for none); returns ms. */
export function parseBackendTimeout(value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || !(value > 0)) {
    throw new ValidationError(`backendTimeout must be a positive number of seconds or null, got ${describe(value)}`);
  }
  return value * 1000;
}

/** The backend as the region sees it with a breaker and/or timeouts. */
export class GuardedBackend implements CacheBackend {
  private state: BreakerState = 'closed';
  private consecutive = 0;
  private openedAt = 0;
  private probing = false;
  private probeAt = 0;
  private readonly openError: CircuitOpenError;

  constructor(
    readonly inner: CacheBackend,
    private readonly breaker: { failures: number; durationMs: number } | undefined,
    private readonly timeoutMs: number | undefined,
    private readonly onState: (state: BreakerState) => void,
    label: string,
    private readonly waitBoundMs: number,
  ) {
    this.openError = new CircuitOpenError(`${label}: the circuit is open; the backend is not called`);
    // An in-process backend with synchronous reads (memory) cannot hang or go down: its reads
    // bypass the guard, so the fresh-hit path stays one synchronous LRU read.
    const sync = (inner as Partial<SyncReadable>)[SYNC_GET];
    if (typeof sync?.get === 'function') (this as { [SYNC_GET]?: unknown })[SYNC_GET] = sync;
  }

  /** The breaker's current state. */
  get circuit(): BreakerState {
    return this.state;
  }

  get(key: string): Promise<CachedValue | NoValue> {
    // The hit path of every remote backend: no closure per call.
    if (this.state !== 'closed' && !this.admit()) return Promise.reject(this.openError);
    let pending: Promise<CachedValue | NoValue>;
    try {
      pending = this.inner.get(key);
    } catch (err) {
      pending = Promise.reject(err);
    }
    if (this.timeoutMs !== undefined) pending = withTimeout(pending, this.timeoutMs);
    return this.breaker === undefined ? pending : pending.then(this.onSuccess, this.onFailure);
  }
  getMulti(keys: string[]): Promise<(CachedValue | NoValue)[]> {
    return this.guard(() => this.inner.getMulti(keys));
  }
  set(key: string, value: CachedValue): Promise<void> {
    return this.guard(() => this.inner.set(key, value));
  }
  setMulti(entries: Map<string, CachedValue>): Promise<void> {
    return this.guard(() => this.inner.setMulti(entries));
  }
  delete(key: string): Promise<void> {
    return this.guard(() => this.inner.delete(key));
  }
  deleteMulti(keys: string[]): Promise<void> {
    return this.guard(() => this.inner.deleteMulti(keys));
  }

  getMutex(key: string): CacheMutex | null {
    if (this.state !== 'closed' && !this.admit()) return null;
    const mutex = this.inner.getMutex?.(key) ?? null;
    if (!mutex) return null;
    return {
      acquire: (wait) => this.acquire(mutex, wait),
      release: () => this.observe(() => mutex.release(), this.timeoutMs),
      locked: () => this.observe(() => mutex.locked(), this.timeoutMs),
      get signal() {
        return mutex.signal;
      },
    };
  }

  async close(): Promise<void> {
    await this.inner.close?.();
  }

  /**
   * Takes `mutex`. With a timeout, the first try is one bounded backend call (`acquire(false)`):
   * a backend that does not answer in time is a failure (the region goes on without the
   * distributed lock) rather than a wait of lockWaitTimeout; only a lock that is held (the backend
   * answered) is waited for, up to the wait bound. A try the bound gave up on may still take the
   * lock later: it is released as soon as it does, so no lock is left held (and renewed) by nobody.
   */
  private async acquire(mutex: CacheMutex, wait: boolean): Promise<boolean> {
    const timeoutMs = this.timeoutMs;
    if (timeoutMs === undefined) return this.observe(() => mutex.acquire(wait), wait ? this.waitBoundMs : undefined);
    const tryOnce = (w: boolean, boundMs: number): Promise<boolean> => {
      let attempt: Promise<boolean> | undefined;
      return this.observe(() => {
        attempt = mutex.acquire(w);
        return attempt;
      }, boundMs).catch((err: unknown) => {
        attempt
          ?.then(
            (won) => (won ? mutex.release() : undefined),
            () => {},
          )
          .catch(() => {});
        throw err;
      });
    };
    const taken = await tryOnce(false, timeoutMs);
    if (taken || !wait) return taken;
    return tryOnce(true, this.waitBoundMs);
  }

  private guard<R>(op: () => Promise<R>): Promise<R> {
    if (this.state !== 'closed' && !this.admit()) return Promise.reject(this.openError);
    return this.observe(op, this.timeoutMs);
  }

  /** Whether an operation may pass while not closed: once `duration` is over, one probe at a time. */
  private admit(): boolean {
    const durationMs = (this.breaker as { durationMs: number }).durationMs;
    const now = Date.now();
    if (this.state === 'half-open') {
      if (now - this.probeAt < durationMs) return false; // a probe is in flight
      this.probeAt = now; // that probe never settled: let another one through
      return true;
    }
    if (now - this.openedAt < durationMs) return false;
    this.transition('half-open');
    this.probing = true;
    this.probeAt = now;
    return true;
  }

  private observe<R>(op: () => Promise<R>, boundMs: number | undefined): Promise<R> {
    let pending: Promise<R>;
    try {
      pending = op();
    } catch (err) {
      pending = Promise.reject(err);
    }
    if (boundMs !== undefined) pending = withTimeout(pending, boundMs);
    if (this.breaker === undefined) return pending;
    return pending.then(this.onSuccess, this.onFailure) as Promise<R>;
  }

  private readonly onSuccess = <V>(value: V): V => {
    if (this.consecutive !== 0 || this.state !== 'closed') this.succeeded();
    return value;
  };

  private readonly onFailure = (err: unknown): never => {
    if (!(err instanceof DogpileError) || err instanceof BackendError) this.failed();
    else this.succeeded();
    throw err;
  };

  private succeeded(): void {
    this.consecutive = 0;
    if (this.probing || this.state !== 'closed') {
      this.probing = false;
      this.transition('closed');
    }
  }

  private failed(): void {
    const breaker = this.breaker as { failures: number };
    this.consecutive++;
    if (this.probing || (this.state === 'closed' && this.consecutive >= breaker.failures)) {
      this.probing = false;
      this.openedAt = Date.now();
      this.transition('open');
    }
  }

  private transition(state: BreakerState): void {
    if (this.state === state) return;
    this.state = state;
    try {
      this.onState(state);
    } catch {}
  }
}

function withTimeout<R>(pending: Promise<R>, ms: number): Promise<R> {
  return new Promise<R>((resolve, reject) => {
    const timer = setTimeout(() => reject(new BackendError(`backend operation timed out after ${ms} ms (backendTimeout)`)), ms);
    pending.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}
