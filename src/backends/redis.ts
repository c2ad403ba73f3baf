// The Redis backends (`redis`, `redis-sentinel`, `redis-cluster`) on ioredis, with a distributed
// per-key lock: SET NX PX with a random token, release by a Lua compare-and-delete, a lease renewed
// while the creator runs, and waiters in other processes woken by pub/sub (with a bounded poll).
// ioredis is an optional peer dependency: it is imported when a region first uses these backends.

import type { ClusterOptions, RedisOptions } from 'ioredis';
import {
  type BackendContext,
  BackendError,
  type CachedValue,
  type CacheMutex,
  DogpileError,
  describe,
  LockLostError,
  NO_VALUE,
  type NoValue,
  type Serializer,
  ValidationError,
} from '../api.js';
import { nodeCrypto } from '../node-builtins.js';
import { decodeValue, encodeValue } from '../serialization.js';
import { checkKnownNames, checkSeconds } from '../validate.js';
import { BaseBackend } from './base.js';
import type { RedisClient } from './peer-types.js';
import { passThroughOptions, type RedisClientOptions, type RedisClusterClientOptions } from './redis-options.js';

export type { RedisClientOptions, RedisClusterClientOptions } from './redis-options.js';

/** Arguments of the `redis`, `redis-sentinel` and `redis-cluster` backends (seconds throughout). */
export interface RedisBackendArguments {
  /** `redis://[user:pass@]host:port/db` (or `rediss://` for TLS). */
  url?: string;
  /** Server host name or address (when no `url`). Default `localhost` (ioredis's default). */
  host?: string;
  /** Server TCP port (when no `url`). Default 6379. */
  port?: number;
  /** Database number to `SELECT` after connecting. Default 0. */
  db?: number;
  /** ACL user name (Redis 6+). Default none. */
  username?: string;
  /** Password for `AUTH`. Default none. */
  password?: string;
  /** `true` or ioredis/tls connection options. Default false (plain TCP, unless the url is `rediss://`). */
  tls?: boolean | Record<string, unknown>;
  /** An existing ioredis client (Redis or Cluster). The backend does not close it. Default: the backend creates one. */
  client?: RedisClient;
  /**
   * Physical TTL of stored values. Make it longer than the region's expirationTime plus the worst
   * creation time, so that a stale value is still readable while it is regenerated (a shorter one
   * turns every expiry into a miss that all callers wait on; the backend warns). Seconds. With the
   * region's `failSafe` on, a TTL below `expirationTime + maxStale` is raised to it. Default: none.
   */
  redisExpirationTime?: number;
  /** Prepended to every key, lock keys included. Default none. */
  keyPrefix?: string;
  /** Use a Redis lock so one creator runs per key across processes. Default false (true for sentinel). */
  distributedLock?: boolean;
  /** Lease of the lock: a holder that dies frees it after this long; a live one renews it. Default 30. */
  lockTimeout?: number;
  /** Longest wait for a lock held elsewhere. Default 10. */
  lockWaitTimeout?: number;
  /**
   * How often a waiter looks again when no release notice reached it (a lost pub/sub message, a
   * subscriber connection that is down). Notices wake waiters at once; this is the fallback. Default 0.2.
   */
  lockPollInterval?: number;
  /** A command that gets no answer in this time fails (so an unreachable server never hangs a caller). Default 5. */
  commandTimeout?: number;
  /** Connection timeout. Default 5. */
  connectTimeout?: number;
  /** redis-sentinel: sentinel addresses, `[{ host, port }]` or `["host:port"]`. */
  sentinels?: readonly (
    | {
        /** Sentinel host name or address. */
        host: string;
        /** Sentinel TCP port. */
        port: number;
      }
    | string
  )[];
  /** redis-sentinel: the master group name. Default `mymaster`. */
  name?: string;
  /** redis-cluster: startup nodes, `[{ host, port }]` or `["host:port"]`. */
  nodes?: readonly (
    | {
        /** Node host name or address. */
        host: string;
        /** Node TCP port. */
        port: number;
      }
    | string
  )[];
  /**
   * Further ioredis client options, passed through (the analogue of dogpile.cache's
   * `connection_kwargs`): `connectionName`, `retryStrategy`, `enableOfflineQueue`, `family`,
   * `maxRetriesPerRequest`, … in ioredis's units (milliseconds). On redis-cluster they apply to
   * each node connection. An option a named argument sets (`host`, `commandTimeout`, `keyPrefix`,
   * …) is a ValidationError. Default none.
   */
  redisOptions?: RedisClientOptions;
  /** redis-cluster: further ioredis `Cluster` options (`scaleReads`, `natMap`, …), passed through. Default none. */
  clusterOptions?: RedisClusterClientOptions;
}

/** Arguments of the `redis` backend (one server). */
export type RedisSingleBackendArguments = Omit<RedisBackendArguments, 'sentinels' | 'name' | 'nodes' | 'clusterOptions'>;
/** Arguments of the `redis-sentinel` backend. */
export type RedisSentinelBackendArguments = Omit<RedisBackendArguments, 'url' | 'host' | 'port' | 'nodes' | 'clusterOptions'>;
/** Arguments of the `redis-cluster` backend. */
export type RedisClusterBackendArguments = Omit<RedisBackendArguments, 'url' | 'host' | 'port' | 'db' | 'sentinels' | 'name'>;

