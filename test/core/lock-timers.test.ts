// The lock-wait timer never keeps a process alive by itself: a process whose only pending work is a
// caller waiting (up to lockWaitTimeout) on a creation that will never finish exits at once, as
// the README documents. (Issue 12.)
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';

describe('lock-wait timers', () => {
  it('a caller waiting on another creation does not hold the process open for lockWaitTimeout', () => {
    const script = `
      import { makeRegion } from './src/index.ts';
      const region = makeRegion({ lockWaitTimeout: 60 }).configure('memory');
      void region.getOrCreate('k', () => new Promise(() => {})); // a creation that never settles
      void region.getOrCreate('k', () => 1); // waits on it, bounded by a 60 s timer
      console.log('waiting');
    `;
    const started = Date.now();
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(run.stdout.trim(), 'waiting', run.stderr);
    assert.equal(run.status, 0, run.stderr);
    assert.ok(Date.now() - started < 20_000, `the process exited after ${Date.now() - started} ms, not at once`);
  });
});
