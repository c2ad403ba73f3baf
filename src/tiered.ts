// The two-tier backend: an in-process L1 (the memory backend, bounded) in front of the configured
// backend as L2, kept coherent across processes by an invalidation bus. Reads try L1, then L2 (and
// fill L1); writes and deletes go to L2, then to this process's L1, and are announced on the bus so
// that every other process drops its L1 copy. L1 is used only while the bus is listening: when the
// subscription drops, L1 is cleared and bypassed until it is back (a missed message can then never
// leave an old value in L1), and cleared again on resubscribe.

import {
  type CacheBackend,
  type CachedValue,
  type CacheMutex,
  type Clock,
  CURRENT_CT,
  describe,
  NO_VALUE,
  type NoValue,
  ValidationError,
} from './api.js';
import { MemoryBackend } from './backends/memory.js';
import { RedisBackend } from './backends/redis.js';
import {
  type BusListener,
  checkBus,
  type Envelope,
  type InvalidationBus,
  type InvalidationMessage,
  RedisBus,
  type RedisBusClient,
  UrlRedisBus,
} from './bus.js';

/**
 * The `l1` option of `makeRegion` and `configure`: an in-process tier in front of the backend.
 * Values in L1 are shared by reference within the process, as in the memory backend.
 */
export interface L1Options {
  /** Most entries kept in L1 (least recently used go first). Default 10,000 when `maxSize` is absent. */
  max?: number;
  /** Most total size of L1, in approximate bytes of the payloads. Default none. */
  maxSize?: number;
  /**
   * Seconds an entry stays in L1 before it is read from L2 again (a bound on staleness should a
   * bus message be lost without the bus noticing). At most the region's `expirationTime`.
   * Shorter than the region's, it counts from the copy into L1; equal to it (or absent), from the
   * value's creation time, which is never later, so the bound is at least as tight and a fresh
   * hit pays nothing for it. Default: the region's `expirationTime` (none when the region never
   * expires).
   */
  expirationTime?: number;
  /**
   * How other processes hear of changes. Default for the redis backends: Redis pub/sub on the
   * backend's own connection settings (a separate subscriber connection). Required for other
   * backends: `{ url: 'redis://...' }` (a Redis used for pub/sub only), an {@link InvalidationBus},
   * or `false` (no bus: other processes see a change only after their `l1.expirationTime`).
   */
  bus?:
    | false
    | {
        /** A redis:// or rediss:// URL of the Redis used for pub/sub. */
        url: string;
        /** The channel (default: {@link L1Options.channel}'s default). */
        channel?: string;
      }
    | InvalidationBus;
  /** The bus channel (Redis pub/sub). Default `dogpile:bus:<region name or "default">`. */
  channel?: string;
}

/** What the region learns from other processes' messages besides keys. */
export interface RemoteInvalidations {
  /** Another process invalidated the region at `at` (ms). */
  invalidate(at: number, hard: boolean): void;
  /** Another process invalidated `tags` at `at` (ms). */
  tags(tags: readonly string[], at: number, hard: boolean): void;
}

/** Checks the shape of an `l1` option (the expiration bound is checked by the region). */
export function checkL1Options(value: unknown, name = 'l1'): asserts value is L1Options {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ValidationError(`${name} must be an object { max?, maxSize?, expirationTime?, bus? }, got ${describe(value)}`);
  }
  const o = value as Record<string, unknown>;
  for (const field of ['max', 'maxSize'] as const) {
    const v = o[field];
    if (v !== undefined && !(Number.isSafeInteger(v) && (v as number) > 0)) {
      throw new ValidationError(`${name}.${field} must be a positive integer, got ${describe(v)}`);
    }
  }
  const exp = o.expirationTime;
  if (exp !== undefined && !(typeof exp === 'number' && exp > 0 && Number.isFinite(exp))) {
    throw new ValidationError(`${name}.expirationTime must be a positive number of seconds, got ${describe(exp)}`);
  }
  if (o.channel !== undefined && (typeof o.channel !== 'string' || o.channel === '')) {
    throw new ValidationError(`${name}.channel must be a non-empty string, got ${describe(o.channel)}`);
  }
  const bus = o.bus;
  if (bus === undefined || bus === false) return;
  if (bus && typeof bus === 'object' && !isBusObject(bus) && 'url' in bus) {
    const url = (bus as { url: unknown }).url;
    if (typeof url !== 'string' || !/^rediss?:\/\//.test(url)) {
      throw new ValidationError(`${name}.bus.url must be a redis:// or rediss:// URL, got ${describe(url)}`);
    }
    return;
  }
  checkBus(bus, `${name}.bus`);
}

/**
 * Checks what can be checked at configure time: `l1.expirationTime` no longer than the region's,
 * and a bus named for backends that have none of their own (all but the redis ones).
 */