/** Every backend's arguments. */
const COMMON_ARGUMENTS = [
  'client',
  'redisExpirationTime',
  'keyPrefix',
  'distributedLock',
  'lockTimeout',
  'lockWaitTimeout',
  'lockPollInterval',
  'commandTimeout',
  'connectTimeout',
  'username',
  'password',
  'tls',
  'redisOptions',
];
/** The arguments each kind accepts: anything else is a ValidationError. */
const KNOWN_ARGUMENTS: Record<Kind, readonly string[]> = {
  redis: ['url', 'host', 'port', 'db', ...COMMON_ARGUMENTS],
  'redis-sentinel': ['sentinels', 'name', 'db', ...COMMON_ARGUMENTS],
  'redis-cluster': ['nodes', 'clusterOptions', ...COMMON_ARGUMENTS],
};
/** Arguments that configure a connection, which a given `client` already has. */
const CONNECTION_ARGUMENTS = [
  'url',
  'host',
  'port',
  'db',
  'username',
  'password',
  'tls',
  'commandTimeout',
  'connectTimeout',
  'sentinels',
  'name',
  'nodes',
  'redisOptions',
  'clusterOptions',
];
/** An upper bound for TTLs (they are sent as milliseconds; no timer waits on them). */
const MAX_TTL_SECONDS = Number.MAX_SAFE_INTEGER / 1000;

type Client = RedisClient;

