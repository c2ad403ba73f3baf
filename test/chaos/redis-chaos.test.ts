// Chaos: two processes run a mixed load for 15 s against a private redis-server that is
// SIGKILLed at 4 s and restarted on the same port at 9 s (the "database" is down with it).
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { freePort, type ServerProcess, startServer } from '../helpers/servers.js';
import { runChaos, total } from './chaos.js';

describe('chaos: redis killed and restarted under load', () => {
  const servers: ServerProcess[] = [];
  after(async () => {
    for (const s of servers) await s.stop();
  });

  it('no wrong values, no call over the bound, stale (not errors) during the outage, hits within 2 s of the restart', async () => {
    const port = await freePort();
    const start = async () => {
      servers.push(
        await startServer(
          'redis-server',
          (dir) => ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
          port,
        ),
      );
    };
    await start();
    const reports = await runChaos({
      backend: 'redis',
      args: {
        url: `redis://127.0.0.1:${port}`,
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
      kill: async () => {
        const s = servers[servers.length - 1] as ServerProcess;
        const exited = new Promise((r) => s.child.once('exit', r));
        s.child.kill('SIGKILL');
        await exited;
      },
      restart: start,
    });
    const summary = reports.map((r) => ({
      ops: r.ops,
      maxMs: r.maxMs,
      errors: r.errors,
      stale: r.stale,
      failSafe: r.failSafe,
      firstHit: r.firstBackendHitAfterRestartMs,
      breaker: r.breaker.length,
      samples: r.errorSamples,
    }));
    console.log(JSON.stringify(summary));
    assert.deepEqual(
      reports.flatMap((r) => r.wrong),
      [],
      'wrong values',
    );
    assert.equal(
      total(reports, (r) => r.slow),
      0,
      `calls over 3 s: ${JSON.stringify(summary)}`,
    );
    assert.ok(total(reports, (r) => r.ops) > 1000, 'the load ran');
    assert.equal(
      total(reports, (r) => r.errors.outage),
      0,
      `errors during the outage: ${JSON.stringify(summary)}`,
    );
    assert.ok(total(reports, (r) => r.failSafe.outage) > 0, 'fail-safe served stale values during the outage');
    for (const r of reports) {
      assert.ok(
        r.firstBackendHitAfterRestartMs >= 0 && r.firstBackendHitAfterRestartMs <= 2000,
        `backend hits again within 2 s of the restart: ${r.firstBackendHitAfterRestartMs} ms`,
      );
      assert.ok(
        r.breaker.some((s) => s.endsWith(':open')),
        'the breaker opened during the outage',
      );
    }
  });
});
