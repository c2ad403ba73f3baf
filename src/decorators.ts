// cacheOnArguments / cacheMultiOnArguments: wrap a function so its results are cached by its
// arguments. The wrapper and its helpers (invalidate, set, get, refresh, key) compute keys with the
// same code path, so a helper always addresses the entry a call wrote. Works on plain functions and
// as a standard (TC39) method decorator.

import { describe, NO_VALUE, type NoValue, ValidationError } from './api.js';
import { checkWrapperPolicy } from './creation.js';
import type { CreatorTimeoutOptions } from './creator-timeouts.js';
import type { FailSafeOptions } from './failsafe.js';
import type { FunctionKeyGenerator, FunctionMultiKeyGenerator, KeyFunction, MultiKeyFunction, ToStr } from './keys.js';
import { MULTI_WRAPPER_OPTION_NAMES, WRAPPER_OPTION_NAMES } from './options.js';
import { checkKnownNames } from './validate.js';

/** What the wrappers need of a region (CacheRegion has it; typed here so this module does not import region.ts). */
export interface WrappableRegion {
  /** Builds single-function keys. */
  readonly functionKeyGenerator: FunctionKeyGenerator;
  /** Builds multi-function keys. */
  readonly functionMultiKeyGenerator: FunctionMultiKeyGenerator;
  /** See `CacheRegion.getOrCreate`. */
  getOrCreate<T>(
    key: string,
    creator: () => T | Promise<T>,
    options?: {
      expirationTime?: number | null | undefined;
      shouldCacheFn?: ((value: T) => boolean) | undefined;
      failSafe?: FailSafeOptions | false | undefined;
      softTimeout?: number | null | undefined;
      hardTimeout?: number | null | undefined;
      tags?: readonly string[] | undefined;
      earlyRefresh?: number | undefined;
    },
  ): Promise<T>;
  /** See `CacheRegion.getOrCreateMulti`. */
  getOrCreateMulti<T>(
    keys: readonly string[],
    creator: (...keys: string[]) => readonly T[] | Promise<readonly T[]>,
    options?: {
      expirationTime?: number | null | undefined;
      shouldCacheFn?: ((value: T) => boolean) | undefined;
      failSafe?: FailSafeOptions | false | undefined;
      softTimeout?: number | null | undefined;
      hardTimeout?: number | null | undefined;
      tags?: readonly string[] | ((key: string) => readonly string[]) | undefined;
    },
  ): Promise<T[]>;
  /** See `CacheRegion.get`. */
  get<T = unknown>(key: string, options?: { expirationTime?: number | null | undefined }): Promise<T | NoValue>;
  /** See `CacheRegion.getMulti`. */
  getMulti<T = unknown>(
    keys: readonly string[],
    options?: { expirationTime?: number | null | undefined },
  ): Promise<(T | NoValue)[]>;
  /** See `CacheRegion.set`. */
  set(key: string, value: unknown, options?: { tags?: readonly string[] | undefined }): Promise<void>;
  /** See `CacheRegion.setMulti`. */
  setMulti(
    entries: ReadonlyMap<string, unknown>,
    options?: { tags?: readonly string[] | ((key: string) => readonly string[]) | undefined },
  ): Promise<void>;
  /** See `CacheRegion.delete`. */
  delete(key: string): Promise<void>;
  /** See `CacheRegion.deleteMulti`. */
  deleteMulti(keys: readonly string[]): Promise<void>;
}

type MaybePromise<T> = T | Promise<T>;
/** An expiration in seconds, or a function read on every call (for example "until midnight"). */
export type ExpirationOption = number | null | (() => number | null);

/**
 * The parameter type of a `shouldCacheFn` whose parameter is not annotated. The options are
 * written before the function they will wrap, so TypeScript cannot carry the function's result
 * type back into them: annotate the parameter (`(rows: Row[]) => rows.length > 0`) to have the
 * wrapped function checked against it; unannotated, it is unchecked (`any`), so
 * `(rows) => rows.length > 0` compiles.
 */
// biome-ignore lint/suspicious/noExplicitAny: the one type TypeScript lets an unannotated callback parameter use freely
export type UncheckedValue = any;

