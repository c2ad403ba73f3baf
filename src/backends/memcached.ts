// The memcached backend: values as envelope bytes over memcached's text protocol, several servers
// on a consistent-hash ring, and an optional cross-process lock (add + token, cas-checked release,
// lease renewal). The protocol client is our own small one over node:net (see MemcachedClient):
// no npm client offered gets/cas, consistent hashing, binary-safe values and per-request timeouts
// together.

import type { Socket } from 'node:net';
import {
  type BackendContext,
  BackendError,
  type CachedValue,
  type CacheMutex,
  describe,
  NO_VALUE,
  type NoValue,
  toBackendError,
  ValidationError,
} from '../api.js';
import { nodeCrypto, nodeNet } from '../node-builtins.js';
import { decodeValue, encodeValue } from '../serialization.js';
import { checkKnownNames, checkSeconds } from '../validate.js';
import { BaseBackend } from './base.js';
import { LeasedMutex } from './lease.js';

/** memcached reads an expiry above 30 days as an absolute Unix timestamp. */
const THIRTY_DAYS = 60 * 60 * 24 * 30;
/** memcached's key limit in bytes. */
const MAX_KEY_BYTES = 250;

/** Arguments of the `memcached` backend. */
export interface MemcachedBackendArguments {
  /** `"host:port"`, a comma-separated list of them, or an array. Several servers form a consistent-hash ring. Default `"127.0.0.1:11211"`. */
  servers?: string | readonly string[];
  /**
   * Physical TTL of stored values, seconds (0 = no expiry, the default). It must exceed the region's
   * `expirationTime` plus the creator's run time, or stale values vanish before they can be served
   * while one caller regenerates. memcached counts whole seconds: a fraction is rounded up
   * (1.5 → 2). Values above 30 days are sent as absolute timestamps. With the region's `failSafe`
   * on, a TTL below `expirationTime + maxStale` is raised to it.
   */
  memcachedExpireTime?: number;
  /** Provide a cross-process lock through memcached (default false: in-process lock only). */
  distributedLock?: boolean;
  /**
   * Lease of the distributed lock, seconds (renewed every third of it while held). memcached counts
   * whole seconds, so the lock item lives the lease rounded up plus one second: a lock whose holder
   * died is free after lockTimeout to ceil(lockTimeout) + 1 seconds. At least 1. Default 30.
   */
  lockTimeout?: number;
  /** How long `acquire(true)` polls for the lock, seconds. Default 10. */
  lockWaitTimeout?: number;
  /** Prepended to every key (printable ASCII, at most 100 bytes). Default `""`. */
  keyPrefix?: string;
  /** Per-request timeout, seconds: a dead or hung server fails the call after this. Default 2. */
  timeout?: number;
  /** How long opening a TCP connection to a server may take, seconds. Default: `timeout`. */
  connectTimeout?: number;
  /**
   * Seconds a server stays marked down after its connection failed (refused, reset, timed out):
   * meanwhile calls for its keys fail at once with a BackendError instead of each waiting for a
   * new connection attempt. The analogue of python-memcached's `dead_retry` (30 there). Keys are
   * not moved to other servers (that would split locks and values). Default 0: every call tries again.
   */
  deadRetry?: number;
  /**
   * Connections per server (requests take them in turn), 1-64. Each connection is pipelined, so one
   * is enough for most loads; more spread parsing of large values and avoid waiting behind them. Default 1.
   */
  poolSize?: number;
  /** TCP keep-alive on each connection: the idle time before the first probe, seconds. Default 0 (off). */
  keepAlive?: number;
}

/** Every argument the memcached backend knows. */
const KNOWN_ARGUMENTS = [
  'servers',
  'memcachedExpireTime',
  'distributedLock',
  'lockTimeout',
  'lockWaitTimeout',
  'keyPrefix',
  'timeout',
  'connectTimeout',
  'deadRetry',
  'poolSize',
  'keepAlive',
];

interface ParsedArguments {
  servers: string[];
  expire: number;
  distributedLock: boolean;
  /** Lease in seconds, fractions allowed. */
  lockTimeout: number;
  lockWaitTimeout: number;
  keyPrefix: string;
  client: MemcachedClientOptions;
}

