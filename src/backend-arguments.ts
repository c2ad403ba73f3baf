// The `arguments` each built-in backend takes, by its registered name, so that
// `configure('redis', { arguments: { ulr } })` fails typecheck (and, at run time, every backend
// rejects an argument it does not know). Module specifiers and backend instances keep a loose type.

import type { FileBackendArguments } from './backends/file.js';
import type { MemcachedBackendArguments } from './backends/memcached.js';
import type { MemoryBackendArguments } from './backends/memory.js';
import type {
  RedisClusterBackendArguments,
  RedisSentinelBackendArguments,
  RedisSingleBackendArguments,
} from './backends/redis.js';

/** Arguments by built-in backend name. */
export interface BackendArgumentsMap {
  /** The in-process LRU backend. */
  memory: MemoryBackendArguments;
  /** The null backend takes no arguments. */
  null: Record<string, never>;
  /** One Redis server. */
  redis: RedisSingleBackendArguments;
  /** A Redis master found through Sentinel. */
  'redis-sentinel': RedisSentinelBackendArguments;
  /** A Redis Cluster. */
  'redis-cluster': RedisClusterBackendArguments;
  /** One or more memcached servers. */
  memcached: MemcachedBackendArguments;
  /** An LMDB file shared by the processes of one machine. */
  file: FileBackendArguments;
}

/** The names of the built-in backends. */
export type BuiltinBackendName = keyof BackendArgumentsMap;
