// How each engine spells the shared suite's templates, and how to set it up over a directory:
// used by the per-engine test files and by the tests that run every engine (redis down).
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Eta } from 'eta';
import Handlebars from 'handlebars';
import nunjucks from 'nunjucks';
import { dogpileEta } from '../../integrations/eta.js';
import { installHandlebars } from '../../integrations/handlebars.js';
import { installNunjucks, renderNunjucks } from '../../integrations/nunjucks.js';
import { argExpr, type BlockOpts, type EngineUnderTest } from './suite.js';

const nunjucksOpts = (o?: BlockOpts) =>
  (o?.region ? `, region="${o.region}"` : '') +
  (o?.expire !== undefined ? `, expire=${o.expire}` : '') +
  (o?.if ? `, if=${o.if}` : '') +
  (o?.unless ? `, unless=${o.unless}` : '');

/** nunjucks spelled for the shared suite. */
export const nunjucksUnderTest: EngineUnderTest = {
  name: 'nunjucks',
  ext: 'njk',
  block: (args, body, o) => `{% cache ${args.map((a) => argExpr(a)).join(', ')}${nunjucksOpts(o)} %}${body}{% endcache %}`,
  expr: (p) => `{{ ${p} }}`,
  maybe: (p) => `{{ ${p} }}`,
  count: (p) => `{{ count(${p}) }}`,
  boom: () => '{{ boom() }}',
  partial: (name, key, v, path, o) => `{% cachedinclude "${name}.njk", key=${key}, ${v}=${path}${nunjucksOpts(o)} %}`,
  include: (name) => `{% include "${name}.njk" %}`,
  includeIf: (flag, name) => `{% if ${flag} %}{% include "${name}.njk" %}{% endif %}`,
  make(dir, cache, hooks) {
    const env = new nunjucks.Environment(new nunjucks.FileSystemLoader(dir, { noCache: true }), { autoescape: true });
    env.addGlobal('count', hooks.count);
    env.addGlobal('boom', hooks.boom);
    installNunjucks(env, cache);
    return {
      render: (name, ctx) => renderNunjucks(env, `${name}.njk`, ctx),
      renderSync: (name, ctx) => env.render(`${name}.njk`, ctx),
    };
  },
};

const etaParts = (o?: BlockOpts) =>
  o
    ? [
        o.region ? `region: "${o.region}"` : '',
        o.expire !== undefined ? `expire: ${o.expire}` : '',
        o.if ? `if: it.${o.if}` : '',
        o.unless ? `unless: it.${o.unless}` : '',
      ].filter(Boolean)
    : [];
const etaOpts = (o?: BlockOpts) => {
  const parts = etaParts(o);
  return parts.length ? `, { ${parts.join(', ')} }` : '';
};

/** eta spelled for the shared suite. */
export const etaUnderTest: EngineUnderTest = {
  name: 'eta',
  ext: 'eta',
  block: (args, body, o) => `<% cache ${args.map((a) => argExpr(a, 'it.')).join(', ')}${etaOpts(o)} %>${body}<% endcache %>`,
  expr: (p) => `<%= it.${p} %>`,
  maybe: (p) => `<%= it.${p} ?? '' %>`,
  count: (p) => `<%= this.config.hooks.count(it.${p}) %>`,
  boom: () => '<%= this.config.hooks.boom() %>',
  partial: (name, key, v, path, o) =>
    `<%~ await cachedInclude("./${name}", { ${v}: it.${path} }, { ${[`key: it.${key}`, ...etaParts(o)].join(', ')} }) %>`,
  include: (name) => `<%~ await includeAsync("./${name}") %>`,
  includeIf: (flag, name) => `<% if (it.${flag}) { %><%~ await includeAsync("./${name}") %><% } %>`,
  make(dir, cache, hooks) {
    // Unknown config keys survive in this.config, so the templates reach the hooks as this.config.hooks.
    const eta = new Eta({ views: dir, autoTrim: false, plugins: [dogpileEta(cache)], hooks } as ConstructorParameters<
      typeof Eta
    >[0]);
    return {
      render: (name, ctx) => eta.renderAsync(name, ctx),
      renderSync: (name, ctx) => eta.render(name, ctx),
    };
  },
};

const handlebarsOpts = (o?: BlockOpts) =>
  (o?.region ? ` region="${o.region}"` : '') +
  (o?.expire !== undefined ? ` expire=${o.expire}` : '') +
  (o?.if ? ` if=${o.if}` : '') +
  (o?.unless ? ` unless=${o.unless}` : '');

/** handlebars spelled for the shared suite. */
export const handlebarsUnderTest: EngineUnderTest = {
  name: 'handlebars',
  ext: 'hbs',
  block: (args, body, o) => `{{#cache ${args.map((a) => argExpr(a)).join(' ')}${handlebarsOpts(o)}}}${body}{{/cache}}`,
  expr: (p) => `{{${p}}}`,
  maybe: (p) => `{{${p}}}`,
  count: (p) => `{{count ${p}}}`,
  boom: () => '{{boom}}',
  partial: (name, key, v, path, o) => `{{cachedPartial "${name}" key=${key} ${v}=${path}${handlebarsOpts(o)}}}`,
  include: (name) => `{{> ${name}}}`,
  includeIf: (flag, name) => `{{#if ${flag}}}{{> ${name}}}{{/if}}`,
  make(dir, cache, hooks) {
    const hbs = Handlebars.create();
    hbs.registerHelper('count', hooks.count);
    hbs.registerHelper('boom', hooks.boom);
    const dh = installHandlebars(hbs, cache);
    const load = () => {
      for (const f of readdirSync(dir)) dh.registerPartial(basename(f, '.hbs'), readFileSync(join(dir, f), 'utf8'));
    };
    const read = (name: string) => readFileSync(join(dir, `${name}.hbs`), 'utf8');
    return {
      render: (name, ctx) => {
        load();
        return dh.compile(read(name), { name })(ctx);
      },
      renderSync: (name, ctx) => hbs.compile(read(name))(ctx),
    };
  },
};

/** Every engine. */
export const enginesUnderTest: readonly EngineUnderTest[] = [nunjucksUnderTest, etaUnderTest, handlebarsUnderTest];
