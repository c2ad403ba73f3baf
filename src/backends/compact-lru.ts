// The memory backend's default store: an LRU of string keys whose slots hold a value and a number,
// the value's creation time. A value that is only a payload and a creation time (the common case)
// is kept as the bare payload, its time in a Float64Array beside it: no object per entry. Other
// values (tags, a fail-safe deadline, a creation duration, another envelope version) keep their
// CachedValue, with NaN as the slot's time.
//
// Why not lru-cache, which the other memory stores use: a CachedValue around each payload is a
// 40-byte object (the smallest V8 object with two fields), ~10% of a small record's entry, and
// lru-cache has no per-entry number that its `get` hands back in the same lookup (its per-entry
// `start` is read only by its own ttl check, a call on every get). The layout here is lru-cache's
// (a Map from key to slot, arrays of keys and values, typed arrays linking the slots in recency
// order) plus one Float64Array.

import { BARE_CT, CachedValue, VALUE_VERSION, ValidationError } from '../api.js';

/** Typed array able to hold slot numbers below `max`. */
type SlotArray = Uint8Array | Uint16Array | Uint32Array;

function slotArray(max: number): SlotArray {
  return max <= 2 ** 8 ? new Uint8Array(max) : max <= 2 ** 16 ? new Uint16Array(max) : new Uint32Array(max);
}

/** Largest `max` a CompactLru takes: the longest JS array (its arrays are allocated up front). */
export const COMPACT_LRU_MAX = 2 ** 32 - 1;

/**
 * A bounded LRU map from string keys to {@link CachedValue}s, storing a value that is only a
 * payload and a creation time without its CachedValue object. `get` and `peek` return
 * CachedValues (bare ones rebuilt, a new object each time); the region's hit path reads the slot
 * in place and builds nothing. Iteration runs from the most to the least
 * recently used, as lru-cache's does; entries deleted during an iteration are skipped.
 */
export class CompactLru {
  /** Most entries kept; setting a new key when full drops the least recently used. */
  readonly max: number;
  /** @internal Slot → payload (time finite) or CachedValue (time NaN); undefined when free. */
  readonly items: unknown[];
  /** @internal Slot → creation time (ms since the epoch) of a bare payload, or NaN. */
  readonly times: Float64Array;
  private readonly slots = new Map<string, number>();
  private readonly keyOf: (string | undefined)[];
  private readonly next: SlotArray;
  private readonly prev: SlotArray;
  /** Least recently used slot (meaningful when size > 0). */
  private head = 0;
  /** Most recently used slot (meaningful when size > 0). */
  private tail = 0;
  /** Slots below this have been used; slots freed by delete are reused first. */
  private used = 0;
  private free: number[] = [];

  constructor(max: number) {
    if (!(Number.isSafeInteger(max) && max > 0 && max <= COMPACT_LRU_MAX)) {
      throw new ValidationError(`CompactLru: max must be a positive integer up to 2^32 - 1, got ${String(max)}`);
    }
    this.max = max;
    this.items = new Array(max);
    this.keyOf = new Array(max);
    this.times = new Float64Array(max);
    this.next = slotArray(max);
    this.prev = slotArray(max);
  }

  /** Number of entries. */
  get size(): number {
    return this.slots.size;
  }

  /**
   * @internal The slot holding `key`, made the most recently used, or -1. Its value is
   * `items[slot]`: a bare payload created at `times[slot]`, or, when that is NaN, a CachedValue.
   */
  find(key: string): number {
    const slot = this.slots.get(key);
    if (slot === undefined) return -1;
    if (slot !== this.tail) this.toTail(slot);
    return slot;
  }

  /** @internal The value in `slot` as a CachedValue (a bare payload gets a new one). */
  valueAt(slot: number): CachedValue {
    const ct = this.times[slot] as number;
    const item = this.items[slot];
    return Number.isNaN(ct) ? (item as CachedValue) : new CachedValue(item, { ct, v: VALUE_VERSION });
  }

  /** The value under `key`, made the most recently used; undefined when absent. */
  get(key: string): CachedValue | undefined {
    const slot = this.find(key);
    return slot < 0 ? undefined : this.valueAt(slot);
  }

  /** The value under `key` without changing its recency; undefined when absent. */
  peek(key: string): CachedValue | undefined {
    const slot = this.slots.get(key);
    return slot === undefined ? undefined : this.valueAt(slot);
  }

