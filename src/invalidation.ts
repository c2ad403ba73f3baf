// Region invalidation strategies: decide whether a value created at `ct` (ms) was invalidated.
// The default keeps its timestamps in this process; a strategy may instead share them through a
// backend (see `sync`), so that `region.invalidate()` reaches every process.

import type { Clock } from './api.js';

/**
 * Decides which values a region treats as invalidated. Checks are synchronous because they run on
 * every read; a strategy whose state lives elsewhere refreshes it in `sync()`, which the region
 * awaits before each read while it returns a promise.
 */
export interface RegionInvalidationStrategy {
  /** Invalidates everything created until now; hard = missing, soft = expired. */
  invalidate(hard: boolean): void | Promise<void>;
  /** Whether a value created at `createdAt` (ms) is invalidated, softly or hardly. */
  isInvalidated(createdAt: number): boolean;
  isHardInvalidated(createdAt: number): boolean;
  isSoftInvalidated(createdAt: number): boolean;
  /** Whether the last invalidation was hard. */
  wasHardInvalidated(): boolean;
  /** Whether the last invalidation was soft. */
  wasSoftInvalidated(): boolean;
  /** Optional: refresh shared state; the region awaits it before reads. */
  sync?(): Promise<void> | undefined;
}

/**
 * The default strategy, as dogpile.cache's: one timestamp and one mode, in this process only. A
 * later soft invalidation turns an earlier hard one soft for older values.
 */
export class DefaultInvalidationStrategy implements RegionInvalidationStrategy {
  private at = Number.NEGATIVE_INFINITY;
  private hard = false;

  constructor(private readonly clock: Clock = { now: () => Date.now() }) {}

  invalidate(hard: boolean): void {
    this.at = this.clock.now();
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