export function checkL1Placement(l1: L1Options, backend: unknown, regionExpiration: number | null): void {
  if (l1.expirationTime !== undefined && regionExpiration !== null && l1.expirationTime > regionExpiration) {
    throw new ValidationError(
      `l1.expirationTime (${l1.expirationTime}s) must not be longer than the region's expirationTime (${regionExpiration}s)`,
    );
  }
  const redis = typeof backend === 'string' ? backend.startsWith('redis') : backend instanceof RedisBackend;
  if (l1.bus === undefined && !redis) {
    throw new ValidationError(
      `l1.bus is required with backend ${describe(typeof backend === 'string' ? backend : (backend?.constructor?.name ?? backend))}: ` +
        "give { url: 'redis://...' } (Redis pub/sub), an InvalidationBus, or false (no bus: other processes see changes after l1.expirationTime)",
    );
  }
}

/** Builds the tier for a region: L1 sized by `l1`, the bus it names (or the redis backend's own). */
export function makeTier(
  l2: CacheBackend,
  actual: CacheBackend,
  l1: L1Options,
  regionExpiration: number | null,
  regionName: string | undefined,
  clock: Clock = { now: Date.now },
): TieredBackend {
  const channel = l1.channel ?? `dogpile:bus:${regionName ?? 'default'}`;
  let bus: InvalidationBus | undefined;
  if (l1.bus === false) bus = undefined;
  else if (l1.bus === undefined) {
    if (!(actual instanceof RedisBackend)) throw new ValidationError('l1.bus is required for a backend that is not redis');
    bus = new RedisBus(actual.client as unknown as RedisBusClient, { channel }); // an ioredis client
  } else if (isBusObject(l1.bus)) bus = l1.bus;
  else bus = new UrlRedisBus(l1.bus.url, l1.bus.channel ?? channel);
  const sizing: { max?: number; maxSize?: number; ttl?: number } = {};
  if (l1.max !== undefined) sizing.max = l1.max;
  if (l1.maxSize !== undefined) sizing.maxSize = l1.maxSize;
  const regionMs = regionExpiration !== null && regionExpiration > 0 ? regionExpiration * 1000 : undefined;
  let creationBoundMs: number | undefined;
  if (l1.expirationTime !== undefined && (regionMs === undefined || l1.expirationTime * 1000 < regionMs)) {
    // Shorter than the region's: counted from the copy into L1, by lru-cache's ttl.
    sizing.ttl = l1.expirationTime;
  } else {
    // The region's own (the default): counted from the value's creation, which is never later than
    // its copy into L1, so the bound is at least as tight. The region's freshness test on a hit
    // already implies it, so L1 needs no ttl, and is a CompactLru (an lru-cache ttl would cost a
    // timestamp check on every read); reads of L1 that are not fresh hits check it here (see
    // creationBoundMs).
    creationBoundMs = regionMs;
  }
  return new TieredBackend(l2, bus, sizing, creationBoundMs, clock);
}

/** L1 + L2 + bus, as one backend. The region installs it in front of its (proxied) backend. */
export class TieredBackend implements CacheBackend, BusListener {
  /** The L1 store. */
  readonly l1: MemoryBackend;
  // An L2 read that was in flight while its key changed (here or elsewhere) must not fill L1 with
  // what it read: the reply may predate the change. Changes are numbered; a read remembers the
  // number it started at, and fills only if neither its key nor the whole L1 changed since.
  private generation = 0;
  private clearedAt = 0;
  private readsInFlight = 0;
  /** Keys changed while reads were in flight, with the change's number (emptied when none are). */
  private readonly changedAt = new Map<string, number>();
  private busListening: boolean;
  private readonly listeners: (() => void)[] = [];
  /** Told of region-wide and tag invalidations from other processes (set by the region). */
  remote: RemoteInvalidations | undefined;

  constructor(
    /** The backend behind L1 (proxies included). */
    readonly l2: CacheBackend,
    /** The bus, or undefined for none. */
    readonly bus: InvalidationBus | undefined,
    options: { max?: number; maxSize?: number; ttl?: number },
    /**
     * When set, an L1 copy of a value created longer ago than this (ms) is not used (L1 has no ttl
     * of its own then). A fresh hit in the region implies it whenever the expiration it is judged
     * by is no longer than this; other reads go through {@link TieredBackend.get}.
     */
    readonly creationBoundMs: number | undefined = undefined,
    private readonly clock: Clock = { now: Date.now },
  ) {
    this.l1 = new MemoryBackend(options);
    this.busListening = bus === undefined;
    bus?.start(this);
  }

  /** Whether L1 is in use (the bus is listening, or there is no bus). */
  get listening(): boolean {
    return this.busListening;
  }

  /** Resolves once L1 is in use (the bus subscribed). */
  whenListening(): Promise<void> {
    if (this.busListening) return Promise.resolve();
    return new Promise((resolve) => this.listeners.push(resolve));
  }

  /** The L1 copy of `key`, read synchronously, or NO_VALUE (the region's hit path). */
  peek(key: string): CachedValue | NoValue {
    return this.fromL1(key) ?? NO_VALUE;
  }

  /** Whether `value`, read from L1, is older than L1 may keep it (it must then be read from L2). */
  outlived(value: CachedValue): boolean {
    const bound = this.creationBoundMs;
    return bound !== undefined && !(this.clock.now() - value[CURRENT_CT] <= bound);
  }

