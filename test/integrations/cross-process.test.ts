// Cross-process single flight for template fragments: 4 processes render the same cold page against
// a private redis-server with the distributed lock; the cached block's body runs once in total.
// Skipped when the redis backend or the redis-server binary is not available.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type ServerProcess, startRedis } from '../helpers/servers.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const available = existsSync(join(root, 'src/backends/redis.ts')) && spawnSync('redis-server', ['--version']).status === 0;

describe('templates across processes (redis, distributed lock)', {
  skip: available ? false : 'redis backend or redis-server not available',
}, () => {
  let redis: ServerProcess | undefined;
  let dir = '';
  before(async () => {
    redis = await startRedis();
    dir = mkdtempSync(join(tmpdir(), 'dogpile-xproc-'));
  });
  after(async () => {
    await redis?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('4 processes rendering the same cold page run the block body once', async () => {
    assert.ok(redis);
    writeFileSync(join(dir, 'page.njk'), '<p>{% cache "xproc", user.id %}[{{ work("body") }}]{% endcache %}</p>');
    const countFile = join(dir, 'runs.log');
    writeFileSync(countFile, '');
    const env = {
      ...process.env,
      REDIS_URL: `redis://127.0.0.1:${redis.port}`,
      COUNT_FILE: countFile,
      VIEWS: dir,
      START_AT: String(Date.now() + 2500),
    };
    const worker = join(root, 'test/integrations/fixtures/render-worker.ts');
    const runs = Array.from(
      { length: 4 },
      () =>
        new Promise<string>((resolve, reject) => {
          const child = spawn(process.execPath, ['--import', 'tsx', worker], {
            env,
            cwd: root,
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          let out = '';
          let err = '';
          child.stdout.on('data', (d: Buffer) => {
            out += d.toString();
          });
          child.stderr.on('data', (d: Buffer) => {
            err += d.toString();
          });
          child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`worker exited ${code}: ${err}`))));
        }),
    );
    const outputs = await Promise.all(runs);
    for (const o of outputs) assert.equal(JSON.parse(o), '<p>[body]</p>');
    const lines = readFileSync(countFile, 'utf8').trim().split('\n').filter(Boolean);
    assert.equal(lines.length, 1, `body ran ${lines.length} times: ${lines.join('; ')}`);
  });
});
