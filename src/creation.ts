// The creation side of a region: which policies a call runs under (fail-safe, creator timeouts),
// running the creator under them, storing its value, serving fail-safe when it fails, and the
// events and counters of all that. The region composes it with the lock (regenerate in region.ts);
// kept apart so region.ts stays the public front.

import { type CacheBackend, type CachedValue, type Clock, CreatorTimeoutError, LockLostError } from './api.js';
import { type CreatorTimeouts, parseTimeouts, runCreator } from './creator-timeouts.js';
import type { CreateOutcome, RegionEvents } from './events.js';
import {
  FailSafeMemory,
  type FailSafeOptions,
  type FailSafePolicy,
  fallbackDeadline,
  parseFailSafe,
  servableUntil,
} from './failsafe.js';
import { checkTags } from './tags.js';

/**
 * The context one creation's creator receives (`CreatorContext` in region.ts): its key, the lock's
 * signal, and the tags it adds to the value it creates, read once when the creator has returned.
 */
class CreationContext {
  private added: string[] | undefined;
  private closed = false;

  constructor(
    readonly key: string,
    readonly signal: AbortSignal | undefined,
  ) {}

  addTags(tags: readonly string[]): void {
    checkTags(tags, 'CreatorContext.addTags: tags');
    if (this.closed) return;
    this.added ??= [];
    for (const t of tags) if (!this.added.includes(t)) this.added.push(t);
  }

  /** `tags` plus the added ones not in it (`undefined` when none were added); later additions are ignored. */
  tagsWith(tags: readonly string[] | undefined): readonly string[] | undefined {
    this.closed = true;
    const added = this.added;
    if (added === undefined) return undefined;
    if (tags === undefined || tags.length === 0) return added;
    return [...tags, ...added.filter((t) => !tags.includes(t))];
  }
}

/** The creation policies in force for one call. */
export interface CallPolicy {
  readonly failSafe: FailSafePolicy | undefined;
  readonly timeouts: CreatorTimeouts;
}

/** The per-call options that can replace the region's policies. */
export interface PolicyOverrides {
  failSafe?: FailSafeOptions | false | undefined;
  softTimeout?: number | null | undefined;
  hardTimeout?: number | null | undefined;
}

/** What a creator receives (see CreatorContext in region.ts). */
type Creator<T> = (context: CreationContext) => T | Promise<T>;
type Attributes = Readonly<Record<string, string>> | undefined;

/** What the creation side needs of its region. */
export interface CreationHost {
  readonly name: string | undefined;
  readonly clock: Clock;
  /** Stamps a new value's metadata (creation time after any invalidation, duration, `fs`, tags). */
  stamp(payload: unknown, started: number | undefined, fs: number | undefined, tags: readonly string[] | undefined): CachedValue;
  /** Writes through the region's backend-failure policy (fail-open: failures are reported, not thrown). */
  write(key: string, op: () => Promise<void>): Promise<void>;
  /** The region, so that its wrappers can check their options against its policies ({@link checkWrapperPolicy}). */
  readonly owner?: object;
}

/** What {@link Creations.policyFor} remembers of the last overrides it parsed. */
interface LastOverrides {
  readonly failSafe: PolicyOverrides['failSafe'];
  readonly softTimeout: PolicyOverrides['softTimeout'];
  readonly hardTimeout: PolicyOverrides['hardTimeout'];
  readonly maxStale: number | undefined;
  readonly retryAfter: number | undefined;
  readonly policy: CallPolicy;
}

/** Each region's creation side, by region (for the wrappers' checks). */
const regionCreations = new WeakMap<object, Creations>();

/**
 * Validates a function wrapper's `failSafe`, `softTimeout` and `hardTimeout` when it is made
 * (a ValidationError naming the option and `where`), against its region's policies: a wrapper's
 * `softTimeout` must be below the `hardTimeout` it will run under, its own or the region's.
 */
export function checkWrapperPolicy(region: object, options: PolicyOverrides, where: string): void {
  const inherited = regionCreations.get(region)?.policy.timeouts;
  parseFailSafe(options.failSafe, where);
  parseTimeouts(options.softTimeout, options.hardTimeout, where, inherited);
}

/** A region's creation policies, fail-safe state and creation accounting. */
export class Creations {
  /** Fail-safe's throttle and fallback copies; created when a region or a call turns fail-safe on. */
  memory: FailSafeMemory | undefined;
  /** The overrides {@link policyFor} parsed last, and what it made of them. */
  private lastOverrides: LastOverrides | undefined;

  constructor(
    private readonly host: CreationHost,
    private readonly events: RegionEvents,
    /** The region's own policies (from makeRegion options). */
    readonly policy: CallPolicy,
  ) {
    if (policy.failSafe) this.memory = new FailSafeMemory();
    if (host.owner !== undefined) regionCreations.set(host.owner, this);
  }

