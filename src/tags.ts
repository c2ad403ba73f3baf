// Tag invalidation. A value written with tags carries them in its metadata; invalidateTags(tags)
// stores, per tag, the time of its last hard and soft invalidation in the backend (under a key of
// its own). A read of a tagged value compares its creation time with those times: created at or
// before a hard invalidation it is a miss, before a soft one it is stale. Each process keeps the
// tag times it has read for `refreshMs`, so a tagged hit costs at most one extra backend read (one
// getMulti for all of its tags) per refresh interval, and an untagged hit costs nothing; the bus,
// when there is one, delivers invalidations at once.

import {
  type CacheBackend,
  CachedValue,
  type Clock,
  describe,
  NO_VALUE,
  type NoValue,
  VALUE_TAGS,
  VALUE_VERSION,
  ValidationError,
} from './api.js';
import type { KeyTags, SetOptions } from './region-options.js';

/** A tagged value is usable. */
export const TAGS_OK = 0;
/** A tag of the value was soft-invalidated after it was created: stale. */
export const TAGS_SOFT = 1;
/** A tag of the value was hard-invalidated after it was created: missing. */
export const TAGS_HARD = 2;
/** The tag times are not known here (or too old): {@link TagIndex.load} them first. */
export const TAGS_UNKNOWN = 3;

/** Default seconds a process trusts the tag times it read. */
export const DEFAULT_TAG_REFRESH_SECONDS = 1;

interface TagTimes {
  hardAt: number;
  softAt: number;
  checkedAt: number;
}