/** Tunables of the memcached backend's own client, in milliseconds. */
export interface MemcachedClientOptions {
  /** Per-request timeout. */
  readonly timeoutMs: number;
  /** TCP connect timeout. Default: `timeoutMs`. */
  readonly connectTimeoutMs?: number;
  /** How long a server whose connection failed is marked down. Default 0 (never). */
  readonly deadRetryMs?: number;
  /** Connections per server. Default 1. */
  readonly poolSize?: number;
  /** TCP keep-alive initial delay; 0 off. Default 0. */
  readonly keepAliveMs?: number;
}

function parseArguments(args: Readonly<Record<string, unknown>>): ParsedArguments {
  const bad = (name: string, want: string): never => {
    throw new ValidationError(`memcached backend: ${name} must be ${want}, got ${describe(args[name])}`);
  };
  checkKnownNames('memcached backend', 'argument', args, KNOWN_ARGUMENTS);
  const rawServers = args.servers ?? '127.0.0.1:11211';
  let servers: string[];
  if (typeof rawServers === 'string') servers = rawServers.split(',').map((s) => s.trim());
  else if (Array.isArray(rawServers) && rawServers.every((s) => typeof s === 'string')) servers = [...(rawServers as string[])];
  else return bad('servers', 'a "host:port" string or an array of them');
  if (servers.length === 0 || !servers.every((s) => /^[^\s:]+:\d{1,5}$/.test(s) && Number(s.split(':')[1]) < 65536)) {
    bad('servers', 'a "host:port" string or a non-empty array of them');
  }
  const where = 'memcached backend';
  // memcached takes whole seconds: a fractional expiry is rounded up, never down to "no expiry".
  const expire = Math.ceil(
    checkSeconds(where, 'memcachedExpireTime', args.memcachedExpireTime, 0, { allowZero: true, max: 1e10 }),
  );
  const lockTimeout = checkSeconds(where, 'lockTimeout', args.lockTimeout, 30, { min: 1, max: THIRTY_DAYS });
  const lockWaitTimeout = checkSeconds(where, 'lockWaitTimeout', args.lockWaitTimeout, 10, { allowZero: true });
  const timeout = checkSeconds(where, 'timeout', args.timeout, 2, { min: 0.001 });
  const connectTimeout = checkSeconds(where, 'connectTimeout', args.connectTimeout, timeout, { min: 0.001 });
  const deadRetry = checkSeconds(where, 'deadRetry', args.deadRetry, 0, { allowZero: true });
  const keepAlive = checkSeconds(where, 'keepAlive', args.keepAlive, 0, { allowZero: true });
  const poolSize = args.poolSize ?? 1;
  if (!Number.isInteger(poolSize) || (poolSize as number) < 1 || (poolSize as number) > 64) {
    bad('poolSize', 'an integer from 1 to 64 (connections per server)');
  }
  const distributedLock = args.distributedLock ?? false;
  if (typeof distributedLock !== 'boolean') bad('distributedLock', 'a boolean');
  const keyPrefix = args.keyPrefix ?? '';
  if (typeof keyPrefix !== 'string' || !/^[\x21-\x7e]{0,100}$/.test(keyPrefix)) {
    bad('keyPrefix', 'a string of at most 100 printable ASCII characters without spaces');
  }
  return {
    servers: [...new Set(servers)],
    expire,
    distributedLock: distributedLock as boolean,
    lockTimeout,
    lockWaitTimeout,
    keyPrefix: keyPrefix as string,
    client: {
      timeoutMs: timeout * 1000,
      connectTimeoutMs: connectTimeout * 1000,
      deadRetryMs: deadRetry * 1000,
      poolSize: poolSize as number,
      keepAliveMs: keepAlive * 1000,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Protocol client

/** One retrieved item. */
interface Item {
  value: Buffer;
  cas: string;
}

type Reply = { kind: 'line'; line: string } | { kind: 'items'; items: Map<string, Item> };

interface Pending {
  readonly retrieval: boolean;
  resolve(reply: Reply): void;
  reject(err: Error): void;
}

/**
 * One pipelined connection to one server. A timeout or socket error fails every pending request
 * and is reported to `onDown` (the server's pool marks the server down for `deadRetry`).
 */
class Connection {
  private socket: Socket | undefined;
  private buffer: Buffer = Buffer.alloc(0);
  private queue: Pending[] = [];
  private items = new Map<string, Item>();
  private closed = false;

  constructor(
    readonly address: string,
    private readonly options: MemcachedClientOptions,
    private readonly onDown: (err: Error) => void,
  ) {}

  private get timeoutMs(): number {
    return this.options.timeoutMs;
  }

  request(payload: Buffer | string, retrieval: boolean): Promise<Reply> {
    if (this.closed) return Promise.reject(new Error(`memcached connection to ${this.address} is closed`));
    const socket = this.connect();
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(socket, new Error(`memcached ${this.address}: no reply after ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.queue.push({
        retrieval,
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      socket.write(payload);
    });
  }

  private connect(): Socket {
    if (this.socket) return this.socket;
    const [host, port] = this.address.split(':') as [string, string];
    const socket = new (nodeNet().Socket)();
    socket.setNoDelay(true);
    const keepAliveMs = this.options.keepAliveMs ?? 0;
    if (keepAliveMs > 0) socket.setKeepAlive(true, keepAliveMs);
    const connectMs = this.options.connectTimeoutMs ?? this.timeoutMs;
    const connecting = setTimeout(() => {
      this.fail(socket, new Error(`memcached ${this.address}: connect timed out after ${connectMs} ms`));
    }, connectMs);
    socket.once('connect', () => clearTimeout(connecting));
    socket.once('close', () => clearTimeout(connecting));
    socket.on('data', (chunk: Buffer) => {
      if (this.socket !== socket) return;
      this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
      try {
        this.parse();
      } catch (err) {
        this.fail(socket, err as Error);
      }
    });
    socket.on('error', (err) => this.fail(socket, err));
    socket.on('close', () => this.fail(socket, new Error(`memcached ${this.address}: connection closed`)));
    socket.connect(Number(port), host);
    this.socket = socket;
    return socket;
  }

  private fail(socket: Socket, err: Error): void {
    if (this.socket !== socket) return;
    this.socket = undefined;
    this.buffer = Buffer.alloc(0);
    this.items = new Map();
    const queue = this.queue;
    this.queue = [];
    socket.destroy();
    // Down only when a request suffered (an idle connection the server closed is not a failure).
    if (!this.closed && queue.length > 0) this.onDown(err);
    for (const p of queue) p.reject(err);
  }

  private parse(): void {
    for (;;) {
      const head = this.queue[0];
      if (!head) {
        if (this.buffer.length) throw new Error(`memcached ${this.address}: unexpected data`);
        return;
      }
      const eol = this.buffer.indexOf('\r\n');
      if (eol < 0) return;
      const line = this.buffer.toString('latin1', 0, eol);
      if (head.retrieval && line.startsWith('VALUE ')) {
        const [, key, , bytes, cas] = line.split(' ');
        const size = Number(bytes);
        const end = eol + 2 + size;
        if (this.buffer.length < end + 2) return;
        this.items.set(key as string, { value: Buffer.from(this.buffer.subarray(eol + 2, end)), cas: cas ?? '' });
        this.buffer = this.buffer.subarray(end + 2);
        continue;
      }
      this.buffer = this.buffer.subarray(eol + 2);
      this.queue.shift();
      if (line === 'ERROR' || line.startsWith('CLIENT_ERROR') || line.startsWith('SERVER_ERROR')) {
        this.items = new Map();
        head.reject(new Error(`memcached ${this.address}: ${line}`));
      } else if (head.retrieval) {
        const items = this.items;
        this.items = new Map();
        if (line === 'END') head.resolve({ kind: 'items', items });
        else head.reject(new Error(`memcached ${this.address}: unexpected reply ${JSON.stringify(line)}`));
      } else {
        head.resolve({ kind: 'line', line });
      }
    }
  }

  close(): void {
    this.closed = true;
    if (this.socket) this.fail(this.socket, new Error(`memcached connection to ${this.address} is closed`));
  }
}

/**
 * The connections to one server (`poolSize` of them, taken in turn) and its health: after a
 * connection failure the server is marked down for `deadRetry` ms, and requests fail at once.
 */
class ServerPool {
  private readonly connections: Connection[];
  private next = 0;
  private downUntil = 0;
  private downReason = '';

  constructor(
    readonly address: string,
    private readonly options: MemcachedClientOptions,
  ) {
    const size = options.poolSize ?? 1;
    this.connections = Array.from({ length: size }, () => new Connection(address, options, (err) => this.markDown(err)));
  }

  request(payload: Buffer | string, retrieval: boolean): Promise<Reply> {
    if (this.downUntil !== 0) {
      const left = this.downUntil - Date.now();
      if (left > 0) {
        return Promise.reject(
          new Error(`memcached ${this.address} is marked down for another ${left} ms (deadRetry) after: ${this.downReason}`),
        );
      }
      this.downUntil = 0;
    }
    const conn = this.connections.length === 1 ? (this.connections[0] as Connection) : this.take();
    return conn.request(payload, retrieval);
  }

  private take(): Connection {
    const conn = this.connections[this.next] as Connection;
    this.next = (this.next + 1) % this.connections.length;
    return conn;
  }

  private markDown(err: Error): void {
    const ms = this.options.deadRetryMs ?? 0;
    if (ms <= 0) return;
    this.downUntil = Date.now() + ms;
    this.downReason = err.message;
  }

  close(): void {
    for (const c of this.connections) c.close();
  }
}

/**
 * A minimal memcached text-protocol client: get/gets, set/add/cas, delete, touch, pipelined per
 * server, with a ketama-style consistent-hash ring (160 points per server, md5) over the servers.
 * Keys must already be protocol-safe (the backend mangles them).
 */
export class MemcachedClient {
  private readonly connections: ServerPool[];
  private readonly ring: { point: number; conn: ServerPool }[] = [];

  /** @param servers `host:port` addresses; @param options tunables, or the per-request timeout in ms */
  constructor(servers: readonly string[], options: MemcachedClientOptions | number) {
    const tunables = typeof options === 'number' ? { timeoutMs: options } : options;
    this.connections = servers.map((s) => new ServerPool(s, tunables));
    for (const conn of this.connections) {
      for (let i = 0; i < 40; i++) {
        const digest = nodeCrypto().createHash('md5').update(`${conn.address}-${i}`).digest();
        for (let j = 0; j < 4; j++) this.ring.push({ point: digest.readUInt32LE(j * 4), conn });
      }
    }
    this.ring.sort((a, b) => a.point - b.point);
  }

  /** The address of the server that owns `key`. */
  serverFor(key: string): string {
    return this.pick(key).address;
  }

  private pick(key: string): ServerPool {
    if (this.connections.length === 1) return this.connections[0] as ServerPool;
    const h = nodeCrypto().createHash('md5').update(key).digest().readUInt32LE(0);
    let lo = 0;
    let hi = this.ring.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.ring[mid] as { point: number }).point < h) lo = mid + 1;
      else hi = mid;
    }
    return (this.ring[lo % this.ring.length] as { conn: ServerPool }).conn;
  }

  /** Reads several keys (grouped per server); `cas` asks for cas ids (`gets`). */
  async getMulti(keys: readonly string[], cas = false): Promise<Map<string, Item>> {
    const groups = new Map<ServerPool, string[]>();
    for (const key of keys) {
      const conn = this.pick(key);
      const list = groups.get(conn);
      if (list) list.push(key);
      else groups.set(conn, [key]);
    }
    const out = new Map<string, Item>();
    const requests: Promise<void>[] = [];
    for (const [conn, list] of groups) {
      const unique = [...new Set(list)];
      // At most 100 keys per command keeps each request line well under memcached's line limits.
      for (let i = 0; i < unique.length; i += 100) {
        const batch = unique.slice(i, i + 100);
        requests.push(
          conn.request(`${cas ? 'gets' : 'get'} ${batch.join(' ')}\r\n`, true).then((reply) => {
            if (reply.kind === 'items') for (const [k, v] of reply.items) out.set(k, v);
          }),
        );
      }
    }
    await Promise.all(requests);
    return out;
  }

  /** Reads one key. */
  async get(key: string, cas = false): Promise<Item | undefined> {
    const reply = await this.pick(key).request(`${cas ? 'gets' : 'get'} ${key}\r\n`, true);
    return reply.kind === 'items' ? reply.items.get(key) : undefined;
  }

  /** `set`, `add` or `cas` (with `casId`); resolves to the server's reply line (STORED, NOT_STORED, EXISTS, NOT_FOUND). */
  async store(command: 'set' | 'add' | 'cas', key: string, value: Buffer, exptime: number, casId?: string): Promise<string> {
    const head = `${command} ${key} 0 ${exptime} ${value.length}${command === 'cas' ? ` ${casId}` : ''}\r\n`;
    const reply = await this.pick(key).request(Buffer.concat([Buffer.from(head, 'latin1'), value, CRLF]), false);
    return reply.kind === 'line' ? reply.line : '';
  }

  /** Deletes a key; true when it existed. */
  async delete(key: string): Promise<boolean> {
    const reply = await this.pick(key).request(`delete ${key}\r\n`, false);
    return reply.kind === 'line' && reply.line === 'DELETED';
  }

  /** Closes every connection. */
  close(): void {
    for (const c of this.connections) c.close();
  }
}

const CRLF = Buffer.from('\r\n');

// ---------------------------------------------------------------------------------------------
// Backend

/**
 * The memcached backend. Values are stored as envelope bytes (so the default item limit of 1 MB
 * bounds a value; start memcached with `-I` to raise it). Keys memcached cannot carry (whitespace,
 * control or non-ASCII characters, more than 250 bytes with the prefix) are replaced by
 * `<prefix>dogpile-sha1:<hex>`, so no key can ever reach the wire as a command.
 */
export class MemcachedBackend extends BaseBackend {
  /** The protocol client (exposed for tests and diagnostics). */
  readonly client: MemcachedClient;
  private readonly options: ParsedArguments;

  /** @param args see {@link MemcachedBackendArguments}; never mutated */
  constructor(
    args: Readonly<Record<string, unknown>>,
    private readonly context: BackendContext,
  ) {
    super();
    const parsed = parseArguments(args);
    // Fail-safe needs values kept past their expiry: a TTL below the region's minimum is raised to it.
    const floor = context.minimumTtl;
    this.options =
      parsed.expire > 0 && floor !== undefined && parsed.expire < floor ? { ...parsed, expire: Math.ceil(floor) } : parsed;
    this.client = new MemcachedClient(this.options.servers, this.options.client);
  }

  /** The key as sent to memcached: prefixed, and hashed when the protocol could not carry it. */
  wireKey(key: string): string {
    const full = `${this.options.keyPrefix}${key}`;
    if (full.length <= MAX_KEY_BYTES && /^[\x21-\x7e]*$/.test(full) && full.length > 0) return full;
    return `${this.options.keyPrefix}dogpile-sha1:${nodeCrypto().createHash('sha1').update(full, 'utf8').digest('hex')}`;
  }

  private exptime(): number {
    const ttl = this.options.expire;
    return ttl > THIRTY_DAYS ? Math.floor(Date.now() / 1000) + ttl : ttl;
  }

  /** Runs `op`; a failure becomes a BackendError naming `what` (and `key`, quoted, if given). */
  private async call<T>(what: string, key: string | undefined, op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (cause) {
      const target = key === undefined ? '' : ` ${JSON.stringify(key)}`;
      throw toBackendError(cause, `memcached backend: ${what}${target} failed`);
    }
  }

  async get(key: string): Promise<CachedValue | NoValue> {
    const item = await this.call('get', key, () => this.client.get(this.wireKey(key)));
    return item ? decodeValue(item.value, this.context.serializer) : NO_VALUE;
  }

  override async getMulti(keys: string[]): Promise<(CachedValue | NoValue)[]> {
    if (keys.length === 0) return [];
    const wire = keys.map((k) => this.wireKey(k));
    const items = await this.call(`getMulti of ${keys.length} keys`, undefined, () => this.client.getMulti(wire));
    return wire.map((w) => {
      const item = items.get(w);
      return item ? decodeValue(item.value, this.context.serializer) : NO_VALUE;
    });
  }

  async set(key: string, value: CachedValue): Promise<void> {
    const bytes = encodeValue(value, this.context.serializer);
    const reply = await this.call('set', key, () => this.client.store('set', this.wireKey(key), bytes, this.exptime()));
    if (reply !== 'STORED') throw new BackendError(`memcached backend: set ${JSON.stringify(key)} got ${reply}`);
  }

  async delete(key: string): Promise<void> {
    await this.call('delete', key, () => this.client.delete(this.wireKey(key)));
  }

  /** A distributed lock for `key` when `distributedLock` is on; otherwise null. */
  getMutex(key: string): CacheMutex | null {
    if (!this.options.distributedLock) return null;
    return new MemcachedMutex(this, this.wireKey(`_lock:${key}`), this.options);
  }

  /** @internal used by the mutex */
  lockCall<T>(what: string, op: (client: MemcachedClient) => Promise<T>): Promise<T> {
    return this.call(what, undefined, () => op(this.client));
  }

  /** Closes the connections to every server. */
  async close(): Promise<void> {
    this.client.close();
  }
}

const TOMBSTONE = Buffer.from('released');
/** How long a released lock's tombstone stays (memcached seconds; it is free to take meanwhile). */
const TOMBSTONE_SECONDS = 2;

/**
 * The lock: `add lockKey token` with the lease as expiry. Release reads the key with `gets` and,
 * only if it still holds our token, swaps it with `cas` for a short-lived tombstone. A tombstone
 * counts as free: a taker whose `add` fails reads the key with `gets` and, when it finds the
 * tombstone, swaps in its own token with `cas`, so of several takers exactly one wins. Nothing is
 * ever deleted, so no release can free a lock another holder took meanwhile (the text protocol has
 * no compare-and-delete). While held, the lease is renewed every lockTimeout/3 with the same
 * gets+cas; if the lock is found lost, or renewals keep failing for a whole lease, `signal` is
 * aborted.
 */
class MemcachedMutex extends LeasedMutex<Buffer> {
  constructor(
    private readonly backend: MemcachedBackend,
    private readonly lockKey: string,
    private readonly options: ParsedArguments,
  ) {
    super(
      { leaseMs: options.lockTimeout * 1000, waitMs: options.lockWaitTimeout * 1000 },
      `memcached lock ${JSON.stringify(lockKey)}`,
    );
  }

  /**
   * memcached's clock ticks in whole seconds and an item expires when the tick reaches its expiry,
   * so an expiry of N lasts between N-1 and N seconds: one second is added to the lease.
   */
  private get leaseSeconds(): number {
    return Math.ceil(this.options.lockTimeout) + 1;
  }

  protected newToken(): Buffer {
    return nodeCrypto().randomBytes(16);
  }

  /** Free means absent (`add`) or a released holder's tombstone (`gets` + `cas`). */
  protected async take(token: Buffer): Promise<boolean> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const added = await this.backend.lockCall('lock add', (c) => c.store('add', this.lockKey, token, this.leaseSeconds));
      if (added === 'STORED') return true;
      const item = await this.backend.lockCall('lock take', (c) => c.get(this.lockKey, true));
      if (item === undefined) continue; // expired or evicted since the add: add again
      if (!item.value.equals(TOMBSTONE)) return false; // held
      const swapped = await this.backend.lockCall('lock take', (c) =>
        c.store('cas', this.lockKey, token, this.leaseSeconds, item.cas),
      );
      return swapped === 'STORED'; // EXISTS: another taker swapped first; NOT_FOUND: gone, retry later
    }
    return false;
  }

  protected async renew(token: Buffer): Promise<boolean> {
    const item = await this.backend.lockCall('lock renew', (c) => c.get(this.lockKey, true));
    if (!item?.value.equals(token)) return false;
    const reply = await this.backend.lockCall('lock renew', (c) =>
      c.store('cas', this.lockKey, token, this.leaseSeconds, item.cas),
    );
    return reply === 'STORED';
  }

  protected async free(token: Buffer): Promise<void> {
    const item = await this.backend.lockCall('lock release', (c) => c.get(this.lockKey, true));
    if (!item?.value.equals(token)) return; // not ours any more: leave it alone
    // Only if unchanged since the gets: a tombstone, kept briefly, that takers treat as free.
    await this.backend.lockCall('lock release', (c) => c.store('cas', this.lockKey, TOMBSTONE, TOMBSTONE_SECONDS, item.cas));
  }

  async locked(): Promise<boolean> {
    const item = await this.backend.lockCall('lock check', (c) => c.get(this.lockKey));
    return item !== undefined && !item.value.equals(TOMBSTONE);
  }
}

/** Factory registered as `memcached`: validates `args` (never mutated) and returns the backend. */
export async function createMemcachedBackend(
  args: Readonly<Record<string, unknown>>,
  context: BackendContext,
): Promise<MemcachedBackend> {
  return new MemcachedBackend(args, context);
}
