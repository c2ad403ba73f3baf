// How a region gets its backend and what it stacks on it: configure()'s backend argument opened (a
// registered name or module specifier through its factory, or an instance), the proxies of `wrap`
// and the breaker guard (src/breaker.ts) put around it, and the error a region without a usable
// backend throws. The L1 tier in front of it all is src/tiered.ts.

import {
  type BackendContext,
  BackendError,
  type BackendFactory,
  type CacheBackend,
  type Clock,
  DogpileError,
  describe,
  RegionNotConfiguredError,
  ValidationError,
} from './api.js';
import type { ProxyBackend } from './backends/base.js';
import { type BreakerState, GuardedBackend } from './breaker.js';
import type { ConfigureOptions } from './config.js';
import { DefaultInvalidationStrategy, type RegionInvalidationStrategy } from './invalidation.js';
import { toProxy } from './proxies.js';
import { checkInvalidator, NEVER, toExpirationMs } from './region-checks.js';
import { lookupBackend } from './registry.js';
import { checkL1Options, checkL1Placement, type L1Options } from './tiered.js';

/** What configure() takes from its options, checked. */
export interface ConfigureParts {
  /** `expirationTime` in ms, or NEVER. */
  readonly expirationMs: number;
  readonly args: object;
  readonly proxies: ProxyBackend[];
  readonly invalidator: RegionInvalidationStrategy;
  /** The L1 to put in front (the call's, else the region's), checked against the backend. */
  readonly l1: L1Options | undefined;
}

/**
 * configure()'s options checked and parsed (past the checks of the options object itself): the
 * expiration, the factory arguments, the proxies of `wrap` (made for `owner`), the invalidation
 * strategy (a new default one on `clock` if none is given) and the L1 (the region's `regionL1` if
 * the call names none).
 */
export function parseConfigure(
  backend: string | CacheBackend,
  options: ConfigureOptions<object>,
  owner: object,
  clock: Clock,
  regionL1: L1Options | undefined,
): ConfigureParts {
  const expirationMs = toExpirationMs(options.expirationTime, 'expirationTime');
  const args = options.arguments ?? {};
  if (args === null || typeof args !== 'object') {
    throw new ValidationError(`configure: arguments must be an object, got ${describe(args)}`);
  }
  if (options.wrap !== undefined && !Array.isArray(options.wrap)) {
    throw new ValidationError(
      `configure: wrap must be an array of ProxyBackend classes or instances, got ${describe(options.wrap)}`,
    );
  }
  const proxies = (options.wrap ?? []).map((spec) => toProxy(spec, owner));
  if (new Set(proxies).size !== proxies.length) {
    throw new ValidationError('configure: wrap lists the same proxy instance twice (it would forward to itself)');
  }
  const invalidator = options.regionInvalidator ?? new DefaultInvalidationStrategy(clock);
  checkInvalidator(invalidator);
  const l1 = options.l1 ?? regionL1;
  if (l1 !== undefined) {
    checkL1Options(l1, options.l1 === undefined ? 'l1' : 'configure: l1');
    checkL1Placement(l1, backend, expirationMs === NEVER ? null : expirationMs / 1000);
  }
  return { expirationMs, args, proxies, invalidator, l1 };
}

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
