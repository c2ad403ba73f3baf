// configureFromConfig on process.env-style input: every argument name converts the same way
// (CACHE_ARGUMENTS_URL -> url, CACHE_ARGUMENTS_MAX -> max, LOCK_TIMEOUT -> lockTimeout), and a key
// the region does not know is an error, never silently ignored. (Issue 12.)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryBackend as Memory, type MemoryBackend, makeRegion, registerBackend, ValidationError } from '../../src/index.js';

let captured: Readonly<Record<string, unknown>> | undefined;
registerBackend('capture-args', (args) => {
  captured = args;
  return new Memory();
});

describe('configureFromConfig: argument names', () => {
  it('one-word environment names become lower case (URL -> url, MAX -> max)', async () => {
    const region = makeRegion().configureFromConfig(
      {
        CACHE_BACKEND: 'capture-args',
        CACHE_ARGUMENTS_URL: 'redis://127.0.0.1:1/2',
        CACHE_ARGUMENTS_MAX: '2',
        CACHE_ARGUMENTS_LOCK_TIMEOUT: '1.5',
        CACHE_ARGUMENTS_REDIS_EXPIRATION_TIME: '600',
        CACHE_ARGUMENTS_REDIS_OPTIONS: '{"connectionName":"web"}',
        HOME: '/root',
      },
      'CACHE_',
    );
    await region.ready();
    assert.deepEqual(captured, {
      url: 'redis://127.0.0.1:1/2',
      max: 2,
      lockTimeout: 1.5,
      redisExpirationTime: 600,
      redisOptions: { connectionName: 'web' },
    });
  });

  it("the README's process.env example reaches the memory backend's max", () => {
    const region = makeRegion().configureFromConfig(
      { CACHE_BACKEND: 'memory', CACHE_EXPIRATION_TIME: '60', CACHE_ARGUMENTS_MAX: '2' },
      'CACHE_',
    );
    assert.equal(region.expirationTime, 60);
    assert.equal((region.actualBackend as MemoryBackend).cache.max, 2);
  });

  it('dotted, snake_case and camelCase names convert the same way', async () => {
    makeRegion().configureFromConfig(
      {
        'cache.backend': 'capture-args',
        'cache.arguments.url': 'u',
        'cache.arguments.lock_timeout': '2',
        'cache.arguments.maxSize': '10',
        'cache.arguments.Key_Prefix': 'p:',
      },
      'cache.',
    );
    assert.deepEqual(captured, { url: 'u', lockTimeout: 2, maxSize: 10, keyPrefix: 'p:' });
  });

  it('two spellings of one argument are an error', () => {
    assert.throws(
      () =>
        makeRegion().configureFromConfig(
          { 'c.backend': 'capture-args', 'c.arguments.lock_timeout': '1', 'c.arguments.lockTimeout': '2' },
          'c.',
        ),
      /sets the argument lockTimeout a second time/,
    );
  });
});

describe('configureFromConfig: unknown keys', () => {
  it('a misspelled key under the prefix is a ValidationError naming it', () => {
    assert.throws(
      () => makeRegion().configureFromConfig({ CACHE_BACKEND: 'memory', CACHE_EXPIRATION_TME: '60' }, 'CACHE_'),
      (err: unknown) =>
        err instanceof ValidationError &&
        /unknown key "CACHE_EXPIRATION_TME"/.test(err.message) &&
        /CACHE_backend/.test(err.message),
    );
  });

  it('an argument the backend does not know is rejected by the backend (memcached)', async () => {
    const region = makeRegion().configureFromConfig(
      { CACHE_BACKEND: 'memcached', CACHE_ARGUMENTS_SERVER: '127.0.0.1:1' },
      'CACHE_',
    );
    await assert.rejects(region.ready(), /unknown argument "server"/);
  });
});
