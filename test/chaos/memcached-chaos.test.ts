// Chaos: two processes run a mixed load against a private memcached that is SIGKILLed and
// restarted on the same port (shorter than the redis run).
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { freePort, type ServerProcess, startServer } from '../helpers/servers.js';
import { runChaos, total } from './chaos.js';

describe('chaos: memcached killed and restarted under load', () => {
  const servers: ServerProcess[] = [];
  after(async () => {
    for (const s of servers) await s.stop();
  });

  it('no wrong values, no call over the bound, stale during the outage, hits within 2 s of the restart', async () => {
    const port = await freePort();
    const start = async () => {
      servers.push(
        await startServer(
          'memcached',
          () => [
            '-l',
            '127.0.0.1',
            '-p',
            String(port),
            '-U',
            '0',
            '-m',
            '64',
            ...(process.getuid?.() === 0 ? ['-u', 'root'] : []),
          ],
          port,
        ),
      );
    };
    await start();
    const reports = await runChaos({
      backend: 'memcached',
      args: { servers: `127.0.0.1:${port}`, timeout: 0.3, distributedLock: true, lockTimeout: 2, lockWaitTimeout: 1 },
      workers: 2,
      durationMs: 8000,
      outageFrom: 2500,
      outageTo: 5000,
      boundMs: 3000,
      kill: async () => {
        const s = servers[servers.length - 1] as ServerProcess;
        const exited = new Promise((r) => s.child.once('exit', r));
        s.child.kill('SIGKILL');
        await exited;
      },
      restart: start,
    });
    const summary = JSON.stringify(
      reports.map((r) => ({
        ops: r.ops,
        maxMs: r.maxMs,
        errors: r.errors,
        failSafe: r.failSafe,
        firstHit: r.firstBackendHitAfterRestartMs,
      })),
    );
    console.log(summary);
    assert.deepEqual(
      reports.flatMap((r) => r.wrong),
      [],
    );
    assert.equal(
      total(reports, (r) => r.slow),
      0,
      summary,
    );
    assert.equal(
      total(reports, (r) => r.errors.outage),
      0,
      summary,
    );
    assert.ok(total(reports, (r) => r.failSafe.outage) > 0, summary);
    for (const r of reports) {
      assert.ok(r.firstBackendHitAfterRestartMs >= 0 && r.firstBackendHitAfterRestartMs <= 2000, summary);
    }
  });
});
