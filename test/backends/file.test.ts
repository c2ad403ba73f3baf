// The file (LMDB) backend: conformance in a temp dir, arguments, the per-key lock (bounded wait,
// lease renewal, takeover), and the lock across processes (stampede, SIGKILLed holder).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { open } from 'lmdb';
import { createFileBackend } from '../../src/backends/file.js';
import {
  CachedValue,
  LockLostError,
  makeRegion,
  NO_VALUE,
  VALUE_VERSION,
  ValidationError,
  v8Serializer,
} from '../../src/index.js';
import { until } from '../helpers/time.js';
import { stampede, startWorker } from '../helpers/workers.js';
import { backendConformance } from './conformance.js';

const context = { serializer: v8Serializer, regionName: undefined };
const dir = mkdtempSync(join(tmpdir(), 'dogpile-file-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const path = join(dir, 'cache');
const args = { path, lockWaitTimeout: 5 };

const writer = await createFileBackend(args, context);
after(() => writer.close());

backendConformance({
  name: 'file',
  makeBackend: () => createFileBackend(args, context),
  writeRaw: async (key, bytes) => {
    await writer.db.put(writer.storeKey(key), Buffer.from(bytes));
  },
  distributedLock: true,
});

const v = (payload: unknown) => new CachedValue(payload, { ct: Date.now(), v: VALUE_VERSION });

describe('file backend', () => {
  it('creates parent directories, for a directory path and for a file path', async () => {
    const nested = join(dir, 'a', 'b', 'c');
    const asFile = join(dir, 'x', 'y', 'cache.mdb');
    for (const p of [nested, asFile]) {
      const b = await createFileBackend({ path: p }, context);
      await b.set('k', v(p));
      const got = await b.get('k');
      assert.ok(got !== NO_VALUE && got.payload === p);
      await b.close();
    }
    assert.ok(existsSync(asFile));
  });

  it('two backend instances on one path see each other, and long keys are stored by hash', async () => {
    const a = await createFileBackend(args, context);
    const b = await createFileBackend(args, context);
    const long = `long:${'z'.repeat(5000)}`;
    await a.set(long, v('long one'));
    const got = await b.get(long);
    assert.ok(got !== NO_VALUE && got.payload === 'long one');
    assert.match(a.storeKey(long), /^dogpile-sha1:[0-9a-f]{40}$/);
    await a.close();
    await b.close();
  });

  it('rejects bad arguments with ValidationError naming them, and never mutates them', async () => {
    const bad: Record<string, unknown>[] = [
      {},
      { path: '' },
      { path: 42 },
      { path, lockTimeout: -1 },
      { path, lockWaitTimeout: 'x' },
      { path, pth: 'typo' },
    ];
    for (const a of bad) {
      const name = Object.keys(a).find((k) => k !== 'path' || Object.keys(a).length === 1) ?? 'path';
      await assert.rejects(
        createFileBackend(a, context),
        (e: unknown) => e instanceof ValidationError && e.message.includes(name),
        JSON.stringify(a),
      );
    }
    const frozen = Object.freeze({ path, lockTimeout: 2 });
    const b = await createFileBackend(frozen, context);
    assert.deepEqual(frozen, { path, lockTimeout: 2 });
    await b.close();
  });

  it('times accept fractions, and a wait no timer can make (over 24.8 days) is a ValidationError', async () => {
    const b = await createFileBackend({ path, lockTimeout: 0.75, lockWaitTimeout: 0.25 }, context);
    const m = b.getMutex?.(`frac:${randomUUID()}`);
    assert.ok(m && (await m.acquire(false)));
    await m.release();
    await b.close();
    await assert.rejects(
      createFileBackend({ path, lockWaitTimeout: 30 * 86400 }, context),
      /lockWaitTimeout must be a number of seconds >= 0 and <= 2147483\.647/,
    );
    await assert.rejects(
      createFileBackend({ path, lockTimeot: 1 }, context),
      /unknown argument "lockTimeot" \(did you mean "lockTimeout"\?\)/,
    );
  });

  it('always has a lock; acquire(true) is bounded by lockWaitTimeout', async () => {
    const b = await createFileBackend({ path, lockWaitTimeout: 0.3 }, context);
    const key = `bounded:${randomUUID()}`;
    const holder = b.getMutex(key);
    const waiter = b.getMutex(key);
    assert.equal(await holder.acquire(false), true);
    const started = Date.now();
    assert.equal(await waiter.acquire(true), false);
    const waited = Date.now() - started;
    assert.ok(waited >= 250 && waited < 1500, `waited ${waited} ms`);
    await holder.release();
    assert.equal(await waiter.acquire(true), true);
    await waiter.release();
    assert.equal(await waiter.locked(), false);
    await b.close();
  });

  it('renews the lease while held; an expired lease is taken over and the old holder is told', async () => {
    const b = await createFileBackend({ path, lockTimeout: 0.6 }, context);
    const key = `lease:${randomUUID()}`;
    const m = b.getMutex(key);
    const other = b.getMutex(key);
    assert.equal(await m.acquire(false), true);
    await new Promise((r) => setTimeout(r, 1400)); // two leases: only renewal keeps it
    assert.equal(await other.acquire(false), false);
    assert.equal(m.signal?.aborted, false);
    await b.unlock(b.storeKey(key), 'nobody'); // not the owner: no effect
    assert.equal(await other.acquire(false), false);
    // Another process steals the record (as if our lease had run out): the renewal notices.
    const root = open({ path });
    const locks = root.openDB<{ token: string; expiresAt: number }, string>({ name: 'dogpile-locks', encoding: 'json' });
    await locks.put(b.storeKey(key), { token: 'thief', expiresAt: Date.now() + 60_000 });
    await until(() => m.signal?.aborted === true, 5000); // the next renewal (every 200 ms) notices
    assert.equal(m.signal?.aborted, true);
    assert.ok(m.signal?.reason instanceof LockLostError, String(m.signal?.reason));
    await m.release(); // no longer the owner: the thief keeps it
    assert.equal(await m.locked(), true);
    await locks.remove(b.storeKey(key));
    assert.equal(await other.acquire(false), true);
    await other.release();
    await b.close();
  });

  it('close() closes the store: later calls fail with BackendError', async () => {
    const b = await createFileBackend({ path: join(dir, 'closing') }, context);
    await b.close();
    await assert.rejects(b.get('k'), /after close/);
  });

  it('is registered as "file"', async () => {
    const region = makeRegion().configure('file', { arguments: { path: join(dir, 'registered') } });
    assert.equal(await region.getOrCreate('k', () => 'made'), 'made');
    assert.equal(await region.get('k'), 'made');
    await region.close();
  });
});

describe('file backend across processes', () => {
  it('4 processes x 50 concurrent getOrCreate of one fresh key run the creator once', async () => {
    const key = `xproc:${randomUUID()}`;
    const reports = await stampede('file', { path: join(dir, 'xproc'), lockWaitTimeout: 20 }, key);
    assert.equal(
      reports.reduce((n, r) => n + r.calls, 0),
      1,
      JSON.stringify(reports),
    );
    assert.equal(new Set(reports.flatMap((r) => r.values)).size, 1, JSON.stringify(reports));
  });

  it('a lock holder SIGKILLed mid-creation is taken over after lockTimeout', async () => {
    const key = `killed:${randomUUID()}`;
    const a = { path: join(dir, 'killed'), lockTimeout: 1, lockWaitTimeout: 10 };
    const holder = startWorker({ BACKEND: 'file', BACKEND_ARGS: JSON.stringify(a), KEY: key, MODE: 'hold' });
    await holder.waitFor('CREATING');
    holder.child.kill('SIGKILL');
    await holder.done.catch(() => {});
    const region = makeRegion().configure('file', { arguments: a });
    const started = Date.now();
    assert.equal(await region.getOrCreate(key, () => 'taken over'), 'taken over');
    const waited = Date.now() - started;
    assert.ok(waited > 200 && waited < 5000, `took ${waited} ms`);
    await region.close();
  });
});