// Release deletes the lock only for its owner and announces it in the same round trip.
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('del', KEYS[1]); redis.call('publish', ARGV[2], KEYS[1]); return 1 else return 0 end`;
// A creator's SET and its lock's release in one round trip (single server / sentinel: one node).
// KEYS: value, lock; ARGV: bytes, ttl ms ('' = none), token, channel, value channel, size cap.
// The release notice carries the value itself when it is at most the cap in bytes
// ("<lock key length>:<lock key><value bytes>" on the value channel), so waiters need no GET.
const SET_AND_RELEASE = `if ARGV[2] == '' then redis.call('set', KEYS[1], ARGV[1]) else redis.call('set', KEYS[1], ARGV[1], 'px', ARGV[2]) end
if redis.call('get', KEYS[2]) ~= ARGV[3] then return 0 end
redis.call('del', KEYS[2])
if #ARGV[1] <= tonumber(ARGV[6]) then redis.call('publish', ARGV[5], #KEYS[2] .. ':' .. KEYS[2] .. ARGV[1]) else redis.call('publish', ARGV[4], KEYS[2]) end
return 1`;
/** Values up to this many bytes travel inside the release notice. */
const NOTICE_VALUE_MAX_BYTES = 16 * 1024;
const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;

/** Settings the backend runs with, after validation. */
interface RedisSettings {
  readonly prefix: string;
  readonly ttlMs: number | undefined;
  readonly distributedLock: boolean;
  readonly leaseMs: number;
  readonly lockWaitMs: number;
  readonly pollMs: number;
  readonly isCluster: boolean;
  readonly ownsClient: boolean;
  /**
   * MGET of these full keys sent at once rather than through ioredis auto-pipelining, whenever no
   * auto-pipelined command is waiting to go out first (see {@link directMget}); undefined when the
   * client is not an ioredis `Redis` of the module the backend loaded.
   */
  readonly mget?: ((fullKeys: string[]) => Promise<(Buffer | null)[]>) | undefined;
  /** How errors name the server(s): `127.0.0.1:6379`, `sentinels … (master mymaster)`, `cluster …`. */
  readonly target: string;
}

/** Storage in Redis, values as envelope bytes. Registered as `redis`, `redis-sentinel`, `redis-cluster`. */
export class RedisBackend extends BaseBackend {
  private subscriber: Client | undefined;
  private subscribing: Promise<void> | undefined;
  private closed = false;
  private readonly waiters = new Map<string, Set<(bytes?: Buffer) => void>>();
  /** Locks this process holds, by the full key of the value they guard. */
  private readonly holders = new Map<string, RedisDistributedMutex>();
  /** A value a woken waiter just read under a full key, for the region's re-read that follows at once. */
  private readonly landed = new Map<string, CachedValue>();
  private readonly channel: string;
  private readonly valueChannel: string;

  constructor(
    /** The ioredis client in use. */
    readonly client: Client,
    private readonly serializer: Serializer,
    private readonly settings: RedisSettings,
  ) {
    super();
    this.channel = `${settings.prefix}dogpile:lock-released`;
    this.valueChannel = `${settings.prefix}dogpile:lock-released-with-value`;
  }

  async get(key: string): Promise<CachedValue | NoValue> {
    const full = this.settings.prefix + key;
    if (this.landed.size !== 0) {
      const landed = this.landed.get(full);
      if (landed !== undefined) {
        // A lock waiter of this process read this value a moment ago (same tick) and stopped
        // waiting because of it: reuse it instead of a second round trip.
        this.landed.delete(full);
        return landed;
      }
    }
    let bytes: Buffer | null;
    try {
      bytes = await this.client.getBuffer(full); // not through run(): the hit path, one closure fewer
    } catch (err) {
      // A key holding another type (a list another program pushed) is no value of ours: a miss,
      // which getOrCreate then regenerates and overwrites (SET replaces any type).
      if (isWrongType(err)) return NO_VALUE;
      throw this.failure('GET', err);
    }
    return decodeValue(bytes, this.serializer);
  }

  override async getMulti(keys: string[]): Promise<(CachedValue | NoValue)[]> {
    if (keys.length === 0) return [];
    const full = keys.map((k) => this.settings.prefix + k);
    const mget = this.settings.mget;
    const found = await this.run('MGET', () =>
      this.settings.isCluster
        ? Promise.all(full.map((k) => this.bytesOrNull(k)))
        : mget !== undefined
          ? mget(full)
          : this.client.mgetBuffer(...full),
    );
    return found.map((bytes) => decodeValue(bytes, this.serializer));
  }

  async set(key: string, value: CachedValue): Promise<void> {
    const bytes = encodeValue(value, this.serializer);
    const ttl = this.settings.ttlMs;
    const full = this.settings.prefix + key;
    const holder = this.settings.isCluster ? undefined : this.holders.get(full);
    if (holder !== undefined) {
      // This process holds the key's lock (it is the creator): store the value and free the lock
      // in one script, so waiters elsewhere hear of the new value one round trip sooner. (On a
      // cluster the lock key lives in another slot, so the two stay separate commands there.)
      holder.releasedBySet();
      try {
        await this.run('SET + lock release', () =>
          this.client.eval(
            SET_AND_RELEASE,
            2,
            full,
            holder.lockKey,
            bytes,
            ttl === undefined ? '' : String(ttl),
            holder.token,
            this.channel,
            this.valueChannel,
            String(NOTICE_VALUE_MAX_BYTES),
          ),
        );
      } catch (err) {
        await this.releaseLock(holder.lockKey, holder.token).catch(() => {}); // else its lease frees it
        throw err;
      }
      return;
    }
    await this.run('SET', () =>
      ttl === undefined
        ? this.client.set(this.settings.prefix + key, bytes)
        : this.client.set(this.settings.prefix + key, bytes, 'PX', ttl),
    );
  }

  override async setMulti(entries: Map<string, CachedValue>): Promise<void> {
    if (entries.size === 0) return;
    const ttl = this.settings.ttlMs;
    const pairs = [...entries].map(([k, v]) => [this.settings.prefix + k, encodeValue(v, this.serializer)] as const);
    await this.run('SET (multi)', async () => {
      if (this.settings.isCluster) {
        // Keys land in different hash slots: one command each (ioredis routes them per node).
        await Promise.all(pairs.map(([k, b]) => (ttl === undefined ? this.client.set(k, b) : this.client.set(k, b, 'PX', ttl))));
        return;
      }
      const pipeline = this.client.pipeline();
      for (const [k, b] of pairs) {
        if (ttl === undefined) pipeline.set(k, b);
        else pipeline.set(k, b, 'PX', ttl);
      }
      const results = await pipeline.exec();
      const failed = results?.find(([err]) => err);
      if (failed) throw failed[0];
    });
  }

  async delete(key: string): Promise<void> {
    await this.run('DEL', () => this.client.del(this.settings.prefix + key));
  }

  override async deleteMulti(keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    const full = keys.map((k) => this.settings.prefix + k);
    await this.run('DEL (multi)', async () => {
      if (this.settings.isCluster) await Promise.all(full.map((k) => this.client.del(k)));
      else await this.client.del(...full);
    });
  }

  /** A distributed lock for `key` when `distributedLock` is on, else null (in-process lock only). */
  getMutex(key: string): CacheMutex | null {
    if (!this.settings.distributedLock) return null;
    return new RedisDistributedMutex(
      this,
      `${this.settings.prefix}dogpile:lock:${key}`,
      this.settings.leaseMs,
      this.settings.lockWaitMs,
      this.settings.pollMs,
      this.settings.prefix + key,
    );
  }

  /** The raw bytes stored under a full (prefixed) key, or null (also for a key of another type). */
  storedBytes(fullKey: string): Promise<Buffer | null> {
    return this.run('GET', () => this.bytesOrNull(fullKey));
  }

  /** GET, with a key of another type (WRONGTYPE) read as null, as MGET reads it. */
  private async bytesOrNull(fullKey: string): Promise<Buffer | null> {
    try {
      return await this.client.getBuffer(fullKey);
    } catch (err) {
      if (isWrongType(err)) return null;
      throw err;
    }
  }

  /** The last connection error since the client was last ready (for error messages). */
  private connectionProblem: Error | undefined;

  /** Records connection errors and recoveries of a client this backend owns. */
  watchConnection(client: { on(event: string, listener: (err?: unknown) => void): unknown }): void {
    client.on('error', (err) => {
      this.connectionProblem = err instanceof Error ? err : new Error(String(err));
    });
    client.on('ready', () => {
      this.connectionProblem = undefined;
    });
  }

  /**
   * A client failure as a BackendError naming the server and, when the connection is down, why
   * (ioredis's own error only says "Reached the max retries per request limit"). DogpileErrors
   * pass through.
   */
  failure(what: string, err: unknown): Error {
    if (err instanceof DogpileError) return err;
    const problem = this.connectionProblem;
    const detail = err instanceof Error ? err.message : String(err);
    const why = problem !== undefined && !detail.includes(problem.message) ? ` (connection: ${problem.message})` : '';
    return new BackendError(`redis ${what} on ${this.settings.target} failed: ${detail}${why}`, { cause: err });
  }

  /** The value `bytes` decode to, or null for a corrupt or foreign entry. */
  decoded(bytes: Buffer): CachedValue | null {
    const value = decodeValue(bytes, this.serializer);
    return value === NO_VALUE ? null : value;
  }

  /** Offers a value just read under `fullKey` to the next `get` of that key in this tick. */
  offerLanded(fullKey: string, value: CachedValue): void {
    this.landed.set(fullKey, value);
    setImmediate(() => {
      if (this.landed.get(fullKey) === value) this.landed.delete(fullKey);
    });
  }

  /** Records (or forgets) that this process holds the lock guarding `fullKey`. */
  trackHolder(fullKey: string, mutex: RedisDistributedMutex, holding: boolean): void {
    if (holding) this.holders.set(fullKey, mutex);
    else if (this.holders.get(fullKey) === mutex) this.holders.delete(fullKey);
  }

  /** Opens the shared subscriber connection (once); waits resolve by polling if it cannot. */
  listening(): Promise<void> {
    return this.subscribe().catch(() => {});
  }

  /** Closes the connections this backend opened (not a `client` it was given). */
  async close(): Promise<void> {
    this.closed = true;
    const sub = this.subscriber;
    this.subscriber = undefined;
    await Promise.all([
      sub ? sub.quit().catch(() => sub.disconnect()) : undefined,
      this.settings.ownsClient ? this.client.quit().catch(() => this.client.disconnect()) : undefined,
    ]);
  }

  /** Runs a command, turning client failures into BackendError. */
  async run<T>(what: string, op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      throw this.failure(what, err);
    }
  }

  /**
   * Deletes `lockKey` if it still holds `token`, and then tells waiters in every process (PUBLISH
   * inside the same script, one round trip). Resolves to whether it was deleted.
   */
  async releaseLock(lockKey: string, token: string): Promise<boolean> {
    return (await this.run('lock release', () => this.client.eval(RELEASE, 1, lockKey, token, this.channel))) === 1;
  }

  /**
   * Resolves when `lockKey` is reported released, or after `ms`, whichever is first: to the value
   * bytes the release notice carried, if it carried them, else undefined. Call {@link listening}
   * first; without a subscriber connection, waits end by the timer alone (polling).
   */
  async released(lockKey: string, ms: number): Promise<Buffer | undefined> {
    const watch = this.watchReleases(lockKey);
    try {
      return await watch.next(ms);
    } finally {
      watch.stop();
    }
  }

  /**
   * @internal Hears the release notices of `lockKey` from now until `stop()`. A notice that arrives while
   * the waiter is not waiting (it is trying the lock or reading the value) is kept for its next
   * wait, so that none is missed between two waits. Call {@link listening} first.
   */
  watchReleases(lockKey: string): ReleaseWatch {
    let set = this.waiters.get(lockKey);
    if (!set) {
      set = new Set();
      this.waiters.set(lockKey, set);
    }
    const watching = set;
    const watch = new ReleaseWatch(() => {
      watching.delete(watch.hear);
      if (watching.size === 0 && this.waiters.get(lockKey) === watching) this.waiters.delete(lockKey);
    });
    watching.add(watch.hear);
    return watch;
  }

  private subscribe(): Promise<void> {
    if (this.closed) return Promise.reject(new BackendError('redis backend is closed'));
    this.subscribing ??= (async () => {
      const sub = this.client.duplicate();
      this.subscriber = sub;
      sub.on('error', () => {}); // reconnects on its own; waits meanwhile fall back to polling
      sub.on('messageBuffer', (channel: Buffer, message: Buffer) => {
        let lockKey: string;
        let bytes: Buffer | undefined;
        if (channel.toString() === this.valueChannel) {
          const colon = message.indexOf(0x3a); // "<length>:<lock key><value bytes>"
          const length = Number(message.subarray(0, colon).toString());
          if (colon < 1 || !Number.isSafeInteger(length) || colon + 1 + length > message.length) return;
          lockKey = message.subarray(colon + 1, colon + 1 + length).toString();
          bytes = message.subarray(colon + 1 + length);
        } else {
          lockKey = message.toString();
        }
        for (const wake of this.waiters.get(lockKey) ?? []) wake(bytes);
      });
      try {
        await sub.subscribe(this.channel, this.valueChannel);
      } catch (err) {
        // Give this connection up (else it would keep reconnecting unused); the next wait tries anew.
        if (this.subscriber === sub) this.subscriber = undefined;
        sub.disconnect();
        throw err;
      }
      if (this.closed) sub.disconnect(); // closed while subscribing
    })().catch((err: unknown) => {
      this.subscribing = undefined;
      throw err;
    });
    return this.subscribing;
  }
}

/** Whether a command failed because the key holds a value of another type. */
function isWrongType(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('WRONGTYPE');
}

/**
 * One holder's handle on a Redis lock. Acquire stores a random token with `SET NX PX lease`;
 * release deletes the key only if it still holds this token; while held, the lease is renewed
 * every third of its length and `signal` is aborted if the lock turns out to be someone else's.
 */
export class RedisDistributedMutex implements CacheMutex {
  /** This holder's random token, stored as the lock's value. */
  readonly token = nodeCrypto().randomUUID();
  private held = false;
  private renewTimer: NodeJS.Timeout | undefined;
  private controller = new AbortController();

  constructor(
    private readonly backend: RedisBackend,
    /** The Redis key of the lock. */
    readonly lockKey: string,
    private readonly leaseMs: number,
    private readonly waitMs: number,
    /** Fallback poll interval when no release notice arrives. */
    private readonly pollMs: number,
    /** The Redis key of the value this lock guards (to notice a value landing while we wait). */
    private readonly valueKey?: string,
  ) {}

  /** Aborted when this holder lost the lock (its lease ran out and someone else took it). */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /**
   * Takes the lock. With `wait`, waits up to lockWaitTimeout for it (woken by the release
   * notification, polling as a fallback) and returns false on timeout; it also returns false,
   * without the lock, as soon as a wake finds that a new decodable value was stored under the
   * guarded key meanwhile: the wait is over and the caller reads that value (so waiting processes
   * are served in parallel rather than one lock hand-over after another).
   */
  async acquire(wait: boolean): Promise<boolean> {
    if (this.held) return false;
    if (await this.tryAcquire()) return true;
    if (!wait) return false;
    const deadline = Date.now() + this.waitMs;
    // Hear releases from before the first look on, and until the wait ends (also while a pass is
    // trying the lock or reading the value), so that none slips between a look and a wait.
    const watch = this.backend.watchReleases(this.lockKey);
    try {
      // Bounded by the wait: a SUBSCRIBE queued while the server is unreachable may never answer.
      await settledOrAfter(this.backend.listening(), this.waitMs);
      // What is stored now: different bytes that decode, after a wake, mean the holder's value landed.
      const valueKey = this.valueKey;
      const before = valueKey === undefined ? null : await this.backend.storedBytes(valueKey);
      const landed = (bytes: Buffer | null | undefined) =>
        bytes != null && (before === null || !bytes.equals(before)) ? this.backend.decoded(bytes) : null;
      let woken = false;
      for (;;) {
        const remaining = deadline - Date.now();
        if (remaining <= 0) return woken && this.tryAcquire(); // one last try after the final wake
        // One try per pass, while listening: a release since the last try is not missed. When a
        // notice came meanwhile, it is looked at first (its value may have landed: no lock needed).
        if (!watch.heard && (await this.tryAcquire())) return true;
        const carried = await watch.next(Math.min(remaining, this.pollMs));
        woken = true;
        if (valueKey !== undefined) {
          // The value landed while we waited: stop waiting (false, without the lock) so the caller
          // reads it now, instead of queueing for the lock behind every other waiting process.
          // The release notice may carry the new value; otherwise look it up.
          const value = landed(carried) ?? landed(await this.backend.storedBytes(valueKey));
          if (value !== null) {
            this.backend.offerLanded(valueKey, value);
            return false;
          }
        }
      }
    } finally {
      watch.stop();
    }
  }

  async release(): Promise<void> {
    if (!this.held) return; // never acquired (or already released): nothing of ours to free
    this.markFree();
    await this.backend.releaseLock(this.lockKey, this.token);
  }

  /** The backend is freeing this lock together with the SET of the value (see RedisBackend.set). */
  releasedBySet(): void {
    this.markFree();
  }

  async locked(): Promise<boolean> {
    return (await this.backend.run('EXISTS', () => this.backend.client.exists(this.lockKey))) === 1;
  }

  private async tryAcquire(): Promise<boolean> {
    const ok = await this.backend.run('lock acquire', () =>
      this.backend.client.set(this.lockKey, this.token, 'PX', this.leaseMs, 'NX'),
    );
    if (ok !== 'OK') return false;
    this.held = true;
    if (this.valueKey !== undefined) this.backend.trackHolder(this.valueKey, this, true);
    if (this.controller.signal.aborted) this.controller = new AbortController();
    this.startRenewing();
    return true;
  }

  private startRenewing(): void {
    this.renewTimer = setInterval(
      () => {
        this.backend
          .run('lock renew', () => this.backend.client.eval(RENEW, 1, this.lockKey, this.token, String(this.leaseMs)))
          .then((renewed) => {
            if (renewed !== 1 && this.held) this.lost();
          })
          .catch(() => {}); // a transient failure: the next tick tries again while the lease lasts
      },
      Math.max(10, Math.floor(this.leaseMs / 3)),
    );
    this.renewTimer.unref();
  }

  private markFree(): void {
    this.held = false;
    this.stopRenewing();
    if (this.valueKey !== undefined) this.backend.trackHolder(this.valueKey, this, false);
  }

  private lost(): void {
    this.markFree();
    this.controller.abort(
      new LockLostError(`lost the lock ${JSON.stringify(this.lockKey)}: its lease ran out and another holder took it`),
    );
  }

  private stopRenewing(): void {
    if (this.renewTimer) clearInterval(this.renewTimer);
    this.renewTimer = undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Factories

/** Creates the `redis` backend (single server). */
export async function createRedisBackend(args: Readonly<RedisBackendArguments>, context: BackendContext): Promise<RedisBackend> {
  return build('redis', args, context);
}

/** Creates the `redis-sentinel` backend (master found through sentinels; distributedLock on by default). */
export async function createRedisSentinelBackend(
  args: Readonly<RedisBackendArguments>,
  context: BackendContext,
): Promise<RedisBackend> {
  return build('redis-sentinel', args, context);
}

/** Creates the `redis-cluster` backend (multi-key operations are split per hash slot). */
export async function createRedisClusterBackend(
  args: Readonly<RedisBackendArguments>,
  context: BackendContext,
): Promise<RedisBackend> {
  return build('redis-cluster', args, context);
}

type Kind = 'redis' | 'redis-sentinel' | 'redis-cluster';

async function build(kind: Kind, args: Readonly<RedisBackendArguments>, context: BackendContext): Promise<RedisBackend> {
  const check = checker(kind, args);
  checkKnownNames(`${kind} backend`, 'argument', args, KNOWN_ARGUMENTS[kind]);
  if (args.client !== undefined) {
    const extra = CONNECTION_ARGUMENTS.find((name) => (args as Record<string, unknown>)[name] !== undefined);
    if (extra !== undefined) {
      throw new ValidationError(
        `${kind} backend: ${extra} has no effect together with client (the client is already connected); configure the client itself, or leave client out`,
      );
    }
  }
  const configuredTtl = check.seconds('redisExpirationTime', undefined, MAX_TTL_SECONDS);
  // Fail-safe needs values kept past their expiry: a TTL below the region's minimum is raised to it.
  const floor = context.minimumTtl;
  const ttl = configuredTtl !== undefined && floor !== undefined && configuredTtl < floor ? floor : configuredTtl;
  const lease = check.seconds('lockTimeout', 30);
  const lockWait = check.seconds('lockWaitTimeout', 10);
  const poll = check.seconds('lockPollInterval', 0.2);
  const commandTimeout = check.seconds('commandTimeout', 5);
  const connectTimeout = check.seconds('connectTimeout', 5);
  const redisOptions = passThroughOptions(`${kind} backend`, 'redisOptions', args.redisOptions);
  const clusterOptions = passThroughOptions(`${kind} backend`, 'clusterOptions', args.clusterOptions);
  const prefix = check.string('keyPrefix') ?? '';
  const distributedLock = check.boolean('distributedLock') ?? kind === 'redis-sentinel';
  const expiration = context.expirationTime;
  if (ttl !== undefined && typeof expiration === 'number' && ttl <= expiration) {
    process.emitWarning(
      `dogpile ${kind}: redisExpirationTime (${ttl}s) is not longer than the region's expirationTime (${expiration}s): stale values vanish before they can be served while one caller regenerates, so every expiry makes all callers wait`,
      'DogpileWarning',
    );
  }
  if (ttl !== undefined && distributedLock && ttl < lease) {
    process.emitWarning(
      `dogpile ${kind}: redisExpirationTime (${ttl}s) is shorter than lockTimeout (${lease}s): a value can vanish while its creator still holds the lock, so waiters miss it and queue for the lock again`,
      'DogpileWarning',
    );
  }

  let mod: {
    Redis: typeof import('ioredis').Redis;
    Cluster: typeof import('ioredis').Cluster;
    Command: typeof import('ioredis').Command;
  };
  try {
    mod = await import('ioredis');
  } catch (cause) {
    throw new DogpileError(`the ${kind} backend needs the ioredis package: npm install ioredis`, { cause });
  }
  const common: RedisOptions = {
    commandTimeout: commandTimeout * 1000,
    connectTimeout: connectTimeout * 1000,
    maxRetriesPerRequest: 1,
    lazyConnect: false,
    // Commands issued in the same tick share one socket write (+10-40% hit throughput at 64 in flight).
    enableAutoPipelining: true,
    // ...but the lock's scripts (EVALs: release, renewal, a creator's SET + release) go out at once:
    // an auto-pipelined command waits for the next setImmediate and for any batch still in flight,
    // which delayed the creator's SET + release, and so every other process's wake-up, by ~0.3-0.6 ms
    // (bench/wake.ts). The acquire (SET NX) stays batched with the other commands of its tick.
    autoPipeliningIgnoredCommands: ['eval'],
  };
  let client: Client;
  let ownsClient = true;
  let target: string;
  if (args.client !== undefined) {
    if (typeof (args.client as { getBuffer?: unknown } | null)?.getBuffer !== 'function') {
      throw new ValidationError(
        `${kind} backend: client must be an ioredis Redis or Cluster instance, got ${describe(args.client)}`,
      );
    }
    client = args.client;
    ownsClient = false;
    target = describeClient(client);
  } else if (kind === 'redis-cluster') {
    const nodes = check.addresses('nodes');
    const options: ClusterOptions = {
      enableAutoPipelining: true,
      autoPipeliningIgnoredCommands: ['eval'], // as above
      clusterRetryStrategy: (times) => Math.min(times * 100, 2000),
      ...(clusterOptions as ClusterOptions),
      redisOptions: { ...common, ...(redisOptions as RedisOptions), ...connectionOptions(check) },
    };
    client = new mod.Cluster(nodes, options);
    target = `cluster ${nodes.map((n) => `${n.host}:${n.port}`).join(',')}`;
  } else if (kind === 'redis-sentinel') {
    const sentinels = check.addresses('sentinels');
    const name = check.string('name') ?? 'mymaster';
    client = new mod.Redis({ ...common, ...(redisOptions as RedisOptions), ...connectionOptions(check), sentinels, name });
    target = `sentinels ${sentinels.map((n) => `${n.host}:${n.port}`).join(',')} (master ${name})`;
  } else {
    const url = check.string('url');
    const options = { ...common, ...(redisOptions as RedisOptions), ...connectionOptions(check) };
    client = url ? new mod.Redis(url, options) : new mod.Redis(options);
    target = describeClient(client);
  }
  const backend = new RedisBackend(client, context.serializer, {
    prefix,
    ttlMs: ttl === undefined ? undefined : Math.ceil(ttl * 1000),
    distributedLock,
    leaseMs: Math.ceil(lease * 1000),
    lockWaitMs: Math.ceil(lockWait * 1000),
    pollMs: Math.max(1, Math.ceil(poll * 1000)),
    isCluster:
      kind === 'redis-cluster' ||
      (args.client !== undefined && 'nodes' in args.client && typeof args.client.nodes === 'function'),
    ownsClient,
    target,
    mget: directMget(mod, client),
  });
  // Failures surface per command as BackendError (naming the last connection error); ioredis
  // reconnects. Listening also keeps an error event from going unhandled (as before, for a given client too).
  backend.watchConnection(client);
  // Waiters must hear of a release even when it comes soon after they start: listen from the start.
  if (distributedLock) void backend.listening();
  return backend;
}

