// Cached collections (Rails' `render partial:, collection:, cached: true`) for every engine: the
// collection form of a cached partial. All item keys are computed first (the partial's key rules:
// template name, dependency digest, the item's own key), ONE region.getOrCreateMulti reads them all
// (one backend round trip when the page is warm), only the missing or stale items are rendered, with
// single flight per item key across concurrent renders, and they are written with one setMulti.
// The engine adapters parse their syntax and hand over the items, the key field and a function
// that renders one item; the output is the items' HTML in order, as a loop of includes would give.

import { encodeArg, ValidationError } from '../src/index.js';
import { stripAnnotations } from './dev-annotations.js';
import { describeFragment } from './record-keys.js';
import { collectFragmentTags, type FragmentOptions, fragmentTags, reportFragmentTags, type TemplateCache } from './templates.js';

/** Options a collection tag accepts (other names are variables shared by every item). */
export const COLLECTION_OPTIONS: ReadonlySet<string> = new Set([
  'key',
  'as',
  'region',
  'expire',
  'if',
  'unless',
  'tags',
  'itemTags',
]);

/**
 * Each item's own tags (the `itemTags` option), validated for every item before anything renders:
 * a string is a prefix followed by the item's key (the `key` field's value, or the record's `id`
 * when the collection has no `key` option), e.g. `itemTags="product:"` gives `product:7`; a
 * function `(item, index)` returns a tag or an array of tags. `undefined` when the option is not
 * given. A bad option or result is a {@link ValidationError} naming `where` and the item.
 */
export function itemTagLists(
  spec: unknown,
  items: readonly unknown[],
  keyOption: unknown,
  keys: readonly (readonly unknown[])[],
  where: string,
): string[][] | undefined {
  if (spec === undefined) return undefined;
  if (typeof spec === 'string') {
    if (spec === '')
      throw new ValidationError(`${where}: itemTags must be a non-empty tag prefix (e.g. "product:"), got the empty string`);
    return items.map((item, i) => {
      const own = keyOption === undefined ? (item as { id?: unknown } | null)?.id : keys[i]?.[0];
      if (own === undefined || own === null || typeof own === 'object' || typeof own === 'function') {
        throw new ValidationError(
          `${where}: item ${i}: itemTags=${JSON.stringify(spec)} needs the item's key (or, without a key option, its id), got ${describeValue(own)}`,
        );
      }
      return [spec + String(own)];
    });
  }
  if (typeof spec === 'function') {
    return items.map((item, i) =>
      fragmentTags((spec as (item: unknown, index: number) => unknown)(item, i), `${where}, itemTags of item ${i}`),
    );
  }
  throw new ValidationError(
    `${where}: itemTags must be a tag prefix (a string, e.g. "product:") or a function of the item, got ${describeValue(spec)}`,
  );
}

/** The fragment options of item `i`: the collection's, with the item's tags added to the shared ones. */
export function itemFragment(
  fragment: FragmentOptions,
  itemTags: readonly (readonly string[])[] | undefined,
  i: number,
): FragmentOptions {
  const own = itemTags?.[i];
  if (own === undefined || own.length === 0) return fragment;
  const shared = fragment.tags ?? [];
  return { ...fragment, tags: [...shared, ...own.filter((t) => !shared.includes(t))] };
}

/** How each item's own key is found: a field name (dotted path allowed) or, where the engine allows it, a function. */
export type ItemKeySpec = string | ((item: unknown, index: number) => unknown);

/**
 * Whether an item is a record whose version joins its fragment key (Rails' `cache_key_with_version`):
 * an object with a `cacheKey`, or with an `id` plus `updatedAt` or `version` (see `encodeFragmentArg`).
 */
export function isRecordItem(item: unknown): boolean {
  if (item === null || typeof item !== 'object') return false;
  const r = item as { cacheKey?: unknown; id?: unknown; updatedAt?: unknown; version?: unknown };
  if ('cacheKey' in r && r.cacheKey !== undefined) return true;
  return (
    r.id !== undefined &&
    r.id !== null &&
    ((r.updatedAt !== undefined && r.updatedAt !== null) || (r.version !== undefined && r.version !== null))
  );
}

/**
 * Validates a collection and returns each item's key arguments, in order: its own key (from the
 * `key` option) and, when the item is a record ({@link isRecordItem}), the item itself, whose
 * record key (`cacheKey`, or `id` with `updatedAt` / `version`) the fragment key then encodes, so
 * bumping one item's version re-renders that item only. Without `key`, every item must be a record
 * and is keyed by its record key alone. `where` names the tag, the template and the line for the
 * messages. Throws a {@link ValidationError} for a collection that is not an array, an unusable
 * `key` option, an item without the key field (or, without `key`, an item that is not a record),
 * or two items with the same key (their fragments would overwrite each other).
 */
