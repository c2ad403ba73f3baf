// The backend conformance suite on every L1+L2 combination: L1 in front of redis, redis-cluster,
// redis-sentinel (their own pub/sub as the bus), memcached and file (a Redis bus by url). Each runs
// twice: the TieredBackend itself as the backend under test (storage contract, mutex contract),
// and regions configured with `l1` over the plain backend (the region's own L1 path).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { Cluster, Redis } from 'ioredis';
import { createFileBackend } from '../../src/backends/file.js';
import { createMemcachedBackend, MemcachedBackend } from '../../src/backends/memcached.js';
import { createRedisBackend, createRedisClusterBackend, createRedisSentinelBackend } from '../../src/backends/redis.js';
import { type CacheBackend, type L1Options, makeTier, UrlRedisBus, v8Serializer } from '../../src/index.js';
import { backendConformance } from '../backends/conformance.js';
import { type ServerProcess, startMemcached, startRedis } from '../helpers/servers.js';
import { startCluster, startSentinel } from '../helpers/topologies.js';

const context = { serializer: v8Serializer, regionName: undefined };
const servers: ServerProcess[] = [];
const [redis, memcached, clusterNodes, sentinel] = await Promise.all([
  startRedis(),
  startMemcached(['-I', '2m']),
  startCluster(servers),
  startSentinel(servers),
]);
servers.push(redis, memcached);
const dir = mkdtempSync(join(tmpdir(), 'dogpile-tiers-'));
const rawRedis = new Redis(redis.port, '127.0.0.1');
const rawCluster = new Cluster(clusterNodes);
const rawMaster = new Redis(sentinel.masterPort, '127.0.0.1');
const memcachedWriter = new MemcachedBackend({ servers: `127.0.0.1:${memcached.port}` }, context);
const fileArgs = { path: join(dir, 'cache'), lockWaitTimeout: 5 };
const fileWriter = await createFileBackend(fileArgs, context);

const busUrl = `redis://127.0.0.1:${redis.port}`;
// Buses of regions the suite makes (it closes its backends, not its regions): closed at the end.
const buses: UrlRedisBus[] = [];
after(() => Promise.all(buses.map((b) => b.close())));
const l1 = (needsBus: boolean): L1Options => {
  if (!needsBus) return { max: 1000 }; // the backend's own pub/sub
  const bus = new UrlRedisBus(busUrl, 'dogpile:bus:tiers-conformance');
  buses.push(bus);
  return { max: 1000, bus };
};

interface Combination {
  name: string;
  l2: () => Promise<CacheBackend>;
  writeRaw: (key: string, bytes: Uint8Array) => Promise<void>;
  needsBus: boolean;
  skipLargeValue?: boolean;
}

const combinations: Combination[] = [
  {
    name: 'redis',
    l2: () => createRedisBackend({ url: busUrl, distributedLock: true, keyPrefix: 'tiers:' }, context),
    writeRaw: async (key, bytes) => {
      await rawRedis.set(`tiers:${key}`, Buffer.from(bytes));
    },
    needsBus: false,
  },
  {
    name: 'redis-cluster',
    l2: () => createRedisClusterBackend({ nodes: clusterNodes, distributedLock: true }, context),
    writeRaw: async (key, bytes) => {
      await rawCluster.set(key, Buffer.from(bytes));
    },
    needsBus: false,
  },
  {
    name: 'redis-sentinel',
    l2: () => createRedisSentinelBackend({ sentinels: [`127.0.0.1:${sentinel.sentinelPort}`], name: 'mymaster' }, context),
    writeRaw: async (key, bytes) => {
      await rawMaster.set(key, Buffer.from(bytes));
    },
    needsBus: false,
  },
  {
    name: 'memcached',
    l2: () =>
      createMemcachedBackend({ servers: `127.0.0.1:${memcached.port}`, distributedLock: true, lockWaitTimeout: 5 }, context),
    writeRaw: async (key, bytes) => {
      await memcachedWriter.client.store('set', memcachedWriter.wireKey(key), Buffer.from(bytes), 0);
    },
    needsBus: true,
  },
  {
    name: 'file',
    l2: () => createFileBackend(fileArgs, context),
    writeRaw: async (key, bytes) => {
      await fileWriter.db.put(fileWriter.storeKey(key), Buffer.from(bytes));
    },
    needsBus: true,
  },
];

for (const c of combinations) {
  backendConformance({
    name: `L1 + ${c.name} (TieredBackend)`,
    makeBackend: async () => {
      const l2 = await c.l2();
      return makeTier(l2, l2, l1(c.needsBus), 60, 'tiers-conformance');
    },
    writeRaw: c.writeRaw,
    distributedLock: true,
    skipLargeValue: c.skipLargeValue,
  });
  backendConformance({
    name: `L1 + ${c.name} (region l1 option)`,
    makeBackend: c.l2,
    regionOptions: {
      name: 'tiers-conformance',
      get l1() {
        // Read once per region the suite makes, so each has a bus of its own, closed at the end
        // (the suite closes its backends, not its regions; a redis backend's own bus closes with it).
        return l1(c.needsBus);
      },
    },
    writeRaw: c.writeRaw,
    distributedLock: true,
    skipLargeValue: c.skipLargeValue,
  });
}

// Registered last, so it runs after the suites and buses have closed their connections.
after(async () => {
  rawRedis.disconnect();
  rawCluster.disconnect();
  rawMaster.disconnect();
  await memcachedWriter.close();
  await fileWriter.close();
  await Promise.all(servers.map((s) => s.stop()));
  rmSync(dir, { recursive: true, force: true });
});