/**
 * MGET without the auto-pipelining detour, for an ioredis `Redis` client (of the module loaded
 * here) with auto-pipelining on; undefined for any other client, which gets plain `mgetBuffer`.
 *
 * An auto-pipelined command waits for the next setImmediate (and for any batch still in flight),
 * and goes through a Pipeline object of its own; a warm cached collection's one MGET paid that on
 * every page (about half of its client CPU for 100 keys). Sent directly, it is written to the
 * socket at once. Only when nothing is waiting in the client's auto-pipeline queue, though: a
 * command issued before it in the same tick (a SET, say) must still reach the server first, so
 * then the MGET joins that queue as before. The queue is ioredis's `_autoPipelines` map (a
 * non-public field of ioredis 5); without it, every MGET takes the ordinary path.
 */
function directMget(
  mod: { Redis: typeof import('ioredis').Redis; Command: typeof import('ioredis').Command },
  client: Client,
): ((fullKeys: string[]) => Promise<(Buffer | null)[]>) | undefined {
  if (!(client instanceof mod.Redis) || client.options.enableAutoPipelining !== true) return undefined;
  const redis = client;
  const queued = (): unknown => (redis as unknown as { _autoPipelines?: unknown })._autoPipelines;
  if (!(queued() instanceof Map)) return undefined;
  const Command = mod.Command;
  return (fullKeys) => {
    const waiting = queued();
    if (!(waiting instanceof Map) || waiting.size !== 0) return redis.mgetBuffer(...fullKeys);
    const command = new Command('mget', fullKeys, { replyEncoding: null, keyPrefix: redis.options.keyPrefix });
    return redis.sendCommand(command) as Promise<(Buffer | null)[]>;
  };
}

