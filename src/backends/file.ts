// The file backend (dogpile.cache's dbm analogue): an LMDB environment on local disk, shared safely
// by every process on the host, with values as envelope bytes and a per-key lock built on LMDB's
// serialized write transactions. `lmdb` is an optional peer dependency, imported on first use.

import { mkdirSync } from 'node:fs';
import { dirname, extname, resolve as resolvePath } from 'node:path';
import type { Database, RootDatabase } from 'lmdb';
import {
  type BackendContext,
  BackendError,
  type CachedValue,
  type CacheMutex,
  describe,
  type NoValue,
  PluginNotFoundError,
  ValidationError,
} from '../api.js';
import { nodeCrypto } from '../node-builtins.js';
import { decodeValue, encodeValue } from '../serialization.js';
import { checkKnownNames, checkSeconds } from '../validate.js';
import { BaseBackend } from './base.js';
import { LeasedMutex } from './lease.js';
import type { LmdbDatabase, LmdbRootDatabase } from './peer-types.js';

/** Keys longer than this many UTF-8 bytes are stored under their SHA-1 (LMDB's limit is 1978). */
const MAX_KEY_BYTES = 1000;

/** Arguments of the `file` backend. */
export interface FileBackendArguments {
  /**
   * Where the LMDB environment lives (required). A path with an extension (`cache.mdb`) is a data
   * file (its lock file sits beside it); otherwise a directory. Parent directories are created.
   */
  path: string;
  /** Lease of the per-key lock, seconds (renewed while held; an expired lease may be taken over). Default 30. */
  lockTimeout?: number;
  /** How long `acquire(true)` polls for the lock, seconds. Default 10. */
  lockWaitTimeout?: number;
}

interface LockRecord {
  token: string;
  expiresAt: number;
}

interface ParsedArguments {
  path: string;
  lockTimeoutMs: number;
  lockWaitTimeoutMs: number;
}

function parseArguments(args: Readonly<Record<string, unknown>>): ParsedArguments {
  checkKnownNames('file backend', 'argument', args, ['path', 'lockTimeout', 'lockWaitTimeout']);
  const path = args.path;
  if (typeof path !== 'string' || path.length === 0 || path.includes('\0')) {
    throw new ValidationError(`file backend: path must be a non-empty file or directory path, got ${describe(path)}`);
  }
  return {
    path: resolvePath(path),
    lockTimeoutMs: checkSeconds('file backend', 'lockTimeout', args.lockTimeout, 30, { min: 0.05 }) * 1000,
    lockWaitTimeoutMs: checkSeconds('file backend', 'lockWaitTimeout', args.lockWaitTimeout, 10, { allowZero: true }) * 1000,
  };
}

/**
 * The file backend. Values live in one LMDB environment (memory-mapped, multi-process safe,
 * crash-safe commits); locks live in a second named database of the same environment, as records
 * `{ token, expiresAt }` written in a write transaction (LMDB runs one writer at a time across
 * processes, which makes check-and-set atomic). The lock is always distributed.
 */
export class FileBackend extends BaseBackend {
  private readonly options: ParsedArguments;
  private closed = false;

  /** Use {@link createFileBackend} (it loads `lmdb`); this takes the opened environment. */
  constructor(
    args: Readonly<Record<string, unknown>>,
    private readonly context: BackendContext,
    private readonly root: LmdbRootDatabase,
    /** The named database that holds the values. */
    readonly db: LmdbDatabase<Buffer, string>,
    private readonly locks: LmdbDatabase<LockRecord, string>,
  ) {
    super();
    this.options = parseArguments(args);
  }

  /** The key as stored: the key itself, or `dogpile-sha1:<hex>` when too long for LMDB. */
  storeKey(key: string): string {
    if (key.length > 0 && Buffer.byteLength(key, 'utf8') <= MAX_KEY_BYTES) return key;
    return `dogpile-sha1:${nodeCrypto().createHash('sha1').update(key, 'utf8').digest('hex')}`;
  }

  /** Runs `op`; a failure becomes a BackendError naming `what` (and `key`, quoted, if given). */
  private async call<T>(what: string, key: string | undefined, op: () => T | Promise<T>): Promise<T> {
    const label = () =>
      `file backend ${JSON.stringify(this.options.path)}: ${what}${key === undefined ? '' : ` ${JSON.stringify(key)}`}`;
    if (this.closed) throw new BackendError(`${label()} after close()`);
    try {
      return await op();
    } catch (cause) {
      if (cause instanceof BackendError) throw cause;
      throw new BackendError(`${label()} failed`, { cause });
    }
  }

  async get(key: string): Promise<CachedValue | NoValue> {
    const bytes = await this.call('get', key, () => this.db.get(this.storeKey(key)));
    return decodeValue(bytes, this.context.serializer);
  }

  async set(key: string, value: CachedValue): Promise<void> {
    const bytes = encodeValue(value, this.context.serializer);
    await this.call('set', key, () => this.db.put(this.storeKey(key), bytes));
  }

  override async setMulti(entries: Map<string, CachedValue>): Promise<void> {
    const encoded = [...entries].map(([k, v]) => [this.storeKey(k), encodeValue(v, this.context.serializer)] as const);
    await this.call(`setMulti of ${encoded.length} keys`, undefined, () =>
      this.db.transaction(() => {
        for (const [k, bytes] of encoded) this.db.put(k, bytes);
      }),
    );
  }