/** Options of `region.cacheOnArguments()`. `V` is the wrapped function's awaited result. */
export interface CacheOnArgumentsOptions<V = UncheckedValue> {
  /** Distinguishes functions of the same name; becomes part of the key. Default none. */
  namespace?: string;
  /** Overrides the region's expiration for this function (seconds, `-1` never, or a function). Default: the region's. */
  expirationTime?: ExpirationOption;
  /**
   * Called with each result (the awaited value); when it returns false, the result is returned but
   * not stored. Annotate its parameter to have the wrapped function's result type checked against it.
   * Default: every result is stored.
   */
  shouldCacheFn?: (value: V) => boolean;
  /** Converts each argument to a string for the key (then quoted, so keys stay unambiguous). Default {@link encodeArg}. */
  toStr?: ToStr;
  /** Overrides the region's key generator for this function. Default: the region's. */
  functionKeyGenerator?: FunctionKeyGenerator;
  /** Overrides the region's `failSafe` for this function (`false`: off). */
  failSafe?: FailSafeOptions | false;
  /**
   * Overrides the region's `softTimeout` (seconds, `null`: none). For `cacheMultiOnArguments`: when
   * every key the function is called for has a stale value, the call returns them after this long.
   */
  softTimeout?: CreatorTimeoutOptions['softTimeout'];
  /** Overrides the region's `hardTimeout` (seconds, `null`: none). */
  hardTimeout?: CreatorTimeoutOptions['hardTimeout'];
  /**
   * Tags stored with each cached result (see `region.invalidateTags`): strings, or a function of
   * the call's arguments returning them (for example `(id) => [\`user:${id}\`]`).
   */
  tags?: readonly string[] | ((...args: never[]) => readonly string[]);
  /** XFetch beta for this function's calls (see the region's `earlyRefresh`). Single-key wrappers only. */
  earlyRefresh?: number;
}

/** Options of `region.cacheMultiOnArguments()`. `V` is one value (shouldCacheFn is called per value). */
export interface CacheMultiOnArgumentsOptions<V = UncheckedValue>
  extends Omit<CacheOnArgumentsOptions<V>, 'functionKeyGenerator' | 'tags' | 'earlyRefresh'> {
  /**
   * Tags stored with each cached value (see `region.invalidateTags`): strings for every value, or a
   * function of one argument (the one whose value is stored) returning that value's tags, for
   * example `(id) => [\`user:${id}\`]`.
   */
  tags?: readonly string[] | ((arg: never) => readonly string[]);
  /** The function returns (and the wrapper resolves to) an object keyed by argument; keys it omits are not cached. Default false. */
  asDict?: boolean;
  /** Overrides the region's multi key generator for this function. Default: the region's. */
  functionMultiKeyGenerator?: FunctionMultiKeyGenerator;
}

/** A function wrapped by `cacheOnArguments`, with helpers that address the same entries. */
export interface CachedFunction<A extends unknown[], R, This = unknown> {
  (this: This, ...args: A): Promise<Awaited<R>>;
  /** Deletes the entry for these arguments. */
  invalidate(...args: A): Promise<void>;
  /** Stores `value` as the result for these arguments. */
  set(value: Awaited<R>, ...args: A): Promise<void>;
  /** The cached result for these arguments, or NO_VALUE (honours the wrapper's expiration). */
  get(...args: A): Promise<Awaited<R> | NoValue>;
  /** Calls the function now, stores and returns its result. */
  refresh(...args: A): Promise<Awaited<R>>;
  /** The cache key for these arguments (before the region's key mangler). */
  key(...args: A): string;
  /** The unwrapped function. */
  readonly original: (this: This, ...args: A) => R;
}

/**
 * What `cacheOnArguments()` returns: wraps a function, or decorates a method. `V` is the result
 * type `shouldCacheFn` accepts: the function must resolve to a `V`.
 */
