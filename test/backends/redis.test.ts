import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { createRedisBackend, RedisBackend } from '../../src/backends/redis.js';
import {
  BackendError,
  type CacheBackend,
  CachedValue,
  encodeValue,
  LockLostError,
  makeRegion,
  NO_VALUE,
  ProxyBackend,
  SharedInvalidationStrategy,
  VALUE_VERSION,
  ValidationError,
  v8Serializer,
} from '../../src/index.js';
import { privateRedis } from '../helpers/redis.js';
import { startRedis } from '../helpers/servers.js';
import { sleep, until } from '../helpers/time.js';
import { stampede, startWorker } from '../helpers/workers.js';
import { backendConformance } from './conformance.js';

const context = { serializer: v8Serializer, regionName: undefined };
const redis = privateRedis();
const url = redis.url;

backendConformance({
  name: 'redis',
  makeBackend: () => createRedisBackend({ url: url(), distributedLock: true, keyPrefix: 'conf:' }, context),
  writeRaw: async (key, bytes) => {
    await redis.raw.set(`conf:${key}`, Buffer.from(bytes));
  },
  distributedLock: true,
});

const waitFor = async (cond: () => boolean, ms = 20_000) => {
  if (!(await until(cond, ms))) throw new Error('timed out waiting');
};

const value = (payload: unknown) => new CachedValue(payload, { ct: Date.now(), v: VALUE_VERSION });

/** A mutex of `backend` for `key` whose acquire(true) has started and is waiting (after 50 ms). */
async function waitOn(backend: RedisBackend, key: string) {
  const waiter = backend.getMutex(key);
  assert.ok(waiter);
  // Ready when the waiter has subscribed and taken its first look at the stored value (a fixed
  // sleep was not enough on a loaded machine: a value stored before that look reads as old).
  const target = backend as unknown as { storedBytes(k: string): Promise<Buffer | null> };
  const original = target.storedBytes;
  let looked!: () => void;
  const ready = new Promise<void>((resolve) => {
    looked = resolve;
  });
  target.storedBytes = async function (this: unknown, k: string) {
    const bytes = await original.call(this, k);
    looked();
    return bytes;
  };
  const waiting = waiter.acquire(true);
  await Promise.race([ready, sleep(5000)]);
  target.storedBytes = original;
  await sleep(5); // and back in its wait
  return { waiter, waiting };
}

/** Two backends on a fresh key: `a` holds its lock, `b` (with `waiterArgs`) waits for it. */
async function heldAndWaiting(name: string, waiterArgs: Record<string, unknown> = {}) {
  const a = (await createRedisBackend({ url: url(), distributedLock: true }, context)) as RedisBackend;
  const b = (await createRedisBackend({ url: url(), distributedLock: true, ...waiterArgs }, context)) as RedisBackend;
  const key = `${name}:${randomUUID()}`;
  const held = a.getMutex(key);
  assert.ok(held && (await held.acquire(false)));
  return { a, b, key, held, ...(await waitOn(b, key)), close: () => Promise.all([a.close(), b.close()]) };
}

describe('redis: across processes', () => {
  it('4 processes x 50 callers on one fresh key run the creator once, and all see the same value', async () => {
    const key = `xproc:${randomUUID()}`;
    const reports = await stampede('redis', { url: url(), distributedLock: true, lockWaitTimeout: 20 }, key);
    assert.equal(reports.length, 4);
    assert.equal(
      reports.reduce((n, r) => n + r.calls, 0),
      1,
    );
    const all = new Set(reports.flatMap((r) => r.values));
    assert.equal(all.size, 1, `values differ: ${[...all].join(', ')}`);
  });

  it('without the distributed lock each process creates (the test can fail)', async () => {
    const key = `xproc-nolock:${randomUUID()}`;
    const reports = await stampede('redis', { url: url(), distributedLock: false }, key);
    assert.ok(reports.reduce((n, r) => n + r.calls, 0) > 1);
  });

  it('a lock holder killed mid-creation frees the lock after lockTimeout; another process takes over', async () => {
    const key = `kill:${randomUUID()}`;
    const args = { url: url(), distributedLock: true, lockTimeout: 1, lockWaitTimeout: 5 };
    const holder = startWorker({ BACKEND: 'redis', BACKEND_ARGS: JSON.stringify(args), KEY: key, MODE: 'hold' });
    await holder.waitFor('CREATING');
    holder.child.kill('SIGKILL');
    await holder.done.catch(() => {});
    const region = makeRegion({ failOpen: false }).configure('redis', { arguments: args });
    const started = Date.now();
    assert.equal(await region.getOrCreate(key, () => 'taken over'), 'taken over');
    assert.ok(Date.now() - started < 5000);
    await region.close();
  });
});