export function itemKeys(items: unknown, key: unknown, where: string): unknown[][] {
  if (!Array.isArray(items)) {
    throw new ValidationError(`${where}: the collection must be an array, got ${describeValue(items)}`);
  }
  if (key === undefined) {
    return items.map((item: unknown, i) => {
      if (!isRecordItem(item)) {
        throw new ValidationError(
          `${where}: item ${i} is not a record (an object with cacheKey, or id plus updatedAt / version), so the collection needs a key option (e.g. key="id"); got ${describeValue(item)}`,
        );
      }
      return [item];
    });
  }
  if (!((typeof key === 'string' && key !== '') || typeof key === 'function')) {
    throw new ValidationError(
      `${where}: the key option must name the field that identifies an item (e.g. key="id"), got ${describeValue(key)}`,
    );
  }
  const path = typeof key === 'string' ? key.split('.') : undefined;
  const values = new Array<unknown>(items.length);
  const last = lastItems.get(where);
  let same = last !== undefined && last.values.length === items.length;
  for (let i = 0; i < items.length; i++) {
    const item: unknown = items[i];
    const value = path === undefined ? (key as (item: unknown, index: number) => unknown)(item, i) : pluck(item, path);
    values[i] = value;
    if (same && (!Object.is(value, last?.values[i]) || isRecordItem(item))) same = false;
  }
  // The same key values as this tag's previous render, none a record: the same (checked) keys.
  if (same) return (last as ItemKeyMemo).args;
  const out = checkedItemKeys(items, values, key, where);
  if (out.every((args) => args.length === 1)) {
    if (lastItems.size >= 1000) lastItems.clear();
    lastItems.set(where, { values, args: out });
  }
  return out;
}

/** The last item keys {@link itemKeys} built for a collection tag (by its `where`), when no item was a record. */
interface ItemKeyMemo {
  readonly values: readonly unknown[];
  readonly args: unknown[][];
}

/** By `where` (tag, template and line): one entry per collection tag. Bounded. */
const lastItems = new Map<string, ItemKeyMemo>();

/** {@link itemKeys} for items whose key values are `values`: checks each, and that none repeats. */
function checkedItemKeys(items: readonly unknown[], values: readonly unknown[], key: unknown, where: string): unknown[][] {
  const out = new Array<unknown[]>(items.length);
  const seen = new Map<unknown, number>();
  for (let i = 0; i < items.length; i++) {
    const item: unknown = items[i];
    const value = values[i];
    if (value === undefined || value === null) {
      throw new ValidationError(
        `${where}: item ${i} has no ${keyName(key)} (got ${describeValue(value)}); every item needs a key`,
      );
    }
    const type = typeof value;
    if (type !== 'string' && type !== 'number' && type !== 'bigint' && type !== 'boolean') {
      throw new ValidationError(
        `${where}: item ${i}: the ${keyName(key)} must give a string or number, got ${describeValue(value)}`,
      );
    }
    const before = seen.get(value);
    if (before !== undefined) {
      throw new ValidationError(
        `${where}: items ${before} and ${i} have the same key ${JSON.stringify(String(value))}; item keys must be unique in a collection`,
      );
    }
    seen.set(value, i);
    out[i] = isRecordItem(item) ? [value, item] : [value];
  }
  return out;
}

function keyName(key: unknown): string {
  return typeof key === 'string' ? `key field ${JSON.stringify(key)}` : 'key function';
}

/**
 * Every item's fragment key: `stem` (the partial's name, dependency digest and collection block
 * id) followed by the item's key arguments from {@link itemKeys}. A record whose `cacheKey` throws
 * is a {@link ValidationError} naming `where`; without a `key` option, two records with the same
 * record key are one too.
 */
