// The multi-key dogpile of a region (`getOrCreateMulti`): one backend read for all keys; when
// every value is fresh, done; otherwise the keys go through the lock's multi-key path in sorted
// order, and one creator call makes the values of the keys that need one, in the order asked.

import { type CachedValue, describe, NO_VALUE, type NoValue, ValidationError } from './api.js';
import { fallbackDeadline } from './failsafe.js';
import type { Lookup } from './lock.js';
import { badShouldCacheFn, checkKeys, inRequestOrder } from './region-checks.js';
import type { RegionCore } from './region-core.js';
import type { GetOrCreateMultiOptions, GetOrCreateOptions } from './region-options.js';
import { keyTags } from './tags.js';

/** See {@link CacheRegion.getOrCreateMulti}: that method is this function on its region's core. */
export async function getOrCreateMulti<T>(
  core: RegionCore,
  keys: readonly string[],
  creator: (...keys: string[]) => readonly T[] | Promise<readonly T[]>,
  options: GetOrCreateMultiOptions<T> | undefined,
): Promise<T[]> {
  checkKeys(keys);
  if (typeof creator !== 'function') {
    throw new ValidationError(`getOrCreateMulti: creator must be a function, got ${describe(creator)}`);
  }
  if ((options as GetOrCreateOptions<T> | undefined)?.earlyRefresh !== undefined) {
    throw new ValidationError('getOrCreateMulti: earlyRefresh is per key and single-key only; use getOrCreate');
  }
  const tagsFor = keyTags(options?.tags, 'getOrCreateMulti');
  const shouldCache = options?.shouldCacheFn;
  if (shouldCache !== undefined && typeof shouldCache !== 'function') throw badShouldCacheFn('getOrCreateMulti', shouldCache);
  if (keys.length === 0) return [];
  const backend = await core.backendForRead();
  const expMs = core.expirationFor(options?.expirationTime);
  const mangledKeys = keys.map((k) => core.mangle(k));
  const { creations, events, guard, lock } = core;
  const policy = creations.policyFor(options, 'getOrCreateMulti');
  // With fail-safe: the stale values seen, to serve if the creator fails; throttled keys read as fresh.
  const staleOf = policy.failSafe ? new Map<string, CachedValue>() : undefined;
  let originalOf: Map<string, string> | undefined; // mangled → as asked; built past the warm path
  const read = async (ks: readonly string[]): Promise<(CachedValue | NoValue)[] | NoValue> => {
    const found = await guard.read('getMulti', undefined, () => backend.getMulti([...ks]));
    await core.tagIndex.settleMulti(found);
    return found;
  };
  const judge = (ks: readonly string[], found: (CachedValue | NoValue)[] | NoValue): Lookup<T>[] =>
    ks.map((k, i) => {
      const v = found === NO_VALUE ? NO_VALUE : (found[i] ?? NO_VALUE);
      const lookup = core.lookup<T>(v, expMs);
      if (staleOf === undefined || lookup.state !== 'stale') return lookup;
      staleOf.set(k, v as CachedValue);
      const key = originalOf === undefined ? (keys[i] as string) : (originalOf.get(k) ?? k);
      const throttled = creations.servesThrottled(policy, key, k, v as CachedValue, undefined);
      return throttled ? { state: 'fresh', value: lookup.value } : lookup;
    });
  const readMulti = async (ks: readonly string[]): Promise<Lookup<T>[]> => judge(ks, await read(ks));
  // The one read, in request order. Every value fresh (a warm page of fragments): done, without a
  // lookup per key, sorting the keys or the lock, which only keys to create need. A hit per key
  // asked (a key asked twice, twice).
  const found = await read(mangledKeys);
  const warm = freshPayloads<T>(core, found, expMs);
  if (warm !== undefined) {
    for (const key of keys) events.hit(key);
    return warm;
  }
  // Judged one by one: a throttled fail-safe key reads as fresh too.
  const asked = judge(mangledKeys, found);
  if (asked.every((lookup) => lookup.state === 'fresh')) {
    for (const key of keys) events.hit(key);
    return asked.map((lookup) => (lookup as { value: T }).value);
  }
  originalOf = new Map(mangledKeys.map((m, i) => [m, keys[i] as string]));
  const mangled = [...originalOf.keys()].sort();
  const lookupOf = new Map(mangledKeys.map((m, i) => [m, asked[i] as Lookup<T>]));
  const first = mangled.map((k) => lookupOf.get(k) as Lookup<T>);
  // Counted per key asked (as getMulti and the warm path count) as getOrCreate counts: a hit, a
  // stale value served while another caller's creation runs, or a miss (this call creates, or
  // waits for a creation).
  asked.forEach((lookup, i) => {
    const key = keys[i] as string;
    if (lookup.state === 'fresh') events.hit(key);
    else if (lookup.state === 'stale' && lock.isFlying(mangledKeys[i] as string)) creations.staleServed(key, undefined);
    else creations.missed(key, undefined);
  });
  const values = await lock.getOrCreateMulti<T>(first, {
    keys: mangled,
    mutexFor: (k) => guard.mutexFor(backend, k, originalOf.get(k) ?? k),
    readMulti,
    createMulti: async (ks) => {
      const started = core.clock.now();
      // The creator gets its keys in the order they were asked for (the lock works in sorted order).
      const ordered = inRequestOrder(ks, mangledKeys);
      const originals = ordered.map((k) => originalOf.get(k) as string);
      const made = await creations.createMulti(backend, ordered, originals, () => creator(...originals), policy, staleOf, expMs);
      const createdFor = new Map<string, T>();
      if (made.served) {
        for (const [i, k] of ordered.entries()) createdFor.set(k, made.values[i] as T);
        return ks.map((k) => createdFor.get(k) as T);
      }
      const created = made.values;
      if (!Array.isArray(created) || created.length !== ks.length) {
        throw new ValidationError(
          `getOrCreateMulti: creator must return an array of ${ks.length} values (one per key it was given), got ${describe(created)}`,
        );
      }
      const entries = new Map<string, CachedValue>();
      const fs = fallbackDeadline(started, expMs, policy.failSafe);
      ordered.forEach((k, i) => {
        const value = created[i] as T;
        createdFor.set(k, value);
        if (!shouldCache || shouldCache(value)) {
          // The duration only for early refresh (see Creations.create).
          entries.set(
            k,
            core.newValue(value, core.timesCreations ? started : undefined, fs, tagsFor?.(originalOf.get(k) as string)),
          );
        }
      });
      if (entries.size) await guard.write('setMulti', undefined, () => backend.setMulti(entries));
      if (policy.failSafe) for (const [k, v] of entries) creations.failSafe().remember(k, v);
      return ks.map((k) => createdFor.get(k) as T);
    },
    waitTimeoutMs: core.waitTimeoutMs,
    softTimeoutMs: policy.timeouts.softMs,
    onSoftTimeout: (ks) => creations.softTimedOut(ks, originalOf),
  });
  const byKey = new Map<string, T>();
  mangled.forEach((k, i) => {
    byKey.set(k, values[i] as T);
  });
  return mangledKeys.map((m) => byKey.get(m) as T);
}

/** The payloads of `found` in order when every one is fresh, else `undefined` (no lookup built). */
function freshPayloads<T>(core: RegionCore, found: readonly (CachedValue | NoValue)[] | NoValue, expMs: number): T[] | undefined {
  if (found === NO_VALUE) return undefined;
  const out = new Array<T>(found.length);
  for (let i = 0; i < found.length; i++) {
    const v = found[i] ?? NO_VALUE;
    if (!core.isFresh(v, expMs)) return undefined;
    out[i] = (v as CachedValue).payload as T;
  }
  return out;
}
