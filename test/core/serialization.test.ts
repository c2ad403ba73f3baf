import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deserialize as v8Deserialize, serialize as v8Serialize } from 'node:v8';
import {
  CachedValue,
  decodeValue,
  defaultSerializer,
  encodeValue,
  jsonSerializer,
  makeRegion,
  NO_VALUE,
  type Serializer,
  VALUE_VERSION,
  v8Serializer,
} from '../../src/index.js';

const roundTrip = (payload: unknown, serializer: Serializer = defaultSerializer) => {
  const decoded = decodeValue(
    encodeValue(new CachedValue(payload, { ct: 1234.5, v: VALUE_VERSION, d: 7 }), serializer),
    serializer,
  );
  assert.notEqual(decoded, NO_VALUE);
  return decoded as CachedValue;
};

describe('value envelope and default serializer', () => {
  it('keeps metadata (creation time, duration) and the payload', () => {
    const v = roundTrip({ a: 1 });
    assert.deepEqual(v.payload, { a: 1 });
    assert.equal(v.metadata.ct, 1234.5);
    assert.equal(v.metadata.d, 7);
    assert.equal(v.metadata.v, VALUE_VERSION);
  });

  it('round-trips every type the contract lists', () => {
    const samples = [
      'str',
      0,
      -0,
      1.5,
      Number.NaN,
      true,
      false,
      null,
      undefined,
      [1, [2, [3]]],
      { nested: { deep: [1, { x: 'y' }] } },
      new Date(0),
      new Map<unknown, unknown>([[1, new Set(['a'])]]),
      new Set([1, 2]),
      2n ** 100n,
      { u: undefined },
    ];
    for (const serializer of [defaultSerializer, v8Serializer]) {
      for (const s of samples) assert.deepEqual(roundTrip(s, serializer).payload, s);
      const buf = roundTrip(Buffer.from([1, 2, 3]), serializer).payload;
      assert.ok(Buffer.isBuffer(buf));
      assert.deepEqual([...(buf as Buffer)], [1, 2, 3]);
      const u8 = roundTrip(new Uint8Array([4, 5]), serializer).payload;
      assert.ok(u8 instanceof Uint8Array);
      assert.deepEqual([...(u8 as Uint8Array)], [4, 5]);
    }
  });

  it('the default serializer writes JSON only when JSON carries the value exactly', () => {
    const isJson = (v: unknown) => Buffer.from(defaultSerializer.serialize(v) as string | Uint8Array)[0] !== 0xff;
    // (A top-level string is not in this list: one of one-byte characters is structured clone, see below.)
    for (const v of ['\u20ac', 1.5, true, null, [1, 'a', [null]], { a: { b: [1, 2] }, '\u00e9': 'é', lone: '\ud800' }]) {
      assert.ok(isJson(v), `JSON for ${JSON.stringify(v)}`);
      assert.deepEqual(roundTrip(v).payload, v);
    }
    const shared = { x: 1 };
    const cyclic: Record<string, unknown> = { name: 'c' };
    cyclic.self = cyclic;
    const holes: number[] = [];
    holes[0] = 1;
    holes[2] = 3;
    const extra = Object.assign([1, 2], { tag: 'kept' });
    const protoKey = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as Record<string, unknown>;
    const structured = [
      -0,
      NaN,
      Infinity,
      undefined,
      { u: undefined },
      1n,
      new Date(5),
      { d: new Date(5) },
      [shared, shared],
      cyclic,
      holes,
      extra,
    ];
    for (const [i, v] of structured.entries()) assert.equal(isJson(v), false, `structured clone for sample ${i}`);
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1 });
    assert.ok(isJson(bare), 'an object without a prototype is plain data too');
    assert.deepEqual({ ...(roundTrip(bare).payload as object) }, { a: 1 });
    const back = roundTrip({ pair: [shared, shared] }).payload as { pair: object[] };
    assert.equal(back.pair[0], back.pair[1], 'shared references stay shared');
    const again = roundTrip(cyclic).payload as Record<string, unknown>;
    assert.equal(again.self, again);
    assert.deepEqual(roundTrip(holes).payload, holes);
    assert.equal((roundTrip(extra).payload as { tag?: string }).tag, 'kept');
    const p = roundTrip(protoKey).payload as Record<string, unknown>;
    assert.ok(Object.hasOwn(p, '__proto__'), '__proto__ stays an own key');
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.deepEqual(Object.getPrototypeOf(p), Object.prototype);
    // A deeply nested value takes the structured-clone path instead of deep recursion.
    let deep: unknown = 'leaf';
    for (let i = 0; i < 200; i++) deep = { next: deep };
    assert.equal(isJson(deep), false);
    assert.deepEqual(roundTrip(deep).payload, deep);
  });

  it('the default serializer reads what v8Serializer wrote', () => {
    const bytes = encodeValue(new CachedValue({ m: new Map([[1, 2]]) }, { ct: 1, v: VALUE_VERSION }), v8Serializer);
    const v = decodeValue(bytes, defaultSerializer);
    assert.ok(v !== NO_VALUE);
    assert.deepEqual(v.payload, { m: new Map([[1, 2]]) });
  });

  it('regions use the default serializer unless given one', () => {
    assert.equal(makeRegion().serializer, defaultSerializer);
    assert.equal(makeRegion({ serializer: v8Serializer }).serializer, v8Serializer);
  });

  it('reads garbage, truncated bytes, other versions and bad payloads as NO_VALUE', () => {
    const good = encodeValue(new CachedValue('x', { ct: 1, v: VALUE_VERSION }), v8Serializer);
    assert.equal(decodeValue(Buffer.from('hello world, not an envelope'), v8Serializer), NO_VALUE);
    assert.equal(decodeValue(good.subarray(0, 10), v8Serializer), NO_VALUE);
    assert.equal(decodeValue(null, v8Serializer), NO_VALUE);
    const otherVersion = Buffer.from(good);
    otherVersion[1] = 99;
    assert.equal(decodeValue(otherVersion, v8Serializer), NO_VALUE);
    const badPayload = Buffer.concat([good.subarray(0, 18), Buffer.from([0xff, 0x0f, 0x01])]);
    assert.equal(decodeValue(badPayload, v8Serializer), NO_VALUE);
  });

  it('decoding never runs code: a payload naming a function stays data', () => {
    const v = roundTrip({ toString: 'function () { throw new Error("ran") }', __proto__x: 1 });
    assert.equal(typeof (v.payload as { toString: unknown }).toString, 'string');
    const json = decodeValue(
      Buffer.concat([
        encodeValue(new CachedValue(0, { ct: 1, v: VALUE_VERSION }), defaultSerializer).subarray(0, 18),
        Buffer.from('{"a": (() => 1)()}'),
      ]),
      defaultSerializer,
    );
    assert.equal(json, NO_VALUE, 'text that is not JSON is a miss, never evaluated');
    assert.throws(() => v8Serializer.serialize(() => 1)); // functions cannot even be stored
  });

  it('carries metadata beyond ct/d (tags) in an extension block, and only when there is some', () => {
    const plain = encodeValue(new CachedValue('x', { ct: 5, v: VALUE_VERSION }), defaultSerializer);
    assert.equal(plain[1], 1, 'no extra fields: the plain layout');
    const tagged = encodeValue(new CachedValue('x', { ct: 5, v: VALUE_VERSION, d: 3, tags: ['a', 'b|c'] }), defaultSerializer);
    assert.equal(tagged[1], 2);
    const back = decodeValue(tagged, defaultSerializer) as CachedValue;
    assert.deepEqual(back.metadata, { ct: 5, v: VALUE_VERSION, d: 3, tags: ['a', 'b|c'] });
    assert.equal(back.payload, 'x');
    const undefinedField = encodeValue(new CachedValue('x', { ct: 5, v: VALUE_VERSION, tags: undefined }), defaultSerializer);
    assert.equal(undefinedField[1], 1, 'an undefined field is not written');
  });

  it('reads a truncated or malformed extension block as NO_VALUE', () => {
    const tagged = encodeValue(new CachedValue('x', { ct: 5, v: VALUE_VERSION, tags: ['t'] }), defaultSerializer);
    assert.equal(decodeValue(tagged.subarray(0, 20), defaultSerializer), NO_VALUE);
    const tooLong = Buffer.from(tagged);
    tooLong.writeUInt32BE(10_000, 18);
    assert.equal(decodeValue(tooLong, defaultSerializer), NO_VALUE);
    const notObject = Buffer.concat([tagged.subarray(0, 18), Buffer.from([0, 0, 0, 2]), Buffer.from('[]'), Buffer.from('"x"')]);
    assert.equal(decodeValue(notObject, defaultSerializer), NO_VALUE);
    const notJson = Buffer.concat([tagged.subarray(0, 18), Buffer.from([0, 0, 0, 2]), Buffer.from('{x'), Buffer.from('"x"')]);
    assert.equal(decodeValue(notJson, defaultSerializer), NO_VALUE);
  });

  it('writes a one-byte string as structured clone, its characters as they are, and reads it back exactly', () => {
    const html = '<li class="card" id="p7">\n\t<h3>Caf\u00e9 &amp; "friends"</h3>\\</li>\n';
    const oneByte = ['', 'x', html, '\u0000\u001f\u007f\u0080\u00ff', 'y'.repeat(1 << 20), '\u00e9'.repeat(300)];
    for (const s of oneByte) {
      const bytes = defaultSerializer.serialize(s);
      assert.ok(Buffer.isBuffer(bytes), `structured clone for a string of ${s.length}`);
      assert.deepEqual(bytes, v8Serialize(s), 'exactly what node:v8 writes, so every release reads it');
      const envelope = encodeValue(new CachedValue(s, { ct: 5, v: VALUE_VERSION }), defaultSerializer);
      assert.equal(envelope[1], 1, 'the plain layout: no new envelope layout');
      assert.equal(envelope.byteLength, 18 + bytes.byteLength);
      for (const serializer of [defaultSerializer, v8Serializer]) {
        const back = decodeValue(envelope, serializer);
        assert.ok(back !== NO_VALUE);
        assert.equal(back.payload, s);
        assert.deepEqual(back.metadata, { ct: 5, v: VALUE_VERSION });
      }
      assert.equal(defaultSerializer.deserialize(bytes), s);
      assert.equal(defaultSerializer.deserialize(new Uint8Array(bytes)), s, 'a Uint8Array that is not a Buffer');
    }
    // Tagged (the extension layout) and with a creation duration.
    const tagged = encodeValue(new CachedValue(html, { ct: 5, v: VALUE_VERSION, d: 2.5, tags: ['t'] }), defaultSerializer);
    assert.equal(tagged[1], 2);
    const back = decodeValue(tagged, defaultSerializer) as CachedValue;
    assert.equal(back.payload, html);
    assert.deepEqual(back.metadata, { ct: 5, v: VALUE_VERSION, d: 2.5, tags: ['t'] });
  });

  it('keeps JSON for strings with characters above U+00FF, lone surrogates included, exactly', () => {
    const twoByte = [
      '\u20ac',
      'a\u0100',
      '\u{1f600} emoji',
      '\ud800',
      'a\udc00b',
      '\udbff\udfff',
      `${'z'.repeat(100_000)}\u4e2d`,
    ];
    for (const s of twoByte) {
      assert.equal(typeof defaultSerializer.serialize(s), 'string', 'JSON text');
      assert.equal(roundTrip(s).payload, s);
      // What v8Serializer wrote (UTF-16 in structured clone) reads back exactly through either serializer.
      const v8Envelope = encodeValue(new CachedValue(s, { ct: 1, v: VALUE_VERSION }), v8Serializer);
      assert.equal((decodeValue(v8Envelope, defaultSerializer) as CachedValue).payload, s);
      assert.equal((decodeValue(v8Envelope, v8Serializer) as CachedValue).payload, s);
    }
  });

  it('reads strings the previous releases wrote (JSON text in either layout)', () => {
    const header = (layout: number) => {
      const h = Buffer.alloc(18);
      h[0] = 0xd0;
      h[1] = layout;
      h.writeDoubleBE(1234, 2);
      h.writeDoubleBE(Number.NaN, 10);
      return h;
    };
    const s = '<p class="x">caf\u00e9\n</p>';
    const plain = Buffer.concat([header(1), Buffer.from(JSON.stringify(s))]);
    assert.equal((decodeValue(plain, defaultSerializer) as CachedValue).payload, s);
    const extension = Buffer.from(JSON.stringify({ tags: ['a'] }));
    const length = Buffer.alloc(4);
    length.writeUInt32BE(extension.byteLength);
    const extended = Buffer.concat([header(2), length, extension, Buffer.from(JSON.stringify(s))]);
    const back = decodeValue(extended, defaultSerializer) as CachedValue;
    assert.equal(back.payload, s);
    assert.deepEqual(back.metadata, { ct: 1234, v: VALUE_VERSION, tags: ['a'] });
  });

  it('calls a custom serializer for strings, both ways', () => {
    const calls: string[] = [];
    const upper: Serializer = {
      serialize: (v) => {
        calls.push('serialize');
        return JSON.stringify(String(v).toUpperCase());
      },
      deserialize: (bytes) => {
        calls.push('deserialize');
        return `read:${JSON.parse(Buffer.from(bytes).toString('utf8')) as string}`;
      },
    };
    const bytes = encodeValue(new CachedValue('abc', { ct: 1, v: VALUE_VERSION }), upper);
    assert.equal((decodeValue(bytes, upper) as CachedValue).payload, 'read:ABC');
    // Even a structured-clone string payload goes to the custom serializer.
    const v8Bytes = encodeValue(new CachedValue('abc', { ct: 1, v: VALUE_VERSION }), v8Serializer);
    const custom: Serializer = { serialize: v8Serializer.serialize, deserialize: (b) => `custom:${String(v8Deserialize(b))}` };
    assert.equal((decodeValue(v8Bytes, custom) as CachedValue).payload, 'custom:abc');
    assert.deepEqual(calls, ['serialize', 'deserialize']);
  });

  it('reads a structured-clone string exactly as node:v8 does, and a broken one as NO_VALUE', () => {
    const envelope = (payload: number[]) =>
      Buffer.concat([
        encodeValue(new CachedValue(0, { ct: 1, v: VALUE_VERSION }), v8Serializer).subarray(0, 18),
        Buffer.from(payload),
      ]);
    const header = [...v8Serialize('').subarray(0, -2)];
    const cases: number[][] = [
      [...header, 0x22, 0x05, 0x61, 0x62], // length beyond the end
      [...header, 0x63, 0x03, 0x61, 0x00, 0x62], // odd UTF-16 byte length
      [...header, 0x22, 0x01, 0x61, 0x62, 0x63], // trailing bytes (node:v8 ignores them)
      [...header, 0x22, 0x81, 0x00, 0x61], // a length in a longer varint than needed
      [...header, 0x00, 0x00, 0x63, 0x02, 0x61, 0x00], // padding before a two-byte string
      [0xff, 0x0d, 0x22, 0x01, 0x61], // an older format version
      [...header, 0x22], // no length
      [...header, 0x22, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], // a length varint too long
    ];
    for (const [i, payload] of cases.entries()) {
      let expected: unknown = NO_VALUE;
      try {
        expected = v8Deserialize(Buffer.from(payload));
      } catch {}
      for (const serializer of [defaultSerializer, v8Serializer]) {
        const got = decodeValue(envelope(payload), serializer);
        assert.equal(got === NO_VALUE ? NO_VALUE : got.payload, expected, `case ${i}`);
      }
    }
    assert.equal(decodeValue(envelope(cases[0] as number[]), defaultSerializer), NO_VALUE);
  });

  it('jsonSerializer for values other languages read', () => {
    assert.deepEqual(roundTrip({ a: [1, 'b'] }, jsonSerializer).payload, { a: [1, 'b'] });
  });
});