  /** Parses the region options' policies. */
  static parse(options: PolicyOverrides): CallPolicy {
    return {
      failSafe: parseFailSafe(options.failSafe, 'makeRegion') || undefined,
      timeouts: parseTimeouts(options.softTimeout, options.hardTimeout, 'makeRegion'),
    };
  }

  /**
   * The policies of a call: the region's, with what the call gives replacing them. Validates what
   * the call gives (a ValidationError naming the option and `where`). The last call's overrides
   * are remembered, so a wrapper that passes the same ones on every call parses them once.
   */
  policyFor(options: PolicyOverrides | undefined, where = 'getOrCreate'): CallPolicy {
    if (options === undefined) return this.policy;
    const { failSafe, softTimeout, hardTimeout } = options;
    if (failSafe === undefined && softTimeout === undefined && hardTimeout === undefined) return this.policy;
    const last = this.lastOverrides;
    if (
      last !== undefined &&
      last.failSafe === failSafe &&
      last.softTimeout === softTimeout &&
      last.hardTimeout === hardTimeout &&
      (typeof failSafe !== 'object' || (failSafe.maxStale === last.maxStale && failSafe.retryAfter === last.retryAfter))
    ) {
      return last.policy;
    }
    const parsedFailSafe = parseFailSafe(failSafe, where);
    const policy: CallPolicy = {
      failSafe: parsedFailSafe === undefined ? this.policy.failSafe : parsedFailSafe || undefined,
      timeouts: parseTimeouts(softTimeout, hardTimeout, where, this.policy.timeouts),
    };
    this.lastOverrides = {
      failSafe,
      softTimeout,
      hardTimeout,
      maxStale: typeof failSafe === 'object' && failSafe !== null ? failSafe.maxStale : undefined,
      retryAfter: typeof failSafe === 'object' && failSafe !== null ? failSafe.retryAfter : undefined,
      policy,
    };
    return policy;
  }

  /** Counts and reports the keys a soft timeout answered with their stale values (mangled; `originalOf` gives them as asked). */
  softTimedOut(keys: readonly string[], originalOf: ReadonlyMap<string, string>): void {
    for (const k of keys) this.staleServed(originalOf.get(k) ?? k, undefined);
  }

  /** Fail-safe state, made on first use. */
  failSafe(): FailSafeMemory {
    this.memory ??= new FailSafeMemory();
    return this.memory;
  }

  /** With fail-safe on and the key throttled after a failure: counts and reports serving `stale` without a creation. */
  servesThrottled(policy: CallPolicy, key: string, mangled: string, stale: CachedValue, attributes: Attributes): boolean {
    if (!policy.failSafe || !this.failSafe().throttled(mangled, stale, this.host.clock.now())) return false;
    this.events.failSafeServed++;
    this.staleServed(key, attributes);
    if (this.events.heard.failSafe) this.events.emit('failSafe', { region: this.host.name, key, attributes, throttled: true });
    return true;
  }

  /**
   * Runs the creator (with hardTimeout), stores its value (unless `shouldCache` says no) and
   * returns it; when it fails and fail-safe can serve `stale`, returns the stale payload instead.
   * `timed`: store how long the creation took (`d`), for early refresh.
   */
  async create<T>(
    backend: CacheBackend,
    key: string,
    mangled: string,
    creator: Creator<T>,
    signal: AbortSignal | undefined,
    expMs: number,
    policy: CallPolicy,
    stale: CachedValue | undefined,
    shouldCache: ((value: T) => boolean) | undefined,
    attributes: Attributes,
    tags?: readonly string[],
    timed = false,
  ): Promise<T> {
    const events = this.events;
    const started = this.host.clock.now();
    events.creations++;
    if (events.heard.createStart) events.emit('createStart', { region: this.host.name, key, attributes });
    if (signal && events.heard.lockLost) {
      signal.addEventListener(
        'abort',
        () => {
          if (signal.reason instanceof LockLostError) events.emit('lockLost', { region: this.host.name, key, attributes });
        },
        { once: true },
      );
    }
    const t0 = performance.now();
    let value: T;
    let context: CreationContext | undefined;
    try {
      value = await runCreator(
        (s) => {
          context = new CreationContext(key, s);
          return creator(context);
        },
        signal,
        policy.timeouts.hardMs,
        key,
      );
    } catch (err) {
      events.creationErrors++;
      this.ended(key, attributes, t0, err instanceof CreatorTimeoutError ? 'timeout' : 'error');
      if (policy.failSafe && stale && this.serveFailSafe(backend, key, mangled, stale, expMs, policy.failSafe, err)) {
        return stale.payload as T;
      }
      throw err;
    }
    this.ended(key, attributes, t0, 'ok');
    if (shouldCache && !shouldCache(value)) return value;
    const fs = fallbackDeadline(started, expMs, policy.failSafe);
    // The creation duration is kept only for early refresh, its one reader: without it a value is
    // 8 bytes smaller in memory (a CachedValue, not the form with a duration slot) and in bytes.
    const stored = this.host.stamp(value, timed ? started : undefined, fs, context?.tagsWith(tags) ?? tags);
    await this.host.write(key, () => backend.set(mangled, stored));
    if (policy.failSafe) this.failSafe().remember(mangled, stored);
    return value;
  }

