// The memcached backend against private memcached processes: conformance (one server and a
// two-server ring), key safety, arguments, the distributed lock across processes, and a server
// that dies or hangs mid-run.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { after, describe, it } from 'node:test';
import { createMemcachedBackend, MemcachedBackend } from '../../src/backends/memcached.js';
import {
  BackendError,
  CachedValue,
  LockLostError,
  makeRegion,
  NO_VALUE,
  VALUE_VERSION,
  ValidationError,
  v8Serializer,
} from '../../src/index.js';
import { type ServerProcess, startMemcached } from '../helpers/servers.js';
import { until } from '../helpers/time.js';
import { stampede, startWorker } from '../helpers/workers.js';
import { backendConformance } from './conformance.js';

const context = { serializer: v8Serializer, regionName: undefined };
const [one, two] = await Promise.all([startMemcached(['-I', '2m']), startMemcached(['-I', '2m'])]);
const servers: ServerProcess[] = [one, two];
after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});
const addr = (s: ServerProcess) => `127.0.0.1:${s.port}`;
const args = { servers: addr(one), distributedLock: true, lockWaitTimeout: 5 };
const ring = { servers: [addr(one), addr(two)], distributedLock: true, lockWaitTimeout: 5 };

const rawWriter = (a: Record<string, unknown>) => {
  const writer = new MemcachedBackend(a, context);
  after(() => writer.close());
  return async (key: string, bytes: Uint8Array) => {
    await writer.client.store('set', writer.wireKey(key), Buffer.from(bytes), 0);
  };
};

backendConformance({
  name: 'memcached',
  makeBackend: () => createMemcachedBackend(args, context),
  writeRaw: rawWriter(args),
  distributedLock: true,
});

backendConformance({
  name: 'memcached (two-server ring)',
  makeBackend: () => createMemcachedBackend(ring, context),
  writeRaw: rawWriter(ring),
  distributedLock: true,
});

const v = (payload: unknown) => new CachedValue(payload, { ct: Date.now(), v: VALUE_VERSION });

