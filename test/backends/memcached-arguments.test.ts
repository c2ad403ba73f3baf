// The memcached backend's arguments as a user reaches them: fractional seconds, the client
// tunables (connectTimeout, deadRetry, poolSize, keepAlive), unknown names with a suggestion.
// Against private memcached processes. (Issue 12.)
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createConnection, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { createMemcachedBackend, type MemcachedBackend } from '../../src/backends/memcached.js';
import { BackendError, makeRegion, NO_VALUE, ValidationError, v8Serializer } from '../../src/index.js';
import { freePort, type ServerProcess, startMemcached, startServer } from '../helpers/servers.js';
import { sleep } from '../helpers/time.js';

const context = { serializer: v8Serializer, regionName: undefined };
const server = await startMemcached();
const servers: ServerProcess[] = [server];
after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});
const addr = (s: ServerProcess) => `127.0.0.1:${s.port}`;

/** memcached's `curr_connections` statistic, asked over a connection of our own. */
function currentConnections(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let text = '';
    socket.on('data', (d) => {
      text += d.toString();
      if (text.includes('END\r\n')) {
        socket.destroy();
        resolve(Number(/STAT curr_connections (\d+)/.exec(text)?.[1]));
      }
    });
    socket.on('error', reject);
    socket.write('stats\r\n');
  });
}

const rejectsWith = async (args: Record<string, unknown>, re: RegExp) =>
  assert.rejects(createMemcachedBackend(args, context), (e: unknown) => {
    assert.ok(e instanceof ValidationError, String(e));
    assert.match(e.message, re);
    return true;
  });

describe('memcached arguments: names and seconds', () => {
  it('an unknown argument names the nearest real one and lists the allowed ones', async () => {
    await rejectsWith(
      { servers: addr(server), severs: 'x' },
      /memcached backend: unknown argument "severs" \(did you mean "servers"\?\); allowed: servers, memcachedExpireTime/,
    );
    await rejectsWith({ pool_size: 2 }, /unknown argument "pool_size"/);
  });

  it('a fractional memcachedExpireTime is rounded up to whole seconds (never down to "no expiry")', async () => {
    const backend = (await createMemcachedBackend(
      { servers: addr(server), memcachedExpireTime: 0.4, keyPrefix: 'frac:' },
      context,
    )) as MemcachedBackend;
    try {
      const region = makeRegion().configure(backend);
      await region.set('k', 1);
      assert.equal(await region.get('k'), 1);
      await sleep(2100);
      assert.equal(await region.get('k'), NO_VALUE, 'expired after at most 1 s (0.4 rounded up)');
    } finally {
      await backend.close();
    }
  });

  it('a fractional lockTimeout works as a lease', async () => {
    const backend = (await createMemcachedBackend(
      { servers: addr(server), distributedLock: true, lockTimeout: 1.5, lockWaitTimeout: 0.25 },
      context,
    )) as MemcachedBackend;
    try {
      const a = backend.getMutex(`lease:${Date.now()}`);
      assert.ok(a && (await a.acquire(false)));
      await a.release();
    } finally {
      await backend.close();
    }
  });

  it('times no timer can wait, NaN, strings and out-of-range values are ValidationErrors naming them', async () => {
    await rejectsWith({ timeout: 30 * 86400 }, /timeout must be a number of seconds >= 0\.001 and <= 2147483\.647/);
    await rejectsWith({ lockWaitTimeout: Number.NaN }, /lockWaitTimeout/);
    await rejectsWith({ connectTimeout: 0 }, /connectTimeout/);
    await rejectsWith({ deadRetry: -1 }, /deadRetry/);
    await rejectsWith({ keepAlive: '60' }, /keepAlive .*"60"/);
    await rejectsWith({ poolSize: 0 }, /poolSize must be an integer from 1 to 64/);
    await rejectsWith({ poolSize: 1.5 }, /poolSize/);
    await rejectsWith({ lockTimeout: 0.5 }, /lockTimeout must be a number of seconds >= 1/);
  });
});

