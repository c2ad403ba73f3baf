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
//
// Payload bytes of the default serializer: JSON text, or structured clone (`node:v8`, first byte
// 0xFF). A string whose characters all fit in one byte (Latin-1, so every ASCII page fragment) is
// written as structured clone: a header, a tag and a length, then the characters' bytes as they
// are, which decodeValue turns back into the string with one native copy (latin1Slice), several
// times cheaper than JSON.parse of the quoted, escaped JSON string. Other strings stay JSON (UTF-8,
// lone surrogates escaped). Every release of the default serializer reads both formats, so no
// layout changed and processes of two versions read each other's values.

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
  deserialize: (bytes) => deserializeV8(bytes),
};

/**
 * The default serializer: JSON for values that JSON carries exactly (plain objects and arrays of
 * strings, finite numbers other than -0, booleans and null, without shared or cyclic references),
 * Node's structured clone ({@link v8Serializer}) for everything else. Both round-trip the same
 * types as {@link v8Serializer}; JSON is the cheaper of the two to decode (about half the time of
 * `v8.deserialize` for a small object), and reading is what a cache mostly does. The two are told
 * apart by their first byte: structured-clone output starts with 0xFF, which JSON text never does.
 * A string whose characters are all Latin-1 (code units up to 0xFF, so any ASCII text) is written
 * as structured clone, which stores its characters byte for byte and decodes with one copy, where
 * JSON would quote and escape it; other strings are JSON. Decoding never runs code.
 */
export const defaultSerializer: Serializer = {
  serialize: (value) => {
    // A one-byte (Latin-1) string: structured clone, its characters stored as they are (see the top).
    if (typeof value === 'string') return NOT_ONE_BYTE.test(value) ? JSON.stringify(value) : v8Serialize(value);
    return isJsonExact(value, 0, new Set()) ? JSON.stringify(value) : v8Serialize(value);
  },
  deserialize: (bytes) => {
    if (bytes[0] !== V8_FIRST_BYTE) return parseJsonBytes(bytes);
    return deserializeV8(bytes);
  },
};

/** The version tag every `v8.serialize` output starts with. */
const V8_FIRST_BYTE = 0xff;
/** A UTF-16 code unit above 0xFF: a string with one is not a one-byte string. */
const NOT_ONE_BYTE = /[\u0100-\uffff]/;
/** What `v8.serialize` of a string starts with in this Node: 0xFF and the format version. */
const V8_HEADER: Buffer = (() => {
  const empty = v8Serialize('');
  return Buffer.from(empty.subarray(0, empty.byteLength - 2)); // drop the string tag and its length 0
})();
/** Structured-clone tags of a one-byte (Latin-1) string, a two-byte (UTF-16LE) string and padding. */
const V8_ONE_BYTE_STRING = 0x22;
const V8_TWO_BYTE_STRING = 0x63;
const V8_PADDING = 0x00;

/**
 * The string a structured-clone payload at `buf[start..end)` holds, read straight from its bytes,
 * or undefined when the payload is anything else (another value, another format version, trailing
 * bytes): the caller then decodes it the general way. Gives exactly what `v8.deserialize` gives.
 */
function readV8String(buf: Buffer, start: number, end: number): string | undefined {
  const header = V8_HEADER;
  let pos = start;
  for (let i = 0; i < header.length; i++) if (buf[pos++] !== header[i]) return undefined;
  while (buf[pos] === V8_PADDING && pos < end) pos++;
  const tag = buf[pos++];
  if (tag !== V8_ONE_BYTE_STRING && tag !== V8_TWO_BYTE_STRING) return undefined;
  // The byte length: an unsigned LEB128 varint (a multiplier, not `2 ** shift`: Math.pow is slow).
  let length = 0;
  for (let scale = 1; ; scale *= 128) {
    if (scale > 0x10000000 || pos >= end) return undefined; // at most 5 bytes (2^28)
    const b = buf[pos++] as number;
    length += (b & 0x7f) * scale;
    if (b < 0x80) break;
  }
  if (pos + length !== end) return undefined;
  if (tag === V8_ONE_BYTE_STRING) return buf.toString('latin1', pos, end);
  return length % 2 === 0 ? buf.toString('utf16le', pos, end) : undefined;
}

/** A structured-clone payload: a string read straight from its bytes, anything else through `v8.deserialize`. */
function deserializeV8(bytes: Uint8Array): unknown {
  const buf = asBuffer(bytes);
  return readV8String(buf, 0, buf.byteLength) ?? v8Deserialize(bytes);
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
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
  const buf = asBuffer(bytes);
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
  // A string from one of our own serializers: read from the bytes in place (no subarray, no call).
  const text =
    buf[start] === V8_FIRST_BYTE && (serializer === defaultSerializer || serializer === v8Serializer)
      ? readV8String(buf, start, buf.byteLength)
      : undefined;
  if (text !== undefined) payload = text;
  else {
    try {
      payload = serializer.deserialize(buf.subarray(start));
    } catch {
      return NO_VALUE;
    }
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
