// The published shape: the built package resolves by name, its entry points load, and importing
// the core loads no optional peer (ioredis, memcached client, lmdb, template engines, express).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';

function ensureBuilt(): void {
  if (!existsSync('dist/src/index.js')) execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
}

describe('package', () => {
  it('`import "dogpile"` loads only the core and lru-cache', () => {
    ensureBuilt();
    const run = spawnSync(
      process.execPath,
      [
        '--import',
        './test/fixtures/trace-register.mjs',
        '--input-type=module',
        '-e',
        "const d = await import('dogpile'); const r = d.makeRegion().configure('memory'); await r.set('a', 1); console.log(await r.get('a'));",
      ],
      { encoding: 'utf8' },
    );
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout.trim(), '1');
    const resolved = run.stderr
      .split('\n')
      .filter((l) => l.startsWith('resolve:'))
      .map((l) => l.slice('resolve:'.length));
    assert.deepEqual([...new Set(resolved)].sort(), ['dogpile', 'lru-cache']);
  });

  it('exports the documented names', async () => {
    ensureBuilt();
    const d = (await import('dogpile')) as Record<string, unknown>;
    for (const name of [
      'makeRegion',
      'CacheRegion',
      'NO_VALUE',
      'CachedValue',
      'BaseBackend',
      'ProxyBackend',
      'registerBackend',
      'sha1MangleKey',
      'lengthConditionalMangler',
      'functionKeyGenerator',
      'kwargFunctionKeyGenerator',
      'DogpileError',
      'RegionNotConfiguredError',
      'RegionAlreadyConfiguredError',
      'PluginNotFoundError',
      'ValidationError',
      'LockTimeoutError',
      'BackendError',
      'CreatorTimeoutError',
      'CircuitOpenError',
    ]) {
      assert.ok(name in d, `dogpile does not export ${name}`);
    }
    const testing = (await import('dogpile/testing')) as Record<string, unknown>;
    assert.equal(typeof testing.backendConformance, 'function');
    const otel = (await import('dogpile/otel')) as Record<string, unknown>;
    assert.equal(typeof otel.instrumentRegion, 'function');
  });
});