export interface CacheOnArgumentsDecorator<V = UncheckedValue> {
  <A extends unknown[], R extends MaybePromise<V>>(fn: (...args: A) => R): CachedFunction<A, R>;
  <This, A extends unknown[], R extends MaybePromise<V>>(
    method: (this: This, ...args: A) => R,
    context: ClassMethodDecoratorContext<This, (this: This, ...args: A) => R>,
  ): CachedFunction<A, R, This>;
}

/** A function wrapped by `cacheMultiOnArguments`. `Out` is `V[]`, or a record with `asDict`. */
export interface CachedMultiFunction<A, V, Out, This = unknown> {
  (this: This, ...args: A[]): Promise<Out>;
  /** Deletes the entries for these arguments. */
  invalidate(...args: A[]): Promise<void>;
  /**
   * Stores values by argument, addressing the entries calls with those arguments use. A Map works
   * for every argument type (`new Map([[1, v]])` for `f(1)`); a record only for string arguments,
   * since its keys are strings (`{ 1: v }` would address `f("1")`, not `f(1)`).
   */
  set(values: ReadonlyMap<A, V> | ([A] extends [string] ? Readonly<Partial<Record<A, V>>> : never)): Promise<void>;
  /** Cached values aligned with the arguments, NO_VALUE where missing. */
  get(...args: A[]): Promise<(V | NoValue)[]>;
  /** Calls the function for all these arguments now, stores and returns the results. */
  refresh(...args: A[]): Promise<Out>;
  /** The cache keys for these arguments. */
  keys(...args: A[]): string[];
  /** The unwrapped function. */
  readonly original: (this: This, ...args: A[]) => unknown;
}

type ListMultiFn<This, A, V> = (this: This, ...keys: A[]) => MaybePromise<readonly V[]>;
type DictMultiFn<This, A, V> = (this: This, ...keys: A[]) => MaybePromise<Readonly<Record<string, V>> | ReadonlyMap<A, V>>;

interface ListMultiDecorator<W> {
  <A, V extends W>(fn: ListMultiFn<unknown, A, V>): CachedMultiFunction<A, V, V[]>;
  <This, A, V extends W>(
    method: ListMultiFn<This, A, V>,
    context: ClassMethodDecoratorContext<This, ListMultiFn<This, A, V>>,
  ): CachedMultiFunction<A, V, V[], This>;
}
interface DictMultiDecorator<W> {
  <A, V extends W>(fn: DictMultiFn<unknown, A, V>): CachedMultiFunction<A, V, Record<string, V>>;
  <This, A, V extends W>(
    method: DictMultiFn<This, A, V>,
    context: ClassMethodDecoratorContext<This, DictMultiFn<This, A, V>>,
  ): CachedMultiFunction<A, V, Record<string, V>, This>;
}
/** What `cacheMultiOnArguments()` returns. `W` is the value type `shouldCacheFn` accepts. */
export type CacheMultiOnArgumentsDecorator<D extends boolean, W = UncheckedValue> = D extends true
  ? DictMultiDecorator<W>
  : ListMultiDecorator<W>;

type AnyFn = (this: unknown, ...args: unknown[]) => unknown;