  async delete(key: string): Promise<void> {
    await this.call('delete', key, () => this.db.remove(this.storeKey(key)));
  }

  override async deleteMulti(keys: string[]): Promise<void> {
    await this.call(`deleteMulti of ${keys.length} keys`, undefined, () =>
      this.db.transaction(() => {
        for (const k of keys) this.db.remove(this.storeKey(k));
      }),
    );
  }

  /** The per-key lock (always provided: the file backend's lock is shared by every process on the host). */
  getMutex(key: string): CacheMutex {
    return new FileMutex(this, this.storeKey(key), this.options);
  }

  // The lock records are written in asynchronous write transactions: LMDB's write lock is taken
  // off the main thread, so a writer in another process that holds it (stopped, or slow) delays
  // the promise, which the region's backendTimeout bounds, instead of blocking the event loop.

  /** @internal Atomically takes the lock for `key` if free or expired; true when taken. */
  tryLock(key: string, token: string): Promise<boolean> {
    return this.call('lock acquire', undefined, () =>
      this.locks.transaction(() => {
        const current = this.locks.get(key);
        if (current && current.expiresAt > Date.now()) return false;
        this.locks.putSync(key, { token, expiresAt: Date.now() + this.options.lockTimeoutMs });
        return true;
      }),
    );
  }

  /** @internal Extends the lease if `token` still owns it; false when it was lost. */
  renewLock(key: string, token: string): Promise<boolean> {
    return this.call('lock renew', undefined, () =>
      this.locks.transaction(() => {
        const current = this.locks.get(key);
        if (current?.token !== token) return false;
        this.locks.putSync(key, { token, expiresAt: Date.now() + this.options.lockTimeoutMs });
        return true;
      }),
    );
  }

  /** @internal Frees the lock only if `token` owns it. */
  unlock(key: string, token: string): Promise<void> {
    return this.call('lock release', undefined, async () => {
      await this.locks.transaction(() => {
        if (this.locks.get(key)?.token === token) this.locks.removeSync(key);
      });
    });
  }

  /** @internal Whether an unexpired lock record exists for `key`. */
  isLocked(key: string): Promise<boolean> {
    return this.call('lock check', undefined, () => {
      const current = this.locks.get(key);
      return current !== undefined && current.expiresAt > Date.now();
    });
  }

  /** Closes the environment. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.root.close();
  }
}

/**
 * The file lock: a `{ token, expiresAt }` record taken in a write transaction when absent or
 * expired, renewed every lease/3 while held (`signal` aborts if it was lost), freed only by its
 * token. `acquire(true)` polls (5 ms, growing to 50 ms) up to `lockWaitTimeout`.
 */
class FileMutex extends LeasedMutex<string> {
  constructor(
    private readonly backend: FileBackend,
    private readonly key: string,
    options: ParsedArguments,
  ) {
    super({ leaseMs: options.lockTimeoutMs, waitMs: options.lockWaitTimeoutMs }, `file lock ${JSON.stringify(key)}`);
  }

  protected newToken(): string {
    return nodeCrypto().randomBytes(16).toString('hex');
  }

  protected take(token: string): Promise<boolean> {
    return this.backend.tryLock(this.key, token);
  }

  protected renew(token: string): Promise<boolean> {
    return this.backend.renewLock(this.key, token);
  }

  protected free(token: string): Promise<void> {
    return this.backend.unlock(this.key, token);
  }

  locked(): Promise<boolean> {
    return this.backend.isLocked(this.key);
  }
}

/**
 * Factory registered as `file`: validates `args` (never mutated), creates parent directories,
 * loads `lmdb` and opens the environment.
 */
export async function createFileBackend(args: Readonly<Record<string, unknown>>, context: BackendContext): Promise<FileBackend> {
  const { path } = parseArguments(args);
  let lmdb: typeof import('lmdb');
  try {
    lmdb = await import('lmdb');
  } catch (cause) {
    throw new PluginNotFoundError('file backend: the optional peer dependency "lmdb" is not installed (npm install lmdb)', {
      cause,
    });
  }
  const isFile = extname(path) !== '';
  try {
    mkdirSync(isFile ? dirname(path) : path, { recursive: true });
  } catch (cause) {
    throw new BackendError(`file backend: cannot create the directory for path ${JSON.stringify(path)}`, { cause });
  }
  let root: RootDatabase;
  let db: Database<Buffer, string>;
  let locks: Database<LockRecord, string>;
  try {
    // Named databases have their names as keys of the root one, so values get a named one too.
    root = lmdb.open({ path, noSubdir: isFile, maxDbs: 4 });
    db = root.openDB<Buffer, string>({ name: 'dogpile-values', encoding: 'binary', compression: false });
    locks = root.openDB<LockRecord, string>({ name: 'dogpile-locks', encoding: 'json', cache: false });
  } catch (cause) {
    throw new BackendError(`file backend: cannot open the LMDB environment at ${JSON.stringify(path)}`, { cause });
  }
  return new FileBackend(args, context, root, db, locks);
}