  /** Whether `key` is present (its recency unchanged). */
  has(key: string): boolean {
    return this.slots.has(key);
  }

  /** Stores `value` under `key` as the most recently used entry, dropping the least recently used when full. */
  set(key: string, value: CachedValue): this {
    if (!(value instanceof CachedValue)) {
      throw new ValidationError(
        `CompactLru: values must be CachedValue objects, got ${typeof value} for key ${JSON.stringify(key)}`,
      );
    }
    const ct = value[BARE_CT];
    let slot = this.slots.get(key);
    if (slot !== undefined) {
      if (slot !== this.tail) this.toTail(slot);
    } else {
      slot = this.take();
      this.keyOf[slot] = key;
      this.slots.set(key, slot);
    }
    // BARE_CT is NaN for anything that is not only a payload and a whole-ms creation time.
    this.items[slot] = Number.isNaN(ct) ? value : value.payload;
    this.times[slot] = ct;
    return this;
  }

  /** Removes `key`; true when it was present. */
  delete(key: string): boolean {
    const slot = this.slots.get(key);
    if (slot === undefined) return false;
    this.slots.delete(key);
    this.unlink(slot);
    this.keyOf[slot] = undefined;
    this.items[slot] = undefined;
    this.free.push(slot);
    return true;
  }

  /** Removes every entry. */
  clear(): void {
    this.slots.clear();
    this.keyOf.fill(undefined, 0, this.used);
    this.items.fill(undefined, 0, this.used);
    this.used = 0;
    this.free = [];
  }

  /** Keys, most recently used first. */
  *keys(): Generator<string> {
    for (const [key] of this.order()) yield key;
  }

  /** Values (as CachedValues), most recently used first. */
  *values(): Generator<CachedValue> {
    for (const [, slot] of this.order()) yield this.valueAt(slot);
  }

  /** `[key, value]` pairs (values as CachedValues), most recently used first. */
  *entries(): Generator<[string, CachedValue]> {
    for (const [key, slot] of this.order()) yield [key, this.valueAt(slot)];
  }

  /** The same as {@link CompactLru.entries}. */
  [Symbol.iterator](): Generator<[string, CachedValue]> {
    return this.entries();
  }

  /**
   * `[key, slot]` from the most to the least recently used, as they were when iteration began
   * (read first, so that deleting entries meanwhile is safe); entries deleted since are skipped.
   */
  private *order(): Generator<[string, number]> {
    const keys: string[] = [];
    let slot = this.tail;
    for (let left = this.slots.size; left > 0; left--) {
      keys.push(this.keyOf[slot] as string);
      slot = this.prev[slot] as number;
    }
    for (const key of keys) {
      const now = this.slots.get(key);
      if (now !== undefined) yield [key, now];
    }
  }

  /** A slot for a new key, linked in as the most recently used. */
  private take(): number {
    let slot: number;
    if (this.slots.size === this.max) {
      // Full: reuse the least recently used entry's slot.
      slot = this.head;
      this.slots.delete(this.keyOf[slot] as string);
      if (slot !== this.tail) this.toTail(slot);
      return slot;
    }
    slot = this.free.length > 0 ? (this.free.pop() as number) : this.used++;
    if (this.slots.size === 0) {
      this.head = this.tail = slot;
    } else {
      this.prev[slot] = this.tail;
      this.next[this.tail] = slot;
      this.tail = slot;
    }
    return slot;
  }

  /** Moves a linked slot that is not the tail to the tail. */
  private toTail(slot: number): void {
    if (slot === this.head) {
      this.head = this.next[slot] as number;
    } else {
      const before = this.prev[slot] as number;
      const after = this.next[slot] as number;
      this.next[before] = after;
      this.prev[after] = before;
    }
    this.prev[slot] = this.tail;
    this.next[this.tail] = slot;
    this.tail = slot;
  }

  /** Unlinks a slot (its entry already gone from `slots`). */
  private unlink(slot: number): void {
    if (this.slots.size === 0) return; // it was the only one
    if (slot === this.head) this.head = this.next[slot] as number;
    else if (slot === this.tail) this.tail = this.prev[slot] as number;
    else {
      const before = this.prev[slot] as number;
      const after = this.next[slot] as number;
      this.next[before] = after;
      this.prev[after] = before;
    }
  }
}
