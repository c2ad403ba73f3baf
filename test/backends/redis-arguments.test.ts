// The redis backends' arguments as a user reaches them: unknown names rejected by every kind,
// redisOptions passed through to ioredis (and checked for conflicts with the named arguments),
// fractional seconds, a key of another type read as a miss everywhere, and an unreachable server
// named in the error. Against a private redis-server. (Issues 12 and 13.)
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { createRedisBackend, type RedisBackend } from '../../src/backends/redis.js';
import { BackendError, makeRegion, NO_VALUE, ValidationError, v8Serializer } from '../../src/index.js';
import { privateRedis } from '../helpers/redis.js';
import { freePort, startRedis } from '../helpers/servers.js';

const context = { serializer: v8Serializer, regionName: undefined };
const redis = privateRedis();
const url = redis.url;

const rejectsWith = async (kind: string, args: Record<string, unknown>, re: RegExp) => {
  const region = makeRegion().configure(kind, { arguments: args });
  await assert.rejects(region.ready(), (e: unknown) => {
    assert.ok(e instanceof ValidationError, String(e));
    assert.match(e.message, re);
    return true;
  });
};

describe('redis arguments: unknown names', () => {
  it('every redis kind rejects an unknown argument, naming it and listing the allowed ones', async () => {
    await rejectsWith(
      'redis',
      { url: url(), ulr: 'x' },
      /redis backend: unknown argument "ulr" \(did you mean "url"\?\); allowed: url, host/,
    );
    await rejectsWith(
      'redis-sentinel',
      { sentinels: ['127.0.0.1:1'], url: url() },
      /redis-sentinel backend: unknown argument "url"/,
    );
    await rejectsWith(
      'redis-cluster',
      { nodes: ['127.0.0.1:1'], sentinels: [] },
      /redis-cluster backend: unknown argument "sentinels"/,
    );
    await rejectsWith('redis', { URL: url() }, /unknown argument "URL" \(did you mean "url"\?\)/);
  });

  it('the null backend rejects arguments too', async () => {
    // A backend made synchronously rejects at configure() itself.
    assert.throws(
      () => makeRegion().configure('null', { arguments: { max: 1 } as never }),
      (e: unknown) => e instanceof ValidationError && /null backend: unknown argument "max"; allowed: \(none\)/.test(e.message),
    );
    await makeRegion().configure('null', { arguments: {} }).ready();
  });

  it('connection arguments beside an existing client are rejected', async () => {
    const client = new Redis(redis.server.port, '127.0.0.1');
    try {
      await rejectsWith('redis', { client, url: url() }, /url has no effect together with client/);
      await rejectsWith(
        'redis',
        { client, redisOptions: { connectionName: 'x' } },
        /redisOptions has no effect together with client/,
      );
    } finally {
      client.disconnect();
    }
  });
});

describe('redis arguments: redisOptions pass-through', () => {
  it('options reach the ioredis client (connectionName shows in CLIENT LIST, retryStrategy is used)', async () => {
    const name = `dp-${randomUUID().slice(0, 8)}`;
    let retried = false;
    const backend = (await createRedisBackend(
      {
        url: url(),
        redisOptions: {
          connectionName: name,
          enableOfflineQueue: true,
          family: 4,
          retryStrategy: () => {
            retried = true;
            return 50;
          },
        },
      },
      context,
    )) as RedisBackend;
    try {
      await backend.get('k');
      const list = await redis.raw.client('LIST');
      assert.match(String(list), new RegExp(`name=${name}`));
      const options = (backend.client as Redis).options;
      assert.equal(options.connectionName, name);
      assert.equal(options.family, 4);
      assert.equal(options.port, redis.server.port); // named arguments still apply
      assert.equal(typeof options.retryStrategy, 'function');
      assert.equal(retried, false);
    } finally {
      await backend.close();
    }
  });

  it('overrides the backend defaults it is meant to (maxRetriesPerRequest, enableAutoPipelining)', async () => {
    const backend = (await createRedisBackend(
      { url: url(), redisOptions: { maxRetriesPerRequest: 3, enableAutoPipelining: false } },
      context,
    )) as RedisBackend;
    try {
      const options = (backend.client as Redis).options;
      assert.equal(options.maxRetriesPerRequest, 3);
      assert.equal(options.enableAutoPipelining, false);
    } finally {
      await backend.close();
    }
  });

  it('an option a named argument sets is a conflict, named with what to use instead', async () => {
    await rejectsWith(
      'redis',
      { url: url(), redisOptions: { commandTimeout: 100 } },
      /redisOptions\.commandTimeout conflicts with a named argument: use the commandTimeout argument \(seconds\)/,
    );
    await rejectsWith('redis', { redisOptions: { host: 'x' } }, /redisOptions\.host conflicts/);
    await rejectsWith(
      'redis',
      { url: url(), redisOptions: { keyPrefix: 'p:' } },
      /redisOptions\.keyPrefix conflicts.*keyPrefix argument/,
    );
    await rejectsWith(
      'redis-sentinel',
      { sentinels: ['127.0.0.1:1'], redisOptions: { name: 'm' } },
      /redisOptions\.name conflicts/,
    );
    await rejectsWith(
      'redis',
      { url: url(), redisOptions: 'connectionName=x' },
      /redisOptions must be a plain object, got "connectionName=x"/,
    );
    await rejectsWith(
      'redis-cluster',
      { nodes: ['127.0.0.1:1'], clusterOptions: { redisOptions: {} } },
      /clusterOptions\.redisOptions conflicts.*redisOptions argument/,
    );
    await rejectsWith('redis-cluster', { nodes: ['127.0.0.1:1'], clusterOptions: [] }, /clusterOptions must be a plain object/);
  });

  it("the caller's options object is not mutated", async () => {
    const redisOptions = Object.freeze({ connectionName: 'frozen' });
    const backend = await createRedisBackend({ url: url(), redisOptions }, context);
    await backend.close?.();
    assert.deepEqual(redisOptions, { connectionName: 'frozen' });
  });
});

