// Fail-safe keeps values physically past their expiry: with `failSafe.maxStale`, the TTL that
// redis (`redisExpirationTime`) and memcached (`memcachedExpireTime`) give a value is raised to at
// least expirationTime + maxStale, so the stale value is still there to serve when a
// regeneration fails. Read back from the servers themselves (PTTL; memcached's meta get `t` flag).
import assert from 'node:assert/strict';
import { createConnection } from 'node:net';
import { describe, it } from 'node:test';
import { makeRegion } from '../../src/index.js';
import { privateRedis } from '../helpers/redis.js';
import { startMemcached } from '../helpers/servers.js';

const failSafe = { maxStale: 100, retryAfter: 1 };

describe('fail-safe: physical TTLs cover expirationTime + maxStale', () => {
  const redis = privateRedis();

  it('redis: redisExpirationTime below the minimum is raised to it; without fail-safe it is kept', async () => {
    const args = { url: redis.url(), redisExpirationTime: 20 };
    const safe = makeRegion({ failSafe }).configure('redis', { expirationTime: 10, arguments: { ...args, keyPrefix: 'fs:' } });
    const plain = makeRegion().configure('redis', { expirationTime: 10, arguments: { ...args, keyPrefix: 'plain:' } });
    await safe.set('k', 'v');
    await plain.set('k', 'v');
    const safeTtl = await redis.raw.pttl('fs:k');
    const plainTtl = await redis.raw.pttl('plain:k');
    assert.ok(safeTtl > 100_000 && safeTtl <= 110_000, `fail-safe TTL ${safeTtl} ms (want 10 s + 100 s)`);
    assert.ok(plainTtl > 15_000 && plainTtl <= 20_000, `plain TTL ${plainTtl} ms`);
    await Promise.all([safe.close(), plain.close()]);
  });

  it('memcached: memcachedExpireTime below the minimum is raised to it', async (t) => {
    const server = await startMemcached();
    t.after(() => server.stop());
    const servers = [`127.0.0.1:${server.port}`];
    const safe = makeRegion({ failSafe }).configure('memcached', {
      expirationTime: 10,
      arguments: { servers, memcachedExpireTime: 20, keyPrefix: 'fs:' },
    });
    const plain = makeRegion().configure('memcached', {
      expirationTime: 10,
      arguments: { servers, memcachedExpireTime: 20, keyPrefix: 'plain:' },
    });
    await safe.set('k', 'v');
    await plain.set('k', 'v');
    const safeTtl = await memcachedTtl(server.port, 'fs:k');
    const plainTtl = await memcachedTtl(server.port, 'plain:k');
    assert.ok(safeTtl > 100 && safeTtl <= 110, `fail-safe TTL ${safeTtl} s (want 10 s + 100 s)`);
    assert.ok(plainTtl > 15 && plainTtl <= 20, `plain TTL ${plainTtl} s`);
    await Promise.all([safe.close(), plain.close()]);
  });
});

/** The remaining TTL of `key` in seconds, by memcached's meta get (`mg <key> t` → `HD t<ttl>`). */
function memcachedTtl(port: number, key: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    socket.on('error', reject);
    socket.on('data', (d: Buffer) => {
      reply += d.toString();
      if (!reply.includes('\r\n')) return;
      socket.destroy();
      const ttl = /\bt(-?\d+)/.exec(reply);
      if (ttl) resolve(Number(ttl[1]));
      else reject(new Error(`unexpected reply ${JSON.stringify(reply)}`));
    });
    socket.write(`mg ${key} t\r\n`);
  });
}
