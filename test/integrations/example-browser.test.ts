// The example site in a real headless browser: Debian's chromium driven by playwright-core (no
// browser download: `executablePath` points at the system binary). For each engine: load the list
// page, click one card's "Bump version" button, and check that the page then shows the bumped card
// (new version, marked as the one miss in the stats panel) while the other cards are the cached
// copies; a screenshot of each page goes to a temp dir. Skipped only when no chromium binary exists
// (`npm test` installs it on Debian as root: scripts/ensure-servers.mjs, .ci/run).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type BrowserContext, chromium } from 'playwright-core';
import { createApp } from '../../examples/express/app.js';
import { makeRegion } from '../../src/index.js';

/** The system chromium: /usr/bin/chromium (Debian), else `chromium` / `chromium-browser` on PATH. */
function findChromium(): string | undefined {
  if (existsSync('/usr/bin/chromium')) return '/usr/bin/chromium';
  for (const name of ['chromium', 'chromium-browser']) {
    const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
    if (found.status === 0 && found.stdout.trim()) return found.stdout.trim();
  }
  return undefined;
}

const executablePath = findChromium();
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

describe('example site in headless chromium', { skip: executablePath === undefined && 'no chromium binary installed' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'dogpile-browser-'));
  let browser: BrowserContext;
  before(async () => {
    // A fresh profile in the temp dir; nothing is downloaded or shared with another run.
    browser = await chromium.launchPersistentContext(join(dir, 'profile'), {
      executablePath: executablePath as string,
      headless: true,
      args: ARGS,
      viewport: { width: 1280, height: 900 },
    });
  });
  after(async () => {
    await browser?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const engine of ['nunjucks', 'eta', 'handlebars'] as const) {
    it(`${engine}: click "Bump version", see the bumped card and the stats panel, take a screenshot`, async () => {
      const site = createApp({ engine, region: makeRegion({ name: 'pages' }).configure('memory'), slowMs: 1 });
      const server = site.app.listen(0, '127.0.0.1');
      await new Promise<void>((resolve) => server.once('listening', resolve));
      const page = await browser.newPage();
      try {
        const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
        await page.goto(`${base}/`);
        assert.equal(await page.locator('li.card').count(), 6);
        assert.equal(await page.locator('#p1 h2').textContent(), 'Salt & "Pepper" <grinder>');
        // The stylesheet loaded and applies (the cards sit in a grid).
        assert.equal(
          await page.locator('ul.cards').evaluate((el) => el.ownerDocument.defaultView?.getComputedStyle(el).display),
          'grid',
        );
        const lookedUp = async (id: number) => page.locator(`#p${id} .reviews`).textContent();
        const before = { p2: await lookedUp(2), p3: await lookedUp(3) };

        await page.locator('#p3 button').click();
        await page.waitForURL(/\?bumped=3/);
        assert.match((await page.locator('.notice').textContent()) ?? '', /You bumped Sourdough loaf to version 2/);
        assert.equal((await page.locator('#p3 .version').textContent())?.trim(), 'version 2');
        assert.notEqual(await lookedUp(3), before.p3, 'the bumped card was rendered again');
        assert.equal(await lookedUp(2), before.p2, 'the other cards are the cached copies');
        const stat = async (name: string) => (await page.locator(`#stats [data-stat="${name}"]`).textContent())?.trim();
        assert.equal(await stat('page-misses'), '1');
        assert.equal(await stat('page-hits'), '6');
        assert.match((await page.locator('#stats .keys code').first().textContent()) ?? '', /rec\(3#2\)/);
        assert.ok(await page.locator('#stats').isVisible());

        const shot = join(dir, `example-${engine}.png`);
        await page.screenshot({ path: shot, fullPage: true });
        assert.ok(statSync(shot).size > 10_000, 'a screenshot of the page');
      } finally {
        await page.close();
        server.close();
      }
    });
  }
});
