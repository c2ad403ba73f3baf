// Backend registry: names to factories, and loading third-party backends from module specifiers.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isAbsolute, resolve as resolvePath } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type BackendFactory, type CacheBackend, describe, PluginNotFoundError, ValidationError } from './api.js';
import { MemoryBackend, type MemoryBackendArguments } from './backends/memory.js';
import { NullBackend } from './backends/null.js';

// Built-in backends. Those with client libraries are imported on first use, so that importing
// dogpile never loads ioredis or a memcached client.
const registry = new Map<string, BackendFactory>([
  ['memory', (args) => new MemoryBackend(args as MemoryBackendArguments)],
  ['null', (args) => new NullBackend(args)],
  ['redis', async (args, ctx) => (await import('./backends/redis.js')).createRedisBackend(args, ctx)],
  ['redis-sentinel', async (args, ctx) => (await import('./backends/redis.js')).createRedisSentinelBackend(args, ctx)],
  ['redis-cluster', async (args, ctx) => (await import('./backends/redis.js')).createRedisClusterBackend(args, ctx)],
  ['memcached', async (args, ctx) => (await import('./backends/memcached.js')).createMemcachedBackend(args, ctx)],
  ['file', async (args, ctx) => (await import('./backends/file.js')).createFileBackend(args, ctx)],
]);

/**
 * Registers a backend under `name`: either a factory `(arguments, context) => backend` (may be
 * async), or a module specifier to import when a region first uses the name. The module must export
 * `createBackend(arguments, context)`, or a backend class as `default` or `Backend`.
 */
export function registerBackend(name: string, factory: BackendFactory | string): void {
  if (typeof name !== 'string' || name.length === 0) {
    throw new ValidationError(`registerBackend: name must be a non-empty string, got ${describe(name)}`);
  }
  if (typeof factory === 'string') {
    const url = resolveSpecifier(factory);
    if (!url)
      throw new PluginNotFoundError(`registerBackend(${JSON.stringify(name)}): cannot resolve module ${JSON.stringify(factory)}`);
    registry.set(name, moduleFactory(factory, url));
  } else if (typeof factory === 'function') {
    registry.set(name, factory);
  } else {
    throw new ValidationError(
      `registerBackend(${JSON.stringify(name)}): expected a factory function or a module specifier, got ${describe(factory)}`,
    );
  }
}

/** Names of the registered backends. */
export function registeredBackends(): string[] {
  return [...registry.keys()];
}

/**
 * The factory for a registered name, or, failing that, for a module specifier that resolves.
 * Throws {@link PluginNotFoundError} synchronously when neither.
 */
export function lookupBackend(name: string): BackendFactory {
  const found = registry.get(name);
  if (found) return found;
  const url = resolveSpecifier(name);
  if (url) return moduleFactory(name, url);
  throw new PluginNotFoundError(
    `no cache backend named ${JSON.stringify(name)}: registered backends are ${[...registry.keys()].map((n) => JSON.stringify(n)).join(', ')}, and it is not an importable module`,
  );
}

function resolveSpecifier(specifier: string): string | undefined {
  if (specifier.startsWith('file:')) return existsSync(fileURLToPath(specifier)) ? specifier : undefined;
  if (specifier.startsWith('.') || isAbsolute(specifier)) {
    const path = resolvePath(process.cwd(), specifier);
    return existsSync(path) ? pathToFileURL(path).href : undefined;
  }
  // A package name: resolve it from the application (the working directory), then from here.
  try {
    return pathToFileURL(createRequire(resolvePath(process.cwd(), 'noop.js')).resolve(specifier)).href;
  } catch {}
  try {
    return import.meta.resolve(specifier);
  } catch {
    return undefined;
  }
}

function moduleFactory(specifier: string, url: string): BackendFactory {
  return async (args, context) => {
    let mod: Record<string, unknown>;
    try {
      mod = (await import(url)) as Record<string, unknown>;
    } catch (cause) {
      throw new PluginNotFoundError(`cannot load cache backend module ${JSON.stringify(specifier)}`, { cause });
    }
    const exported = mod.createBackend ?? mod.Backend ?? mod.default;
    if (typeof exported !== 'function') {
      throw new PluginNotFoundError(
        `cache backend module ${JSON.stringify(specifier)} exports no createBackend function or backend class`,
      );
    }
    const isClass = typeof (exported as { prototype?: { get?: unknown } }).prototype?.get === 'function';
    return isClass
      ? new (exported as new (a: typeof args, c: typeof context) => CacheBackend)(args, context)
      : (exported as BackendFactory)(args, context);
  };
}
