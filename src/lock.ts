// The dogpile lock: one creator per key, everyone else reads the old value or waits for the new one.
//
// The guarantee (research/dogpile.md §2, with its defects fixed):
//   fresh value     -> returned by the caller's own read; this module is not even entered.
//   stale value     -> the first caller to win the lock regenerates; every other caller returns the
//                      stale value at once (an async runner lets even the winner return it at once).
//   no value        -> the first caller to win the lock creates; every other caller waits for it.
//   creator throws  -> the error reaches the callers waiting on that creation; the lock is freed.
//   soft timeout    -> with a stale value (for every key a multi-key creation makes), the owner
//                      returns it once the creation has run that long; the creation goes on and
//                      the lock (each key's) is freed when it lands.
// Two layers give this. In front, a per-process map of flights: the first local caller for a key
// owns the flight and all other local callers attach to it, so 1,000 local callers make one lock
// round-trip. Behind it, the backend's mutex (if it has one) arbitrates between processes. Having
// won the lock, the owner reads the key once more before creating: a creation that finished
// between its first read and its acquire is then found and not repeated (dogpile.cache skips this
// read on the stale path and can regenerate twice). Every wait is bounded by `waitTimeoutMs`.

import { type CacheMutex, LockTimeoutError } from './api.js';

/** What a read of one key found, as the region classifies it. */
export type Lookup<T> = { readonly state: 'fresh' | 'stale'; readonly value: T } | { readonly state: 'missing' };

/** Shared lookup for "nothing usable". */
export const MISSING: Lookup<never> = Object.freeze({ state: 'missing' });

/** Hands a held lock to a background creation; it must call `release` when done. */
export type AsyncHandOff = (release: () => Promise<void>) => void;

/** Everything one get-or-create needs from the region. */
export interface DogpileRun<T> {
  /** The key as stored (mangled). */
  readonly key: string;
  /** The backend's distributed mutex for the key, or null for the in-process lock alone (asked of the owner only). */
  mutex(): CacheMutex | null;
  /** One backend read, classified. */
  read(): Promise<Lookup<T>>;
  /** Runs the creator and stores its value (unless told not to); returns it. */
  create(signal: AbortSignal | undefined): Promise<T>;
  /** When set and a stale value exists, the creation is handed off and the stale value returned. */
  readonly handOff?: AsyncHandOff | undefined;
  /** Upper bound, in ms, for any wait on another caller's creation. */
  readonly waitTimeoutMs: number;
  /** With a stale value, the owner returns it after this many ms and the creation goes on. */
  readonly softTimeoutMs?: number | undefined;
  /** Told when the soft timeout made the owner return the stale value. */
  onSoftTimeout?(): void;
}

/** Everything one get-or-create-multi needs from the region. Keys are unique, mangled, sorted. */
export interface DogpileMultiRun<T> {
  readonly keys: readonly string[];
  mutexFor(key: string): CacheMutex | null;
  readMulti(keys: readonly string[]): Promise<Lookup<T>[]>;
  /** Creates and stores the values of `keys` (a subset of `keys` above, same order). */
  createMulti(keys: readonly string[]): Promise<T[]>;
  readonly waitTimeoutMs: number;
  /** When every key to create has a stale value, the owner returns them after this many ms and the creation goes on. */
  readonly softTimeoutMs?: number | undefined;
  /** Told which keys the soft timeout answered with their stale values. */
  onSoftTimeout?(keys: readonly string[]): void;
}

const LOCAL_MUTEX: CacheMutex = {
  acquire: async () => true,
  release: async () => {},
  locked: async () => false,
};

interface Flight<T> {
  readonly promise: Promise<T>;
}

/** The per-region table of creations in progress, and the algorithm that runs them. */
export class DogpileLock {
  private readonly flights = new Map<string, Flight<unknown>>();

  /** Whether a creation for `key` is in progress in this process. */
  isFlying(key: string): boolean {
    return this.flights.has(key);
  }

  /** Runs the dogpile algorithm for one key whose first read found `first` (stale or missing). */
  getOrCreate<T>(first: Lookup<T>, run: DogpileRun<T>): Promise<T> {
    const flight = this.flights.get(run.key) as Flight<T> | undefined;
    if (flight) {
      if (first.state !== 'missing') return Promise.resolve(first.value);
      return boundedWait(flight.promise, run.waitTimeoutMs, run.key);
    }
    const { promise, resolve, reject } = deferred<T>();
    this.flights.set(run.key, { promise });
    this.own(first, run).then(resolve, reject);
    return promise;
  }

  private async own<T>(first: Lookup<T>, run: DogpileRun<T>): Promise<T> {
    const mutex = run.mutex() ?? LOCAL_MUTEX;
    let released = false;
    const release = async (): Promise<void> => {
      if (released) return;
      released = true;
      this.flights.delete(run.key);
      await mutex.release();
    };
    let acquired: boolean;
    try {
      acquired = await mutex.acquire(first.state === 'missing');
    } catch (err) {
      this.flights.delete(run.key);
      throw err;
    }
    if (!acquired) {
      this.flights.delete(run.key);
      if (first.state !== 'missing') return first.value; // another process regenerates: serve stale
      const late = await run.read(); // the wait timed out: take whatever landed meanwhile
      if (late.state !== 'missing') return late.value;
      throw lockTimeout(run.key, run.waitTimeoutMs);
    }
    let handedOff = false;
    try {
      const current = await run.read();
      if (current.state === 'fresh') return current.value;
      if (current.state === 'stale' && run.handOff) {
        handedOff = true;
        run.handOff(release);
        return current.value;
      }
      if (current.state === 'stale' && run.softTimeoutMs !== undefined) {
        const creating = run.create(mutex.signal);
        if (!(await settlesWithin(creating, run.softTimeoutMs))) {
          handedOff = true;
          creating.then(release, release);
          run.onSoftTimeout?.();
          return current.value;
        }
        return await creating;
      }
      return await run.create(mutex.signal);
    } finally {
      if (!handedOff) await release();
    }
  }

