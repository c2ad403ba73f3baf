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
  CreatorTimeoutError,
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
export type { BackendArgumentsMap, BuiltinBackendName } from './backend-arguments.js';
export { BaseBackend, ProxyBackend } from './backends/base.js';
export { CompactLru } from './backends/compact-lru.js';
export { createFileBackend, FileBackend, type FileBackendArguments } from './backends/file.js';
export { MemcachedBackend, type MemcachedBackendArguments, type MemcachedClientOptions } from './backends/memcached.js';
export { DEFAULT_MEMORY_MAX, MemoryBackend, type MemoryBackendArguments, type MemoryStore } from './backends/memory.js';
export { NullBackend } from './backends/null.js';
export type { LmdbDatabase, LmdbRootDatabase, RedisClient, RedisPipeline } from './backends/peer-types.js';
export {
  createRedisBackend,
  createRedisClusterBackend,
  createRedisSentinelBackend,
  RedisBackend,
  type RedisBackendArguments,
  type RedisClientOptions,
  type RedisClusterBackendArguments,
  type RedisClusterClientOptions,
  RedisDistributedMutex,
  type RedisSentinelBackendArguments,
  type RedisSingleBackendArguments,
} from './backends/redis.js';
export { type BreakerOptions, type BreakerState, CircuitOpenError } from './breaker.js';
export {
  type BusListener,
  type Envelope,
  type InvalidationBus,
  type InvalidationMessage,
  RedisBus,
  type RedisBusClient,
  type RedisBusOptions,
  UrlRedisBus,
} from './bus.js';
export { coarseClock, ManualClock, systemClock } from './clock.js';
export { coerceValue } from './config.js';
export type { CreatorTimeoutOptions } from './creator-timeouts.js';
export type {
  CachedFunction,
  CachedMultiFunction,
  CacheMultiOnArgumentsDecorator,
  CacheMultiOnArgumentsOptions,
  CacheOnArgumentsDecorator,
  CacheOnArgumentsOptions,
  ExpirationOption,
  UncheckedValue,
  WrappableRegion,
} from './decorators.js';
export type {
  BackendErrorEvent,
  BreakerEvent,
  CreateEvent,
  CreateOutcome,
  FailSafeEvent,
  InvalidateEvent,
  KeyEvent,
  LockWaitEvent,
  RegionEventBase,
  RegionEventMap,
  RegionEventName,
  RegionListener,
  RegionStats,
} from './events.js';
export type { FailSafeOptions } from './failsafe.js';
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
  type KeyFunction,
  type KeyMangler,
  type KeyTarget,
  kwargFunctionKeyGenerator,
  lengthConditionalMangler,
  type MultiKeyFunction,
  sha1MangleKey,
  type ToStr,
} from './keys.js';
export {
  type AsyncCreationRunner,
  CacheRegion,
  type ConfigureOptions,
  makeRegion,
  type ProxySpec,
  type RegionOptions,
} from './region.js';
export type {
  BackendErrorInfo,
  CreatorContext,
  GetOptions,
  GetOrCreateMultiOptions,
  GetOrCreateOptions,
  KeyTags,
  SetMultiOptions,
  SetOptions,
} from './region-options.js';
export { liveRegions, watchRegions } from './region-watch.js';
export { lookupBackend, registerBackend, registeredBackends } from './registry.js';
export { decodeValue, defaultSerializer, encodeValue, jsonSerializer, v8Serializer } from './serialization.js';
export { type L1Options, makeTier, type RemoteInvalidations, TieredBackend } from './tiered.js';
