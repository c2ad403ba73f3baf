// The shared half of a leased, token-owned lock (memcached and file backends): taking it, with
// polling until lockWaitTimeout; renewing the lease every third of its length while held; and
// aborting the holder's signal with LockLostError once ownership is gone.

import { setTimeout as sleep } from 'node:timers/promises';
import { type CacheMutex, LockLostError } from '../api.js';

/** Timing of a leased lock, in milliseconds. */
export interface LeaseTiming {
  /** Lease length: a holder that stops renewing loses the lock after this long. */
  readonly leaseMs: number;
  /** Longest wait in `acquire(true)`. */
  readonly waitMs: number;
}

/**
 * A lock whose holder owns it through a random token and keeps it by renewing a lease. Subclasses
 * say how to take, renew and free it in their store; this class runs the waiting, the renewal
 * timer and the loss of ownership:
 * - `acquire(true)` retries every 5 ms, growing to 50 ms, until `waitMs` has passed.
 * - While held, the lease is renewed every `leaseMs / 3`. A renewal that finds another token
 *   (`renew` resolves false) ends ownership at once; renewals that fail (reject) end it once none
 *   has succeeded for a whole lease, since the lease may have run out meanwhile.
 * - On loss, `signal` is aborted with a {@link LockLostError}.
 */
export abstract class LeasedMutex<Token> implements CacheMutex {
  private token: Token | undefined;
  private renewal: ReturnType<typeof setInterval> | undefined;
  private controller = new AbortController();

  constructor(
    private readonly timing: LeaseTiming,
    /** How errors name this lock, e.g. `memcached lock "k"`. */
    private readonly label: string,
  ) {}

  /** Aborted when this holder lost the lock. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** A fresh random token. */
  protected abstract newToken(): Token;
  /** Takes the lock for `token` if it is free; true when taken. */
  protected abstract take(token: Token): Promise<boolean>;
  /** Extends the lease if `token` still owns the lock; false when another holder has it. */
  protected abstract renew(token: Token): Promise<boolean>;
  /** Frees the lock only if `token` still owns it. */
  protected abstract free(token: Token): Promise<void>;
  abstract locked(): Promise<boolean>;

  async acquire(wait: boolean): Promise<boolean> {
    if (this.token !== undefined) return false;
    const token = this.newToken();
    let won = await this.take(token);
    if (!won && wait) {
      const deadline = Date.now() + this.timing.waitMs;
      let delay = 5;
      while (!won && Date.now() < deadline) {
        await sleep(Math.min(delay, Math.max(1, deadline - Date.now())));
        delay = Math.min(delay * 1.5, 50);
        won = await this.take(token);
      }
    }
    if (!won) return false;
    this.token = token;
    this.controller = new AbortController();
    this.startRenewal(token);
    return true;
  }

  async release(): Promise<void> {
    const token = this.token;
    if (token === undefined) return;
    this.stopRenewal();
    this.token = undefined;
    await this.free(token);
  }

  private startRenewal(token: Token): void {
    let confirmedAt = Date.now();
    this.renewal = setInterval(() => {
      this.renew(token).then(
        (ours) => {
          if (this.token !== token) return;
          if (ours) confirmedAt = Date.now();
          else this.lost('another holder took it');
        },
        () => {
          // The store cannot be reached: once the lease may have run out, ownership is gone.
          if (this.token === token && Date.now() - confirmedAt >= this.timing.leaseMs) {
            this.lost('no renewal succeeded for a whole lease');
          }
        },
      );
    }, this.timing.leaseMs / 3);
    this.renewal.unref?.();
  }

  private lost(why: string): void {
    this.stopRenewal();
    this.token = undefined;
    this.controller.abort(new LockLostError(`${this.label} was lost: ${why}`));
  }

  private stopRenewal(): void {
    if (this.renewal) clearInterval(this.renewal);
    this.renewal = undefined;
  }
}
