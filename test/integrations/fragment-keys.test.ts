// Record-keyed fragments (cacheKey, id + updatedAt / version: Russian-doll refresh without
// deletes) and conditional caching (if= / unless=), for every engine.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { TemplateCache } from '../../integrations/templates.js';
import { BaseBackend, type CachedValue, makeRegion, type NoValue, ValidationError } from '../../src/index.js';
import { enginesUnderTest } from './engines.js';
import type { EngineUnderTest } from './suite.js';

const NASTY = `<b>Tom & "Jerry"</b> it's $& $1`;

/** A backend that counts every call and fails the test if used while `forbidden`. */
class CountingBackend extends BaseBackend {
  readonly store = new Map<string, CachedValue>();
  calls = 0;
  async get(key: string): Promise<CachedValue | NoValue> {
    this.calls++;
    return this.store.get(key) ?? (await import('../../src/index.js')).NO_VALUE;
  }
  async set(key: string, value: CachedValue): Promise<void> {
    this.calls++;
    this.store.set(key, value);
  }
  async delete(key: string): Promise<void> {
    this.calls++;
    this.store.delete(key);
  }
}

for (const e of enginesUnderTest) fragmentKeySuite(e);

function fragmentKeySuite(e: EngineUnderTest): void {
  describe(`${e.name}: record keys and conditional caching`, () => {
    const dirs: string[] = [];
    after(() => {
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    });
    const setup = (files: Record<string, string>) => {
      const dir = mkdtempSync(join(tmpdir(), `dogpile-keys-${e.name}-`));
      dirs.push(dir);
      for (const [name, source] of Object.entries(files)) writeFileSync(join(dir, `${name}.${e.ext}`), source);
      const backend = new CountingBackend();
      const region = makeRegion({ failOpen: false }).configure(backend);
      const cache = new TemplateCache({ regions: region });
      const runs = new Map<unknown, number>();
      const r = e.make(dir, cache, {
        count: (v) => {
          runs.set(v, (runs.get(v) ?? 0) + 1);
          return v;
        },
        boom: () => assert.fail('not used'),
      });
      return { ...r, cache, backend, runs, run: (v: string) => runs.get(v) ?? 0 };
    };

    it('nested record-keyed blocks: updating the inner record re-renders it and the outer block, not its sibling', async () => {
      const t = setup({
        page:
          e.block(
            ['"list"', '@list'],
            `<h2>${e.count('list.name')}</h2>` +
              e.block(['"item"', '@a'], `<i>${e.count('a.name')}</i>`) +
              e.block(['"item"', '@b'], `<i>${e.count('b.name')}</i>`),
          ) + `<p>${e.expr('note')}</p>`,
      });
      const ctx = {
        note: NASTY,
        list: { id: 'L', name: `list ${NASTY}`, version: 1 },
        a: { id: 1, name: 'A', updatedAt: new Date(1_000) },
        b: { id: 2, name: 'B', cacheKey: () => 'b-v1' },
      };
      const uncached = await t.render('page', { ...ctx, dogpile: { enabled: false } });
      assert.equal(await t.render('page', ctx), uncached);
      assert.equal(await t.render('page', ctx), uncached);
      assert.deepEqual([t.run(ctx.list.name), t.run('A'), t.run('B')], [2, 2, 2]); // 1 uncached + 1 miss
      // The record changes (and touches its parent, as Rails' `touch: true` does).
      ctx.a = { ...ctx.a, name: 'A2', updatedAt: new Date(2_000) };
      ctx.list = { ...ctx.list, version: 2 };
      const fresh = await t.render('page', ctx);
      assert.match(fresh, /<i>A2<\/i>/);
      assert.deepEqual([t.run(ctx.list.name), t.run('A2'), t.run('B')], [3, 1, 2]); // B: a hit inside the re-render
      assert.equal(fresh, await t.render('page', { ...ctx, dogpile: { enabled: false } }));
    });

    it('a record key changes with updatedAt as a number or string and with version; plain objects encode as before', async () => {
      const t = setup({ page: e.block(['@rec'], e.count('rec.name')) });
      await t.render('page', { rec: { id: 7, name: 'x', updatedAt: 5 } });
      await t.render('page', { rec: { id: 7, name: 'other content, same version', updatedAt: 5 } });
      assert.equal(t.run('x'), 1);
      await t.render('page', { rec: { id: 7, name: 'x', updatedAt: '2026-01-01' } });
      assert.equal(t.run('x'), 2);
      await t.render('page', { rec: { id: 7, name: 'x', version: 5 } }); // version is not updatedAt
      assert.equal(t.run('x'), 3);
      await t.render('page', { rec: { name: 'x', version: 5 } }); // no id: the whole object
      await t.render('page', { rec: { name: 'x', version: 5, more: 1 } });
      assert.equal(t.run('x'), 5);
    });

    it('a cached partial keyed by a record re-renders when the record is updated', async () => {
      const t = setup({
        card: `<li>${e.count('item.name')}</li>`,
        page: e.partial('card', 'p', 'item', 'p'),
      });
      const p = { id: 3, name: NASTY, updatedAt: new Date(10) };
      const first = await t.render('page', { p });
      assert.equal(await t.render('page', { p }), first);
      assert.equal(t.run(NASTY), 1);
      await t.render('page', { p: { ...p, updatedAt: new Date(11) } });
      assert.equal(t.run(NASTY), 2);
    });

    it('a cacheKey that throws or is not a string: a ValidationError naming the template, block and line', async () => {
      const t = setup({ page: `\n\n${e.block(['"k"', '@rec'], 'body')}` });
      await assert.rejects(
        t.render('page', {
          rec: {
            cacheKey() {
              throw new Error('db is gone');
            },
          },
        }),
        (err: Error) =>
          isValidation(err) &&
          /db is gone/.test(err.message) &&
          /page/.test(err.message) &&
          /block b1/.test(err.message) &&
          /line 3/.test(err.message),
      );
      await assert.rejects(
        t.render('page', { rec: { cacheKey: () => 42 } }),
        (err: Error) => isValidation(err) && /cacheKey must be a string/.test(err.message) && /number/.test(err.message),
      );
      await assert.rejects(
        t.render('page', { rec: { id: 1, updatedAt: new Date(Number.NaN) } }),
        (err: Error) => isValidation(err) && /invalid Date/.test(err.message),
      );
    });

    it('if= / unless=: the body renders inline, byte-identical, and the backend is not touched', async () => {
      const t = setup({
        card: `<li>${e.count('item.name')}</li>`,
        page:
          e.block(['"a"', '@user.id'], `<b>${e.count('user.name')}</b>`, { if: 'cacheIt' }) +
          e.block(['"b"'], `<u>${e.count('title')}</u>`, { unless: 'admin' }) +
          e.partial('card', 'user.id', 'item', 'user', { unless: 'admin' }),
      });
      const user = { id: 1, name: NASTY };
      const uncached = await t.render('page', { user, title: NASTY, cacheIt: false, admin: true });
      assert.equal(t.backend.calls, 0);
      assert.equal(t.run(NASTY), 3);
      assert.equal(await t.render('page', { user, title: NASTY, cacheIt: false, admin: true }), uncached);
      assert.equal(t.backend.calls, 0, 'not caching: the backend is untouched');
      assert.equal(t.run(NASTY), 6);
      // Caching now: the first render misses, the second hits; the output is the same bytes.
      assert.equal(await t.render('page', { user, title: NASTY, cacheIt: true, admin: false }), uncached);
      assert.ok(t.backend.calls > 0);
      assert.equal(t.run(NASTY), 9);
      assert.equal(await t.render('page', { user, title: NASTY, cacheIt: 1, admin: 0 }), uncached);
      assert.equal(t.run(NASTY), 9);
    });
  });
}