describe('memcached backend', () => {
  it('spreads keys over both servers of a ring, and each key lives on one', async () => {
    const b = new MemcachedBackend({ servers: ring.servers }, context);
    const solo = [new MemcachedBackend({ servers: addr(one) }, context), new MemcachedBackend({ servers: addr(two) }, context)];
    try {
      const keys = Array.from({ length: 40 }, (_, i) => `ring:${randomUUID()}:${i}`);
      await b.setMulti(new Map(keys.map((k) => [k, v(k)])));
      const onOne = (await solo[0]?.getMulti(keys))?.filter((x) => x !== NO_VALUE).length ?? 0;
      const onTwo = (await solo[1]?.getMulti(keys))?.filter((x) => x !== NO_VALUE).length ?? 0;
      assert.equal(onOne + onTwo, keys.length);
      assert.ok(onOne > 0 && onTwo > 0, `all keys on one server (${onOne}/${onTwo})`);
    } finally {
      b.close();
      for (const s of solo) await s.close();
    }
  });

  it('a key cannot inject a command: "\\r\\nflush_all\\r\\n" leaves other keys intact', async () => {
    const region = makeRegion().configure('memcached', { arguments: { servers: addr(one) } });
    try {
      const other = `victim:${randomUUID()}`;
      await region.set(other, 'still here');
      const evil = `x\r\nflush_all\r\nset y 0 0 1\r\n`;
      await region.set(evil, 'evil value');
      await region.set(`${evil} `, 'evil 2');
      assert.equal(await region.get(evil), 'evil value');
      assert.equal(await region.get(`${evil} `), 'evil 2');
      assert.equal(await region.get(other), 'still here');
    } finally {
      await region.close();
    }
  });

  it('mangles keys the protocol cannot carry into short printable keys', () => {
    const b = new MemcachedBackend({ servers: addr(one), keyPrefix: 'app:' }, context);
    assert.equal(b.wireKey('plain'), 'app:plain');
    for (const key of ['a b', 'tab\t', 'ü', 'x'.repeat(300), 'nl\n']) {
      const wire = b.wireKey(key);
      assert.match(wire, /^app:dogpile-sha1:[0-9a-f]{40}$/);
    }
    assert.notEqual(b.wireKey('a b'), b.wireKey('a  b'));
    b.close();
  });

  it('rejects bad arguments with ValidationError naming them, and never mutates them', async () => {
    const bad: Record<string, unknown>[] = [
      { servers: 'nohost' },
      { servers: [] },
      { servers: 42 },
      { memcachedExpireTime: -1 },
      { lockTimeout: 0 },
      { lockWaitTimeout: 'long' },
      { distributedLock: 'yes' },
      { keyPrefix: 'has space' },
      { timeout: 0 },
      { severs: 'typo:1' },
    ];
    for (const a of bad) {
      const name = Object.keys(a)[0] as string;
      await assert.rejects(
        createMemcachedBackend(a, context),
        (e: unknown) => e instanceof ValidationError && e.message.includes(name),
        name,
      );
    }
    const frozen = Object.freeze({ servers: Object.freeze([addr(one)]), lockTimeout: 3 });
    const b = await createMemcachedBackend(frozen, context);
    assert.deepEqual(frozen, { servers: [addr(one)], lockTimeout: 3 });
    await b.close();
  });

  it('sends expiry above 30 days as an absolute timestamp (the value stays readable)', async () => {
    const b = new MemcachedBackend({ servers: addr(one), memcachedExpireTime: 60 * 60 * 24 * 60 }, context);
    const key = `long:${randomUUID()}`;
    await b.set(key, v('kept'));
    const got = await b.get(key);
    assert.ok(got !== NO_VALUE && got.payload === 'kept');
    await b.close();
  });

  it('without distributedLock there is no mutex', () => {
    const b = new MemcachedBackend({ servers: addr(one) }, context);
    assert.equal(b.getMutex('k'), null);
    b.close();
  });

  it('acquire(true) is bounded by lockWaitTimeout', async () => {
    const b = new MemcachedBackend({ servers: addr(one), distributedLock: true, lockWaitTimeout: 0.3 }, context);
    const key = `bounded:${randomUUID()}`;
    const holder = b.getMutex(key);
    const waiter = b.getMutex(key);
    assert.ok(holder && waiter);
    assert.equal(await holder.acquire(false), true);
    const started = Date.now();
    assert.equal(await waiter.acquire(true), false);
    const waited = Date.now() - started;
    assert.ok(waited >= 250 && waited < 1500, `waited ${waited} ms`);
    await holder.release();
    assert.equal(await waiter.acquire(true), true);
    await waiter.release();
    await b.close();
  });

  it('release leaves a tombstone that counts as free; of 20 concurrent takers exactly one wins', async () => {
    const b = new MemcachedBackend({ servers: addr(one), distributedLock: true }, context);
    const key = `tomb:${randomUUID()}`;
    const first = b.getMutex(key);
    assert.ok(first);
    assert.equal(await first.acquire(false), true);
    await first.release();
    const stored = await b.client.get(b.wireKey(`_lock:${key}`));
    assert.equal(stored?.value.toString(), 'released', 'nothing is deleted: the lock key holds a tombstone');
    assert.equal(await first.locked(), false);
    const takers = Array.from({ length: 20 }, () => b.getMutex(key));
    const won = await Promise.all(takers.map((m) => m?.acquire(false)));
    assert.equal(won.filter(Boolean).length, 1);
    assert.equal(await first.locked(), true);
    await first.release(); // released before: must not touch the new holder's lock
    assert.equal(await first.locked(), true);
    await Promise.all(takers.map((m) => m?.release()));
    assert.equal(await first.locked(), false);
    await b.close();
  });

  it('renews the lease while held, and aborts the signal when the lock is lost', async () => {
    const b = new MemcachedBackend({ servers: addr(one), distributedLock: true, lockTimeout: 1 }, context);
    const key = `lease:${randomUUID()}`;
    const m = b.getMutex(key);
    assert.ok(m);
    assert.equal(await m.acquire(false), true);
    await new Promise((r) => setTimeout(r, 2200)); // two leases: only renewal keeps it
    assert.equal(await m.locked(), true);
    assert.equal(m.signal?.aborted, false);
    await b.client.delete(b.wireKey(`_lock:${key}`)); // simulate losing it
    await until(() => m.signal?.aborted === true, 5000); // the next renewal (every 333 ms) notices
    assert.equal(m.signal?.aborted, true);
    assert.ok(m.signal?.reason instanceof LockLostError, String(m.signal?.reason));
    await m.release();
    await b.close();
  });
});

