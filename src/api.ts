// The contract every part of dogpile shares: the NO_VALUE sentinel, the stored value envelope,
// the backend and mutex interfaces, the serializer shape and the error classes.

/**
 * Returned by reads when there is no usable value: missing, expired, invalidated or unreadable.
 * Distinct from `undefined` and `null`, which are ordinary cacheable values. It is a registered
 * symbol, so two copies of the package loaded in one process still agree on it.
 */
export const NO_VALUE: unique symbol = Symbol.for('dogpile.NO_VALUE') as typeof NO_VALUE;
/** The type of {@link NO_VALUE}. */
export type NoValue = typeof NO_VALUE;

/** Version of the value envelope. A stored value with another version is read as a miss. */
export const VALUE_VERSION = 1;

/** Metadata stored beside every payload. */
export interface CacheMetadata {
  /** Creation time, milliseconds since the epoch, from the writer's clock. */
  readonly ct: number;
  /** Envelope version ({@link VALUE_VERSION}). */
  readonly v: number;
  /**
   * How long the creator took, in milliseconds. Recorded only when early refresh (its one reader)
   * is on for the region or the call that created the value; absent otherwise.
   */
  readonly d?: number;
  /**
   * Tags the value was written with (`set(key, value, { tags })`), checked against tag
   * invalidations on read. Absent when the value has none.
   */
  readonly tags?: readonly string[];
  /**
   * Fail-safe: until when (ms since the epoch) the value may be served as a fallback when its
   * regeneration fails (`ct + expirationTime + failSafe.maxStale`). Written only with fail-safe on.
   */
  readonly fs?: number;
  /**
   * Fail-safe throttle: no process calls the creator for this value before this time (ms since the
   * epoch); the stale value is served instead. Written back after a failed regeneration.
   */
  readonly ra?: number;
}

/**
 * Internal: the creation time (ms) of a value whose envelope version is {@link VALUE_VERSION}, else
 * NaN. The region's hit path reads this instead of `metadata`, which is built on access.
 */
export const CURRENT_CT: unique symbol = Symbol('dogpile.currentCt') as typeof CURRENT_CT;

/**
 * Internal: as {@link CURRENT_CT}, but also NaN for a value carrying tags. The memory fast path of
 * getOrCreate reads this, so a tagged value leaves it for the path that checks tag invalidations,
 * at no cost to untagged values (the compact case is the same code as CURRENT_CT).
 */
export const UNTAGGED_CT: unique symbol = Symbol('dogpile.untaggedCt') as typeof UNTAGGED_CT;

/**
 * Internal: the creation time (ms) of a value that is nothing but a payload and a creation time (a
 * CachedValue itself, not a subclass, with the current envelope version and no duration, deadline,
 * tags or other fields), else NaN. The memory backend's CompactLru keeps such a value as the bare
 * payload, its creation time in a Float64Array beside it.
 */
export const BARE_CT: unique symbol = Symbol('dogpile.bareCt') as typeof BARE_CT;

/** Internal: the tags a value was written with, or undefined (without building `metadata`). */
export const VALUE_TAGS: unique symbol = Symbol('dogpile.valueTags') as typeof VALUE_TAGS;

/**
 * A payload with its metadata: what backends store and return.
 *
 * A memory store keeps one of these per entry, so it is one small object: the payload and one
 * number that packs the creation time with whether a creation duration (`d`) of 0 was recorded,
 * 40 bytes on 64-bit Node (two slots). A value with a nonzero duration is a 48-byte internal
 * subclass with a third slot for it, and one with a fail-safe deadline (`fs`) a 56-byte internal
 * subclass with slots for `d` and `fs`. The metadata object is built when `metadata` is read (a new
 * object each time); metadata with any other field (tags, another version, a fractional time) is
 * kept as given instead.
 */
export class CachedValue<T = unknown> {
  /** The cached value itself. */
  readonly payload!: T;
  /**
   * A number: `2 * (ct − TIME_ORIGIN) + (d === 0 ? 1 : 0)`, a small integer (held in the object
   * itself) for a ct within the window around TIME_ORIGIN. An object: the metadata as given.
   */
  readonly #m!: number | CacheMetadata;

