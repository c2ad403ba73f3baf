// The backend-timeout contract, the same for every built-in backend: with `backendTimeout`, no
// call waits longer than that bound for one backend operation while the backend stalls (redis and
// memcached servers stopped with SIGSTOP; the file backend's LMDB write lock held by another
// process; a stalling proxy over the memory backend, whose own calls cannot stall); a read that
// does not answer in time is a miss, a write is skipped, a delete rejects; the event loop keeps
// running; once the backend answers again, so does the region.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  BackendError,
  type CacheBackend,
  type CacheRegion,
  MemoryBackend,
  makeRegion,
  NO_VALUE,
  ProxyBackend,
} from '../../src/index.js';
import { type ServerProcess, startMemcached, startRedis } from '../helpers/servers.js';
import { sleep, until } from '../helpers/time.js';
import { startWorker } from '../helpers/workers.js';

const BOUND_S = 0.15;
const BOUND_MS = BOUND_S * 1000;
/** Scheduling slack on a shared 2-core machine. */
const SLACK_MS = 600;
/** Servers started by the subjects, stopped once the file's tests are done. */
const servers: ServerProcess[] = [];
after(async () => {
  for (const s of servers) await s.stop();
});
const lmdbWriter = fileURLToPath(new URL('../fixtures/lmdb-writer-worker.ts', import.meta.url));

/** A proxy that can be made to stall every operation (never settle). */
class StallingProxy extends ProxyBackend {
  stalled = false;
  private gate<R>(op: () => Promise<R>): Promise<R> {
    return this.stalled ? new Promise<R>(() => {}) : op();
  }
  override get(key: string) {
    return this.gate(() => super.get(key));
  }
  override getMulti(keys: string[]) {
    return this.gate(() => super.getMulti(keys));
  }
  override set(key: string, value: Parameters<CacheBackend['set']>[1]) {
    return this.gate(() => super.set(key, value));
  }
  override delete(key: string) {
    return this.gate(() => super.delete(key));
  }
}

interface Subject {
  region: CacheRegion;
  /** Whether a stalled backend still answers reads (LMDB readers never wait for the writer). */
  readsStall: boolean;
  stall(): Promise<void>;
  resume(): Promise<void>;
}

/** Times `op`; resolves to what it returned (or threw) and its duration. */
async function timed<R>(op: () => Promise<R>): Promise<{ value: R | Error; ms: number }> {
  const t0 = performance.now();
  try {
    const value = await op();
    return { value, ms: performance.now() - t0 };
  } catch (err) {
    return { value: err as Error, ms: performance.now() - t0 };
  }
}

/** The longest delay of a 10 ms interval timer while `during` runs (event-loop blocking). */
async function loopLag<R>(during: () => Promise<R>): Promise<{ result: R; maxLagMs: number }> {
  let last = performance.now();
  let maxLagMs = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxLagMs = Math.max(maxLagMs, now - last - 10);
    last = now;
  }, 10);
  try {
    return { result: await during(), maxLagMs };
  } finally {
    clearInterval(timer);
  }
}

