// The redis-cluster and redis-sentinel backends against real topologies started here: a 3-master
// Redis Cluster and a master watched by one Sentinel, all on free loopback ports (test/helpers/topologies.ts).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Cluster, Redis } from 'ioredis';
import { createRedisClusterBackend, createRedisSentinelBackend, type RedisBackend } from '../../src/backends/redis.js';
import { makeRegion, NO_VALUE, v8Serializer } from '../../src/index.js';
import type { ServerProcess } from '../helpers/servers.js';
import { startCluster, startSentinel } from '../helpers/topologies.js';
import { backendConformance } from './conformance.js';

const context = { serializer: v8Serializer, regionName: undefined };
const servers: ServerProcess[] = [];
const clusterNodes: { host: string; port: number }[] = [];
let sentinelPort = 0;
let rawCluster: Cluster;
let rawMaster: Redis;

async function startTopologies(): Promise<void> {
  const [nodes, sentinel] = await Promise.all([startCluster(servers), startSentinel(servers)]);
  clusterNodes.push(...nodes);
  rawCluster = new Cluster(clusterNodes);
  sentinelPort = sentinel.sentinelPort;
  rawMaster = new Redis(sentinel.masterPort, '127.0.0.1');
}

before(async () => {
  await startTopologies();
});
after(async () => {
  rawCluster?.disconnect();
  rawMaster?.disconnect();
  await Promise.all(servers.map((s) => s.stop()));
});

backendConformance({
  name: 'redis-cluster',
  makeBackend: () => createRedisClusterBackend({ nodes: clusterNodes, distributedLock: true }, context),
  writeRaw: async (key, bytes) => {
    await rawCluster.set(key, Buffer.from(bytes));
  },
  distributedLock: true,
});

backendConformance({
  name: 'redis-sentinel',
  makeBackend: () => createRedisSentinelBackend({ sentinels: [`127.0.0.1:${sentinelPort}`], name: 'mymaster' }, context),
  writeRaw: async (key, bytes) => {
    await rawMaster.set(key, Buffer.from(bytes));
  },
  distributedLock: true,
});

describe('redis-cluster specifics', () => {
  it('multi-key operations span hash slots on every master', async () => {
    const region = makeRegion({ failOpen: false }).configure('redis-cluster', { arguments: { nodes: clusterNodes } });
    try {
      const keys = Array.from({ length: 60 }, (_, i) => `slots:${randomUUID()}:${i}`);
      await region.setMulti(Object.fromEntries(keys.map((k, i) => [k, i])));
      assert.deepEqual(
        await region.getMulti(keys),
        keys.map((_, i) => i),
      );
      const perNode = await Promise.all(rawCluster.nodes('master').map((n) => n.dbsize()));
      assert.equal(perNode.length, 3);
      assert.ok(
        perNode.every((n) => n > 0),
        `keys on each master: ${perNode.join(', ')}`,
      );
      await region.deleteMulti(keys);
      assert.ok((await region.getMulti(keys)).every((v) => typeof v === 'symbol'));
      let calls = 0;
      const made = await region.getOrCreateMulti(keys.slice(0, 10), async (...ks) => {
        calls++;
        return ks.map((k) => `made:${k}`);
      });
      assert.equal(calls, 1);
      assert.equal(made[3], `made:${keys[3]}`);
    } finally {
      await region.close();
    }
  });
});

describe('redis-cluster: pass-through options and a key of another type', () => {
  it('clusterOptions reach the Cluster client, redisOptions each node connection', async () => {
    const name = `dp-cluster-${randomUUID().slice(0, 8)}`;
    const backend = (await createRedisClusterBackend(
      {
        nodes: clusterNodes,
        clusterOptions: { scaleReads: 'master', maxRedirections: 5 },
        redisOptions: { connectionName: name },
      },
      context,
    )) as RedisBackend;
    try {
      const cluster = backend.client as Cluster;
      assert.equal(cluster.options.scaleReads, 'master');
      assert.equal(cluster.options.maxRedirections, 5);
      assert.equal(cluster.options.enableAutoPipelining, true); // the backend's default stays
      const region = makeRegion({ failOpen: false }).configure(backend);
      await region.set(`k:${randomUUID()}`, 1);
      const lists = await Promise.all(
        clusterNodes.map((n) => execFileSync('redis-cli', ['-p', String(n.port), 'client', 'list'], { encoding: 'utf8' })),
      );
      assert.ok(
        lists.some((l) => l.includes(`name=${name}`)),
        'a node connection carries the connectionName',
      );
    } finally {
      await backend.close();
    }
  });

  it('getMulti on a cluster reads a key of another type as a miss (failOpen false)', async () => {
    const key = `list:${randomUUID()}`;
    await rawCluster.rpush(key, 'x');
    const region = makeRegion({ failOpen: false }).configure('redis-cluster', { arguments: { nodes: clusterNodes } });
    try {
      assert.deepEqual(await region.getMulti([key]), [NO_VALUE]);
      assert.equal(await region.getOrCreate(key, () => 'made'), 'made');
    } finally {
      await region.close();
    }
  });
});

describe('redis-sentinel specifics', () => {
  it('finds the master through the sentinel and locks by default', async () => {
    const backend = (await createRedisSentinelBackend(
      { sentinels: [{ host: '127.0.0.1', port: sentinelPort }] },
      context,
    )) as RedisBackend;
    try {
      assert.ok(backend.getMutex('k'), 'sentinel backends use the distributed lock by default');
      const region = makeRegion({ failOpen: false }).configure(backend);
      await region.set('via-sentinel', 'yes');
      assert.ok(await rawMaster.exists('via-sentinel'));
    } finally {
      await backend.close();
    }
  });
});