export function collectionKeys(cache: TemplateCache, stem: string, args: readonly unknown[][], where: string): string[] {
  const last = lastKeys.get(cache)?.get(where);
  if (last !== undefined && last.args === args && last.stem === stem) return last.keys;
  const keys = args.map((a, i) => {
    try {
      return cache.keyWithArgs(stem, a, undefined, where);
    } catch (err) {
      // Name the item rather than the collection's internal block id.
      const prefix = describeFragment(stem, where);
      if (!(err instanceof ValidationError) || !err.message.startsWith(prefix)) throw err;
      throw new ValidationError(`${where}, item ${i}${err.message.slice(prefix.length)}`);
    }
  });
  if (args[0]?.length === 1 && isRecordItem(args[0][0])) {
    const seen = new Map<string, number>();
    keys.forEach((k, i) => {
      const before = seen.get(k);
      if (before !== undefined) {
        throw new ValidationError(
          `${where}: items ${before} and ${i} have the same record key; item keys must be unique in a collection`,
        );
      }
      seen.set(k, i);
    });
  }
  // Item keys itemKeys gave again (the same array): the next render gets these keys, and the
  // same stored-key strings (whose hashes the backends' maps have kept).
  if (args === lastItems.get(where)?.args) {
    let byWhere = lastKeys.get(cache);
    if (byWhere === undefined) {
      byWhere = new Map();
      lastKeys.set(cache, byWhere);
    }
    if (byWhere.size >= 1000) byWhere.clear();
    byWhere.set(where, { args, stem, keys });
    storedKeysOf.set(
      keys,
      keys.map((k) => cache.storedKey(k)),
    );
  }
  return keys;
}

/** The item keys {@link collectionKeys} last built per collection tag (by `where`), per cache. */
const lastKeys = new WeakMap<TemplateCache, Map<string, { args: readonly unknown[][]; stem: string; keys: string[] }>>();

/** The stored keys of a remembered key list (see {@link collectionKeys}). */
const storedKeysOf = new WeakMap<readonly string[], readonly string[]>();

/**
 * The key stem of a collection's items: the partial (`template`), its dependency digest and the
 * block id ({@link collectionBlock}: `as` and the shared variables, encoded). Kept per collection
 * tag (`where`) and per cache, and reused while the template, digest, `as` and shared variables are
 * the same primitives as at the tag's last render, so a page rendered again encodes none of them
 * (shared objects are encoded every time).
 */
export function collectionStem(
  cache: TemplateCache,
  engine: string,
  template: string,
  digest: string,
  as: string | undefined,
  shared: Readonly<Record<string, unknown>> | undefined,
  where: string,
): string {
  let byWhere = lastStems.get(cache);
  const last = byWhere?.get(where);
  if (last !== undefined && last.engine === engine && last.template === template && last.digest === digest && last.as === as) {
    let same = true;
    let count = 0;
    for (const k in shared) {
      const i = count++;
      if (last.shared[i * 2] !== k || !Object.is(last.shared[i * 2 + 1], shared[k])) {
        same = false;
        break;
      }
    }
    if (same && count * 2 === last.shared.length) return last.stem;
  }
  const stem = cache.keyStem(engine, template, digest, collectionBlock(as, shared));
  const flat: unknown[] = [];
  for (const k in shared) {
    const v = shared[k];
    if (v !== null && (typeof v === 'object' || typeof v === 'function')) return stem; // not kept
    flat.push(k, v);
  }
  if (byWhere === undefined) {
    byWhere = new Map();
    lastStems.set(cache, byWhere);
  }
  if (byWhere.size >= 1000) byWhere.clear();
  byWhere.set(where, { engine, template, digest, as, shared: flat, stem });
  return stem;
}

/** The stems {@link collectionStem} last built per collection tag (by `where`), per cache. */
const lastStems = new WeakMap<
  TemplateCache,
  Map<
    string,
    { engine: string; template: string; digest: string; as: string | undefined; shared: readonly unknown[]; stem: string }
  >
>();

/**
 * The block id of a collection's items: `each`, plus the variable name the item is given under and
 * the variables shared by every item (both change the output, so both are in the key). Item
 * fragments never share entries with the single cached partial of the same template.
 */
export function collectionBlock(as: string | undefined, shared: Readonly<Record<string, unknown>> | undefined): string {
  const hasShared = shared !== undefined && Object.keys(shared).length > 0;
  return `each${encodeArg([as ?? null, hasShared ? shared : null])}`;
}

/**
 * Renders a collection through one multi-read: `keys` are the items' fragment keys (see
 * {@link TemplateCache.keyWithArgs}), `render(i)` renders item `i` (called only for items that are
 * missing or stale, and, under concurrency, by one caller per key). Resolves to the items' HTML in
 * order. A backend failure follows the TemplateCache's `onError` policy (`'render'`: the items
 * render without the cache; an item already rendered is not rendered again).
 */