describe('memcached across processes', () => {
  it('4 processes x 50 concurrent getOrCreate of one fresh key run the creator once', async () => {
    const key = `xproc:${randomUUID()}`;
    const reports = await stampede('memcached', { servers: ring.servers, distributedLock: true, lockWaitTimeout: 20 }, key);
    assert.equal(
      reports.reduce((n, r) => n + r.calls, 0),
      1,
      JSON.stringify(reports),
    );
    const values = new Set(reports.flatMap((r) => r.values));
    assert.equal(values.size, 1, JSON.stringify(reports));
  });

  it('a lock holder SIGKILLed mid-creation is taken over after lockTimeout', async () => {
    const key = `killed:${randomUUID()}`;
    const a = { servers: addr(one), distributedLock: true, lockTimeout: 1, lockWaitTimeout: 10 };
    const holder = startWorker({ BACKEND: 'memcached', BACKEND_ARGS: JSON.stringify(a), KEY: key, MODE: 'hold' });
    await holder.waitFor('CREATING');
    holder.child.kill('SIGKILL');
    await holder.done.catch(() => {});
    const region = makeRegion().configure('memcached', { arguments: a });
    const started = Date.now();
    assert.equal(await region.getOrCreate(key, () => 'taken over'), 'taken over');
    const waited = Date.now() - started;
    assert.ok(waited < 5000, `took ${waited} ms`);
    await region.close();
  });
});

describe('memcached failures', () => {
  it('a stopped server: BackendError with failOpen false, the creator value by default; never hangs', async () => {
    const dying = await startMemcached();
    const a = { servers: `127.0.0.1:${dying.port}`, distributedLock: true, timeout: 0.5, lockWaitTimeout: 1 };
    const strict = makeRegion({ failOpen: false }).configure('memcached', { arguments: a });
    const lenient = makeRegion().configure('memcached', { arguments: a });
    try {
      assert.equal(await strict.getOrCreate(`up:${randomUUID()}`, () => 'ok'), 'ok');
      await dying.stop();
      const started = Date.now();
      await assert.rejects(
        strict.getOrCreate(`down:${randomUUID()}`, () => 'x'),
        BackendError,
      );
      await assert.rejects(strict.get('anything'), BackendError);
      assert.equal(await lenient.getOrCreate(`down:${randomUUID()}`, () => 'from creator'), 'from creator');
      assert.ok(Date.now() - started < 5000);
    } finally {
      await strict.close();
      await lenient.close();
    }
  });

  it('a held lock whose server goes away aborts its signal once a lease has passed without renewal', async () => {
    const dying = await startMemcached();
    const b = new MemcachedBackend(
      { servers: `127.0.0.1:${dying.port}`, distributedLock: true, lockTimeout: 1, timeout: 0.3 },
      context,
    );
    try {
      const m = b.getMutex('held');
      assert.ok(m);
      assert.equal(await m.acquire(false), true);
      await dying.stop();
      await new Promise((r) => setTimeout(r, 1800));
      assert.equal(m.signal?.aborted, true);
      assert.ok(m.signal?.reason instanceof LockLostError, String(m.signal?.reason));
      await m.release(); // no longer held: nothing to do, no error
    } finally {
      await b.close();
    }
  });

  it('a value over the server item limit (1 MB by default) is a BackendError; the connection stays usable', async () => {
    const small = await startMemcached();
    const b = new MemcachedBackend({ servers: `127.0.0.1:${small.port}` }, context);
    try {
      await assert.rejects(b.set('big', v('x'.repeat(1536 * 1024))), BackendError);
      await b.set('small', v('fits'));
      const got = await b.get('small');
      assert.ok(got !== NO_VALUE && got.payload === 'fits');
      const keys = Array.from({ length: 250 }, (_, i) => `many:${i}`);
      await b.setMulti(new Map(keys.map((k) => [k, v(k)])));
      const all = await b.getMulti(keys);
      assert.deepEqual(
        all.map((x) => (x === NO_VALUE ? NO_VALUE : x.payload)),
        keys,
      );
    } finally {
      await b.close();
      await small.stop();
    }
  });

  it('a server that accepts but never answers fails each call after `timeout`', async () => {
    const sockets: import('node:net').Socket[] = [];
    const silent: Server = createServer((s) => {
      sockets.push(s);
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    const strict = makeRegion({ failOpen: false }).configure('memcached', {
      arguments: { servers: `127.0.0.1:${port}`, timeout: 0.3 },
    });
    const lenient = makeRegion().configure('memcached', { arguments: { servers: `127.0.0.1:${port}`, timeout: 0.3 } });
    try {
      const started = Date.now();
      await assert.rejects(strict.get('k'), (e: unknown) => e instanceof BackendError && /no reply/.test(String(e.cause)));
      assert.equal(await lenient.getOrCreate('k', () => 'fallback'), 'fallback');
      assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
    } finally {
      await strict.close();
      await lenient.close();
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });
});
