// Bad input is a ValidationError at the call, naming the option and the value: misspelled option
// names, setMulti with a non-record, a shouldCacheFn that is not a function, a key mangler that
// returns no string, lengthConditionalMangler with a non-function. (Issue 12.)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { lengthConditionalMangler, makeRegion, NO_VALUE, ValidationError } from '../../src/index.js';

const memory = () => makeRegion().configure('memory', { expirationTime: 60 });

describe('misspelled option names', () => {
  it('makeRegion rejects an unknown option, naming it and the nearest real one', () => {
    assert.throws(
      () => makeRegion({ keyManglr: (k: string) => k } as never),
      (err: unknown) =>
        err instanceof ValidationError &&
        /unknown option "keyManglr"/.test(err.message) &&
        /did you mean "keyMangler"/.test(err.message) &&
        /allowed: name, /.test(err.message),
    );
  });

  it('configure rejects an unknown option (a misspelled expirationTime would never expire)', () => {
    assert.throws(
      () => makeRegion().configure('memory', { expirationTme: 5 } as never),
      (err: unknown) =>
        err instanceof ValidationError && /"expirationTme"/.test(err.message) && /"expirationTime"/.test(err.message),
    );
  });

  it('the documented options and the second-round names are all accepted', () => {
    makeRegion({
      name: 'x',
      lockWaitTimeout: 1.5,
      failOpen: true,
      backgroundRefresh: false,
    }).configure('memory', { expirationTime: 0.25, arguments: {}, wrap: [], replaceExistingBackend: false });
  });

  it('cacheOnArguments and cacheMultiOnArguments reject an unknown option', () => {
    const region = memory();
    assert.throws(
      () => region.cacheOnArguments({ namspace: 'v2' } as never),
      (err: unknown) =>
        err instanceof ValidationError &&
        /cacheOnArguments: unknown option "namspace" \(did you mean "namespace"\?\)/.test(err.message),
    );
    assert.throws(
      () => region.cacheMultiOnArguments({ asdict: true } as never),
      /unknown option "asdict" \(did you mean "asDict"\?\)/,
    );
    assert.throws(() => region.cacheOnArguments({ asDict: true } as never), /unknown option "asDict"/);
  });

  it('wrap must be an array', () => {
    assert.throws(() => makeRegion().configure('memory', { wrap: 'x' as never }), /wrap must be an array.*"x"/);
  });
});

describe('setMulti input', () => {
  it('a string, a number, an array or null is a ValidationError, and nothing is stored', async () => {
    const region = memory();
    for (const bad of ['abc', 42, ['a', 'b'], null, new Set(['a'])]) {
      await assert.rejects(region.setMulti(bad as never), (err: unknown) => {
        assert.ok(err instanceof ValidationError, String(err));
        assert.match(err.message, /setMulti: entries must be a plain object or a Map/);
        return true;
      });
    }
    assert.equal(await region.get('0'), NO_VALUE);
  });

  it('records (also without a prototype) and Maps still work', async () => {
    const region = memory();
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1 });
    await region.setMulti(bare);
    await region.setMulti(new Map([['b', 2]]));
    assert.deepEqual(await region.getMulti(['a', 'b']), [1, 2]);
  });
});

describe('shouldCacheFn that is not a function', () => {
  it('getOrCreate rejects before the creator runs', async () => {
    const region = memory();
    let calls = 0;
    await assert.rejects(
      region.getOrCreate(
        'k',
        () => {
          calls++;
          return 1;
        },
        { shouldCacheFn: true as never },
      ),
      (err: unknown) => err instanceof ValidationError && /shouldCacheFn must be a function, got true/.test(err.message),
    );
    assert.equal(calls, 0);
  });

  it('getOrCreateMulti rejects before the creator runs', async () => {
    const region = memory();
    let calls = 0;
    await assert.rejects(
      region.getOrCreateMulti(
        ['a'],
        (...keys) => {
          calls++;
          return keys;
        },
        { shouldCacheFn: 'yes' as never },
      ),
      /shouldCacheFn must be a function, got "yes"/,
    );
    assert.equal(calls, 0);
  });

  it('cacheOnArguments rejects it when wrapping', () => {
    assert.throws(() => memory().cacheOnArguments({ shouldCacheFn: true as never }), /shouldCacheFn must be a function/);
  });
});

describe('key manglers', () => {
  it('a mangler returning a non-string is a ValidationError naming the key, and nothing is shared', async () => {
    const region = makeRegion({ keyMangler: (() => undefined) as never }).configure('memory');
    const named = (key: string) => (err: unknown) =>
      err instanceof ValidationError && err.message.includes(`for key "${key}"`) && /returned undefined/.test(err.message);
    await assert.rejects(region.set('alice', 1), named('alice'));
    await assert.rejects(region.get('bob'), named('bob'));
    await assert.rejects(
      region.getOrCreate('carol', () => 3),
      named('carol'),
    );
    await assert.rejects(region.getMulti(['dave']), named('dave'));
    await assert.rejects(
      region.getOrCreateMulti(['erin'], (...k) => k),
      named('erin'),
    );
  });

  it('lengthConditionalMangler checks its mangler at the call', () => {
    assert.throws(
      () => lengthConditionalMangler(10, 'nope' as never),
      (err: unknown) => err instanceof ValidationError && /mangler must be a function.*"nope"/.test(err.message),
    );
  });
});

describe('seconds options', () => {
  it('region lockWaitTimeout accepts fractions and rejects what a timer cannot wait', () => {
    makeRegion({ lockWaitTimeout: 0.05 });
    assert.throws(() => makeRegion({ lockWaitTimeout: 1e9 }), /lockWaitTimeout/);
    assert.throws(() => makeRegion({ lockWaitTimeout: Number.NaN }), /lockWaitTimeout/);
  });

  it('configure and per-call expirationTime accept fractions', async () => {
    const region = makeRegion().configure('memory', { expirationTime: 0.05 });
    await region.set('a', 1);
    assert.equal(await region.get('a'), 1);
    await new Promise((r) => setTimeout(r, 120));
    assert.equal(await region.get('a'), NO_VALUE);
    assert.equal(await region.getOrCreate('b', () => 2, { expirationTime: 0.5 }), 2);
  });
});