describe('redis: the distributed lock', () => {
  it('1,000 local callers make one lock acquisition', async () => {
    let mutexes = 0;
    class CountMutexes extends ProxyBackend {
      override getMutex(key: string) {
        mutexes++;
        return super.getMutex(key);
      }
    }
    const region = makeRegion().configure('redis', { wrap: [CountMutexes], arguments: { url: url(), distributedLock: true } });
    const key = `local:${randomUUID()}`;
    await Promise.all(
      Array.from({ length: 1000 }, () => region.getOrCreate(key, () => new Promise((r) => setTimeout(() => r('v'), 50)))),
    );
    assert.equal(mutexes, 1);
    await region.close();
  });

  it('a waiter in another process is woken by the release notification, not by a poll step', async () => {
    // A poll step far longer than the bound below: only the notice can wake the waiter in time.
    const { held, waiter, waiting, close } = await heldAndWaiting('wake', { lockPollInterval: 10 });
    const releasedAt = performance.now();
    await held.release();
    assert.equal(await waiting, true);
    const latency = performance.now() - releasedAt;
    assert.ok(latency < 3000, `woken after ${latency.toFixed(1)} ms (poll step is 10 s)`);
    await waiter.release();
    await close();
  });

  it('losing the lease aborts the holder signal; a waiter gives up after lockWaitTimeout', async () => {
    const backend = (await createRedisBackend(
      { url: url(), distributedLock: true, lockTimeout: 0.3, lockWaitTimeout: 0.3 },
      context,
    )) as RedisBackend;
    const key = `lease:${randomUUID()}`;
    const m = backend.getMutex(key);
    assert.ok(m && (await m.acquire(false)));
    await redis.raw.set(`dogpile:lock:${key}`, 'someone-else'); // another holder took it over
    await waitFor(() => m.signal?.aborted === true, 2000);
    assert.ok(m.signal?.reason instanceof LockLostError);
    const other = backend.getMutex(key);
    const started = Date.now();
    assert.equal(await other?.acquire(true), false);
    assert.ok(Date.now() - started >= 250);
    await m.release(); // not ours any more: must not delete someone-else's lock
    assert.equal(await redis.raw.get(`dogpile:lock:${key}`), 'someone-else');
    await backend.close();
  });

  it('a waiter stops waiting (false, without the lock) once a new value lands; an unchanged one does not end the wait', async () => {
    const { a, b, key, held, waiter, waiting, close } = await heldAndWaiting('landed', { lockWaitTimeout: 5 });
    const started = Date.now();
    await a.set(key, value('new'));
    await held.release();
    assert.equal(await waiting, false);
    assert.ok(Date.now() - started < 4000, 'returned before lockWaitTimeout (5 s)');
    assert.equal(await waiter.locked(), false);
    // The value is already there when the wait starts: a release without a new write hands the lock over.
    assert.ok(await held.acquire(false));
    const { waiter: second, waiting: waiting2 } = await waitOn(b, key);
    await held.release();
    assert.equal(await waiting2, true);
    await second.release();
    await close();
  });

  it("the creator's SET frees its lock in the same script, and the notice carries a small value", async () => {
    const { a, b, key, held, waiting, close } = await heldAndWaiting('carry', { lockPollInterval: 30 });
    await a.set(key, value({ small: true }));
    assert.equal(await redis.raw.exists(`dogpile:lock:${key}`), 0, 'the SET released the lock');
    assert.equal(await waiting, false);
    const got = await b.get(key);
    assert.ok(got !== NO_VALUE);
    assert.deepEqual(got.payload, { small: true });
    await held.release(); // already freed by the SET: a no-op
    // A notice that carries a value is used as is, for the very next read only: this one names a
    // value that was never stored, so only the notice can have delivered it.
    assert.ok(await held.acquire(false));
    const lockKey = `dogpile:lock:${key}`;
    const { waiting: waiting2 } = await waitOn(b, key);
    const bytes = encodeValue(value('carried'), v8Serializer);
    const notice = (text: string | Buffer) => redis.raw.publish('dogpile:lock-released-with-value', text);
    await notice('garbage'); // malformed notices are ignored
    await notice(`999:${lockKey}`);
    await notice(Buffer.concat([Buffer.from(`${Buffer.byteLength(lockKey)}:${lockKey}`), Buffer.from('not an envelope')]));
    await sleep(50);
    await notice(Buffer.concat([Buffer.from(`${Buffer.byteLength(lockKey)}:${lockKey}`), bytes]));
    assert.equal(await waiting2, false);
    const carried = await b.get(key);
    assert.ok(carried !== NO_VALUE && carried.payload === 'carried');
    await new Promise((r) => setImmediate(r));
    const stored = await b.get(key);
    assert.ok(stored !== NO_VALUE);
    assert.deepEqual(stored.payload, { small: true }, 'later reads go to Redis');
    await held.release();
    await close();
  });

  it('a release that lands while the waiter reads the value between two waits is heard: it takes no lock and reads no more', async () => {
    const a = (await createRedisBackend({ url: url(), distributedLock: true }, context)) as RedisBackend;
    const b = (await createRedisBackend(
      { url: url(), distributedLock: true, lockPollInterval: 0.05, lockWaitTimeout: 5 },
      context,
    )) as RedisBackend;
    const key = `between:${randomUUID()}`;
    const held = a.getMutex(key);
    assert.ok(held && (await held.acquire(false)));
    // The waiter's GETs of the value: the first is its look before waiting; the second, after its
    // first poll step, finds nothing, and the creator's value and release land before that answer
    // reaches the waiter (so the notice arrives while the waiter is between two waits).
    const client = b.client as unknown as { getBuffer(key: string): Promise<Buffer | null> };
    const getBuffer = client.getBuffer.bind(client);
    let reads = 0;
    client.getBuffer = async (k: string) => {
      const got = await getBuffer(k);
      if (k === key && ++reads === 2) {
        assert.equal(got, null);
        await a.set(key, value('landed between'));
        await sleep(100); // the notice reaches b's subscriber meanwhile
      }
      return got;
    };
    const waiter = b.getMutex(key);
    assert.ok(waiter);
    assert.equal(await waiter.acquire(true), false, 'the notice was heard: no lock taken (a missed one lets SET NX win)');
    assert.equal(reads, 2, 'no GET after the notice: it carried the value');
    const got = await b.get(key);
    assert.ok(got !== NO_VALUE && got.payload === 'landed between');
    assert.equal(await redis.raw.exists(`dogpile:lock:${key}`), 0);
    client.getBuffer = getBuffer;
    await Promise.all([a.close(), b.close()]);
  });

  it("the creator's SET + release is written at once, not held for the next auto-pipelined batch", async () => {
    const a = (await createRedisBackend({ url: url(), distributedLock: true }, context)) as RedisBackend;
    const key = `at-once:${randomUUID()}`;
    const held = a.getMutex(key);
    assert.ok(held && (await held.acquire(false)));
    const stream = (a.client as unknown as { stream: { write(chunk: unknown, ...rest: unknown[]): boolean } }).stream;
    const write = stream.write;
    const written: string[] = [];
    stream.write = function (this: unknown, chunk: unknown, ...rest: unknown[]) {
      written.push(String(chunk));
      return write.call(this, chunk, ...rest);
    };
    const storing = a.set(key, value('now'));
    const sameTick = written.join('');
    stream.write = write;
    assert.match(sameTick, /lock-released-with-value/, 'the script went to the socket in the tick of the set');
    await storing;
    assert.equal(await redis.raw.exists(`dogpile:lock:${key}`), 0);
    // Plain commands keep auto-pipelining (one socket write per tick for many of them).
    written.length = 0;
    stream.write = function (this: unknown, chunk: unknown, ...rest: unknown[]) {
      written.push(String(chunk));
      return write.call(this, chunk, ...rest);
    };
    const reading = a.get(key);
    const readSameTick = written.length;
    stream.write = write;
    assert.equal(readSameTick, 0, 'a GET waits for the batch of its tick');
    assert.ok((await reading) !== NO_VALUE);
    await a.close();
  });

  it('a getMulti goes to the socket in its own tick, unless commands of that tick wait in the auto-pipeline queue', async () => {
    const a = (await createRedisBackend({ url: url(), keyPrefix: 'mget-now:' }, context)) as RedisBackend;
    const keys = Array.from({ length: 20 }, (_, i) => `k${i}:${randomUUID()}`);
    await a.setMulti(new Map(keys.slice(0, 10).map((k) => [k, value(k)])));
    const stream = (a.client as unknown as { stream: { write(chunk: unknown, ...rest: unknown[]): boolean } }).stream;
    const write = stream.write;
    const written: string[] = [];
    const spy = () => {
      written.length = 0;
      stream.write = function (this: unknown, chunk: unknown, ...rest: unknown[]) {
        written.push(String(chunk));
        return write.call(this, chunk, ...rest);
      };
    };
    spy();
    const reading = a.getMulti(keys);
    const sameTick = written.join('');
    stream.write = write;
    assert.match(sameTick, /MGET/i, 'the MGET went to the socket in the tick of the call');
    assert.ok(sameTick.includes(`mget-now:${keys[19]}`), 'with the backend prefix');
    const found = await reading;
    assert.deepEqual(
      found.map((v) => (v === NO_VALUE ? null : v.payload)),
      keys.map((k, i) => (i < 10 ? k : null)),
    );
    // A SET issued first in the same tick is queued for the next batch: the MGET queues behind it
    // (sent at once, it would overtake the SET and miss its value).
    spy();
    const storing = a.set(keys[15] as string, value('late'));
    const after = a.getMulti([keys[15] as string]);
    const queuedTick = written.length;
    stream.write = write;
    assert.equal(queuedTick, 0, 'both wait for the batch of their tick');
    await storing;
    const [late] = await after;
    assert.ok(
      late !== undefined && late !== NO_VALUE && late.payload === 'late',
      'the MGET read the value the SET before it stored',
    );
    await a.close();
  });

  it('a getMulti through a given client applies its own ioredis keyPrefix too', async () => {
    const client = new Redis(redis.server.port, '127.0.0.1', { keyPrefix: 'outer:', enableAutoPipelining: true });
    const region = makeRegion().configure('redis', { arguments: { client, keyPrefix: 'inner:' } });
    await region.set('a', 'one');
    await region.set('b', 'two');
    assert.deepEqual(await region.getMulti(['a', 'missing', 'b']), ['one', NO_VALUE, 'two']);
    assert.ok((await redis.raw.exists('outer:inner:a')) === 1, 'stored under both prefixes');
    await region.close();
    client.disconnect();
  });

  it('one subscriber connection per backend, opened at start and closed by close()', async () => {
    const channel = 'sub-test:dogpile:lock-released-with-value';
    const subscribers = async () => ((await redis.raw.pubsub('NUMSUB', channel)) as [string, number])[1];
    const a = (await createRedisBackend({ url: url(), distributedLock: true, keyPrefix: 'sub-test:' }, context)) as RedisBackend;
    await until(async () => (await subscribers()) >= 1, 5000);
    assert.equal(await subscribers(), 1, 'listening before any wait');
    const waiters = Array.from({ length: 5 }, (_, i) => a.getMutex(`k${i}`));
    await Promise.all(waiters.map((m) => m?.acquire(false)));
    assert.equal(await subscribers(), 1, 'shared by every lock of the backend');
    await Promise.all(waiters.map((m) => m?.release()));
    await a.close();
    await until(async () => (await subscribers()) === 0, 5000);
    assert.equal(await subscribers(), 0);
    // Without distributedLock there is no subscriber at all.
    const b = (await createRedisBackend({ url: url(), keyPrefix: 'sub-test:' }, context)) as RedisBackend;
    await sleep(200);
    assert.equal(await subscribers(), 0);
    await b.close();
  });

  it('a value over 16 KiB is released with a plain notice; the waiter reads it with one GET', async () => {
    const { a, b, key, waiting, close } = await heldAndWaiting('big', { lockPollInterval: 30 });
    const big = Buffer.alloc(100_000, 7);
    const started = Date.now();
    await a.set(key, value(big));
    assert.equal(await waiting, false);
    assert.ok(Date.now() - started < 10_000, 'woken by the notice, not the 30 s poll');
    const got = await b.get(key);
    assert.ok(got !== NO_VALUE && Buffer.from(got.payload as Uint8Array).equals(big));
    await close();
  });

  it('a long creator keeps its lock by renewal', async () => {
    const region = makeRegion().configure('redis', { arguments: { url: url(), distributedLock: true, lockTimeout: 0.6 } });
    const key = `renew:${randomUUID()}`;
    let aborted = false;
    const v = await region.getOrCreate(key, async ({ signal }) => {
      await new Promise((r) => setTimeout(r, 2000)); // more than 3 leases
      aborted = signal?.aborted ?? false;
      return 'done';
    });
    assert.equal(v, 'done');
    assert.equal(aborted, false);
    await region.close();
  });
});

