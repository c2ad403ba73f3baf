// dogpile: the public entry point (core and built-in backends).

export {
  type BackendContext,
  BackendError,
  type BackendFactory,
  type CacheBackend,
  CachedValue,
  type CacheMetadata,
  type CacheMutex,
  type Clock,
  DogpileError,
  LockLostError,
  LockTimeoutError,
  NO_VALUE,
  type NoValue,
  PluginNotFoundError,
  RegionAlreadyConfiguredError,
  RegionNotConfiguredError,
  type Serializer,
  VALUE_VERSION,
  ValidationError,
} from './api.js';
export { BaseBackend, ProxyBackend } from './backends/base.js';
export { FileBackend, type FileBackendArguments } from './backends/file.js';
export { MemcachedBackend, type MemcachedBackendArguments } from './backends/memcached.js';
export { DEFAULT_MEMORY_MAX, MemoryBackend, type MemoryBackendArguments } from './backends/memory.js';
export { NullBackend } from './backends/null.js';
export {
  createRedisBackend,
  createRedisClusterBackend,
  createRedisSentinelBackend,
  RedisBackend,
  type RedisBackendArguments,
  RedisDistributedMutex,
} from './backends/redis.js';
export {
  type BusListener,
  type Envelope,
  type InvalidationBus,
  type InvalidationMessage,
  RedisBus,
  type RedisBusOptions,
  UrlRedisBus,
} from './bus.js';
export { coarseClock, ManualClock, systemClock } from './clock.js';
export { coerceValue } from './config.js';
export type {
  CachedFunction,
  CachedMultiFunction,
  CacheMultiOnArgumentsDecorator,
  CacheMultiOnArgumentsOptions,
  CacheOnArgumentsDecorator,
  CacheOnArgumentsOptions,
  ExpirationOption,
} from './decorators.js';
export {
  DefaultInvalidationStrategy,
  type RegionInvalidationStrategy,
  type SharedInvalidationOptions,
  SharedInvalidationStrategy,
} from './invalidation.js';
export {
  encodeArg,
  type FunctionKeyGenerator,
  type FunctionMultiKeyGenerator,
  functionKeyGenerator,
  functionMultiKeyGenerator,
  type KeyMangler,
  type KeyTarget,
  kwargFunctionKeyGenerator,
  lengthConditionalMangler,
  sha1MangleKey,
  type ToStr,
} from './keys.js';
export {
  type AsyncCreationRunner,
  type BackendErrorInfo,
  CacheRegion,
  type ConfigureOptions,
  type CreatorContext,
  type GetOptions,
  type GetOrCreateOptions,
  makeRegion,
  type ProxySpec,
  type RegionOptions,
  type SetOptions,
} from './region.js';
export { lookupBackend, registerBackend, registeredBackends } from './registry.js';
export { decodeValue, defaultSerializer, encodeValue, jsonSerializer, v8Serializer } from './serialization.js';
export { type L1Options, makeTier, TieredBackend } from './tiered.js';
