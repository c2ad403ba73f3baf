// Region invalidation strategies: decide whether a value created at `ct` (ms) was invalidated.
// The default keeps its timestamps in this process; a strategy may instead share them through a
// backend (see `sync`), so that `region.invalidate()` reaches every process.

import { type CacheBackend, CachedValue, type Clock, describe, NO_VALUE, VALUE_VERSION, ValidationError } from './api.js';
import { systemClock } from './clock.js';

/**
 * Decides which values a region treats as invalidated. Checks are synchronous because they run on
 * every read; a strategy whose state lives elsewhere refreshes it in `sync()`, which the region
 * awaits before each read while it returns a promise.
 */
export interface RegionInvalidationStrategy {
  /**
   * Invalidates everything created until `at` (ms since the epoch; the region passes its own
   * clock's time, raised past the creation time of any value it stamped in the same millisecond);
   * hard = missing, soft = expired. A strategy written before `at` was passed may ignore it.
   */
  invalidate(hard: boolean, at?: number): void | Promise<void>;
  /** Whether a value created at `createdAt` (ms) is invalidated, softly or hardly. */
  isInvalidated(createdAt: number): boolean;
  /** Whether a value created at `createdAt` (ms since the epoch) is hard-invalidated: read as missing. */
  isHardInvalidated(createdAt: number): boolean;
  /** Whether a value created at `createdAt` (ms since the epoch) is soft-invalidated: read as expired. */
  isSoftInvalidated(createdAt: number): boolean;
  /** Whether the last invalidation was hard. */
  wasHardInvalidated(): boolean;
  /** Whether the last invalidation was soft. */
  wasSoftInvalidated(): boolean;
  /** Optional: refresh shared state; the region awaits it before reads. */
  sync?(): Promise<void> | undefined;
  /** Optional: called by the region with its backend and clock once the backend is ready. */
  bind?(backend: CacheBackend, clock: Clock): void;
}

/**
 * The default strategy, as dogpile.cache's: one timestamp and one mode, in this process only. A
 * later soft invalidation turns an earlier hard one soft for older values.
 */
export class DefaultInvalidationStrategy implements RegionInvalidationStrategy {
  private at = Number.NEGATIVE_INFINITY;
  private hard = false;

  constructor(private readonly clock: Clock = systemClock) {}

  invalidate(hard: boolean, at: number = this.clock.now()): void {
    this.at = at;
    this.hard = hard;
  }
  /** Applies a known invalidation (used by strategies that share state). */
  apply(at: number, hard: boolean): void {
    this.at = at;
    this.hard = hard;
  }
  /** When the last invalidation happened (ms), or -Infinity. */
  get invalidatedAt(): number {
    return this.at;
  }
  isInvalidated(createdAt: number): boolean {
    return createdAt <= this.at;
  }
  isHardInvalidated(createdAt: number): boolean {
    return this.hard && createdAt <= this.at;
  }
  isSoftInvalidated(createdAt: number): boolean {
    return !this.hard && createdAt <= this.at;
  }
  wasHardInvalidated(): boolean {
    return this.hard && this.at > Number.NEGATIVE_INFINITY;
  }
  wasSoftInvalidated(): boolean {
    return !this.hard && this.at > Number.NEGATIVE_INFINITY;
  }
}

/** Options of {@link SharedInvalidationStrategy}. */
export interface SharedInvalidationOptions {
  /** Backend key holding the invalidation record. Default `dogpile:invalidation:<name>`. */
  key?: string;
  /** Name used in the default key (use one per region sharing a backend). Default `default`. */
  name?: string;
  /** How long, in seconds, a process trusts its copy before reading the record again. Default 1. */
  refreshInterval?: number;
}

interface InvalidationRecord {
  at: number;
  hard: boolean;
}