/** The tag times of one region, as known in this process, and their reads and writes. */
export class TagIndex {
  private readonly known = new Map<string, TagTimes>();
  private readonly pending = new Map<string, Promise<void>>();
  private backend: CacheBackend | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly refreshMs: number,
    /** The backend key holding a tag's times. */
    private readonly keyOf: (tag: string) => string,
    /** Told when tag times could not be read (they are then taken as last known until the next refresh). */
    private readonly readFailed: (error: unknown) => void,
  ) {}

  /** How the tags of `v` judge it (TAGS_OK for an untagged value or NO_VALUE). */
  judge(v: CachedValue | NoValue): number {
    if (v === NO_VALUE) return TAGS_OK;
    const tags = v[VALUE_TAGS];
    return tags === undefined ? TAGS_OK : this.state(tags, v.cachedTime);
  }

  /** Loads the tag times a read value needs (at most one backend read), or undefined when none are needed. */
  settle(v: CachedValue | NoValue): Promise<void> | undefined {
    if (v === NO_VALUE) return undefined;
    const tags = v[VALUE_TAGS];
    if (tags === undefined || this.state(tags, v.cachedTime) !== TAGS_UNKNOWN) return undefined;
    return this.loadOrAssume(tags);
  }

  /** {@link settle} for several values, in one backend read. */
  settleMulti(values: readonly (CachedValue | NoValue)[] | NoValue): Promise<void> | undefined {
    if (values === NO_VALUE) return undefined;
    let needed: Set<string> | undefined;
    for (const v of values) {
      const tags = v === NO_VALUE || v === undefined ? undefined : v[VALUE_TAGS];
      if (tags !== undefined && this.state(tags, (v as CachedValue).cachedTime) === TAGS_UNKNOWN) {
        needed ??= new Set();
        for (const t of tags) needed.add(t);
      }
    }
    return needed === undefined ? undefined : this.loadOrAssume([...needed]);
  }

  private async loadOrAssume(tags: readonly string[]): Promise<void> {
    try {
      await this.load(tags);
    } catch (err) {
      this.readFailed(err);
      this.assumeKnown(tags); // fail open: as last known, until the next refresh
    }
  }

  /** Where tag times are stored (the region's backend, without L1). */
  bind(backend: CacheBackend): void {
    this.backend = backend;
    this.known.clear();
  }

  /** How the tags of a value created at `ct` judge it: TAGS_OK, TAGS_SOFT, TAGS_HARD or TAGS_UNKNOWN. */
  state(tags: readonly string[], ct: number): number {
    const now = this.clock.now();
    let result = TAGS_OK;
    for (const tag of tags) {
      const times = this.known.get(tag);
      if (times === undefined || now - times.checkedAt > this.refreshMs) return TAGS_UNKNOWN;
      if (ct <= times.hardAt) result = TAGS_HARD;
      else if (ct <= times.softAt && result === TAGS_OK) result = TAGS_SOFT;
    }
    return result;
  }

  /** Reads the times of those `tags` not known here (or known too long), in one backend read. */
  async load(tags: readonly string[]): Promise<void> {
    const now = this.clock.now();
    const waits: Promise<void>[] = [];
    const toRead: string[] = [];
    for (const tag of tags) {
      const inFlight = this.pending.get(tag);
      if (inFlight) waits.push(inFlight);
      else {
        const times = this.known.get(tag);
        if (times === undefined || now - times.checkedAt > this.refreshMs) toRead.push(tag);
      }
    }
    if (toRead.length) {
      const read = this.read(toRead, now).finally(() => {
        for (const tag of toRead) if (this.pending.get(tag) === read) this.pending.delete(tag);
      });
      for (const tag of toRead) this.pending.set(tag, read);
      waits.push(read);
    }
    await Promise.all(waits);
  }

  /** Stores an invalidation of `tags` at `at` (ms) in the backend, and knows it here. */
  async invalidate(tags: readonly string[], hard: boolean, at: number): Promise<void> {
    const backend = this.requireBackend();
    // Merge with what is stored, so a soft invalidation never undoes an earlier hard one.
    await this.load(tags);
    const entries = new Map<string, CachedValue>();
    for (const tag of tags) {
      const times = this.merge(tag, hard, at);
      entries.set(this.keyOf(tag), new CachedValue({ hardAt: times.hardAt, softAt: times.softAt }, { ct: at, v: VALUE_VERSION }));
    }
    await backend.setMulti(entries);
  }

  /** An invalidation another process announced. */
  received(tags: readonly string[], hard: boolean, at: number): void {
    for (const tag of tags) this.merge(tag, hard, at);
  }

  private merge(tag: string, hard: boolean, at: number): TagTimes {
    const now = this.clock.now();
    const times = this.known.get(tag) ?? { hardAt: Number.NEGATIVE_INFINITY, softAt: Number.NEGATIVE_INFINITY, checkedAt: now };
    if (hard) times.hardAt = Math.max(times.hardAt, at);
    else times.softAt = Math.max(times.softAt, at);
    this.known.set(tag, times);
    return times;
  }

  private async read(tags: string[], now: number): Promise<void> {
    const found = await this.requireBackend().getMulti(tags.map(this.keyOf));
    tags.forEach((tag, i) => {
      const v = found[i];
      const stored = v === undefined || v === NO_VALUE ? undefined : (v.payload as Partial<TagTimes> | null);
      const hardAt = typeof stored?.hardAt === 'number' ? stored.hardAt : Number.NEGATIVE_INFINITY;
      const softAt = typeof stored?.softAt === 'number' ? stored.softAt : Number.NEGATIVE_INFINITY;
      const mine = this.known.get(tag);
      this.known.set(tag, {
        hardAt: Math.max(hardAt, mine?.hardAt ?? Number.NEGATIVE_INFINITY),
        softAt: Math.max(softAt, mine?.softAt ?? Number.NEGATIVE_INFINITY),
        checkedAt: now,
      });
    });
  }

  /** Accepts the times of `tags` as they are known (after a failed read), until the next refresh. */
  assumeKnown(tags: readonly string[]): void {
    const now = this.clock.now();
    for (const tag of tags) {
      const times = this.known.get(tag);
      if (times) times.checkedAt = now;
      else this.known.set(tag, { hardAt: Number.NEGATIVE_INFINITY, softAt: Number.NEGATIVE_INFINITY, checkedAt: now });
    }
  }

  private requireBackend(): CacheBackend {
    if (!this.backend) throw new ValidationError('tags: the region has no backend yet');
    return this.backend;
  }
}

/** Checks a `tags` option: an array of non-empty strings. */
export function checkTags(tags: unknown, name = 'tags'): asserts tags is readonly string[] {
  if (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string' && t !== '')) {
    throw new ValidationError(`${name} must be an array of non-empty strings, got ${describe(tags)}`);
  }
}

/**
 * A multi-key call's tags as a function of the key, or undefined for none; checks an array now and
 * a function's result for each key (a ValidationError naming the call and the key).
 */
export function keyTags(option: KeyTags | undefined, where: string): ((key: string) => readonly string[]) | undefined {
  if (option === undefined) return undefined;
  if (typeof option === 'function') {
    return (key) => {
      const tags = option(key);
      checkTags(tags, `${where}: tags for key ${JSON.stringify(key)}`);
      return tags;
    };
  }
  checkTags(option, `${where}: tags`);
  return () => option;
}

/** The tags of a set call's options, checked (the options too). */
export function tagsOf(options: SetOptions | undefined, where: string): readonly string[] | undefined {
  if (options === undefined) return undefined;
  if (options === null || typeof options !== 'object') {
    throw new ValidationError(`${where}: options must be an object, got ${describe(options)}`);
  }
  if (options.tags !== undefined) checkTags(options.tags, `${where}: tags`);
  return options.tags;
}
