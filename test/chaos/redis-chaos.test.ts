// Chaos: two processes run a mixed load for 15 s against a private redis-server that is
// SIGKILLed at 4 s and restarted on the same port at 9 s (the "database" is down with it).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startRedis } from '../helpers/servers.js';
import { assertChaosFigures, killableServer, runChaos } from './chaos.js';

describe('chaos: redis killed and restarted under load', () => {
  it('no wrong values, no call over the bound, stale (not errors) during the outage, hits within 2 s of the restart', async (t) => {
    const server = await killableServer((port) => startRedis([], port));
    t.after(() => server.stop());
    const reports = await runChaos({
      backend: 'redis',
      args: {
        url: `redis://127.0.0.1:${server.port}`,
        commandTimeout: 0.3,
        connectTimeout: 0.3,
        distributedLock: true,
        lockTimeout: 2,
        lockWaitTimeout: 1,
      },
      workers: 2,
      durationMs: 15_000,
      outageFrom: 4000,
      outageTo: 9000,
      boundMs: 3000,
      kill: server.kill,
      restart: server.restart,
    });
    assertChaosFigures(reports);
    for (const r of reports) {
      assert.ok(
        r.breaker.some((s) => s.endsWith(':open')),
        'the breaker opened during the outage',
      );
    }
  });
});