/**
 * Region invalidation shared by every process using the same backend: `invalidate()` writes the
 * timestamp and mode under one key in the backend, and each process re-reads it at most every
 * `refreshInterval` seconds (so other processes see an invalidation within that time). Python's
 * dogpile.cache invalidates only the calling process (its issue #138).
 *
 * ```ts
 * region.configure('redis', { arguments: { url }, regionInvalidator: new SharedInvalidationStrategy({ name: 'users' }) });
 * ```
 */
export class SharedInvalidationStrategy implements RegionInvalidationStrategy {
  private readonly local = new DefaultInvalidationStrategy();
  private readonly key: string;
  private readonly refreshMs: number;
  private backend: CacheBackend | undefined;
  private clock: Clock = systemClock;
  private checkedAt = Number.NEGATIVE_INFINITY;
  private pending: Promise<void> | undefined;

  constructor(options: SharedInvalidationOptions = {}) {
    const interval = options.refreshInterval ?? 1;
    if (typeof interval !== 'number' || !(interval >= 0) || !Number.isFinite(interval)) {
      throw new ValidationError(`SharedInvalidationStrategy: refreshInterval must be seconds >= 0, got ${describe(interval)}`);
    }
    this.refreshMs = interval * 1000;
    this.key = options.key ?? `dogpile:invalidation:${options.name ?? 'default'}`;
  }

  bind(backend: CacheBackend, clock: Clock): void {
    this.backend = backend;
    this.clock = clock;
    this.checkedAt = Number.NEGATIVE_INFINITY;
  }

  async invalidate(hard: boolean, at: number = this.clock.now()): Promise<void> {
    const backend = this.requireBackend();
    const record: InvalidationRecord = { at, hard };
    await backend.set(this.key, new CachedValue(record, { ct: at, v: VALUE_VERSION }));
    this.local.apply(at, hard);
    this.checkedAt = at;
  }

  sync(): Promise<void> | undefined {
    if (this.pending) return this.pending;
    const now = this.clock.now();
    if (now - this.checkedAt < this.refreshMs) return undefined;
    this.pending = this.refresh(now).finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  private async refresh(now: number): Promise<void> {
    const found = await this.requireBackend().get(this.key);
    this.checkedAt = now;
    if (found === NO_VALUE) return;
    const record = found.payload as Partial<InvalidationRecord> | null;
    if (record && typeof record.at === 'number' && typeof record.hard === 'boolean' && record.at >= this.local.invalidatedAt) {
      this.local.apply(record.at, record.hard);
    }
  }

  /** Applies an invalidation another process announced (on an L1 bus), if newer than the one known. */
  apply(at: number, hard: boolean): void {
    if (at >= this.local.invalidatedAt) this.local.apply(at, hard);
  }

  /** When the last known invalidation happened (ms), or -Infinity. */
  get invalidatedAt(): number {
    return this.local.invalidatedAt;
  }

  private requireBackend(): CacheBackend {
    if (!this.backend) throw new ValidationError('SharedInvalidationStrategy is not bound to a region backend yet');
    return this.backend;
  }

  isInvalidated(createdAt: number): boolean {
    return this.local.isInvalidated(createdAt);
  }
  isHardInvalidated(createdAt: number): boolean {
    return this.local.isHardInvalidated(createdAt);
  }
  isSoftInvalidated(createdAt: number): boolean {
    return this.local.isSoftInvalidated(createdAt);
  }
  wasHardInvalidated(): boolean {
    return this.local.wasHardInvalidated();
  }
  wasSoftInvalidated(): boolean {
    return this.local.wasSoftInvalidated();
  }
}

/**
 * Applies an invalidation another process announced (on an L1 bus) to `strategy`, when it takes
 * them (`apply`, as the built-in strategies do) and has recorded none newer.
 */
export function applyRemoteInvalidation(strategy: RegionInvalidationStrategy, at: number, hard: boolean): void {
  const s = strategy as Partial<{ apply(at: number, hard: boolean): void; invalidatedAt: number }>;
  if (typeof s.apply === 'function' && !((s.invalidatedAt ?? Number.NEGATIVE_INFINITY) > at)) s.apply(at, hard);
}