export function makeCacheOnArguments(region: WrappableRegion, options: CacheOnArgumentsOptions): CacheOnArgumentsDecorator {
  checkOptions(region, options, 'cacheOnArguments');
  const { namespace, toStr, failSafe, softTimeout, hardTimeout } = options;
  const shouldCacheFn = options.shouldCacheFn as ((value: unknown) => boolean) | undefined;
  const generator = options.functionKeyGenerator ?? region.functionKeyGenerator;
  const expiration = expirationReader(options.expirationTime);
  const tagOption = options.tags;
  const tagsFor = (self: unknown, args: unknown[]): readonly string[] | undefined =>
    typeof tagOption === 'function' ? (tagOption as (...a: unknown[]) => readonly string[]).apply(self, args) : tagOption;
  const earlyRefresh = options.earlyRefresh;

  const decorate = (fn: AnyFn, context?: ClassMethodDecoratorContext): unknown => {
    const target = targetFor(fn, context, namespace, 'cacheOnArguments');
    let keyFn: KeyFunction | undefined;
    const naming =
      context &&
      onDeclaringClass(context, (name) => {
        target.name = name;
        keyFn = undefined;
      });
    const keyOf = (self: unknown, args: unknown[]): string => {
      naming?.resolve(); // a decorated method: its class's name, once known
      keyFn ??= generator(namespace, target, toStr);
      const key = keyFn.apply(self, args);
      if (typeof key !== 'string') throw new ValidationError(`functionKeyGenerator returned ${describe(key)}, not a string`);
      return key;
    };

    const wrapper = function (this: unknown, ...args: unknown[]): Promise<unknown> {
      let key: string;
      try {
        key = keyOf(this, args);
      } catch (err) {
        return Promise.reject(err);
      }
      return region.getOrCreate(key, () => fn.apply(this, args), {
        expirationTime: expiration(),
        shouldCacheFn,
        failSafe,
        softTimeout,
        hardTimeout,
        tags: tagsFor(this, args),
        earlyRefresh,
      });
    };
    keepIdentity(wrapper, fn);
    return Object.assign(wrapper, {
      invalidate(this: unknown, ...args: unknown[]) {
        return region.delete(keyOf(this, args));
      },
      set(this: unknown, value: unknown, ...args: unknown[]) {
        return region.set(keyOf(this, args), value, { tags: tagsFor(this, args) });
      },
      get(this: unknown, ...args: unknown[]) {
        return region.get(keyOf(this, args), { expirationTime: expiration() });
      },
      async refresh(this: unknown, ...args: unknown[]) {
        const key = keyOf(this, args);
        const value = await fn.apply(this, args);
        if (!shouldCacheFn || shouldCacheFn(value)) await region.set(key, value, { tags: tagsFor(this, args) });
        return value;
      },
      key(this: unknown, ...args: unknown[]) {
        return keyOf(this, args);
      },
      original: fn,
    });
  };
  return decorate as CacheOnArgumentsDecorator;
}

