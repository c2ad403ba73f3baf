// The byte envelope of byte-oriented backends, and the default payload serializer.
//
// Envelope layout (all integers big-endian):
//   0      1 byte   magic 0xD0
//   1      1 byte   layout: 1 = plain, 2 = with an extension block
//   2      8 bytes  created-at, float64 milliseconds since the epoch
//   10     8 bytes  creation duration in ms, float64 (NaN when unknown)
//   layout 1:
//   18     …        payload bytes from the serializer
//   layout 2 (written only when the metadata has fields beyond ct/v/d, such as tags):
//   18     4 bytes  length N of the extension block
//   22     N bytes  the extra metadata fields as UTF-8 JSON (an object)
//   22+N   …        payload bytes from the serializer
// Both layouts decode to metadata version VALUE_VERSION, so a value without extra fields costs
// nothing more than before. Anything else (short, other magic, other layout, a bad extension, a
// payload the serializer rejects) decodes to NO_VALUE: a miss, never a crash.

import { deserialize as v8Deserialize, serialize as v8Serialize } from 'node:v8';
import { CachedValue, type CacheMetadata, NO_VALUE, type NoValue, type Serializer, VALUE_VERSION } from './api.js';

const MAGIC = 0xd0;
const HEADER_BYTES = 18;
const LAYOUT_PLAIN = 1;
const LAYOUT_EXTENDED = 2;
const EXTENSION_LENGTH_BYTES = 4;
/** Metadata fields stored in the fixed header; every other field goes in the extension block. */
const HEADER_FIELDS = new Set(['ct', 'v', 'd']);

/**
 * The default serializer: Node's structured-clone format (`node:v8`). It round-trips strings,
 * numbers (NaN, -0), booleans, null, undefined, arrays, plain objects, Date, Map, Set, BigInt,
 * RegExp, Buffer and typed arrays. Decoding builds plain data only and never runs code. Class
 * instances come back as plain objects.
 */
export const v8Serializer: Serializer = {
  serialize: (value) => v8Serialize(value),
  deserialize: (bytes) => v8Deserialize(bytes),
};

/**
 * The default serializer: JSON for values that JSON carries exactly (plain objects and arrays of
 * strings, finite numbers other than -0, booleans and null, without shared or cyclic references),
 * Node's structured clone ({@link v8Serializer}) for everything else. Both round-trip the same
 * types as {@link v8Serializer}; JSON is the cheaper of the two to decode (about half the time of
 * `v8.deserialize` for a small object), and reading is what a cache mostly does. The two are told
 * apart by their first byte: structured-clone output starts with 0xFF, which JSON text never does.
 * Decoding never runs code.
 */
export const defaultSerializer: Serializer = {
  serialize: (value) => (isJsonExact(value, 0, new Set()) ? JSON.stringify(value) : v8Serialize(value)),
  deserialize: (bytes) => {
    if (bytes[0] === V8_FIRST_BYTE) return v8Deserialize(bytes);
    return parseJsonBytes(bytes);
  },
};

/** The version tag every `v8.serialize` output starts with. */
const V8_FIRST_BYTE = 0xff;
/** Deeper values take the structured-clone path (no deep recursion on the write path). */
const JSON_MAX_DEPTH = 64;

function parseJsonBytes(bytes: Uint8Array): unknown {
  return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
}

/** Whether JSON.stringify then JSON.parse gives back a value structured clone would call equal. */
function isJsonExact(value: unknown, depth: number, seen: Set<object>): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value) && !Object.is(value, -0);
    case 'object': {
      if (value === null) return true;
      if (depth >= JSON_MAX_DEPTH || seen.has(value)) return false; // deep, cyclic or shared
      seen.add(value);
      if (Array.isArray(value)) {
        if (Object.getPrototypeOf(value) !== Array.prototype || Object.keys(value).length !== value.length) return false;
        for (const item of value) if (!isJsonExact(item, depth + 1, seen)) return false;
        return true;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) return false; // Date, Map, Buffer, class instances…
      for (const key in value) {
        if (!Object.hasOwn(value, key)) return false; // inherited enumerable keys: let structured clone decide
        if (!isJsonExact((value as Record<string, unknown>)[key], depth + 1, seen)) return false;
      }
      return true;
    }
    default:
      return false; // undefined, bigint, symbol, function
  }
}

