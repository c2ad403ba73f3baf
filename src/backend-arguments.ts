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
  memory: MemoryBackendArguments;
  /** The null backend takes no arguments. */
  null: Record<string, never>;
  redis: RedisSingleBackendArguments;
  'redis-sentinel': RedisSentinelBackendArguments;
  'redis-cluster': RedisClusterBackendArguments;
  memcached: MemcachedBackendArguments;
  file: FileBackendArguments;
}

/** The names of the built-in backends. */
export type BuiltinBackendName = keyof BackendArgumentsMap;
