// What renders in this process have keyed: for each template (by engine) the stem of each block
// (engine, template, digest, block id) and the blocks' names (a string first key argument). It lets
// application code compute or invalidate one fragment's key (Django's make_template_fragment_key)
// with the same digest the render used, naming the block as the template does.

import { ValidationError } from '../src/index.js';

/** How application code names one fragment (see `TemplateCache.fragmentKey`). */
export interface FragmentRef {
  /** `"nunjucks"`, `"eta"` or `"handlebars"`. */
  engine: string;
  /**
   * The template as the engine knows it: a Nunjucks name, an Eta path relative to `views`, a
   * Handlebars `compile` name; for cached partials the partial's name. A name that matches the end
   * of a recorded one after a `/` (an Express view rendered by absolute path) is found too.
   */
  template: string;
  /**
   * The block: its name (its first key argument when that is a string literal, as in
   * `{% cache "sidebar", user.id %}`; `args` are then the arguments after it), its ordinal id
   * (`"b1"`, `"b2"`… in source order; `args` are then all of its arguments), or `"partial"` for a
   * cached partial (`args`: `[key]`, the `key=` value).
   */
  block: string;
  /** The fragment's key arguments, as described under `block`. Default `[]`. */
  args?: readonly unknown[];
}

interface Found {
  /** Stems of the matching blocks (more than one when a name is used by several blocks). */
  stems: string[];
  /** The arguments to append to each stem. */
  args: readonly unknown[];
}

/** See the module comment. One per TemplateCache. */
export class FragmentRegistry {
  private readonly templates = new Map<string, { stems: Map<string, string>; names: Map<string, Set<string>> }>();
  private readonly byStem = new Map<string, { base: string; block: string }>();

  /** Records the current stem of a block (called when an adapter builds one: not per hit). */
  stem(engine: string, template: string | undefined, block: string, stem: string): void {
    if (template === undefined || template === '' || this.byStem.has(stem)) return;
    const base = `${engine}\u0000${template}`;
    this.entry(base).stems.set(block, stem);
    this.byStem.set(stem, { base, block });
  }

  /** Records that the block with `stem` is named `name` (its first key argument). */
  name(stem: string, name: string): void {
    const info = this.byStem.get(stem);
    if (info === undefined) return;
    const names = this.entry(info.base).names;
    let blocks = names.get(name);
    if (blocks === undefined) {
      blocks = new Set();
      names.set(name, blocks);
    }
    blocks.add(info.block);
  }

  /** The stems and arguments `ref` designates; a {@link ValidationError} when nothing matches. */
  find(ref: FragmentRef): Found {
    const { engine, template, block } = ref;
    const args = ref.args ?? [];
    if (typeof engine !== 'string' || typeof template !== 'string' || typeof block !== 'string') {
      throw new ValidationError('fragmentKey: engine, template and block must be strings');
    }
    if (!Array.isArray(args)) throw new ValidationError('fragmentKey: args must be an array');
    const entry = this.lookup(engine, template);
    const stem = entry?.stems.get(block);
    if (stem !== undefined) return { stems: [stem], args };
    const named = entry?.names.get(block);
    if (entry !== undefined && named !== undefined) {
      return { stems: [...named].map((b) => entry.stems.get(b) as string), args: [block, ...args] };
    }
    const known = entry === undefined ? '' : ` (known blocks: ${[...entry.stems.keys(), ...entry.names.keys()].join(', ')})`;
    throw new ValidationError(
      `fragmentKey: no ${JSON.stringify(block)} fragment of ${engine} template ${JSON.stringify(template)} has been rendered in this process${known}; the key includes the template's digest, which a render records (or construct the TemplateCache with digest: false and name the block by ordinal)`,
    );
  }

  private lookup(engine: string, template: string) {
    const exact = this.templates.get(`${engine}\u0000${template}`);
    if (exact !== undefined) return exact;
    for (const candidate of engine === 'eta' ? ['eta', 'eta-raw'] : [engine]) {
      const prefix = `${candidate}\u0000`;
      for (const [base, entry] of this.templates) {
        if (!base.startsWith(prefix)) continue;
        const name = base.slice(prefix.length);
        const bare = name.replace(/^partial:/, '').replace(/\.[^./]+$/, '');
        if (bare === template || name.endsWith(`/${template}`) || bare.endsWith(`/${template}`)) return entry;
      }
    }
    return undefined;
  }

  private entry(base: string) {
    let entry = this.templates.get(base);
    if (entry === undefined) {
      entry = { stems: new Map(), names: new Map() };
      this.templates.set(base, entry);
    }
    return entry;
  }
}
