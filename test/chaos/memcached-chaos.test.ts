// Chaos: two processes run a mixed load against a private memcached that is SIGKILLed and
// restarted on the same port (shorter than the redis run).
import { describe, it } from 'node:test';
import { startMemcached } from '../helpers/servers.js';
import { assertChaosFigures, killableServer, runChaos } from './chaos.js';

describe('chaos: memcached killed and restarted under load', () => {
  it('no wrong values, no call over the bound, stale during the outage, hits within 2 s of the restart', async (t) => {
    const server = await killableServer((port) => startMemcached([], port));
    t.after(() => server.stop());
    const reports = await runChaos({
      backend: 'memcached',
      args: { servers: `127.0.0.1:${server.port}`, timeout: 0.3, distributedLock: true, lockTimeout: 2, lockWaitTimeout: 1 },
      workers: 2,
      durationMs: 8000,
      outageFrom: 2500,
      outageTo: 5000,
      boundMs: 3000,
      kill: server.kill,
      restart: server.restart,
    });
    assertChaosFigures(reports);
  });
});