/** `host:port` (or the socket path) of a single-server client, from its parsed options. */
function describeClient(client: Client): string {
  const options = (client as { options?: { host?: unknown; port?: unknown; path?: unknown } }).options;
  if (typeof options?.path === 'string' && options.path) return options.path;
  if (options && typeof options.host === 'string') return `${options.host}:${String(options.port ?? 6379)}`;
  const nodes = (client as { startupNodes?: unknown }).startupNodes;
  return Array.isArray(nodes) ? `cluster of ${nodes.length} startup nodes` : 'the redis server';
}

function connectionOptions(check: Checker): RedisOptions {
  const out: RedisOptions = {};
  const host = check.string('host');
  const port = check.integer('port');
  if (port !== undefined && (port < 1 || port > 65535)) throw check.bad('port', 'a TCP port (1-65535)');
  const db = check.integer('db');
  const username = check.string('username');
  const password = check.string('password');
  if (host !== undefined) out.host = host;
  if (port !== undefined) out.port = port;
  if (db !== undefined) out.db = db;
  if (username !== undefined) out.username = username;
  if (password !== undefined) out.password = password;
  const tls = check.args.tls;
  if (tls === true) out.tls = {};
  else if (tls && typeof tls === 'object') out.tls = tls as RedisOptions['tls'];
  else if (tls !== undefined && tls !== false) throw check.bad('tls', 'true, false or TLS options');
  return out;
}

