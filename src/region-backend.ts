// How a region gets its backend and what it stacks on it: configure()'s backend argument opened (a
// registered name or module specifier through its factory, or an instance), the proxies of `wrap`
// and the breaker guard (src/breaker.ts) put around it, and the error a region without a usable
// backend throws. The L1 tier in front of it all is src/tiered.ts.

import {
  type BackendContext,
  BackendError,
  type BackendFactory,
  type CacheBackend,
  DogpileError,
  describe,
  RegionNotConfiguredError,
  ValidationError,
} from './api.js';
import type { ProxyBackend } from './backends/base.js';
import { type BreakerState, GuardedBackend } from './breaker.js';
import { lookupBackend } from './registry.js';

/** configure()'s `backend`: a factory's product for a name or module specifier, or the instance given. */
export function openBackend(
  backend: string | CacheBackend,
  args: object,
  context: BackendContext,
): CacheBackend | Promise<CacheBackend> {
  if (typeof backend === 'string') {
    const factory: BackendFactory = lookupBackend(backend);
    return factory(Object.freeze({ ...args }), context);
  }
  if (backend && typeof backend === 'object' && typeof backend.get === 'function') return backend;
  throw new ValidationError(
    `configure: backend must be a name, a module specifier or a backend instance, got ${describe(backend)}`,
  );
}

/** The circuit breaker and backend timeout of a region (src/breaker.ts), as its guard needs them. */
export interface GuardSettings {
  readonly breaker: { failures: number; durationMs: number } | undefined;
  readonly timeoutMs: number | undefined;
  readonly onState: (state: BreakerState) => void;
  /** Names the region in the guard's errors. */
  readonly label: string;
  /** The longest a caller may wait on the backend (the lock wait plus the backend timeout). */
  readonly maxWaitMs: number;
}

/** `backend` wrapped in `proxies` (the first outermost), then in the breaker guard if the region has one. */
export function stackBackend(backend: CacheBackend, proxies: readonly ProxyBackend[], guard: GuardSettings): CacheBackend {
  let outer = backend;
  for (let i = proxies.length - 1; i >= 0; i--) outer = (proxies[i] as ProxyBackend).wrap(outer);
  if (guard.breaker === undefined && guard.timeoutMs === undefined) return outer;
  return new GuardedBackend(outer, guard.breaker, guard.timeoutMs, guard.onState, guard.label, guard.maxWaitMs);
}

/**
 * Why a region has no backend to use: it failed to load (`loadError`, as a BackendError unless it
 * is a DogpileError already), it is still loading, or it was never configured.
 */
export function notReadyError(label: string, loadError: unknown, loading: boolean): DogpileError {
  if (loadError !== undefined) {
    return loadError instanceof DogpileError
      ? loadError
      : new BackendError(`region ${label}: the backend failed to load`, { cause: loadError });
  }
  if (loading) return new DogpileError(`region ${label}: the backend is still loading; await region.ready() first`);
  return new RegionNotConfiguredError(`region ${label} is not configured: call configure() before using it`);
}
