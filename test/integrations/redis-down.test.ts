// Backend down, for real: every engine renders a page against a private redis-server, the server is
// stopped, and the page still renders (onError 'render', reported as 'error' events) or fails with
// BackendError (onError 'throw'). Skipped when the redis backend or redis-server is not available.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { TemplateCache } from '../../integrations/templates.js';
import { BackendError, makeRegion } from '../../src/index.js';
import { startRedis } from '../helpers/servers.js';
import { enginesUnderTest } from './engines.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const available = existsSync(join(root, 'src/backends/redis.ts')) && spawnSync('redis-server', ['--version']).status === 0;

describe('templates with redis down', { skip: available ? false : 'redis backend or redis-server not available' }, () => {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  for (const e of enginesUnderTest) {
    it(`${e.name}: renders through the outage, or rejects with BackendError under onError 'throw'`, async () => {
      const dir = mkdtempSync(join(tmpdir(), `dogpile-down-${e.name}-`));
      dirs.push(dir);
      writeFileSync(
        join(dir, `page.${e.ext}`),
        `<h1>${e.expr('title')}</h1>${e.block(['"side"', '@id'], `<p>${e.count('title')}</p>`)}`,
      );
      const redis = await startRedis();
      const region = makeRegion({ failOpen: false }).configure('redis', {
        arguments: { url: `redis://127.0.0.1:${redis.port}`, commandTimeout: 0.5, connectTimeout: 0.5 },
      });
      try {
        let runs = 0;
        const hooks = {
          count: (v: unknown) => {
            runs++;
            return v;
          },
          boom: () => assert.fail('not called'),
        };
        const cache = new TemplateCache({ regions: region });
        const errors: unknown[] = [];
        cache.on('error', (err) => errors.push(err));
        const r = e.make(dir, cache, hooks);
        const ctx = { title: 'A & <B>', id: 1 };
        const expected = await r.render('page', ctx);
        assert.equal(await r.render('page', ctx), expected);
        assert.equal(runs, 1, 'served from redis');

        await redis.stop();
        assert.equal(await r.render('page', { ...ctx, id: 2 }), expected, 'rendered inline while redis is down');
        assert.equal(runs, 2);
        assert.ok(errors.length > 0 && errors.every((x) => x instanceof BackendError));

        const strict = e.make(dir, new TemplateCache({ regions: region, onError: 'throw' }), hooks);
        await assert.rejects(strict.render('page', { ...ctx, id: 3 }), (err: Error) => {
          assert.ok(err instanceof BackendError || /BackendError|redis .* failed/.test(String(err)), String(err));
          return true;
        });
      } finally {
        await redis.stop();
        await region.backend?.close?.().catch(() => {});
      }
    });
  }
});
