// Input checks shared by the region, the wrappers and the backends: unknown option and argument
// names (a misspelling is an error, never silently ignored), and times in seconds (fractions
// allowed, bounded so that no timer overflows). Every failure is a ValidationError that names the
// option and the value.

import { describe, ValidationError } from './api.js';

/**
 * The longest time a Node.js timer can wait: 2^31 - 1 ms, about 24.8 days. A longer delay makes
 * `setTimeout` fire after 1 ms instead (with only a warning), so a longer timeout would end at once.
 */
export const MAX_TIMER_SECONDS = 2_147_483.647;

/**
 * Throws a {@link ValidationError} if `value` has an own property not in `known`, naming it and
 * listing the allowed names (and the nearest one, when the name looks like a misspelling of it).
 */
export function checkKnownNames(where: string, what: string, value: object, known: readonly string[]): void {
  for (const name of Object.keys(value)) {
    if (known.includes(name)) continue;
    const near = nearest(name, known);
    throw new ValidationError(
      `${where}: unknown ${what} ${JSON.stringify(name)}${near ? ` (did you mean ${JSON.stringify(near)}?)` : ''}; allowed: ${known.length ? known.join(', ') : '(none)'}`,
    );
  }
}

/** How a seconds value is checked by {@link checkSeconds}. */
export interface SecondsRule {
  /** Smallest allowed value. Default: 0 exclusive (see `allowZero`). */
  readonly min?: number;
  /** Whether 0 is allowed (when `min` is not given). Default false. */
  readonly allowZero?: boolean;
  /** Largest allowed value. Default {@link MAX_TIMER_SECONDS} (the value drives a timer). */
  readonly max?: number;
}

/**
 * `value` as a number of seconds, fractions allowed, or `fallback` when it is undefined or null.
 * Anything else (a string, NaN, Infinity, out of range) is a ValidationError naming `name`.
 */
export function checkSeconds(where: string, name: string, value: unknown, fallback: number, rule?: SecondsRule): number;
export function checkSeconds(
  where: string,
  name: string,
  value: unknown,
  fallback: undefined,
  rule?: SecondsRule,
): number | undefined;
export function checkSeconds(
  where: string,
  name: string,
  value: unknown,
  fallback: number | undefined,
  rule: SecondsRule = {},
): number | undefined {
  if (value === undefined || value === null) return fallback;
  const max = rule.max ?? MAX_TIMER_SECONDS;
  const min = rule.min;
  const ok =
    typeof value === 'number' &&
    Number.isFinite(value) &&
    value <= max &&
    (min !== undefined ? value >= min : rule.allowZero ? value >= 0 : value > 0);
  if (!ok) {
    const low = min !== undefined ? `>= ${min}` : rule.allowZero ? '>= 0' : '> 0';
    throw new ValidationError(
      `${where}: ${name} must be a number of seconds ${low} and <= ${max} (fractions allowed), got ${describe(value)}`,
    );
  }
  return value;
}

/** Throws unless `value` is undefined or a function. */
export function checkOptionalFunction(where: string, name: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'function') {
    throw new ValidationError(`${where}: ${name} must be a function, got ${describe(value)}`);
  }
}

/** Throws unless `value` is undefined or a plain object (not an array, not a class instance). */
export function checkPlainObject(where: string, name: string, value: unknown): void {
  if (value === undefined) return;
  const proto = value !== null && typeof value === 'object' ? Object.getPrototypeOf(value) : undefined;
  if (proto !== Object.prototype && proto !== null) {
    throw new ValidationError(`${where}: ${name} must be a plain object, got ${describe(value)}`);
  }
}

/** The known name closest to `name` (case-insensitive edit distance <= 2), if any. */
function nearest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  const lower = name.toLowerCase();
  for (const candidate of known) {
    const d = editDistance(lower, candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, (previous[j - 1] as number) + cost);
    }
    previous = current;
  }
  return previous[b.length] as number;
}