  /**
   * @param payload the cached value itself
   * @param metadata creation time and envelope version
   * @param now clock used by {@link CachedValue.age}; defaults to `Date.now`
   */
  constructor(payload: T, metadata: CacheMetadata, now?: () => number) {
    let m: number | CacheMetadata = metadata;
    const form = compactForm(metadata);
    if (form === TIME_ONLY) {
      const d = metadata.d;
      const target: unknown = new.target;
      if (d === undefined || Object.is(d, 0)) {
        m = packTime(metadata.ct, d === undefined ? 0 : 1);
      } else if (target === DurationValue) {
        m = packTime(metadata.ct, 0); // the subclass keeps d
      } else if (target === CachedValue) {
        // A nonzero duration needs a third slot: the subclass that has one is built instead.
        // biome-ignore lint/correctness/noConstructorReturn: the 48-byte form of the same value
        return new DurationValue(payload, metadata, d, now);
      } // else a user's subclass: the metadata as given
    } else if (form === WITH_DEADLINE) {
      const target: unknown = new.target;
      if (target === DeadlineValue) {
        m = packTime(metadata.ct, 0); // the subclass keeps d and fs
      } else if (target === CachedValue) {
        // A fail-safe deadline (and maybe a duration) in slots of their own, not a metadata object.
        // biome-ignore lint/correctness/noConstructorReturn: the 56-byte form of the same value
        return new DeadlineValue(payload, metadata, now);
      } // else a user's subclass: the metadata as given
    }
    this.payload = payload;
    this.#m = m;
    if (now !== undefined) clocks.set(this, now);
  }

  /** Creation time, envelope version and the other stored fields (a new object for compact values). */
  get metadata(): CacheMetadata {
    const m = this.#m;
    if (typeof m === 'object') return m;
    const ct = TIME_ORIGIN + Math.floor(m / 2);
    return m % 2 === 0 ? { ct, v: VALUE_VERSION } : { ct, v: VALUE_VERSION, d: 0 };
  }

  /** Creation time in milliseconds since the epoch. */
  get cachedTime(): number {
    const m = this.#m;
    return typeof m === 'object' ? m.ct : TIME_ORIGIN + Math.floor(m / 2);
  }

  /** Age in seconds (fractions included), measured now. */
  get age(): number {
    return ((clocks.get(this) ?? Date.now)() - this.cachedTime) / 1000;
  }

  /** @internal See {@link CURRENT_CT}. */
  get [CURRENT_CT](): number {
    const m = this.#m;
    if (typeof m === 'number') return TIME_ORIGIN + Math.floor(m / 2);
    return m.v === VALUE_VERSION ? m.ct : Number.NaN;
  }

  /** @internal See {@link UNTAGGED_CT}. */
  get [UNTAGGED_CT](): number {
    const m = this.#m;
    if (typeof m === 'number') return TIME_ORIGIN + Math.floor(m / 2);
    return m.v === VALUE_VERSION && m.tags === undefined ? m.ct : Number.NaN;
  }

  /** @internal See {@link BARE_CT}. */
  get [BARE_CT](): number {
    const m = this.#m;
    // The subclasses with slots of their own (a duration, a deadline) pack their time here too.
    return this.constructor === CachedValue && typeof m === 'number' && m % 2 === 0 ? TIME_ORIGIN + m / 2 : Number.NaN;
  }

  /** @internal See {@link VALUE_TAGS}. */
  get [VALUE_TAGS](): readonly string[] | undefined {
    const m = this.#m;
    return typeof m === 'object' ? m.tags : undefined;
  }
}

/**
 * A value whose metadata is { ct, v, d } with a whole-ms ct and a d other than 0: the packed time of
 * CachedValue plus one slot for d (48 bytes). `new CachedValue` builds one for such metadata; it is
 * not exported, and reads as a CachedValue in every way but its constructor's name.
 */
class DurationValue<T = unknown> extends CachedValue<T> {
  readonly #d: number;

  constructor(payload: T, metadata: CacheMetadata, d: number, now?: () => number) {
    super(payload, metadata, now);
    this.#d = asSmall(d);
  }

