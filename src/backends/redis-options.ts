// The ioredis client options a user may pass through the redis backends (`redisOptions`, and
// `clusterOptions` for redis-cluster): dogpile.cache's `connection_kwargs`. They are our own
// structural types, so the core's declarations never need ioredis's: the options listed are the
// documented ones people reach for, and the index signature lets any other ioredis option through.
// Options the backend sets from a named argument, or must own, are refused (see FORBIDDEN below).

import { ValidationError } from '../api.js';
import { checkPlainObject } from '../validate.js';

/** ioredis `RedisOptions` passed through to the client (times in milliseconds, as ioredis takes them). */
export interface RedisClientOptions {
  /** `CLIENT SETNAME` on connect, to tell connections apart in `CLIENT LIST`. */
  connectionName?: string;
  /** Delay in ms before reconnect attempt `times`, or a non-number to stop reconnecting. */
  retryStrategy?: (times: number) => number | null | undefined;
  /** Queue commands while disconnected (ioredis default true). */
  enableOfflineQueue?: boolean;
  /** How often a command is retried across reconnects before it fails. The backend's default is 1; `null` retries forever. */
  maxRetriesPerRequest?: number | null;
  /** IP family: 4, 6, or 0 for either. */
  family?: 0 | 4 | 6;
  /** TCP keep-alive initial delay, ms (0 off). */
  keepAlive?: number;
  /** Disable Nagle's algorithm (ioredis default true). */
  noDelay?: boolean;
  /** Wait for the server to report it is loaded before sending commands (ioredis default true). */
  enableReadyCheck?: boolean;
  /** Send same-tick commands in one write (the backend's default true). */
  enableAutoPipelining?: boolean;
  /** Reconnect (and maybe resend) on an error reply, e.g. `READONLY` after a failover. */
  reconnectOnError?: (error: Error) => boolean | 1 | 2;
  /** Connect only on the first command (ioredis default false). */
  lazyConnect?: boolean;
  /** Unix socket path instead of host and port. */
  path?: string;
  /** redis-sentinel: password of the sentinels themselves. */
  sentinelPassword?: string;
  /** redis-sentinel: user name on the sentinels. */
  sentinelUsername?: string;
  /** redis-sentinel: `master` (default) or `slave`. */
  role?: 'master' | 'slave';
  /** Any other ioredis option. */
  [option: string]: unknown;
}

/** ioredis `ClusterOptions` passed through to the `Cluster` client (redis-cluster only). */
export interface RedisClusterClientOptions {
  /** Where reads go: `master` (default), `slave` or `all`. */
  scaleReads?: 'master' | 'slave' | 'all' | ((nodes: unknown[], command: unknown) => unknown);
  /** Delay in ms before reconnecting to the cluster, or a non-number to stop. The backend's default grows 100 ms a try, up to 2 s. */
  clusterRetryStrategy?: (times: number, reason?: Error) => number | null | undefined;
  /** Queue commands while the cluster is not ready (ioredis default true). */
  enableOfflineQueue?: boolean;
  /** Ask a node for `CLUSTER INFO` before it is ready (ioredis default true). */
  enableReadyCheck?: boolean;
  /** How many MOVED/ASK redirections a command may follow (ioredis default 16). */
  maxRedirections?: number;
  /** Slot map refresh timeout, ms. */
  slotsRefreshTimeout?: number;
  /** Periodic slot map refresh, ms. */
  slotsRefreshInterval?: number;
  /** Address translation for nodes behind NAT (`"host:port"` to `{ host, port }`). */
  natMap?: Record<
    string,
    {
      /** The address to connect to instead. */
      host: string;
      /** The port to connect to instead. */
      port: number;
    }
  >;
  /** Send same-tick commands in one write (the backend's default true). */
  enableAutoPipelining?: boolean;
  /** Any other ioredis cluster option. */
  [option: string]: unknown;
}

/** Options the backend sets from its named arguments (or must own), and what to use instead. */
const FORBIDDEN: Record<string, string> = {
  host: 'the host argument',
  port: 'the port argument',
  db: 'the db argument',
  username: 'the username argument',
  password: 'the password argument',
  tls: 'the tls argument',
  commandTimeout: 'the commandTimeout argument (seconds)',
  connectTimeout: 'the connectTimeout argument (seconds)',
  keyPrefix: "the keyPrefix argument (ioredis's own prefix would miss the lock keys and channels)",
  sentinels: 'the sentinels argument',
  name: 'the name argument',
  redisOptions: 'the redisOptions argument',
};

/**
 * Checks `redisOptions` or `clusterOptions`: a plain object that sets nothing a named argument
 * sets. Returns a copy (the caller's object is never mutated or kept).
 */
export function passThroughOptions(
  where: string,
  name: 'redisOptions' | 'clusterOptions',
  value: unknown,
): Record<string, unknown> {
  if (value === undefined || value === null) return {};
  checkPlainObject(where, name, value);
  const options = value as Record<string, unknown>;
  for (const key of Object.keys(options)) {
    const instead = FORBIDDEN[key];
    if (instead !== undefined && options[key] !== undefined) {
      throw new ValidationError(`${where}: ${name}.${key} conflicts with a named argument: use ${instead} instead`);
    }
  }
  return { ...options };
}