describe('memcached client tunables', () => {
  it('poolSize opens that many connections to a server, used in turn', async () => {
    const before = await currentConnections(server.port);
    const backend = (await createMemcachedBackend(
      { servers: addr(server), poolSize: 3, keepAlive: 30 },
      context,
    )) as MemcachedBackend;
    try {
      const region = makeRegion({ failOpen: false }).configure(backend);
      await Promise.all(Array.from({ length: 9 }, (_, i) => region.set(`pool:${i}`, i)));
      assert.deepEqual(
        await Promise.all(Array.from({ length: 9 }, (_, i) => region.get(`pool:${i}`))),
        Array.from({ length: 9 }, (_, i) => i),
      );
      assert.equal((await currentConnections(server.port)) - before, 3);
    } finally {
      await backend.close();
    }
  });

  it('deadRetry: a server that refused a connection fails calls at once until deadRetry has passed', async () => {
    const port = await freePort();
    const region = makeRegion({ failOpen: false }).configure('memcached', {
      arguments: { servers: `127.0.0.1:${port}`, deadRetry: 0.6, timeout: 1 },
    });
    await assert.rejects(
      region.get('k'),
      (e: unknown) => e instanceof BackendError && /ECONNREFUSED/.test(String((e.cause as Error)?.message ?? e.message)),
    );
    await assert.rejects(region.get('k'), (e: unknown) => {
      assert.ok(e instanceof BackendError);
      assert.match(
        String((e.cause as Error).message),
        new RegExp(`127\\.0\\.0\\.1:${port} is marked down for another \\d+ ms \\(deadRetry\\) after: .*ECONNREFUSED`),
      );
      return true;
    });
    // The server comes up; within deadRetry calls still fail fast, after it they reach it.
    const late = await startServer(
      'memcached',
      () => ['-l', '127.0.0.1', '-p', String(port), '-U', '0', '-m', '16', ...(process.getuid?.() === 0 ? ['-u', 'root'] : [])],
      port,
    );
    servers.push(late);
    await sleep(650);
    await region.set('k', 'up');
    assert.equal(await region.get('k'), 'up');
    await region.close();
  });

  it('connectTimeout bounds a connect that hangs, separately from the request timeout', async () => {
    // A listener whose process never accepts and whose backlog is full: new SYNs are dropped, so
    // a connect hangs (on loopback, as the tests must stay).
    const child = spawn(
      process.execPath,
      [
        '-e',
        `const s = require('net').createServer();
         s.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
           console.log(s.address().port);
           setTimeout(() => { const end = Date.now() + 30000; while (Date.now() < end) {} }, 10);
         });`,
      ],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    const fillers: Socket[] = [];
    try {
      const port = await new Promise<number>((resolve) => child.stdout?.once('data', (d) => resolve(Number(String(d).trim()))));
      await sleep(100);
      for (let i = 0; i < 4; i++) fillers.push(createConnection({ port, host: '127.0.0.1' }).on('error', () => {}));
      await sleep(300);
      const region = makeRegion({ failOpen: false }).configure('memcached', {
        arguments: { servers: `127.0.0.1:${port}`, timeout: 10, connectTimeout: 0.3 },
      });
      const started = Date.now();
      await assert.rejects(region.get('k'), (e: unknown) => {
        assert.ok(e instanceof BackendError, String(e));
        assert.match(e.message, /connect timed out after 300 ms/);
        return true;
      });
      assert.ok(Date.now() - started < 5000, `failed after ${Date.now() - started} ms, not after connectTimeout`);
      await region.close();
    } finally {
      for (const f of fillers) f.destroy();
      child.kill('SIGKILL');
    }
  });

  it('without deadRetry (the default) every call tries the server again', async () => {
    const port = await freePort();
    const region = makeRegion({ failOpen: false }).configure('memcached', { arguments: { servers: `127.0.0.1:${port}` } });
    for (let i = 0; i < 2; i++) {
      await assert.rejects(
        region.get('k'),
        (e: unknown) => e instanceof BackendError && !/marked down/.test(String((e.cause as Error)?.message)),
      );
    }
    await region.close();
  });
});