export function makeCacheMultiOnArguments<D extends boolean>(
  region: WrappableRegion,
  options: CacheMultiOnArgumentsOptions,
): CacheMultiOnArgumentsDecorator<D> {
  checkOptions(region, options, 'cacheMultiOnArguments');
  const { namespace, toStr, asDict = false, failSafe, softTimeout, hardTimeout } = options;
  const userShouldCache = options.shouldCacheFn as ((value: unknown) => boolean) | undefined;
  const generator = options.functionMultiKeyGenerator ?? region.functionMultiKeyGenerator;
  const expiration = expirationReader(options.expirationTime);
  // With asDict, arguments the function leaves out come back as NO_VALUE: never stored.
  const shouldCacheFn = asDict
    ? (value: unknown) => value !== NO_VALUE && (!userShouldCache || userShouldCache(value))
    : userShouldCache;
  const tagOption = options.tags;
  // Per key: the tags of the argument behind it (a function is called with that argument alone).
  const tagsFor = (
    self: unknown,
    argOf: ReadonlyMap<string, unknown>,
  ): readonly string[] | ((key: string) => readonly string[]) | undefined =>
    typeof tagOption === 'function'
      ? (key: string) => (tagOption as (arg: unknown) => readonly string[]).call(self, argOf.get(key))
      : tagOption;

  const decorate = (fn: AnyFn, context?: ClassMethodDecoratorContext): unknown => {
    const target = targetFor(fn, context, namespace, 'cacheMultiOnArguments');
    let keyFn: MultiKeyFunction | undefined;
    const naming =
      context &&
      onDeclaringClass(context, (name) => {
        target.name = name;
        keyFn = undefined;
      });
    const keysOf = (self: unknown, args: unknown[]): string[] => {
      naming?.resolve(); // a decorated method: its class's name, once known
      keyFn ??= generator(namespace, target, toStr);
      const keys = keyFn.apply(self, args);
      if (!Array.isArray(keys) || keys.length !== args.length || keys.some((k) => typeof k !== 'string')) {
        throw new ValidationError(`functionMultiKeyGenerator must return one string key per argument, got ${describe(keys)}`);
      }
      return keys;
    };

    // Calls the function with the arguments behind `keys`; returns values aligned with `keys`.
    const callFor = async (self: unknown, keys: readonly string[], argOf: Map<string, unknown>): Promise<unknown[]> => {
      const args = keys.map((k) => argOf.get(k));
      const out = await fn.apply(self, args);
      if (!asDict) {
        if (!Array.isArray(out) || out.length !== args.length) {
          throw new ValidationError(
            `${target.name || 'function'} must return an array of ${args.length} values, got ${describe(out)}`,
          );
        }
        return out;
      }
      if (out === null || typeof out !== 'object') {
        throw new ValidationError(`${target.name || 'function'} (asDict) must return an object or Map, got ${describe(out)}`);
      }
      return args.map((arg) => pick(out, arg));
    };
    const shape = (args: unknown[], values: unknown[]): unknown => {
      if (!asDict) return values;
      const result: Record<string, unknown> = {};
      args.forEach((arg, i) => {
        if (values[i] !== NO_VALUE) result[String(arg)] = values[i];
      });
      return result;
    };

    const wrapper = async function (this: unknown, ...args: unknown[]): Promise<unknown> {
      const keys = keysOf(this, args);
      const argOf = new Map(keys.map((k, i) => [k, args[i]]));
      const values = await region.getOrCreateMulti<unknown>(keys, (...missing) => callFor(this, missing, argOf), {
        expirationTime: expiration(),
        shouldCacheFn,
        failSafe,
        softTimeout,
        hardTimeout,
        tags: tagsFor(this, argOf),
      });
      return shape(args, values);
    };
    keepIdentity(wrapper, fn);
    return Object.assign(wrapper, {
      invalidate(this: unknown, ...args: unknown[]) {
        return region.deleteMulti(keysOf(this, args));
      },
      set(this: unknown, values: ReadonlyMap<unknown, unknown> | Readonly<Record<string, unknown>>) {
        if (!(values instanceof Map) && !isPlainRecord(values)) {
          return Promise.reject(
            new ValidationError(
              `${target.name || 'function'}.set: expected a Map (or a record, for string arguments) of argument to value, got ${describe(values)}`,
            ),
          );
        }
        const pairs = values instanceof Map ? [...values] : Object.entries(values);
        const keys = keysOf(
          this,
          pairs.map(([a]) => a),
        );
        const argOf = new Map(keys.map((k, i) => [k, (pairs[i] as [unknown, unknown])[0]]));
        return region.setMulti(new Map(keys.map((k, i) => [k, (pairs[i] as [unknown, unknown])[1]])), {
          tags: tagsFor(this, argOf),
        });
      },
      get(this: unknown, ...args: unknown[]) {
        return region.getMulti(keysOf(this, args), { expirationTime: expiration() });
      },
      async refresh(this: unknown, ...args: unknown[]) {
        const keys = keysOf(this, args);
        const argOf = new Map(keys.map((k, i) => [k, args[i]]));
        const values = await callFor(this, keys, argOf);
        const store = new Map<string, unknown>();
        keys.forEach((k, i) => {
          if (!shouldCacheFn || shouldCacheFn(values[i])) store.set(k, values[i]);
        });
        await region.setMulti(store, { tags: tagsFor(this, argOf) });
        return shape(args, values);
      },
      keys(this: unknown, ...args: unknown[]) {
        return keysOf(this, args);
      },
      original: fn,
    });
  };
  return decorate as unknown as CacheMultiOnArgumentsDecorator<D>;
}

function pick(out: object, arg: unknown): unknown {
  if (out instanceof Map) return out.has(arg) ? out.get(arg) : NO_VALUE;
  const name = String(arg);
  return Object.hasOwn(out, name) ? (out as Record<string, unknown>)[name] : NO_VALUE;
}