  /** Runs the dogpile algorithm for several keys, calling the creator once for all that need it. */
  async getOrCreateMulti<T>(first: readonly Lookup<T>[], run: DogpileMultiRun<T>): Promise<T[]> {
    const { keys } = run;
    const results = new Array<T>(keys.length);
    const waits: Promise<void>[] = [];
    const owned: OwnedKey<T>[] = [];
    for (let i = 0; i < keys.length; i++) {
      const found = first[i] ?? MISSING;
      if (found.state === 'fresh') {
        results[i] = found.value;
        continue;
      }
      const key = keys[i] as string;
      const flight = this.flights.get(key) as Flight<T> | undefined;
      if (flight) {
        if (found.state === 'stale') results[i] = found.value;
        else
          waits.push(
            boundedWait(flight.promise, run.waitTimeoutMs, key).then((v) => {
              results[i] = v;
            }),
          );
        continue;
      }
      const settle = deferred<T>();
      this.flights.set(key, { promise: settle.promise });
      owned.push({ index: i, settle, mutex: run.mutexFor(key) ?? LOCAL_MUTEX, held: false });
    }
    // Keys whose creation goes on after a soft timeout: released when it lands, not below.
    let continuing: OwnedKey<T>[] = [];
    try {
      // Acquire in key order (keys are sorted), so two processes never wait on each other in a cycle.
      const toRead: OwnedKey<T>[] = [];
      for (const entry of owned) {
        const found = first[entry.index] ?? MISSING;
        entry.held = await entry.mutex.acquire(found.state === 'missing');
        if (entry.held) toRead.push(entry);
        else if (found.state !== 'missing') settleWith(entry, found.value, results);
        else toRead.push(entry); // timed out waiting: read what landed, else fail below
      }
      const current = toRead.length ? await run.readMulti(toRead.map((e) => keys[e.index] as string)) : [];
      const toCreate: OwnedKey<T>[] = [];
      toRead.forEach((entry, j) => {
        const found = current[j] ?? MISSING;
        if (found.state === 'fresh' || (found.state === 'stale' && !entry.held)) settleWith(entry, found.value, results);
        else if (entry.held) {
          if (found.state === 'stale') entry.stale = found;
          toCreate.push(entry);
        } else entry.settle.reject(lockTimeout(keys[entry.index] as string, run.waitTimeoutMs));
      });
      if (toCreate.length) {
        const creating = run.createMulti(toCreate.map((e) => keys[e.index] as string));
        if (
          run.softTimeoutMs !== undefined &&
          toCreate.every((e) => e.stale !== undefined) &&
          !(await settlesWithin(creating, run.softTimeoutMs))
        ) {
          continuing = toCreate;
          const release = (): Promise<void> => this.releaseAll(keys, continuing);
          creating.then(release, release).catch(() => {}); // a failed release was reported by the region
          for (const entry of toCreate) settleWith(entry, (entry.stale as { value: T }).value, results);
          run.onSoftTimeout?.(toCreate.map((e) => keys[e.index] as string));
        } else {
          const created = await creating;
          toCreate.forEach((entry, j) => {
            settleWith(entry, created[j] as T, results);
          });
        }
      }
    } catch (err) {
      for (const entry of owned) entry.settle.reject(err);
    } finally {
      await this.releaseAll(
        keys,
        owned.filter((e) => !continuing.includes(e)),
      );
    }
    await Promise.all([...waits, ...owned.map((e) => e.settle.promise.then(() => undefined))]);
    return results;
  }

  /** Ends the flights of `entries` and releases the locks they hold. */
  private async releaseAll<T>(keys: readonly string[], entries: readonly OwnedKey<T>[]): Promise<void> {
    for (const entry of entries) {
      this.flights.delete(keys[entry.index] as string);
      if (entry.held) await entry.mutex.release();
    }
  }
}

/** A key whose creation a multi-key run owns. */
interface OwnedKey<T> {
  readonly index: number;
  readonly settle: Deferred<T>;
  readonly mutex: CacheMutex;
  held: boolean;
  /** The stale value read under the lock, when there is one. */
  stale?: { readonly value: T };
}

function settleWith<T>(entry: { index: number; settle: Deferred<T> }, value: T, results: T[]): void {
  results[entry.index] = value;
  entry.settle.resolve(value);
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(reason: unknown): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Waiters attach their own handlers; this only keeps an unawaited failure from being "unhandled".
  promise.catch(() => {});
  return { promise, resolve, reject };
}

/** Whether `promise` settles (either way) within `ms`. */
function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    const settled = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    promise.then(settled, settled);
  });
}

function lockTimeout(key: string, ms: number): LockTimeoutError {
  return new LockTimeoutError(`gave up waiting for the creation of ${JSON.stringify(key)} after ${ms} ms`);
}

/** Waits for `promise`, but no longer than `ms`; then rejects with a {@link LockTimeoutError}. */
function boundedWait<T>(promise: Promise<T>, ms: number, key: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(lockTimeout(key, ms));
    }, ms);
    timer.unref?.();
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}
