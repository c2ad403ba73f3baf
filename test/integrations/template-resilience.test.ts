// Templates inherit the region's resilience: a failing block body serves the last good fragment
// (fail-safe), and region events carry the fragment's template and block.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import nunjucks from 'nunjucks';
import { installNunjucks } from '../../integrations/nunjucks.js';
import { type KeyEvent, ManualClock, makeRegion } from '../../src/index.js';

function setup(options: Parameters<typeof makeRegion>[0] = {}) {
  const clock = new ManualClock();
  const region = makeRegion({ clock, ...options }).configure('memory', { expirationTime: 10 });
  const env = new nunjucks.Environment(new nunjucks.FileSystemLoader([]), { autoescape: true });
  let failing = false;
  let runs = 0;
  env.addGlobal('load', (v: unknown) => {
    runs++;
    if (failing) throw new Error('db down');
    return v;
  });
  installNunjucks(env, { regions: region });
  const render = (src: string, ctx: object) =>
    new Promise<string>((res, rej) => env.renderString(src, ctx, (e, h) => (e ? rej(e) : res(h ?? ''))));
  return {
    region,
    clock,
    render,
    fail: (v: boolean) => {
      failing = v;
    },
    runs: () => runs,
  };
}

const SRC = '<p>{% cache "price", id %}{{ load(price) }}{% endcache %}</p>';

describe('templates and region resilience', () => {
  it('a failing fragment body serves the last good fragment with fail-safe on', async () => {
    const t = setup({ failSafe: { maxStale: 600, retryAfter: 30 } });
    assert.equal(await t.render(SRC, { id: 1, price: 10 }), '<p>10</p>');
    t.clock.advance(11);
    t.fail(true);
    assert.equal(await t.render(SRC, { id: 1, price: 99 }), '<p>10</p>');
    const runs = t.runs();
    assert.equal(await t.render(SRC, { id: 1, price: 99 }), '<p>10</p>');
    assert.equal(t.runs(), runs, 'throttled: the body is not run again before retryAfter');
    assert.ok(t.region.stats().failSafeServed >= 2);
  });

  it('without fail-safe the body error reaches the render', async () => {
    const t = setup();
    await t.render(SRC, { id: 1, price: 10 });
    t.clock.advance(11);
    t.fail(true);
    await assert.rejects(t.render(SRC, { id: 1, price: 99 }), /db down/);
  });

  it('hit and miss events carry the template and block of the fragment', async () => {
    const t = setup();
    const seen: [string, KeyEvent][] = [];
    t.region.on('miss', (p) => seen.push(['miss', p]));
    t.region.on('hit', (p) => seen.push(['hit', p]));
    await t.render(SRC, { id: 1, price: 10 });
    await t.render(SRC, { id: 1, price: 10 });
    // Nunjucks numbers a template's cache blocks (b1, b2, …); a string template's id is its digest.
    assert.deepEqual(
      seen.map(([kind, p]) => [kind, p.attributes?.block]),
      [
        ['miss', 'b1'],
        ['hit', 'b1'],
      ],
    );
    assert.match(String(seen[0]?.[1].attributes?.template), /^#/);
    assert.equal(typeof seen[0]?.[1].attributes?.template, 'string');
  });
});
