// Fail-safe's in-process fallback copies cover values this process got from another process's
// creation too: a caller that waited for the other creator and then read its value under the lock
// keeps a copy, so when the backend and the creator fail together it is served stale rather than
// failing. (The chaos tests found keys without a copy this way.)
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type CachedValue, ManualClock, makeRegion, ProxyBackend } from '../../src/index.js';
import { sleep } from '../helpers/time.js';

/** A proxy that can be switched to fail every value operation (the cache server went down). */
class Outage extends ProxyBackend {
  down = false;
  override async get(key: string) {
    if (this.down) throw new Error('connection refused');
    return super.get(key);
  }
  override async set(key: string, value: CachedValue) {
    if (this.down) throw new Error('connection refused');
    return super.set(key, value);
  }
}

describe('fail-safe copies of values another process created', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dogpile-fs-copies-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a caller that waited for the other creator keeps a copy to serve when backend and creator both fail', async (t) => {
    const clock = new ManualClock();
    const path = join(dir, 'cache');
    const failSafe = { maxStale: 600, retryAfter: 1 };
    const outage = new Outage();
    const one = makeRegion({ clock, failSafe, onError: () => {} }).configure('file', { expirationTime: 10, arguments: { path } });
    const two = makeRegion({ clock, failSafe, onError: () => {} }).configure('file', {
      expirationTime: 10,
      arguments: { path },
      wrap: [outage],
    });
    t.after(() => Promise.all([one.close(), two.close()]));
    await Promise.all([one.ready(), two.ready()]);
    // `one` creates (slowly, holding the file lock); `two` finds nothing, waits for the lock and
    // then reads `one`'s value under it.
    const creating = one.getOrCreate('k', () => sleep(200).then(() => 'made by one'));
    await sleep(50);
    let twoCalls = 0;
    assert.equal(
      await two.getOrCreate('k', () => {
        twoCalls++;
        return 'made by two';
      }),
      'made by one',
    );
    assert.equal(twoCalls, 0);
    await creating;
    // The cache server and the database go down together, and the value expires.
    outage.down = true;
    clock.advance(11);
    assert.equal(
      await two.getOrCreate('k', () => {
        throw new Error('database down');
      }),
      'made by one',
      'served from the fallback copy',
    );
  });
});