  /** The usable L1 copy of `key` (one past {@link creationBoundMs} is dropped). */
  private fromL1(key: string): CachedValue | undefined {
    const hit = this.l1.cache.get(key);
    if (hit === undefined || !this.outlived(hit)) return hit;
    this.l1.cache.delete(key);
    return undefined;
  }

  async get(key: string): Promise<CachedValue | NoValue> {
    const hit = this.fromL1(key) ?? NO_VALUE;
    if (hit !== NO_VALUE) return hit;
    const started = this.beginRead();
    try {
      const found = await this.l2.get(key);
      if (found !== NO_VALUE && this.mayFill(key, started)) void this.l1.set(key, found);
      return found;
    } finally {
      this.endRead();
    }
  }

  async getMulti(keys: string[]): Promise<(CachedValue | NoValue)[]> {
    const out = keys.map((k) => this.fromL1(k) ?? NO_VALUE);
    const missing: number[] = [];
    out.forEach((v, i) => {
      if (v === NO_VALUE) missing.push(i);
    });
    if (missing.length === 0) return out;
    const started = this.beginRead();
    try {
      const found = await this.l2.getMulti(missing.map((i) => keys[i] as string));
      missing.forEach((index, j) => {
        const v = found[j] ?? NO_VALUE;
        const key = keys[index] as string;
        out[index] = v;
        if (v !== NO_VALUE && this.mayFill(key, started)) void this.l1.set(key, v);
      });
      return out;
    } finally {
      this.endRead();
    }
  }

  async set(key: string, value: CachedValue): Promise<void> {
    this.drop(key);
    await this.l2.set(key, value);
    if (this.busListening) void this.l1.set(key, value);
    await this.announce({ kind: 'keys', keys: [key] });
  }

  async setMulti(entries: Map<string, CachedValue>): Promise<void> {
    for (const key of entries.keys()) this.drop(key);
    await this.l2.setMulti(entries);
    if (this.busListening) void this.l1.setMulti(entries);
    await this.announce({ kind: 'keys', keys: [...entries.keys()] });
  }

  async delete(key: string): Promise<void> {
    this.drop(key);
    await this.l2.delete(key);
    await this.announce({ kind: 'keys', keys: [key] });
  }

  async deleteMulti(keys: string[]): Promise<void> {
    for (const key of keys) this.drop(key);
    await this.l2.deleteMulti(keys);
    await this.announce({ kind: 'keys', keys });
  }

  /**
   * L2's lock. Whoever wins it drops its L1 copy first, so the dogpile re-read that follows the
   * acquire asks L2: a value another process stored just before releasing the lock is found even
   * if its bus message has not arrived yet (else this process would create it a second time).
   */
  getMutex(key: string): CacheMutex | null {
    const mutex = this.l2.getMutex?.(key) ?? null;
    if (mutex === null) return null;
    return {
      acquire: async (wait) => {
        const acquired = await mutex.acquire(wait);
        if (acquired) this.drop(key);
        return acquired;
      },
      release: () => mutex.release(),
      locked: () => mutex.locked(),
      get signal() {
        return mutex.signal;
      },
    };
  }

  /** Publishes `message` to the other processes (no-op without a bus). */
  async announce(message: InvalidationMessage): Promise<void> {
    await this.bus?.publish(message);
  }

  /** Empties L1 (this process only). */
  clear(): void {
    this.clearedAt = ++this.generation;
    this.l1.cache.clear();
  }

  /** Drops the L1 copy of `key`, and keeps reads already in flight from putting it back. */
  private drop(key: string): void {
    void this.l1.delete(key);
    if (this.readsInFlight > 0) this.changedAt.set(key, ++this.generation);
  }

  private beginRead(): number {
    this.readsInFlight++;
    return this.generation;
  }

  private endRead(): void {
    if (--this.readsInFlight === 0) this.changedAt.clear();
  }

  private mayFill(key: string, startedAt: number): boolean {
    return this.busListening && this.clearedAt <= startedAt && !((this.changedAt.get(key) ?? 0) > startedAt);
  }

  async close(): Promise<void> {
    this.busListening = false;
    this.l1.cache.clear();
    await Promise.all([this.bus?.close(), this.l2.close?.()]);
  }

  // BusListener: what other processes say.

  message(message: Envelope): void {
    // Hook point: the region's `invalidate` event for remote messages would be emitted here.
    switch (message.kind) {
      case 'keys':
        for (const key of message.keys) this.drop(key);
        return;
      case 'invalidate':
        this.clear();
        this.remote?.invalidate(message.at, message.hard);
        return;
      case 'tags':
        this.remote?.tags(message.tags, message.at, message.hard);
        return;
    }
  }

  gap(): void {
    this.busListening = false;
    this.clear();
  }

  resumed(): void {
    this.clear();
    this.busListening = true;
    for (const resolve of this.listeners.splice(0)) resolve();
  }
}

/** An InvalidationBus instance (as opposed to the `{ url, channel? }` form). */
function isBusObject(bus: unknown): bus is InvalidationBus {
  return typeof (bus as Partial<InvalidationBus> | null)?.publish === 'function';
}