/**
 * A JSON serializer for values other languages must read. It loses what JSON loses (undefined,
 * Date becomes a string, Map/Set/BigInt are not supported).
 */
export const jsonSerializer: Serializer = {
  serialize: (value) => JSON.stringify(value),
  deserialize: parseJsonBytes,
};

/** Encodes a cached value as envelope bytes. */
export function encodeValue(value: CachedValue, serializer: Serializer): Buffer {
  const raw = serializer.serialize(value.payload);
  const payload = typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw;
  const extension = extensionOf(value.metadata);
  const start = extension ? HEADER_BYTES + EXTENSION_LENGTH_BYTES + extension.byteLength : HEADER_BYTES;
  const out = Buffer.allocUnsafe(start + payload.byteLength);
  out[0] = MAGIC;
  out[1] = extension ? LAYOUT_EXTENDED : LAYOUT_PLAIN;
  out.writeDoubleBE(value.metadata.ct, 2);
  out.writeDoubleBE(value.metadata.d ?? Number.NaN, 10);
  if (extension) {
    out.writeUInt32BE(extension.byteLength, HEADER_BYTES);
    out.set(extension, HEADER_BYTES + EXTENSION_LENGTH_BYTES);
  }
  out.set(payload, start);
  return out;
}

/** Decodes envelope bytes; anything unreadable is {@link NO_VALUE}. */
export function decodeValue(bytes: Uint8Array | null | undefined, serializer: Serializer): CachedValue | NoValue {
  if (!bytes || bytes.byteLength < HEADER_BYTES) return NO_VALUE;
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf[0] !== MAGIC) return NO_VALUE;
  const layout = buf[1];
  if (layout !== LAYOUT_PLAIN && layout !== LAYOUT_EXTENDED) return NO_VALUE;
  const ct = buf.readDoubleBE(2);
  const d = buf.readDoubleBE(10);
  if (!Number.isFinite(ct)) return NO_VALUE;
  let start = HEADER_BYTES;
  let extra: Record<string, unknown> | undefined;
  if (layout === LAYOUT_EXTENDED) {
    if (buf.byteLength < HEADER_BYTES + EXTENSION_LENGTH_BYTES) return NO_VALUE;
    const length = buf.readUInt32BE(HEADER_BYTES);
    start = HEADER_BYTES + EXTENSION_LENGTH_BYTES + length;
    if (start > buf.byteLength) return NO_VALUE;
    extra = parseExtension(buf.subarray(HEADER_BYTES + EXTENSION_LENGTH_BYTES, start));
    if (!extra) return NO_VALUE;
  }
  let payload: unknown;
  try {
    payload = serializer.deserialize(buf.subarray(start));
  } catch {
    return NO_VALUE;
  }
  const base: CacheMetadata = Number.isNaN(d) ? { ct, v: VALUE_VERSION } : { ct, v: VALUE_VERSION, d };
  return new CachedValue(payload, extra ? { ...extra, ...base } : base);
}

/** The metadata fields beyond the fixed header, as JSON bytes, or undefined when there are none. */
function extensionOf(metadata: CacheMetadata): Buffer | undefined {
  let extra: Record<string, unknown> | undefined;
  for (const field in metadata) {
    if (HEADER_FIELDS.has(field)) continue;
    const value = (metadata as unknown as Record<string, unknown>)[field];
    if (value === undefined) continue;
    extra ??= {};
    extra[field] = value;
  }
  return extra ? Buffer.from(JSON.stringify(extra), 'utf8') : undefined;
}

function parseExtension(bytes: Uint8Array): Record<string, unknown> | undefined {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}
