// What the parts of a region share: the collaborators a CacheRegion is made of, and the two
// judgements that depend on its current configuration (how fresh a read value is, and the metadata
// a new value gets). The region builds one at construction and hands it to its regeneration path
// (src/regeneration.ts) and its multi-key path (src/region-multi.ts). An interface, so that those
// modules do not import region.ts.

import type { CacheBackend, CachedValue, Clock, NoValue } from './api.js';
import type { BackendGuard } from './backend-guard.js';
import type { Creations } from './creation.js';
import type { RegionEvents } from './events.js';
import type { DogpileLock, Lookup } from './lock.js';
import type { TagIndex } from './tags.js';

/** The shared parts of one region. Internal. */
export interface RegionCore {
  readonly clock: Clock;
  readonly events: RegionEvents;
  readonly creations: Creations;
  readonly guard: BackendGuard;
  readonly tagIndex: TagIndex;
  readonly lock: DogpileLock;
  /** `lockWaitTimeout` in milliseconds. */
  readonly waitTimeoutMs: number;
  /** The loaded backend, once a shared invalidation strategy has synced (the region's errors otherwise). */
  backendForRead(): Promise<CacheBackend>;
  /** The region's expiration (ms), or a call's `expirationTime` (seconds) in ms. */
  expirationFor(expirationTime: number | null | undefined): number;
  /** Applies the region's key mangler. */
  mangle(key: string): string;
  /** A read value judged under the region's invalidation, tags and `expMs`: fresh, stale or missing. */
  lookup<T>(v: CachedValue | NoValue, expMs: number): Lookup<T>;
  /**
   * Whether `v` is fresh, as the single-key read judges it (builds nothing: the warm path of a
   * multi-read). A tag whose times are not known reads as not fresh here; {@link lookup} decides it.
   */
  isFresh(v: CachedValue | NoValue, expMs: number): boolean;
  /** Whether the region refreshes early, so that its values keep their creation duration. */
  readonly timesCreations: boolean;
  /** `payload` as a new value of this region (creation time, duration since `started`, fail-safe deadline, tags). */
  newValue(payload: unknown, started?: number, fs?: number, tags?: readonly string[]): CachedValue;
}
