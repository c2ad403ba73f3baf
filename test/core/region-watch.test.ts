// watchRegions / liveRegions: every region made in the process, held weakly.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import { type CacheRegion, makeRegion, ValidationError, watchRegions } from '../../src/index.js';

describe('watchRegions', () => {
  it('tells a watcher of existing regions and of regions made later, until stopped', () => {
    const old = makeRegion({ name: 'watch-old' });
    const seen: CacheRegion[] = [];
    const stop = watchRegions((r) => seen.push(r));
    assert.ok(seen.includes(old), 'an existing region is reported');
    const fresh = makeRegion({ name: 'watch-new' });
    assert.equal(seen[seen.length - 1], fresh, 'a new region is reported when made');
    stop();
    const after = makeRegion({ name: 'watch-after' });
    assert.ok(!seen.includes(after), 'nothing after stop');
  });

  it('skips existing regions with existing: false', () => {
    const old = makeRegion({ name: 'watch-skip' });
    const seen: CacheRegion[] = [];
    const stop = watchRegions((r) => seen.push(r), { existing: false });
    assert.ok(!seen.includes(old));
    const fresh = makeRegion();
    assert.deepEqual(seen, [fresh]);
    stop();
  });

  it('a throwing watcher is reported as a warning and does not stop the region', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    const stop = watchRegions(
      () => {
        throw new Error('boom');
      },
      { existing: false },
    );
    try {
      const r = makeRegion().configure('memory');
      assert.equal(await r.getOrCreate('k', () => 1), 1);
      await tick();
      assert.ok(warnings.some((w) => /a region watcher threw: boom/.test(w.message)));
    } finally {
      stop();
      process.off('warning', onWarning);
    }
  });

  it('rejects bad arguments with a ValidationError naming them', () => {
    assert.throws(() => watchRegions(42 as never), /watchRegions: watcher must be a function/);
    assert.throws(() => watchRegions(() => {}, null as never), /watchRegions: options must be an object/);
    assert.throws(() => watchRegions(() => {}, { existing: 'yes' } as never), /existing must be a boolean/);
    assert.throws(() => watchRegions(() => {}, { exist: true } as never), ValidationError);
  });

  it('does not keep regions alive (checked in a child process with --expose-gc)', () => {
    const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', CHILD], {
      encoding: 'utf8',
    });
    assert.match(out.trim(), /^before 50 after 0 kept 1$/);
  });
});

const CHILD = `
import { liveRegions, makeRegion } from '${new URL('../../src/index.ts', import.meta.url).href}';
const tagged = (r) => r.name === 'weak-test';
(() => { for (let i = 0; i < 50; i++) makeRegion({ name: 'weak-test' }); })();
const kept = makeRegion({ name: 'weak-test' });
const before = liveRegions().filter(tagged).length - 1;
for (let i = 0; i < 10; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 10)); }
console.log('before', before, 'after', liveRegions().filter(tagged).length - 1, 'kept', liveRegions().filter((r) => r === kept).length);
`;