/** Nunjucks wraps a tag's error in its Template render error, keeping the name and message. */
function isValidation(err: Error): boolean {
  return err instanceof ValidationError || /ValidationError: /.test(err.message);
}

for (const e of enginesUnderTest) {
  describe(`${e.name}: the fragment key API`, () => {
    const dirs: string[] = [];
    after(() => {
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    });
    const setup = (options?: { digest?: boolean }) => {
      const dir = mkdtempSync(join(tmpdir(), `dogpile-fkey-${e.name}-`));
      dirs.push(dir);
      const files = {
        card: `<li>${e.count('item.name')}</li>`,
        page:
          e.block(['"sidebar"', '@user.id'], `<nav>${e.count('user.name')}</nav>`) +
          e.block(['"main"'], `<main>${e.count('title')}</main>`) +
          e.block(['@user.id'], `<footer>${e.count('footer')}</footer>`) +
          e.partial('card', 'item.id', 'item', 'item'),
      };
      for (const [name, source] of Object.entries(files)) writeFileSync(join(dir, `${name}.${e.ext}`), source);
      const cache = new TemplateCache({ regions: makeRegion().configure('memory'), ...options });
      const runs = new Map<unknown, number>();
      const r = e.make(dir, cache, {
        count: (v) => {
          runs.set(v, (runs.get(v) ?? 0) + 1);
          return v;
        },
        boom: () => assert.fail('not used'),
      });
      const ctx = { user: { id: 1, name: 'U' }, title: 'T', footer: 'F', item: { id: 9, name: 'I' } };
      const counts = () => ['U', 'T', 'F', 'I'].map((k) => runs.get(k) ?? 0);
      return { ...r, cache, ctx, counts };
    };

    it('invalidateFragment by block name drops exactly that fragment: the next render re-runs only that block', async () => {
      const t = setup();
      const first = await t.render('page', t.ctx);
      await t.render('page', t.ctx);
      assert.deepEqual(t.counts(), [1, 1, 1, 1]);
      await t.cache.invalidateFragment({ engine: e.name, template: 'page', block: 'sidebar', args: [1] });
      assert.equal(await t.render('page', t.ctx), first);
      assert.deepEqual(t.counts(), [2, 1, 1, 1]);
      // Another user's sidebar is another fragment: invalidating it leaves user 1's alone.
      await t.cache.invalidateFragment({ engine: e.name, template: 'page', block: 'sidebar', args: [2] });
      await t.render('page', t.ctx);
      assert.deepEqual(t.counts(), [2, 1, 1, 1]);
      // By ordinal (all arguments), and a cached partial by its key.
      await t.cache.invalidateFragment({ engine: e.name, template: 'page', block: 'b3', args: [1] });
      await t.cache.invalidateFragment({ engine: e.name, template: 'card', block: 'partial', args: [9] });
      await t.render('page', t.ctx);
      assert.deepEqual(t.counts(), [2, 1, 2, 2]);
    });

    it('fragmentKey is the key the render stored under (the same digest)', async () => {
      const t = setup();
      await t.render('page', t.ctx);
      const key = t.cache.fragmentKey({ engine: e.name, template: 'page', block: 'main' });
      assert.match((await t.cache.get(key)) ?? '', /<main>T<\/main>/);
    });

    it('an unknown template or block is a ValidationError; with digest: false an ordinal works before any render', async () => {
      const t = setup();
      assert.throws(
        () => t.cache.fragmentKey({ engine: e.name, template: 'page', block: 'sidebar', args: [1] }),
        (err: Error) => err instanceof ValidationError && /has been rendered in this process/.test(err.message),
      );
      await t.render('page', t.ctx);
      assert.throws(
        () => t.cache.fragmentKey({ engine: e.name, template: 'page', block: 'nope' }),
        (err: Error) => err instanceof ValidationError && /known blocks: .*sidebar/.test(err.message),
      );
      const u = setup({ digest: false });
      await u.render('page', u.ctx);
      const other = setup({ digest: false });
      const template = e.name === 'handlebars' ? 'page' : `page.${e.ext}`;
      assert.equal(
        other.cache.fragmentKey({ engine: e.name, template, block: 'b2', args: ['main'] }),
        u.cache.fragmentKey({ engine: e.name, template: 'page', block: 'main' }),
      );
    });
  });
}