interface Checker {
  readonly args: Readonly<RedisBackendArguments>;
  bad(name: string, expected: string): ValidationError;
  /** A positive number of seconds (fractions allowed, at most `max`); `fallback` when absent. */
  seconds(name: keyof RedisBackendArguments, fallback: undefined, max: number): number | undefined;
  seconds(name: keyof RedisBackendArguments, fallback: number): number;
  string(name: keyof RedisBackendArguments): string | undefined;
  integer(name: keyof RedisBackendArguments): number | undefined;
  boolean(name: keyof RedisBackendArguments): boolean | undefined;
  /** A required, non-empty list of addresses. */
  addresses(name: 'nodes' | 'sentinels'): { host: string; port: number }[];
}

function checker(kind: Kind, args: Readonly<RedisBackendArguments>): Checker {
  if (args === null || typeof args !== 'object') throw new ValidationError(`${kind} backend: arguments must be an object`);
  const bad = (name: string, expected: string) =>
    new ValidationError(`${kind} backend: ${name} must be ${expected}, got ${describe((args as Record<string, unknown>)[name])}`);
  return {
    args,
    bad,
    seconds(name: keyof RedisBackendArguments, fallback?: number, max?: number) {
      return checkSeconds(`${kind} backend`, name, args[name], fallback as number, max === undefined ? {} : { max });
    },
    string(name) {
      const v = args[name];
      if (v === undefined || v === null) return undefined;
      if (typeof v !== 'string') throw bad(name, 'a string');
      return v;
    },
    integer(name) {
      const v = args[name];
      if (v === undefined || v === null) return undefined;
      if (!Number.isSafeInteger(v) || (v as number) < 0) throw bad(name, 'a non-negative integer');
      return v as number;
    },
    boolean(name) {
      const v = args[name];
      if (v === undefined || v === null) return undefined;
      if (typeof v !== 'boolean') throw bad(name, 'true or false');
      return v;
    },
    addresses(name) {
      const v = args[name];
      if (!Array.isArray(v) || v.length === 0) throw bad(name, 'a non-empty array of { host, port } or "host:port"');
      return v.map((a: unknown) => {
        if (typeof a === 'string') {
          const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(a);
          if (m) return { host: m[1] as string, port: Number(m[2]) };
        } else if (a && typeof a === 'object') {
          const { host, port } = a as { host?: unknown; port?: unknown };
          if (typeof host === 'string' && Number.isSafeInteger(port)) return { host, port: port as number };
        }
        throw bad(name, 'a non-empty array of { host, port } or "host:port"');
      });
    },
  };
}

