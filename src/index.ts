// dogpile: the public entry point (core and built-in backends).

export {
  BackendError,
  type BackendContext,
  type BackendFactory,
  type CacheBackend,
  type CacheMetadata,
  type CacheMutex,
  CachedValue,
  type Clock,
  DogpileError,
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
export { DEFAULT_MEMORY_MAX, MemoryBackend, type MemoryBackendArguments } from './backends/memory.js';
export { NullBackend } from './backends/null.js';
export { ManualClock, coarseClock, systemClock } from './clock.js';
export { coerceValue } from './config.js';
export type {
  CacheMultiOnArgumentsDecorator,
  CacheMultiOnArgumentsOptions,
  CacheOnArgumentsDecorator,
  CacheOnArgumentsOptions,
  CachedFunction,
  CachedMultiFunction,
  ExpirationOption,
} from './decorators.js';
export { DefaultInvalidationStrategy, type RegionInvalidationStrategy } from './invalidation.js';
export {
  type FunctionKeyGenerator,
  type FunctionMultiKeyGenerator,
  type KeyMangler,
  type KeyTarget,
  type ToStr,
  encodeArg,
  functionKeyGenerator,
  functionMultiKeyGenerator,
  kwargFunctionKeyGenerator,
  lengthConditionalMangler,
  sha1MangleKey,
} from './keys.js';
export {
  type AsyncCreationRunner,
  type BackendErrorInfo,
  CacheRegion,
  type ConfigureOptions,
  type CreatorContext,
  type GetOptions,
  type GetOrCreateOptions,
  type ProxySpec,
  type RegionOptions,
  makeRegion,
} from './region.js';
export { lookupBackend, registerBackend, registeredBackends } from './registry.js';
export { decodeValue, encodeValue, jsonSerializer, v8Serializer } from './serialization.js';
