// Cache keys for wrapped functions, and key manglers. Pure functions: no I/O.
//
// The default encoding is injective: two argument lists that differ in value or type never share a
// key (`("x y","z")` vs `("x","y z")`, `1` vs `"1"`), and plain objects encode the same whatever
// their key order. Dogpile.cache's `" ".join(str(a))` has neither property.

import { describe, ValidationError } from './api.js';
import { nodeCrypto } from './node-builtins.js';

/** Converts one argument to the text used in a key. */
export type ToStr = (arg: unknown) => string;

/** Maps a key to the key actually stored (for example a hash of it). */
export type KeyMangler = (key: string) => string;

/** The function a key generator returns: arguments (and `this`) to a key. */
export type KeyFunction = (this: unknown, ...args: readonly unknown[]) => string;
/** The function a multi key generator returns: arguments (and `this`) to one key per argument. */
export type MultiKeyFunction = (this: unknown, ...args: readonly unknown[]) => string[];

/** Names of the function a key is built for, as a generator receives them. */
export interface KeyTarget {
  /** The function's name (`Class.method` for decorated methods). */
  readonly name: string;
}

/**
 * A key generator: called once per wrapped function with its namespace, the function and an
 * optional `toStr`, and returns the per-call key function. The key function is called with the
 * wrapper's `this`, so a generator for methods may put instance state in the key.
 */
export type FunctionKeyGenerator = (namespace: string | undefined, fn: KeyTarget, toStr?: ToStr) => KeyFunction;
/** Like {@link FunctionKeyGenerator}, producing one key per argument. */
export type FunctionMultiKeyGenerator = (namespace: string | undefined, fn: KeyTarget, toStr?: ToStr) => MultiKeyFunction;

/**
 * Encodes one value as unambiguous text: strings are JSON-quoted, numbers, bigints, booleans,
 * null and undefined are typed literals, containers are bracketed, and plain objects list their
 * keys sorted. Functions and symbols cannot name a cache entry and throw a {@link ValidationError}.
 */
export function encodeArg(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      return Object.is(value, -0) ? '-0' : String(value);
    case 'bigint':
      return `${value}n`;
    case 'boolean':
      return value ? 'true' : 'false';
    case 'undefined':
      return 'undefined';
    case 'function':
    case 'symbol':
      throw new ValidationError(
        `cannot build a cache key from ${describe(value)}: functions and symbols have no stable identity; pass a toStr or functionKeyGenerator that maps it to a string`,
      );
    default:
      return encodeObject(value as object | null);
  }
}

function encodeObject(value: object | null, seen: Set<object> = new Set()): string {
  if (value === null) return 'null';
  if (seen.has(value)) throw new ValidationError('cannot build a cache key from a circular structure');
  seen.add(value);
  try {
    const inner = (v: unknown): string => (v !== null && typeof v === 'object' ? encodeObject(v as object, seen) : encodeArg(v));
    if (Array.isArray(value)) return `[${value.map(inner).join(',')}]`;
    if (value instanceof Date) return `Date(${Number.isNaN(value.getTime()) ? 'invalid' : value.toISOString()})`;
    if (value instanceof Map) {
      const entries = [...value].map(([k, v]) => `${inner(k)}:${inner(v)}`).sort();
      return `Map{${entries.join(',')}}`;
    }
    if (value instanceof Set) return `Set{${[...value].map(inner).sort().join(',')}}`;
    if (ArrayBuffer.isView(value)) {
      const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      return `${value.constructor.name}(${bytes.toString('base64')})`;
    }
    if (value instanceof RegExp) return `RegExp(${JSON.stringify(value.toString())})`;
    const proto = Object.getPrototypeOf(value);
    const keys = Object.keys(value).sort();
    const body = keys.map((k) => `${JSON.stringify(k)}:${inner((value as Record<string, unknown>)[k])}`).join(',');
    if (proto === Object.prototype || proto === null) return `{${body}}`;
    // A class instance: its own enumerable state, tagged with the class name.
    return `${proto?.constructor?.name ?? 'Object'}{${body}}`;
  } finally {
    seen.delete(value);
  }
}

function prefixFor(namespace: string | undefined, fn: KeyTarget): string {
  const name = fn.name || 'anonymous';
  return namespace === undefined ? name : `${name}|${namespace}`;
}

