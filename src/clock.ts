// Clocks. The default one reads Date.now() at most once per event-loop turn (and at least every
// 1,024 reads), because a Date.now() on every cache hit costs about a quarter of a memory hit.
// Expiry is counted in seconds, so a clock that lags by one turn changes nothing a user can see.

import type { Clock } from './api.js';

let cachedNow = 0;
let readsLeft = 0;

function expire(): void {
  readsLeft = 0;
}

/** The default clock: wall time, refreshed once per event-loop turn. */
export const coarseClock: Clock = {
  now(): number {
    if (readsLeft-- > 0) return cachedNow;
    if (readsLeft === -1) setImmediate(expire); // first read of this turn: refresh at the next
    readsLeft = 1024;
    cachedNow = Date.now();
    return cachedNow;
  },
};

/** A clock that reads Date.now() every time. */
export const systemClock: Clock = { now: () => Date.now() };

/** A clock for tests: time moves only when told to. */
export class ManualClock implements Clock {
  constructor(private current = 1_700_000_000_000) {}
  now(): number {
    return this.current;
  }
  /** Moves time forward by `seconds` (fractions allowed). */
  advance(seconds: number): void {
    this.current += seconds * 1000;
  }
  /** Sets the time, in milliseconds since the epoch. */
  set(ms: number): void {
    this.current = ms;
  }
}