describe('redis: region invalidation shared by every process', () => {
  it('SharedInvalidationStrategy: a hard invalidation by one backend instance reaches another', async () => {
    const make = () =>
      makeRegion().configure('redis', {
        expirationTime: 600,
        arguments: { url: url(), keyPrefix: 'inv:' },
        regionInvalidator: new SharedInvalidationStrategy({ name: 'users', refreshInterval: 0 }),
      });
    const a = make();
    const b = make();
    try {
      await a.set('k', 'old');
      assert.equal(await b.get('k'), 'old');
      await new Promise((r) => setTimeout(r, 5));
      await a.invalidate();
      assert.equal(await b.get('k'), NO_VALUE);
      assert.equal(await b.getOrCreate('k', () => 'new'), 'new');
      assert.equal(await a.get('k'), 'new');
      await a.invalidate({ hard: false });
      assert.equal(await b.get('k', { ignoreExpiration: true }), 'new');
      assert.equal(b.regionInvalidator.wasSoftInvalidated(), true);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

describe('redis: failures and arguments', () => {
  it('server stopped mid-run: BackendError with failOpen false, the creator value with failOpen', async () => {
    const own = await startRedis();
    const args = { url: `redis://127.0.0.1:${own.port}`, commandTimeout: 0.5, connectTimeout: 0.5, distributedLock: true };
    const strict = makeRegion({ failOpen: false }).configure('redis', { arguments: args });
    const lenient = makeRegion({ onError: () => {} }).configure('redis', { arguments: args });
    await strict.set('k', 1);
    await lenient.ready();
    await own.stop();
    const started = Date.now();
    await assert.rejects(
      strict.getOrCreate('k2', () => 'made'),
      BackendError,
    );
    assert.equal(await lenient.getOrCreate('k3', () => 'made'), 'made');
    assert.ok(Date.now() - started < 10_000, 'callers must not hang');
    await Promise.all([strict.close(), lenient.close()]);
  });

  it('keyPrefix and redisExpirationTime are applied', async () => {
    const region = makeRegion().configure('redis', { arguments: { url: url(), keyPrefix: 'app1:', redisExpirationTime: 100 } });
    await region.set('p', 'v');
    const ttl = await redis.raw.pttl('app1:p');
    assert.ok(ttl > 90_000 && ttl <= 100_000, `ttl ${ttl}`);
    await region.close();
  });

  it('warns when redisExpirationTime is not longer than expirationTime, or shorter than lockTimeout', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      const backend = await createRedisBackend(
        { url: url(), redisExpirationTime: 5, distributedLock: true, lockTimeout: 10 },
        { ...context, expirationTime: 60 },
      );
      await backend.close?.();
      await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
    } finally {
      process.off('warning', onWarning);
    }
    assert.ok(
      warnings.some((m) => /redisExpirationTime \(5s\) is not longer than the region's expirationTime \(60s\)/.test(m)),
      warnings.join('; '),
    );
    assert.ok(
      warnings.some((m) => /shorter than lockTimeout \(10s\)/.test(m)),
      warnings.join('; '),
    );
  });

  it('bad arguments are ValidationErrors naming them', async () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ lockTimeout: -1 }, /lockTimeout/],
      [{ port: 'x' }, /port/],
      [{ distributedLock: 'yes' }, /distributedLock/],
      [{ lockPollInterval: 0 }, /lockPollInterval must be a number of seconds > 0 .*got 0/],
      [{ client: {} }, /client/],
    ];
    for (const [args, re] of bad) {
      const region = makeRegion().configure('redis', { arguments: args });
      await assert.rejects(region.ready(), (e: unknown) => e instanceof ValidationError && re.test(e.message));
    }
    const sentinel = makeRegion().configure('redis-sentinel', { arguments: {} });
    await assert.rejects(sentinel.ready(), /sentinels/);
  });

  it('accepts an existing client and leaves it open', async () => {
    const client = new Redis(redis.server.port, '127.0.0.1');
    const region = makeRegion().configure('redis', { arguments: { client } });
    await region.set('c', 1);
    assert.equal(await region.get('c'), 1);
    await region.close();
    assert.equal(await client.ping(), 'PONG');
    client.disconnect();
    const backend: CacheBackend = region.actualBackend;
    assert.ok(backend instanceof RedisBackend);
  });
});
