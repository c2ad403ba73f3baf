// Waiting in tests without fixed sleeps: poll a condition until it holds or time runs out.

import { setTimeout as sleep } from 'node:timers/promises';

export { sleep };

/**
 * Resolves true as soon as `cond()` holds (it may be async), or false after `ms`. It never throws
 * on timeout, so the test's own assertion that follows says what went wrong.
 */
export async function until(cond: () => boolean | Promise<boolean>, ms: number, stepMs = 20): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(stepMs);
  }
}