function encodeWith(toStr: ToStr | undefined): (arg: unknown) => string {
  if (!toStr) return encodeArg;
  return (arg) => {
    const text = toStr(arg);
    if (typeof text !== 'string') throw new ValidationError(`toStr must return a string, got ${describe(text)}`);
    return JSON.stringify(text);
  };
}

/**
 * The default key generator: `<function name>[|<namespace>]|<encoded args>`, arguments encoded
 * with {@link encodeArg} (or JSON-quoted `toStr(arg)`) and joined by `,`.
 */
export const functionKeyGenerator: FunctionKeyGenerator = (namespace, fn, toStr) => {
  const prefix = `${prefixFor(namespace, fn)}|`;
  const encode = encodeWith(toStr);
  return (...args) => {
    let key = prefix;
    for (let i = 0; i < args.length; i++) key += (i === 0 ? '' : ',') + encode(args[i]);
    return key;
  };
};

/** The default multi key generator: one `<function name>[|<namespace>]|<encoded arg>` per argument. */
export const functionMultiKeyGenerator: FunctionMultiKeyGenerator = (namespace, fn, toStr) => {
  const prefix = `${prefixFor(namespace, fn)}|`;
  const encode = encodeWith(toStr);
  return (...args) => args.map((arg) => prefix + encode(arg));
};

/**
 * The counterpart of dogpile.cache's `kwarg_function_key_generator` for functions that take an
 * options object. The rule: a call keys the same however its defaults are spelled.
 * - A plain object's properties are keyed sorted by name, and properties that are `undefined` are
 *   left out: `f({ a: 1, b: 2 })`, `f({ b: 2, a: 1 })` and `f({ a: 1, b: 2, c: undefined })` share an entry.
 * - Trailing arguments that say nothing (`undefined`, or a plain object with no defined property)
 *   are left out, as an omitted argument takes its default: `f()`, `f(undefined)`, `f({})` and
 *   `f({ a: undefined })` share an entry, and so do `f(1)` and `f(1, {})`.
 * - Other arguments are encoded as by {@link functionKeyGenerator}.
 * Defaults the function fills in itself are not visible here: `f()` and `f({ a: 1 })` differ even
 * when `a` defaults to 1 (spell defaults the same way, or omit them).
 */
export const kwargFunctionKeyGenerator: FunctionKeyGenerator = (namespace, fn, toStr) => {
  const prefix = `${prefixFor(namespace, fn)}|`;
  const encode = encodeWith(toStr);
  const encodeOne = (arg: unknown): string | undefined => {
    if (arg === undefined) return undefined;
    if (arg === null || typeof arg !== 'object' || Object.getPrototypeOf(arg) !== Object.prototype) return encode(arg);
    const defined = Object.entries(arg as Record<string, unknown>).filter(([, v]) => v !== undefined);
    if (defined.length === 0) return undefined;
    defined.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${defined.map(([k, v]) => `${JSON.stringify(k)}:${encode(v)}`).join(',')}}`;
  };
  return (...args) => {
    const parts = args.map(encodeOne);
    while (parts.length > 0 && parts[parts.length - 1] === undefined) parts.pop();
    // An empty argument in the middle keeps its place (as `undefined`), so positions never shift.
    return prefix + parts.map((p) => p ?? 'undefined').join(',');
  };
};

/** SHA-1 hex digest of the key's UTF-8 bytes (40 characters, safe for memcached). */
export function sha1MangleKey(key: string): string {
  return nodeCrypto().createHash('sha1').update(key, 'utf8').digest('hex');
}

/** Applies `mangler` only to keys of at least `length` characters; shorter keys stay readable. */
export function lengthConditionalMangler(length: number, mangler: KeyMangler): KeyMangler {
  if (!Number.isInteger(length) || length < 0) {
    throw new ValidationError(`lengthConditionalMangler: length must be a non-negative integer, got ${describe(length)}`);
  }
  if (typeof mangler !== 'function') {
    throw new ValidationError(`lengthConditionalMangler: mangler must be a function (key) => string, got ${describe(mangler)}`);
  }
  return (key) => (key.length >= length ? mangler(key) : key);
}
