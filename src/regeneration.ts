// The single-key regeneration path of a region: what getOrCreate does when it has no fresh value
// (fail-safe throttling, the dogpile lock, the creation, a background hand-off), and the
// probabilistic early refresh (XFetch) of a fresh one. The algorithm is src/lock.ts; the creation
// and its policies src/creation.ts; this module wires them for one key.

import {
  type CacheBackend,
  type CachedValue,
  describe,
  LockTimeoutError,
  NO_VALUE,
  type NoValue,
  ValidationError,
} from './api.js';
import type { CallPolicy } from './creation.js';
import { checkEarlyRefresh, shouldRefreshEarly } from './early-refresh.js';
import type { AsyncHandOff, Lookup } from './lock.js';
import { badShouldCacheFn, once } from './region-checks.js';
import type { RegionCore } from './region-core.js';
import type { CreatorContext, GetOrCreateOptions } from './region-options.js';
import { checkTags } from './tags.js';

/** A region's `asyncCreationRunner` with the region bound: runs `create`, then `mutex.release()`. */
export type BackgroundRunner = (
  key: string,
  create: () => Promise<unknown>,
  mutex: { release(): Promise<void> },
) => void | Promise<void>;

/** getOrCreate's creator. */
type Creator<T> = (context: CreatorContext) => T | Promise<T>;

/** Regeneration of one region's keys. Internal: the region calls it. */
export class Regeneration {
  /**
   * @param runner The region's `asyncCreationRunner`, if any.
   * @param handOff Whether stale values are regenerated in the background (a runner, or `backgroundRefresh`).
   * @param earlyBeta The region's XFetch beta (`earlyRefresh`); 0 = off.
   */
  constructor(
    private readonly core: RegionCore,
    private readonly runner: BackgroundRunner | undefined,
    private readonly handOff: boolean,
    readonly earlyBeta: number,
  ) {}

  /** The dogpile path for a key with no fresh value: throttle, lock, create (see lock.ts). */
  regenerate<T>(
    backend: CacheBackend,
    key: string,
    mangled: string,
    found: CachedValue | NoValue,
    expMs: number,
    creator: Creator<T>,
    options: GetOrCreateOptions<T> | undefined,
  ): Promise<T> {
    if (typeof creator !== 'function') {
      return Promise.reject(new ValidationError(`getOrCreate: creator must be a function, got ${describe(creator)}`));
    }
    const core = this.core;
    const creations = core.creations;
    let policy: CallPolicy;
    const tags = options?.tags;
    try {
      policy = creations.policyFor(options);
      if (tags !== undefined) checkTags(tags, 'getOrCreate: tags');
    } catch (err) {
      return Promise.reject(err);
    }
    const attributes = options?.attributes;
    const first = core.lookup<T>(found, expMs);
    const stale = first.state === 'missing' ? undefined : (found as CachedValue);
    if (stale && creations.servesThrottled(policy, key, mangled, stale, attributes)) return Promise.resolve(stale.payload as T);
    const flying = core.lock.isFlying(mangled);
    if (stale && flying) creations.staleServed(key, attributes);
    else creations.missed(key, attributes);
    const shouldCache = options?.shouldCacheFn;
    if (shouldCache !== undefined && typeof shouldCache !== 'function') {
      return Promise.reject(badShouldCacheFn('getOrCreate', shouldCache));
    }
    // Early refresh (the region's or this call's) reads the creation duration; nothing else does.
    const timed = (options?.earlyRefresh ?? this.earlyBeta) !== 0;
    const create = (signal: AbortSignal | undefined): Promise<T> =>
      creations.create(backend, key, mangled, creator, signal, expMs, policy, stale, shouldCache, attributes, tags, timed);
    let handOff: AsyncHandOff | undefined;
    if (this.handOff) {
      handOff = (release) => this.runInBackground(key, () => create(undefined), release);
    }
    const started = flying && !stale ? performance.now() : 0;
    const result = core.lock.getOrCreate<T>(first, {
      key: mangled,
      mutex: () => core.guard.mutexFor(backend, mangled, key),
      read: async () => {
        const v = await core.guard.read('get', key, () => backend.get(mangled));
        await core.tagIndex.settle(v);
        const current = core.lookup<T>(v, expMs);
        // A value another caller created, read under the lock: fail-safe's copy, as on a hit.
        if (current.state === 'fresh') creations.memory?.remember(mangled, v as CachedValue);
        return current;
      },
      create,
      handOff,
      waitTimeoutMs: core.waitTimeoutMs,
      softTimeoutMs: stale ? policy.timeouts.softMs : undefined,
      onSoftTimeout: () => creations.staleServed(key, attributes),
    });
    return result.then(
      (value) => {
        if (started !== 0) creations.lockWaited(key, performance.now() - started, attributes);
        return value;
      },
      (err: unknown) => {
        if (err instanceof LockTimeoutError) creations.lockTimedOut(key, attributes);
        throw err;
      },
    );
  }

