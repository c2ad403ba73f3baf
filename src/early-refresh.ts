// Probabilistic early refresh, XFetch (Vattani, Chierichetti, Lowenstein, "Optimal Probabilistic
// Cache Stampede Prevention", VLDB 2015). On a fresh hit, the value is regenerated early when
//
//     now - delta * beta * ln(random()) >= expiry
//
// where delta is how long the value took to create (the envelope's `d`, ms) and beta > 0 scales
// how early (1 is the paper's optimum; more is earlier). The chance rises exponentially as expiry
// nears, and values that are slow to create start earlier. The paper shows this exponential form
// minimises the expected stampede for a given freshness loss. Values without a known creation
// time (stored by `set`) are never refreshed early. The region runs the refresh in the background
// with a try-lock, so at most one caller per key (across processes, with a distributed lock)
// regenerates while everyone keeps getting the current value.

import { describe, ValidationError } from './api.js';

/**
 * Whether a fresh value created at `ct` (ms) that took `delta` ms to create should be regenerated
 * now, `expMs` after creation being its expiry. `random` is injectable for tests.
 */
export function shouldRefreshEarly(
  ct: number,
  delta: number | undefined,
  expMs: number,
  now: number,
  beta: number,
  random: () => number = Math.random,
): boolean {
  if (delta === undefined || !(delta > 0) || !(expMs > 0) || !(beta > 0)) return false;
  const remaining = ct + expMs - now;
  // -ln(U) for U uniform in (0, 1]: an exponential draw with mean 1.
  return delta * beta * -Math.log(1 - random()) >= remaining;
}

/** Checks an `earlyRefresh` option: a number of at least 0 (0 turns it off). */
export function checkEarlyRefresh(value: unknown, name = 'earlyRefresh'): asserts value is number | undefined {
  if (value !== undefined && !(typeof value === 'number' && value >= 0 && Number.isFinite(value))) {
    throw new ValidationError(`${name} must be a number >= 0 (beta; 1 is typical, 0 is off), got ${describe(value)}`);
  }
}
