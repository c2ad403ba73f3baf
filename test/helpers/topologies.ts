// Private Redis topologies for tests: a 3-master Redis Cluster and a master watched by one
// Sentinel, on free loopback ports (test/backends/redis-topologies.test.ts and test/tiers/).
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, type ServerProcess, startRedis, startServer } from './servers.js';

/** Starts a 3-master cluster; resolves once every node reports cluster_state:ok. */
export async function startCluster(servers: ServerProcess[]): Promise<{ host: string; port: number }[]> {
  const nodes: { host: string; port: number }[] = [];
  for (let i = 0; i < 3; i++) {
    const busPort = await freePort();
    const node = await startRedis([
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      'nodes.conf',
      '--cluster-port',
      String(busPort),
    ]);
    servers.push(node);
    nodes.push({ host: '127.0.0.1', port: node.port });
  }
  execFileSync(
    'redis-cli',
    ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'],
    { stdio: 'ignore' },
  );
  const deadline = Date.now() + 20_000;
  for (;;) {
    const states = nodes.map((n) => execFileSync('redis-cli', ['-p', String(n.port), 'cluster', 'info'], { encoding: 'utf8' }));
    if (states.every((s) => s.includes('cluster_state:ok'))) return nodes;
    if (Date.now() > deadline) throw new Error('the test cluster did not reach cluster_state:ok');
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Starts a master and one sentinel watching it as `mymaster`; returns both ports. */
export async function startSentinel(servers: ServerProcess[]): Promise<{ masterPort: number; sentinelPort: number }> {
  const master = await startRedis();
  servers.push(master);
  const sentinelPort = await freePort();
  const sentinel = await startServer(
    'redis-server',
    (dir) => {
      const conf = join(dir, 'sentinel.conf');
      writeFileSync(
        conf,
        [
          `port ${sentinelPort}`,
          'bind 127.0.0.1',
          `dir ${dir}`,
          `sentinel monitor mymaster 127.0.0.1 ${master.port} 1`,
          'sentinel down-after-milliseconds mymaster 5000',
          '',
        ].join('\n'),
      );
      return [conf, '--sentinel'];
    },
    sentinelPort,
  );
  servers.push(sentinel);
  return { masterPort: master.port, sentinelPort };
}
