// Our own structural types for the optional peers' objects that appear in the core's public
// declarations: an ioredis client (the redis backends' `client` argument and property) and lmdb
// databases (the file backend's constructor). The core's .d.ts files must not import 'ioredis' or
// 'lmdb': a TypeScript app that installs neither (memory backend only) and keeps skipLibCheck off
// would fail with "Cannot find module". Each type lists only the members the backend calls, in
// the forms it calls them; the real objects are assignable to them, which the backends check
// where they create them (redis.ts and file.ts still use ioredis's and lmdb's own types inside
// their factories, which the declarations do not show) and test/backends/peer-types.test.ts
// checks for every ioredis client class.

/**
 * The parts of an ioredis client (`Redis` or `Cluster`) that the redis backends use. Any ioredis 5
 * `Redis` or `Cluster` instance fits; so does another object with these members (a wrapper, a
 * test double), which the backend then drives exactly as it drives ioredis.
 */
export interface RedisClient {
  /** `GET` returning the raw bytes, or null when the key is missing. */
  getBuffer(key: string): Promise<Buffer | null>;
  /** `MGET` returning raw bytes aligned with the keys (null where missing). */
  mgetBuffer(...keys: string[]): Promise<(Buffer | null)[]>;
  /** `SET key value`. */
  set(key: string, value: string | Buffer): Promise<unknown>;
  /** `SET key value PX milliseconds`. */
  set(key: string, value: string | Buffer, expiry: 'PX', milliseconds: number): Promise<unknown>;
  /** `SET key value PX milliseconds NX`: `'OK'` when set, null when the key existed. */
  set(key: string, value: string | Buffer, expiry: 'PX', milliseconds: number, condition: 'NX'): Promise<'OK' | null>;
  /** `DEL`: the number of keys removed. */
  del(...keys: string[]): Promise<number>;
  /** `EXISTS`: how many of the keys exist. */
  exists(...keys: string[]): Promise<number>;
  /** `EVAL script numkeys key... arg...`: the script's reply. */
  eval(script: string, numberOfKeys: number, ...keysAndArgs: (string | Buffer | number)[]): Promise<unknown>;
  /** A pipeline: commands queued and sent together by `exec()`. */
  pipeline(): RedisPipeline;
  /** A new connection with the same options (the backend's pub/sub subscriber). */
  duplicate(): RedisClient;
  /** `SUBSCRIBE` (on the subscriber connection only). */
  subscribe(...channels: string[]): Promise<unknown>;
  /** Closes the connection after pending replies. */
  quit(): Promise<unknown>;
  /** Closes the connection at once. */
  disconnect(): void;
  /** Connection errors (the backend listens so that they never crash the process). */
  on(event: 'error', listener: (error: Error) => void): unknown;
  /** Pub/sub messages as raw bytes. */
  on(event: 'messageBuffer', listener: (channel: Buffer, message: Buffer) => void): unknown;
}

/** The parts of an ioredis pipeline that the redis backends use. */
export interface RedisPipeline {
  /** Queues `SET key value`. */
  set(key: string, value: string | Buffer): unknown;
  /** Queues `SET key value PX milliseconds`. */
  set(key: string, value: string | Buffer, expiry: 'PX', milliseconds: number): unknown;
  /** Sends the queued commands: one `[error, reply]` pair per command, or null when discarded. */
  exec(): Promise<[error: Error | null, reply: unknown][] | null>;
}

/** The parts of an lmdb `Database` (a named database) that the file backend uses. */
export interface LmdbDatabase<V, K> {
  /** The value under `key` (read from the memory map), or undefined. */
  get(key: K): V | undefined;
  /** Writes `value` under `key`, committed asynchronously in a batch. */
  put(key: K, value: V): Promise<boolean>;
  /** Removes `key`, committed asynchronously in a batch. */
  remove(key: K): Promise<boolean>;
  /** Runs `action` in one asynchronous write transaction. */
  transaction<T>(action: () => T): Promise<T>;
  /** Runs `action` in a synchronous write transaction (one writer across processes at a time). */
  transactionSync<T>(action: () => T): T;
  /** Writes `value` under `key` inside the current transaction. */
  putSync(key: K, value: V): void;
  /** Removes `key` inside the current transaction; true when it existed. */
  removeSync(key: K): boolean;
}

/** The parts of an lmdb `RootDatabase` (an opened environment) that the file backend uses. */
export interface LmdbRootDatabase {
  /** Closes the environment and its named databases. */
  close(): Promise<void>;
}