/**
 * @internal One waiter's hearing of a lock's release notices (see `RedisBackend.watchReleases`): the
 * latest notice since the last {@link ReleaseWatch.next} is kept, with the value bytes it carried.
 */
export class ReleaseWatch {
  /** Whether a notice arrived that no {@link ReleaseWatch.next} has returned yet. */
  heard = false;
  private bytes: Buffer | undefined;
  private wake: (() => void) | undefined;

  constructor(private readonly unregister: () => void) {}

  /** Called by the subscriber for each release notice of the lock. */
  readonly hear = (bytes?: Buffer): void => {
    this.heard = true;
    this.bytes = bytes; // the latest notice counts: an earlier one's value may have been replaced
    this.wake?.();
  };

  /**
   * Resolves at the next notice (at once if one arrived since the last call) or after `ms`,
   * whichever is first: to the value bytes that notice carried, else undefined.
   */
  next(ms: number): Promise<Buffer | undefined> {
    if (this.heard) return Promise.resolve(this.take());
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve(this.take());
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }

  /** Stops hearing notices. */
  stop(): void {
    this.wake?.();
    this.unregister();
  }

  private take(): Buffer | undefined {
    const bytes = this.bytes;
    this.heard = false;
    this.bytes = undefined;
    return bytes;
  }
}

/** Resolves when `promise` settles or after `ms`, whichever is first (never rejects). */
function settledOrAfter(promise: Promise<unknown>, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    const done = (): void => {
      clearTimeout(timer);
      resolve();
    };
    promise.then(done, done);
  });
}