  /**
   * XFetch on a fresh hit: maybe regenerates the value in the background through the dogpile lock,
   * as if it were stale. A creation already in flight here, or a distributed lock held elsewhere,
   * means someone else is at it (a try-lock: nobody waits). Having the lock, the key is read again;
   * a value with another creation time was refreshed meanwhile and nothing is done. The caller
   * keeps the current value; the creation runs under the call's policies and emits `create`.
   */
  refreshEarly<T>(
    backend: CacheBackend,
    key: string,
    mangled: string,
    found: CachedValue,
    expMs: number,
    creator: Creator<T>,
    options: GetOrCreateOptions<T> | undefined,
  ): void {
    const beta = options?.earlyRefresh ?? this.earlyBeta;
    if (options?.earlyRefresh !== undefined) checkEarlyRefresh(options.earlyRefresh, 'getOrCreate: earlyRefresh');
    const core = this.core;
    const ct = found.cachedTime;
    const d = found.metadata.d;
    if (beta === 0 || typeof creator !== 'function' || core.lock.isFlying(mangled)) return;
    if (!shouldRefreshEarly(ct, d, expMs, core.clock.now(), beta)) return;
    const creations = core.creations;
    const policy = creations.policyFor(options);
    const current: Lookup<T> = { state: 'stale', value: found.payload as T };
    const tags = options?.tags;
    const create = (signal: AbortSignal | undefined): Promise<T> =>
      creations.create(
        backend,
        key,
        mangled,
        creator,
        signal,
        expMs,
        policy,
        found,
        options?.shouldCacheFn,
        options?.attributes,
        tags,
        true,
      );
    core.lock
      .getOrCreate<T>(current, {
        key: mangled,
        mutex: () => core.guard.mutexFor(backend, mangled, key),
        read: async () => {
          const now = await core.guard.read('get', key, () => backend.get(mangled));
          return now !== NO_VALUE && now.cachedTime !== ct ? core.lookup<T>(now, expMs) : current;
        },
        create,
        handOff: (release) => this.runInBackground(key, () => create(undefined), release),
        waitTimeoutMs: core.waitTimeoutMs,
      })
      .catch((err: unknown) => core.guard.report(err, 'create', key));
  }

  /** Runs `create` after the current turn (or through the region's runner), then `release` once. */
  private runInBackground(key: string, create: () => Promise<unknown>, release: () => Promise<void>): void {
    const releaseOnce = once(release);
    const runner = this.runner;
    const guard = this.core.guard;
    if (runner) {
      Promise.resolve()
        .then(() => runner(key, create, { release: releaseOnce }))
        .catch((err: unknown) => {
          guard.report(err, 'create', key);
          return releaseOnce();
        });
      return;
    }
    setImmediate(() => {
      create()
        .catch((err: unknown) => guard.report(err, 'create', key))
        .finally(releaseOnce);
    });
  }
}
