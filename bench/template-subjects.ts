// The template benchmark's subjects, shared by bench/templates.ts (timed) and
// bench/template-hit-instructions.ts (counted under callgrind): for Nunjucks, Eta and Handlebars,
// a page with 10 cached blocks whose bodies each busy-wait ~1 ms and include a partial (so
// dependency digests are on), the same page without the blocks (bare), and the page with each
// block replaced by a no-op tag of the same shape (the engine's own floor).

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Eta } from 'eta';
import Handlebars from 'handlebars';
import nunjucks from 'nunjucks';
import { dogpileEta } from '../integrations/eta.js';
import { installHandlebars } from '../integrations/handlebars.js';
import { installNunjucks, renderNunjucks } from '../integrations/nunjucks.js';
import { TemplateCache } from '../integrations/templates.js';
import { makeRegion } from '../src/index.js';

export const BLOCKS = 10;
export const BODY_MS = 1;

/** Busy-waits about BODY_MS: the stand-in for an expensive block body. */
function spin(): string {
  const end = performance.now() + BODY_MS;
  while (performance.now() < end) {}
  return 'x';
}

export type Render = (ctx: Record<string, unknown>) => Promise<string>;
const PARTIAL = 'card';
export interface Subject {
  engine: string;
  page: Render;
  bare: Render;
  /** The page with each block replaced by a no-op tag of the same shape (the engine's own floor). */
  noop: Render;
}

/** The smallest asynchronous Nunjucks tag with a body: calls back after one resolved promise. */
const nunjucksNoop = {
  tags: ['noop'],
  parse(
    parser: {
      nextToken(): { value: string };
      parseSignature(a: null, b: boolean): unknown;
      advanceAfterBlockEnd(n?: string): void;
      parseUntilBlocks(n: string): unknown;
    },
    nodes: { CallExtensionAsync: new (e: object, p: string, a: unknown, c: unknown[]) => unknown },
  ) {
    const tok = parser.nextToken();
    const args = parser.parseSignature(null, true);
    parser.advanceAfterBlockEnd(tok.value);
    const body = parser.parseUntilBlocks('endnoop');
    parser.advanceAfterBlockEnd();
    return new nodes.CallExtensionAsync(this, 'run', args, [body]);
  },
  run(_context: unknown, ...rest: unknown[]) {
    const callback = rest.pop() as (e: null, v: string) => void;
    Promise.resolve('').then((v) => callback(null, v));
  },
};

function pageSources(block: (i: number, body: string) => string, spinExpr: string, text: (i: number) => string) {
  let page = '<html><body>';
  let bare = '<html><body>';
  for (let i = 0; i < BLOCKS; i++) {
    page += `<section>${text(i)}${block(i, `<p>${spinExpr}</p>`)}</section>`;
    bare += `<section>${text(i)}</section>`;
  }
  return { page: `${page}</body></html>`, bare: `${bare}</body></html>` };
}

const etaNoopFn = (..._args: unknown[]): Promise<string> => Promise.resolve('');

/** The three engines' subjects, their templates written under `dir` (a fresh temporary folder). */
export function subjects(dir: string): Subject[] {
  const regions = () => new TemplateCache({ regions: makeRegion().configure('memory') });

  const nj = new nunjucks.Environment(new nunjucks.FileSystemLoader(join(dir, 'njk')), { autoescape: true });
  nj.addGlobal('spin', spin);
  installNunjucks(nj, regions());
  const njSrc = pageSources(
    (i, body) => `{% cache "block", ${i}, user.id %}${body}{% include "${PARTIAL}.njk" %}{% endcache %}`,
    '{{ spin() }}',
    (i) => `<h2>{{ title }} ${i}</h2>`,
  );
  nj.addExtension('Noop', nunjucksNoop);
  const njNoop = pageSources(
    (i, body) => `{% noop "block", ${i}, user.id %}${body}{% endnoop %}`,
    '',
    (i) => `<h2>{{ title }} ${i}</h2>`,
  );
  mkdirSync(join(dir, 'njk'));
  writeFileSync(join(dir, 'njk', 'noop.njk'), njNoop.page);
  writeFileSync(join(dir, 'njk', 'page.njk'), njSrc.page);
  writeFileSync(join(dir, 'njk', 'bare.njk'), njSrc.bare);
  writeFileSync(join(dir, 'njk', `${PARTIAL}.njk`), '<i>{{ title }}</i>');

  mkdirSync(join(dir, 'eta'));
  const eta = new Eta({ views: join(dir, 'eta'), cache: true, plugins: [dogpileEta(regions())] });
  const etaSrc = pageSources(
    (i, body) => `<% cache "block", ${i}, it.user.id %>${body}<%~ include("./${PARTIAL}") %><% endcache %>`,
    '<%= it.spin() %>',
    (i) => `<h2><%= it.title %> ${i}</h2>`,
  );
  const etaNoop = pageSources(
    (i) => `<% { const __v = await it.noop("block", ${i}, it.user.id, async () => ''); __eta.res += __v; } %>`,
    '',
    (i) => `<h2><%= it.title %> ${i}</h2>`,
  );
  writeFileSync(join(dir, 'eta', 'noop.eta'), etaNoop.page);
  writeFileSync(join(dir, 'eta', 'page.eta'), etaSrc.page);
  writeFileSync(join(dir, 'eta', 'bare.eta'), etaSrc.bare);
  writeFileSync(join(dir, 'eta', `${PARTIAL}.eta`), '<i><%= it.title %></i>');

  const hbs = Handlebars.create();
  hbs.registerHelper('spin', spin);
  const dh = installHandlebars(hbs, regions());
  dh.registerPartial(PARTIAL, '<i>{{title}}</i>');
  const hbSrc = pageSources(
    (i, body) => `{{#cache "block" ${i} user.id}}${body}{{> ${PARTIAL}}}{{/cache}}`,
    '{{spin}}',
    (i) => `<h2>{{title}} ${i}</h2>`,
  );
  hbs.registerHelper('noop', () => '');
  const hbNoop = dh.compile(
    pageSources(
      (i, body) => `{{#noop "block" ${i} user.id}}${body}{{/noop}}`,
      '',
      (i) => `<h2>{{title}} ${i}</h2>`,
    ).page,
    { name: 'noop' },
  );
  const hbPage = dh.compile(hbSrc.page, { name: 'page' });
  const hbBare = dh.compile(hbSrc.bare, { name: 'bare' });

  return [
    {
      engine: 'nunjucks',
      page: (ctx) => renderNunjucks(nj, 'page.njk', ctx),
      bare: (ctx) => renderNunjucks(nj, 'bare.njk', ctx),
      noop: (ctx) => renderNunjucks(nj, 'noop.njk', ctx),
    },
    {
      engine: 'eta',
      page: (ctx) => eta.renderAsync('page', { ...ctx, spin }),
      bare: (ctx) => eta.renderAsync('bare', { ...ctx, spin }),
      noop: (ctx) => eta.renderAsync('noop', { ...ctx, spin, noop: etaNoopFn }),
    },
    { engine: 'handlebars', page: (ctx) => hbPage(ctx), bare: (ctx) => hbBare(ctx), noop: (ctx) => hbNoop(ctx) },
  ];
}