  override get metadata(): CacheMetadata {
    return { ct: this.cachedTime, v: VALUE_VERSION, d: this.#d };
  }
}

/**
 * A value whose metadata is { ct, v, d?, fs } (a region with fail-safe on writes these) with whole-ms
 * ct and fs: the packed time of CachedValue plus slots for d and fs (56 bytes), where the metadata
 * object it stands for would be a second object per entry, read on every hit. Built by `new
 * CachedValue` for such metadata; not exported, and reads as a CachedValue in every way but its
 * constructor's name.
 */
class DeadlineValue<T = unknown> extends CachedValue<T> {
  readonly #d: number | undefined;
  /** fs − TIME_ORIGIN (a small integer near the origin); undefined only in the seed below. */
  readonly #fs: number | undefined;

  constructor(payload: T, metadata: CacheMetadata, now?: () => number) {
    super(payload, metadata, now);
    const { d, fs } = metadata;
    this.#d = d === undefined ? undefined : asSmall(d);
    this.#fs = fs === undefined ? undefined : asSmall(fs - TIME_ORIGIN);
  }

  override get metadata(): CacheMetadata {
    const ct = this.cachedTime;
    const d = this.#d;
    const fs = this.#fs === undefined ? undefined : TIME_ORIGIN + this.#fs;
    if (fs === undefined) return d === undefined ? { ct, v: VALUE_VERSION } : { ct, v: VALUE_VERSION, d };
    return d === undefined ? { ct, v: VALUE_VERSION, fs } : { ct, v: VALUE_VERSION, d, fs };
  }
}

/**
 * Creation times are kept as offsets from this origin: an offset from a day before this module
 * loaded to ~23 days after (2^30 ms either side of the origin) packs into a V8 small integer, held
 * in the object itself, where an epoch-ms number would be a separate 16-byte heap number per entry.
 * Further away (a long-running process, a value from another store created long ago) the packed
 * number is a heap number again, still exact.
 */
const TIME_ORIGIN = Math.floor(Date.now()) + 2 ** 30 - 86_400_000;

/** Clocks given to the constructor (rare: `getValueMetadata` results), kept off the object. */
const clocks = new WeakMap<CachedValue, () => number>();

/** Metadata kept as given (a metadata object). */
const LONG_FORM = 0;
/** { ct, v, d? }: CachedValue's packed time, or DurationValue. */
const TIME_ONLY = 1;
/** { ct, v, d?, fs }: DeadlineValue. */
const WITH_DEADLINE = 2;

/**
 * Which compact form `metadata` fits: { ct, v, d? } with a whole-ms ct (within ±2^51 ms, ~71,000
 * years, of the origin, so that the packed number is exact), the current version and a numeric d
 * is TIME_ONLY; the same plus a whole-ms fs within the same window is WITH_DEADLINE; anything else
 * (tags, `ra`, another version, a fractional time, other fields) is LONG_FORM.
 */
function compactForm(metadata: CacheMetadata): typeof LONG_FORM | typeof TIME_ONLY | typeof WITH_DEADLINE {
  const ct = metadata.ct;
  if (metadata.v !== VALUE_VERSION || !isPackable(ct)) return LONG_FORM;
  const d = metadata.d;
  if (d !== undefined && typeof d !== 'number') return LONG_FORM;
  let deadline = false;
  for (const field in metadata) {
    if (field === 'fs') deadline = true;
    else if (field !== 'ct' && field !== 'v' && field !== 'd') return LONG_FORM;
  }
  if (!deadline) return TIME_ONLY;
  return isPackable(metadata.fs) ? WITH_DEADLINE : LONG_FORM;
}

/** A whole number of ms within ±2^51 of the origin (its offset is then exact). */
function isPackable(t: unknown): t is number {
  return Number.isInteger(t) && Math.abs((t as number) - TIME_ORIGIN) <= 2 ** 51;
}

/** `2 * (ct − TIME_ORIGIN) + flag`: exact for any whole-ms ct, a small integer within the window. */
function packTime(ct: number, flag: 0 | 1): number {
  return asSmall((ct - TIME_ORIGIN) * 2 + flag);
}

/**
 * `n` as V8 stores it most compactly: an int32 comes back from `| 0`, which V8 represents as a small
 * integer even in unoptimised code, where the result of `-`, `+` or `*` on two heap numbers is a new
 * 16-byte heap number (even when whole and small) that a field would then keep.
 */
function asSmall(n: number): number {
  const small = n | 0;
  return small === n && (small !== 0 || Object.is(n, 0)) ? small : n; // -0 stays -0
}

// One value of each form built first, a small integer stored before an object, so that V8 types the
// fields as "any value" (not "object": then optimised code would box every small integer it stores
// into a new heap number) and later values of any form do not retype them.
new CachedValue(undefined, { ct: TIME_ORIGIN, v: VALUE_VERSION });
new CachedValue(undefined, { ct: TIME_ORIGIN, v: VALUE_VERSION, d: 1 });
new CachedValue(undefined, { ct: 0.5, v: VALUE_VERSION });
new CachedValue(undefined, { ct: TIME_ORIGIN, v: VALUE_VERSION, d: 1, fs: TIME_ORIGIN + 1 });
new DeadlineValue(undefined, { ct: TIME_ORIGIN, v: VALUE_VERSION }); // d and fs undefined: "any value"

/**
 * A lock for one key, as a backend provides it. `acquire(false)` must not wait; `acquire(true)` may
 * wait, but only up to the backend's own bounded wait (for example `lockWaitTimeout`), and then
 * returns `false`. Only the owner's `release()` may free the lock.
 */
export interface CacheMutex {
  /**
   * Takes the lock: true when taken. With `wait` false it returns at once; with `wait` true it
   * waits at most the backend's own bounded wait, then resolves false.
   */
  acquire(wait: boolean): Promise<boolean>;
  /** Frees the lock if this holder still owns it (a no-op otherwise, never someone else's lock). */
  release(): Promise<void>;
  /** Whether anyone (this holder or another process) holds the lock now. */
  locked(): Promise<boolean>;
  /** Aborted when the lock's ownership was lost (for example its lease ran out). Optional. */
  readonly signal?: AbortSignal;
}

/** The storage interface. All methods are async; misses are {@link NO_VALUE}, never `null` holes. */
export interface CacheBackend {
  /** The value stored under `key`, or {@link NO_VALUE} when missing or unreadable. */
  get(key: string): Promise<CachedValue | NoValue>;
  /** Values aligned with `keys`, {@link NO_VALUE} where missing. */
  getMulti(keys: string[]): Promise<(CachedValue | NoValue)[]>;
  /** Stores `value` under `key`, replacing what was there. */
  set(key: string, value: CachedValue): Promise<void>;
  /** Stores every entry (atomically where the store can). */
  setMulti(entries: Map<string, CachedValue>): Promise<void>;
  /** Removes `key`; removing a missing key is not an error. */
  delete(key: string): Promise<void>;
  /** Removes every key in `keys`. */
  deleteMulti(keys: string[]): Promise<void>;
  /** A distributed lock for `key`, or `null`/absent to use the in-process lock only. */
  getMutex?(key: string): CacheMutex | null;
  /** Release connections, timers and files. */
  close?(): Promise<void>;
  /**
   * A key mangler this backend supplies (dogpile.cache's `backend.key_mangler`), for example one
   * that hashes keys too long for the store. The region applies it to every key when the region
   * has no `keyMangler` of its own; it is read once, when the region installs the backend.
   */
  readonly keyMangler?: ((key: string) => string) | undefined;
}

/** Turns payloads into bytes for byte-oriented backends (redis, memcached, file) and back. */
export interface Serializer {
  /** Encodes a payload; a string is stored as its UTF-8 bytes. */
  serialize(value: unknown): Uint8Array | string;
  /** May throw on bad input: the value is then read as a miss. Must never execute code. */
  deserialize(bytes: Uint8Array): unknown;
}

/** What a backend factory receives besides its `arguments`. */
export interface BackendContext {
  /** The serializer byte-oriented backends must use for payloads. */
  readonly serializer: Serializer;
  /** The region's name, when it has one (for logs and key prefixes). */
  readonly regionName: string | undefined;
  /** The region's expiration in seconds (null: never), so a store TTL can be checked against it. */
  readonly expirationTime?: number | null;
  /**
   * The shortest physical TTL, in seconds, that lets the region serve its values as it is set up
   * (`expirationTime + failSafe.maxStale` with fail-safe on). A store with a configured TTL below
   * it raises its TTL to it. Absent: no requirement.
   */
  readonly minimumTtl?: number;
}

/** Creates a backend from its `arguments` object (which it must not mutate). */
export type BackendFactory = (
  args: Readonly<Record<string, unknown>>,
  context: BackendContext,
) => CacheBackend | Promise<CacheBackend>;

/** A source of time in milliseconds since the epoch. Inject one to test expiry without sleeping. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

// ---------------------------------------------------------------------------------------------
// Errors

/** Base class of every error dogpile throws. */
export class DogpileError extends Error {
  /** Names the class in stack traces and `String(error)`. */
  override name = 'DogpileError';
}

/** A region was used before `configure()`. */
export class RegionNotConfiguredError extends DogpileError {
  /** Names the class in stack traces and `String(error)`. */
  override name = 'RegionNotConfiguredError';
}

/** `configure()` was called twice without `replaceExistingBackend`. */
export class RegionAlreadyConfiguredError extends DogpileError {
  /** Names the class in stack traces and `String(error)`. */
  override name = 'RegionAlreadyConfiguredError';
}

/** No backend is registered under that name, and it is not an importable module. */
export class PluginNotFoundError extends DogpileError {
  /** Names the class in stack traces and `String(error)`. */
  override name = 'PluginNotFoundError';
}

/** An option or argument has a bad value; the message names it. */
export class ValidationError extends DogpileError {
  /** Names the class in stack traces and `String(error)`. */
  override name = 'ValidationError';
}

/** A waiter gave up waiting for a lock or for another caller's creation. */
export class LockTimeoutError extends DogpileError {
  /** Names the class in stack traces and `String(error)`. */
  override name = 'LockTimeoutError';
}

/**
 * A creation ran longer than its `hardTimeout`: the creator's `signal` is aborted with this as its
 * reason, and callers get it (or, with fail-safe, the stale value).
 */
export class CreatorTimeoutError extends DogpileError {
  override name = 'CreatorTimeoutError';
}

/** `err` as a BackendError: an existing one unchanged, anything else wrapped as `<what>: <message>`. */
export function toBackendError(err: unknown, what: string): BackendError {
  if (err instanceof BackendError) return err;
  const detail = err instanceof Error ? err.message : String(err);
  return new BackendError(`${what}: ${detail}`, { cause: err });
}

/**
 * The reason a creator's `signal` is aborted: its distributed lock was lost (the lease ran out and
 * another holder took the lock, or the store could not be reached for a whole lease).
 */
export class LockLostError extends DogpileError {
  /** Names the class in stack traces and `String(error)`. */
  override name = 'LockLostError';
}

/** A backend operation failed; the original error is in `cause`. */
export class BackendError extends DogpileError {
  /** Names the class in stack traces and `String(error)`. */
  override name = 'BackendError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Describes a value for an error message, briefly and safely. */
export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'symbol') return value.toString();
  if (typeof value === 'function') return `function ${value.name || '(anonymous)'}`;
  if (value === null || typeof value !== 'object') return String(value);
  if (Array.isArray(value)) return `array(${value.length})`;
  return `object ${value.constructor?.name ?? 'Object'}`;
}

/**
 * Internal: a backend whose reads complete synchronously (the memory backend) exposes under this key
 * a reader the region's hit path calls directly, skipping the backend's promise: the LRUCache itself
 * when it can be (one call fewer per hit). Its `get` returns `undefined` for a miss, not NO_VALUE: a
 * test for undefined carries no type feedback, so code optimised while every read missed does not
 * deoptimise on the first hit. Not part of the public contract.
 */
export const SYNC_GET: unique symbol = Symbol('dogpile.syncGet') as typeof SYNC_GET;
/** Internal: see {@link SYNC_GET}. */
export interface SyncReader {
  get(key: string): CachedValue | undefined;
}
/** Internal: the shape of a backend that has {@link SYNC_GET}. */
export interface SyncReadable {
  readonly [SYNC_GET]: SyncReader | undefined;
}