function checkContract(name: string, make: () => Promise<Subject>): void {
  it(`${name}: every call ends within backendTimeout while the backend stalls; reads miss, writes are skipped`, async () => {
    const subject = await make();
    const { region } = subject;
    await region.set('warm', 'w');
    assert.equal(await region.get('warm'), 'w');
    await subject.stall();
    try {
      const { result, maxLagMs } = await loopLag(async () => {
        const get = await timed(() => region.get('warm'));
        const getMulti = await timed(() => region.getMulti(['warm', 'other']));
        const set = await timed(() => region.set('k', 'v'));
        const create = await timed(() => region.getOrCreate('missing', () => 'created'));
        const del = await timed(() => region.delete('k'));
        return { get, getMulti, set, create, del };
      });
      const { get, getMulti, set, create, del } = result;
      if (subject.readsStall) {
        assert.equal(get.value, NO_VALUE, 'a read that does not answer in time is a miss');
        assert.deepEqual(getMulti.value, [NO_VALUE, NO_VALUE]);
      } else {
        assert.equal(get.value, 'w');
      }
      for (const [what, t] of Object.entries({ get, getMulti, set, del })) {
        assert.ok(t.ms < BOUND_MS + SLACK_MS, `${what} took ${t.ms.toFixed(0)} ms (bound ${BOUND_MS} ms)`);
      }
      assert.equal(set.value, undefined, 'a write that does not answer in time is skipped');
      assert.ok(del.value instanceof BackendError, 'a delete that does not answer in time rejects');
      assert.equal(create.value, 'created');
      // read, lock try, write and lock release: each at most one bound.
      assert.ok(create.ms < 4 * BOUND_MS + SLACK_MS, `getOrCreate took ${create.ms.toFixed(0)} ms`);
      assert.ok(maxLagMs < BOUND_MS + SLACK_MS, `the event loop was blocked for ${maxLagMs.toFixed(0)} ms`);
    } finally {
      await subject.resume();
    }
    assert.ok(
      await until(async () => {
        await region.set('after', 'a');
        return (await region.get('after')) === 'a';
      }, 10_000),
      'the region works again once the backend answers',
    );
    // A lock try the bound gave up on may still take the lock once the backend answers: it is
    // released then, not left held (and renewed) by nobody.
    assert.ok(
      await until(
        () =>
          region.keyIsLocked('missing').then(
            (locked) => !locked,
            () => false,
          ),
        10_000,
      ),
      'no lock left held',
    );
    await region.close();
  });
}

/** A subject whose server process is stalled with SIGSTOP and resumed with SIGCONT (stopped after the file's tests). */
async function stoppable(server: ServerProcess, region: CacheRegion): Promise<Subject> {
  servers.push(server);
  await region.ready();
  return {
    region,
    readsStall: true,
    stall: async () => {
      server.child.kill('SIGSTOP');
      await sleep(100); // the signal is delivered asynchronously: let the server stop
    },
    resume: async () => {
      server.child.kill('SIGCONT');
    },
  };
}

describe('backendTimeout: the same contract on every built-in backend', () => {
  checkContract('memory (under a stalling proxy)', async () => {
    const proxy = new StallingProxy();
    const region = makeRegion({ backendTimeout: BOUND_S, onError: () => {} }).configure(new MemoryBackend(), {
      expirationTime: 60,
      wrap: [proxy],
    });
    return {
      region,
      readsStall: true,
      stall: async () => {
        proxy.stalled = true;
      },
      resume: async () => {
        proxy.stalled = false;
      },
    };
  });

  it('memory: its own calls never wait, and its hits stay synchronous under the guard', async () => {
    const region = makeRegion({ backendTimeout: BOUND_S, breaker: { failures: 2, duration: 1 } }).configure('memory', {
      expirationTime: 60,
    });
    await region.set('k', 'v');
    let settled = false;
    void region.get('k').then(() => {
      settled = true;
    });
    await Promise.resolve();
    assert.equal(settled, true, 'a memory hit resolves in the same microtask turn');
  });

  const dir = mkdtempSync(join(tmpdir(), 'dogpile-timeouts-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  checkContract('file (another process holds the LMDB write lock)', async () => {
    const path = join(dir, 'cache');
    const region = makeRegion({ backendTimeout: BOUND_S, onError: () => {} }).configure('file', {
      expirationTime: 60,
      arguments: { path },
    });
    await region.ready();
    let writer: ReturnType<typeof startWorker> | undefined;
    return {
      region,
      readsStall: false,
      stall: async () => {
        writer = startWorker({ LMDB_PATH: path, HOLD_MS: '2500' }, lmdbWriter);
        await writer.waitFor('holding');
      },
      resume: async () => {
        await writer?.done;
      },
    };
  });

  checkContract('redis (server stopped with SIGSTOP)', async () => {
    const server = await startRedis();
    const region = makeRegion({ backendTimeout: BOUND_S, onError: () => {} }).configure('redis', {
      expirationTime: 60,
      arguments: { url: `redis://127.0.0.1:${server.port}`, distributedLock: true },
    });
    return stoppable(server, region);
  });

  checkContract('memcached (server stopped with SIGSTOP)', async () => {
    const server = await startMemcached();
    const region = makeRegion({ backendTimeout: BOUND_S, onError: () => {} }).configure('memcached', {
      expirationTime: 60,
      arguments: { servers: [`127.0.0.1:${server.port}`], distributedLock: true },
    });
    return stoppable(server, region);
  });
});