  /**
   * The multi-key creation: runs `call` (the creator, given the keys that need values) under
   * hardTimeout. When it fails and fail-safe can serve a stale value for every one of `keys`
   * (mangled; `originals` as given), returns those (`served`), throttling each key.
   */
  async createMulti<T>(
    backend: CacheBackend,
    keys: readonly string[],
    originals: readonly string[],
    call: () => readonly T[] | Promise<readonly T[]>,
    policy: CallPolicy,
    stale: ReadonlyMap<string, CachedValue> | undefined,
    expMs: number,
  ): Promise<{ readonly served: boolean; readonly values: readonly T[] }> {
    const events = this.events;
    events.creations++;
    if (events.heard.createStart) {
      for (const key of originals) events.emit('createStart', { region: this.host.name, key });
    }
    const t0 = performance.now();
    try {
      const values = await runCreator(() => call(), undefined, policy.timeouts.hardMs, originals.join(', '));
      this.endedMulti(originals, t0, 'ok');
      return { served: false, values };
    } catch (err) {
      events.creationErrors++;
      this.endedMulti(originals, t0, err instanceof CreatorTimeoutError ? 'timeout' : 'error');
      const failSafe = policy.failSafe;
      const now = this.host.clock.now();
      const all =
        failSafe !== undefined &&
        stale !== undefined &&
        keys.every((k) => {
          const v = stale.get(k);
          return v !== undefined && now <= servableUntil(v, expMs, failSafe);
        });
      if (!all) throw err;
      const values = keys.map((k, i) => {
        const v = stale.get(k) as CachedValue;
        this.serveFailSafe(backend, originals[i] as string, k, v, expMs, failSafe, err);
        return v.payload as T;
      });
      return { served: true, values };
    }
  }

  /** Counts and reports a stale value returned. */
  staleServed(key: string, attributes: Attributes): void {
    this.events.stale++;
    if (this.events.heard.stale) this.events.emit('stale', { region: this.host.name, key, attributes });
  }

  /** Counts and reports a read that found nothing usable. */
  missed(key: string, attributes: Attributes): void {
    this.events.misses++;
    if (this.events.heard.miss) this.events.emit('miss', { region: this.host.name, key, attributes });
  }

  /** Counts and reports a wait for another caller's creation or a distributed lock. */
  lockWaited(key: string, durationMs: number, attributes?: Attributes): void {
    this.events.lockWaits++;
    if (this.events.heard.lockWait) this.events.emit('lockWait', { region: this.host.name, key, durationMs, attributes });
  }

  /** Counts and reports a wait that gave up. */
  lockTimedOut(key: string, attributes: Attributes): void {
    this.events.lockTimeouts++;
    if (this.events.heard.lockTimeout) this.events.emit('lockTimeout', { region: this.host.name, key, attributes });
  }

  /** Fail-safe after a failed creation: serves `stale` if it is recent enough, and throttles the key. */
  private serveFailSafe(
    backend: CacheBackend,
    key: string,
    mangled: string,
    stale: CachedValue,
    expMs: number,
    failSafe: FailSafePolicy,
    error: unknown,
  ): boolean {
    const now = this.host.clock.now();
    if (now > servableUntil(stale, expMs, failSafe)) return false;
    const throttled = this.failSafe().throttle(mangled, stale, now, failSafe);
    // Written back with its retry time, so other processes sharing the backend wait too.
    this.host.write(key, () => backend.set(mangled, throttled)).catch(() => {});
    this.events.failSafeServed++;
    this.staleServed(key, undefined);
    if (this.events.heard.failSafe) this.events.emit('failSafe', { region: this.host.name, key, error, throttled: false });
    return true;
  }

  private endedMulti(keys: readonly string[], t0: number, outcome: CreateOutcome): void {
    const durationMs = performance.now() - t0;
    this.events.recordDuration(durationMs);
    if (!this.events.heard.create) return;
    for (const key of keys) this.events.emit('create', { region: this.host.name, key, durationMs, outcome });
  }

  private ended(key: string, attributes: Attributes, t0: number, outcome: CreateOutcome): void {
    const durationMs = performance.now() - t0;
    this.events.recordDuration(durationMs);
    if (this.events.heard.create) this.events.emit('create', { region: this.host.name, key, durationMs, outcome, attributes });
  }
}
