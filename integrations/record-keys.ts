// Record keys for template fragments (Rails' cache_key_with_version): a block or partial argument
// that is a record contributes its identity and version instead of its whole content, so updating
// the record changes the key of every fragment keyed by it (nested blocks refresh without deletes).

import { encodeArg, ValidationError } from '../src/index.js';

/**
 * Encodes one fragment-key argument. In order:
 * - an object with a `cacheKey` property: that string, or the string its function returns
 *   (called with the object as `this`); anything else is a {@link ValidationError} naming `where`;
 * - an object with `id` and `updatedAt` (a Date, number or string) or `version`: `id` plus that;
 * - anything else: the core's injective `encodeArg`, as for any cache key.
 * The three forms are tagged differently, so a record key never equals a plain value's encoding.
 * `stem` is the fragment key's stem (engine, template, digest, block) and `tag` the adapter's
 * description of the tag (`{% cache %} at line 3`), both for error messages.
 */
export function encodeFragmentArg(value: unknown, stem: string, tag: string | undefined): string {
  if (value === null || typeof value !== 'object') return encodeArg(value);
  const where = (): string => describeFragment(stem, tag);
  const record = value as { cacheKey?: unknown; id?: unknown; updatedAt?: unknown; version?: unknown };
  if ('cacheKey' in record && record.cacheKey !== undefined) return `key(${JSON.stringify(cacheKeyOf(record, where))})`;
  if (record.id !== undefined && record.id !== null) {
    if (record.updatedAt !== undefined && record.updatedAt !== null) {
      return `rec(${encodeArg(record.id)}@${versionOf(record.updatedAt, where)})`;
    }
    if (record.version !== undefined && record.version !== null) {
      return `rec(${encodeArg(record.id)}#${versionOf(record.version, where)})`;
    }
  }
  return encodeArg(value);
}

function cacheKeyOf(record: { cacheKey?: unknown }, where: () => string): string {
  const given = record.cacheKey;
  let key: unknown = given;
  if (typeof given === 'function') {
    try {
      key = (given as (this: unknown) => unknown).call(record);
    } catch (err) {
      throw new ValidationError(
        `${where()}: the cacheKey() of a key argument threw: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }
  if (typeof key !== 'string') {
    throw new ValidationError(
      `${where()}: a key argument's cacheKey must be a string or a function returning one, got ${describe(key)}`,
    );
  }
  return key;
}

function versionOf(version: unknown, where: () => string): string {
  if (version instanceof Date) {
    const ms = version.getTime();
    if (Number.isNaN(ms)) throw new ValidationError(`${where()}: a key argument's updatedAt is an invalid Date`);
    return String(ms);
  }
  if (typeof version === 'number' || typeof version === 'string' || typeof version === 'bigint') return encodeArg(version);
  throw new ValidationError(
    `${where()}: a key argument's updatedAt / version must be a Date, number or string, got ${describe(version)}`,
  );
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  return typeof value;
}

/** `{% cache %} at line 3 in template "page.njk" (block b1)`, from a key stem `engine|name@digest|block|`. */
export function describeFragment(stem: string, tag: string | undefined): string {
  const [, template = '', block = ''] = stem.split('|');
  const name = template.startsWith('#') ? 'a string template' : `template ${JSON.stringify(template.replace(/@[0-9a-f]+$/, ''))}`;
  return `${tag ?? 'fragment'} in ${name} (block ${block})`;
}