function checkOptions(
  region: WrappableRegion,
  options: CacheOnArgumentsOptions | CacheMultiOnArgumentsOptions,
  where: string,
): void {
  if (options === null || typeof options !== 'object') {
    throw new ValidationError(`${where}: options must be an object, got ${describe(options)}`);
  }
  if (where !== 'cacheOnArguments') {
    // Said plainly rather than as an unknown name: users reach for it after cacheOnArguments.
    if ((options as Record<string, unknown>).earlyRefresh !== undefined) {
      throw new ValidationError(
        `${where}: earlyRefresh is not supported on multi-key wrappers (a batch is created together, not one key ` +
          'ahead of its expiry); use cacheOnArguments for the keys that need it',
      );
    }
  }
  checkKnownNames(where, 'option', options, where === 'cacheOnArguments' ? WRAPPER_OPTION_NAMES : MULTI_WRAPPER_OPTION_NAMES);
  if (options.namespace !== undefined && typeof options.namespace !== 'string') {
    throw new ValidationError(`${where}: namespace must be a string, got ${describe(options.namespace)}`);
  }
  for (const name of ['shouldCacheFn', 'toStr', 'functionKeyGenerator', 'functionMultiKeyGenerator'] as const) {
    const value = (options as Record<string, unknown>)[name];
    if (value !== undefined && typeof value !== 'function') {
      throw new ValidationError(`${where}: ${name} must be a function, got ${describe(value)}`);
    }
  }
  checkWrapperPolicy(region, options, where);
  const tags: unknown = options.tags;
  if (tags !== undefined && typeof tags !== 'function' && !Array.isArray(tags)) {
    throw new ValidationError(`${where}: tags must be an array of strings or a function, got ${describe(tags)}`);
  }
  const exp = options.expirationTime;
  if (exp !== undefined && exp !== null && typeof exp !== 'function' && (typeof exp !== 'number' || !(exp >= 0 || exp === -1))) {
    throw new ValidationError(`${where}: expirationTime must be seconds >= 0, -1, null or a function, got ${describe(exp)}`);
  }
}

function expirationReader(option: ExpirationOption | undefined): () => number | null | undefined {
  if (typeof option === 'function') return option;
  return () => option;
}

function targetFor(
  fn: unknown,
  context: ClassMethodDecoratorContext | undefined,
  namespace: string | undefined,
  where: string,
): { name: string } {
  if (typeof fn !== 'function') throw new ValidationError(`${where}: expected a function to wrap, got ${describe(fn)}`);
  if (context !== undefined && context.kind !== 'method') {
    throw new ValidationError(`${where}: can decorate methods only, not a ${String(context.kind)}`);
  }
  const name = context ? String(context.name) : fn.name;
  if (!name && namespace === undefined) {
    throw new ValidationError(`${where}: cannot name the cache entries of an anonymous function; give it a name or a namespace`);
  }
  return { name };
}

/**
 * Once the class is known, names a decorated method `Class.method` (the class that declares it).
 * The class's name is read when a key is first needed, not when the initializer runs: esbuild
 * (tsx) runs static initializers on its inner binding (`_Catalog`) and gives it the class's own
 * name (`Catalog`) only afterwards, so reading it early would key a static method differently
 * under tsx than under tsc.
 */
function onDeclaringClass(context: ClassMethodDecoratorContext, setName: (name: string) => void): { resolve(): void } {
  let owner: { name?: unknown } | undefined;
  let seen = false;
  let named = false;
  context.addInitializer(function (this: unknown) {
    if (seen) return;
    seen = true;
    if (context.static) owner = this as { name?: unknown };
    else {
      let proto = Object.getPrototypeOf(this);
      while (proto && !Object.hasOwn(proto, context.name)) proto = Object.getPrototypeOf(proto);
      owner = proto?.constructor;
    }
  });
  return {
    resolve() {
      if (named || !seen) return;
      named = true;
      const methodName = String(context.name);
      const className = typeof owner?.name === 'string' ? owner.name : '';
      setName(className ? `${className}.${methodName}` : methodName);
    },
  };
}

/** Gives the wrapper the wrapped function's `name` and `length` (arity). */
function keepIdentity(wrapper: Function, fn: Function): void {
  Object.defineProperty(wrapper, 'name', { value: fn.name, configurable: true });
  Object.defineProperty(wrapper, 'length', { value: fn.length, configurable: true });
}

function isPlainRecord(value: unknown): value is Readonly<Record<string, unknown>> {
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