export function renderCollection(
  cache: TemplateCache,
  keys: readonly string[],
  render: (index: number) => string | Promise<string>,
  options: FragmentOptions | undefined,
  itemTags?: readonly (readonly string[])[],
): Promise<string[]> {
  if (keys.length === 0) return Promise.resolve([]);
  if (!cache.enabled || options?.enabled === false) return renderEach(keys.length, render, undefined);
  // Inside an outer fragment's body: every item's declared tags go to it (hit or miss).
  reportFragmentTags(options?.tags);
  if (itemTags !== undefined) for (const t of itemTags) reportFragmentTags(t);
  let region: ReturnType<TemplateCache['region']>;
  try {
    region = cache.region(options?.region);
  } catch (err) {
    return Promise.reject(err);
  }
  const stored = storedKeysOf.get(keys) ?? keys.map((k) => cache.storedKey(k));
  // Dev annotations / the render's summary: what this render rendered itself (raw output and time).
  const observed = cache.observes(options) ? new Map<number, { raw: string; ms: number }>() : undefined;
  const created = new Map<number, string>();
  let indexOf: Map<string, number> | undefined;
  // Tagged items are written by the creator itself (one setMulti per distinct tag list), still under
  // the region's locks; the region is then told not to write them again.
  let storedItself = false;
  const sharedTags = options?.tags;
  const create = async (...missing: string[]): Promise<string[]> => {
    indexOf ??= new Map(stored.map((s, i) => [s, i]));
    const index = indexOf;
    const t0 = performance.now();
    const tagsOf = new Map<string, string[]>();
    const out = await Promise.all(
      missing.map(async (s) => {
        const i = index.get(s) as number;
        const collected = new Set<string>(sharedTags);
        for (const t of itemTags?.[i] ?? []) collected.add(t);
        const declared = collected.size;
        const raw = String(await collectFragmentTags(collected, () => render(i)));
        // Tags of fragments inside the item, for the fragment around the collection.
        if (collected.size > declared) reportFragmentTags([...collected]);
        const html = observed === undefined ? raw : stripAnnotations(raw);
        observed?.set(i, { raw, ms: 0 });
        created.set(i, html);
        if (collected.size > 0) tagsOf.set(s, [...collected]);
        return html;
      }),
    );
    if (tagsOf.size > 0 || storedItself) {
      const groups = new Map<string, { tags: string[]; entries: Map<string, string> }>();
      missing.forEach((s, j) => {
        const tags = tagsOf.get(s) ?? [];
        const id = tags.join('\u0000');
        let group = groups.get(id);
        if (group === undefined) {
          group = { tags, entries: new Map() };
          groups.set(id, group);
        }
        group.entries.set(s, out[j] as string);
      });
      await Promise.all(
        [...groups.values()].map((g) => region.setMulti(g.entries, g.tags.length > 0 ? { tags: g.tags } : undefined)),
      );
      storedItself = true;
    }
    if (observed !== undefined) {
      // The items rendered concurrently, so none has a time of its own: each gets its share of the batch.
      const share = (performance.now() - t0) / missing.length;
      for (const s of missing) (observed.get(index.get(s) as number) as { ms: number }).ms = share;
    }
    return out;
  };
  const read = region.getOrCreateMulti<string>(stored, create, {
    ...(options?.expire === undefined ? {} : { expirationTime: options.expire }),
    shouldCacheFn: () => !storedItself,
  });
  const out =
    observed === undefined
      ? read
      : read.then((html) =>
          html.map((h, i) => {
            const mine = observed.get(i);
            return cache.settleFragment(keys[i] as string, stored[i] as string, options, mine?.raw, mine?.ms ?? 0, h);
          }),
        );
  return out.then(undefined, (err: unknown) => {
    if (!cache.absorbFailure(err, keys[0] as string)) throw err;
    return renderEach(keys.length, render, created);
  });
}

/** Renders every item without the cache (reusing those in `done`), concurrently, in order. */
async function renderEach(
  count: number,
  render: (index: number) => string | Promise<string>,
  done: ReadonlyMap<number, string> | undefined,
): Promise<string[]> {
  const out: Array<string | Promise<string>> = new Array(count);
  // A synchronous throw of render() rejects (this is an async function), as a failed render should.
  for (let i = 0; i < count; i++) {
    const known = done?.get(i);
    out[i] = known ?? Promise.resolve(render(i)).then(String);
  }
  return Promise.all(out);
}

function pluck(item: unknown, path: readonly string[]): unknown {
  let v: unknown = item;
  for (const part of path) {
    if (v === null || (typeof v !== 'object' && typeof v !== 'function')) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (typeof value === 'object') return `an object (${Object.prototype.toString.call(value).slice(8, -1)})`;
  return `${typeof value} ${String(value)}`;
}