describe('redis arguments: seconds', () => {
  it('fractions are accepted for every time argument', async () => {
    const backend = (await createRedisBackend(
      {
        url: url(),
        redisExpirationTime: 2.5,
        lockTimeout: 1.5,
        lockWaitTimeout: 0.75,
        lockPollInterval: 0.05,
        commandTimeout: 1.25,
        connectTimeout: 0.5,
        distributedLock: true,
        keyPrefix: `frac:${randomUUID()}:`,
      },
      context,
    )) as RedisBackend;
    try {
      const region = makeRegion().configure(backend);
      await region.set('k', 1);
      const pttl = await redis.raw.pttl(`${(backend as unknown as { settings: { prefix: string } }).settings.prefix}k`);
      assert.ok(pttl > 2000 && pttl <= 2500, String(pttl));
      assert.equal((backend.client as Redis).options.commandTimeout, 1250);
    } finally {
      await backend.close();
    }
  });

  it('a timeout no timer can wait (over 24.8 days), NaN or a string is a ValidationError naming it', async () => {
    await rejectsWith(
      'redis',
      { url: url(), commandTimeout: 30 * 86400 },
      /commandTimeout must be a number of seconds > 0 and <= 2147483\.647/,
    );
    await rejectsWith('redis', { url: url(), lockWaitTimeout: Number.NaN }, /lockWaitTimeout .*got NaN/);
    await rejectsWith('redis', { url: url(), lockTimeout: '30' }, /lockTimeout .*got "30"/);
    await rejectsWith('redis', { url: url(), port: 70000 }, /port must be a TCP port/);
  });
});

describe('redis: a key holding another type is a miss (failOpen false)', () => {
  it('get, getValueMetadata, getMulti miss; getOrCreate regenerates and overwrites it', async () => {
    const prefix = `wrongtype:${randomUUID()}:`;
    const region = makeRegion({ failOpen: false }).configure('redis', { arguments: { url: url(), keyPrefix: prefix } });
    await redis.raw.rpush(`${prefix}list`, 'a', 'b');
    await redis.raw.hset(`${prefix}hash`, 'f', 'v');
    assert.equal(await region.get('list'), NO_VALUE);
    assert.equal(await region.getValueMetadata('list'), null);
    assert.deepEqual(await region.getMulti(['list', 'hash']), [NO_VALUE, NO_VALUE]);
    assert.equal(await region.getOrCreate('list', () => 'made'), 'made');
    assert.equal(await redis.raw.type(`${prefix}list`), 'string');
    assert.equal(await region.get('list'), 'made');
    assert.deepEqual(await region.getOrCreateMulti(['hash'], () => ['made-h']), ['made-h']);
    assert.equal(await region.get('hash'), 'made-h');
    await region.close();
  });

  it('with the distributed lock too (the waiter path reads the key)', async () => {
    const prefix = `wrongtype-lock:${randomUUID()}:`;
    const region = makeRegion({ failOpen: false }).configure('redis', {
      arguments: { url: url(), keyPrefix: prefix, distributedLock: true },
    });
    await redis.raw.rpush(`${prefix}k`, 'x');
    const [a, b] = await Promise.all([region.getOrCreate('k', () => 'one'), region.getOrCreate('k', () => 'two')]);
    assert.equal(a, 'one');
    assert.equal(b, 'one');
    await region.close();
  });
});

describe('redis down: the error names the server and the reason', () => {
  it('a stopped server: BackendError with host:port and ECONNREFUSED', async () => {
    const own = await startRedis();
    const region = makeRegion({ failOpen: false }).configure('redis', {
      arguments: { url: `redis://127.0.0.1:${own.port}`, commandTimeout: 0.5, connectTimeout: 0.5 },
    });
    await region.set('k', 1);
    await own.stop();
    await new Promise((r) => setTimeout(r, 300)); // the client notices and fails to reconnect
    await assert.rejects(region.get('k'), (e: unknown) => {
      assert.ok(e instanceof BackendError, String(e));
      assert.match(e.message, new RegExp(`127\\.0\\.0\\.1:${own.port}`));
      assert.match(e.message, /ECONNREFUSED/);
      return true;
    });
    await region.close();
  });

  it('a server that was never there: the same', async () => {
    const port = await freePort();
    const region = makeRegion({ failOpen: false }).configure('redis', {
      arguments: { port, host: '127.0.0.1', commandTimeout: 0.5, connectTimeout: 0.5 },
    });
    await new Promise((r) => setTimeout(r, 200));
    await assert.rejects(region.set('k', 1), (e: unknown) => {
      assert.ok(e instanceof BackendError, String(e));
      assert.match(e.message, new RegExp(`redis SET on 127\\.0\\.0\\.1:${port} failed: .*ECONNREFUSED`));
      return true;
    });
    await region.close();
  });
});
