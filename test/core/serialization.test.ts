import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CachedValue, decodeValue, encodeValue, jsonSerializer, NO_VALUE, VALUE_VERSION, v8Serializer } from '../../src/index.js';

const roundTrip = (payload: unknown, serializer = v8Serializer) => {
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
    for (const s of samples) assert.deepEqual(roundTrip(s).payload, s);
    const buf = roundTrip(Buffer.from([1, 2, 3])).payload;
    assert.ok(Buffer.isBuffer(buf));
    assert.deepEqual([...(buf as Buffer)], [1, 2, 3]);
    const u8 = roundTrip(new Uint8Array([4, 5])).payload;
    assert.ok(u8 instanceof Uint8Array);
    assert.deepEqual([...(u8 as Uint8Array)], [4, 5]);
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
    assert.throws(() => v8Serializer.serialize(() => 1)); // functions cannot even be stored
  });

  it('jsonSerializer for values other languages read', () => {
    assert.deepEqual(roundTrip({ a: [1, 'b'] }, jsonSerializer).payload, { a: [1, 'b'] });
  });
});
