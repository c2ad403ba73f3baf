// Chaos: a process that holds a file-backend lock is SIGKILLed while another process runs a mixed
// load over the same store; the load never sees a wrong value or an unbounded wait, and the
// dead holder's key is created once its lease runs out.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { startWorker, type Worker } from '../helpers/workers.js';
import { chaosWorkerFile, runChaos } from './chaos.js';

describe('chaos: file backend, a lock holder SIGKILLed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dogpile-file-chaos-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('the load stays correct and bounded, and the held key is created after the lease', async () => {
    const args = { path: join(dir, 'store'), lockTimeout: 1, lockWaitTimeout: 4 };
    let holder: Worker | undefined;
    const killAt = 1000;
    const reports = await runChaos({
      backend: 'file',
      args,
      workers: 1,
      durationMs: 5000,
      outageFrom: killAt,
      outageTo: killAt,
      boundMs: 6000,
      env: { OUTAGE_FROM: '1e12', OUTAGE_TO: '1e12', WATCH_KEY: 'k99', LOCK_WAIT: '5', KEYS: '100' },
      beforeStart: async () => {
        holder = startWorker(
          { BACKEND: 'file', BACKEND_ARGS: JSON.stringify(args), WATCH_KEY: 'k99', MODE: 'hold', LOCK_WAIT: '30' },
          chaosWorkerFile,
        );
        await holder.waitFor('CREATING');
      },
      kill: async () => {
        const child = (holder as Worker).child;
        assert.equal(child.exitCode, null, 'the holder is still alive, holding the lock');
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await exited;
      },
      restart: async () => {},
    });
    const [r] = reports;
    assert.ok(r);
    const summary = JSON.stringify({
      ops: r.ops,
      maxMs: r.maxMs,
      errors: r.errors,
      watch: r.watchCreatedAt,
      samples: r.errorSamples,
    });
    console.log(summary);
    assert.deepEqual(r.wrong, []);
    assert.equal(r.slow, 0, summary);
    assert.equal(r.errors.before, 0, summary);
    assert.ok(r.ops > 1000, summary);
    const first = r.watchCreatedAt[0];
    assert.ok(
      first !== undefined && first >= killAt - 100 && first <= killAt + 2500,
      `held key created after the lease: ${summary}`,
    );
  });
});
