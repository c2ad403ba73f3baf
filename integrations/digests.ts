// Dependency-aware template digests (Rails' cache digestor, for every engine): the digest in a
// fragment key covers the template a block is written in AND, transitively, every template it can
// render (includes, imports, partials; the layout or parent of a template it renders). Engines find
// the static names with their own parser and hand them over as TemplateDeps; this module walks the
// graph (cycles end because each template is visited once), mixes in the names users declare for
// dynamic includes, warns once about undeclared dynamic ones, and memoises the result per block
// until the adapter reports that some template was reloaded.

import { digestSource, type TemplateCache } from './templates.js';

/** What an engine's parser found in one template. */
export interface TemplateDeps {
  /** {@link digestSource} of the template's own source (or another stable identity of its code). */
  readonly digest: string;
  /** Names of the templates it renders by a static name (includes, imports, partials). */
  readonly renders: readonly string[];
  /** The template it extends / its layout, rendered around it (static name), if any. */
  readonly parent?: string | undefined;
  /** Whether it renders a template whose name is an expression (not known before rendering). */
  readonly dynamic: boolean;
}

/** A template found by name: its identity (path or registered name) and what it renders. */
export interface ResolvedTemplate {
  /** Identity shared by every reference to this template (an absolute path, a partial name). */
  readonly id: string;
  /** Its dependencies, or `undefined` when it does not exist (a missing optional include). */
  readonly deps: TemplateDeps | undefined;
}

/** Looks a referenced name up relative to the template (`from`) that references it. */
export type TemplateResolver = (name: string, from: string | undefined) => ResolvedTemplate;

/** The memo an adapter keeps per block (or per template) for {@link DependencyDigests.current}. */
export interface DigestMemo {
  generation: number;
  digest: string;
}

/**
 * The dependency digests of one engine environment. `current(memo, …)` is what a block calls on
 * every render: one integer comparison when nothing was reloaded since the memo was filled.
 */
export class DependencyDigests {
  private generation = 0;
  private readonly known = new Map<string, string>();

  constructor(
    private readonly cache: TemplateCache,
    private readonly engine: string,
  ) {}

  /**
   * Records that the engine loaded a template (the adapter calls this from the engine's load
   * hook). Loading one again (Nunjucks `noCache` / watch, Eta `cache: false`) retires every memo,
   * so blocks recompute their digests on their next render; a first load changes nothing.
   */
  loaded(id: string, digest: string): void {
    const before = this.known.get(id);
    this.known.set(id, digest);
    if (before !== undefined) this.generation++;
  }

  /** Whether `memo` is still valid (nothing reloaded since it was filled): the hit path's check. */
  fresh(memo: DigestMemo): boolean {
    return memo.generation === this.generation;
  }

  /** The current generation (memos filled at an older one are recomputed). */
  generationNow(): number {
    return this.generation;
  }

  /** Retires every memo (the engine reports an edited file, e.g. a watcher's `update`). */
  changed(): void {
    this.generation++;
  }

  /**
   * The digest for a block in the template `rootId` (whose own dependencies are `root`): the
   * memoised one when nothing changed since, else a fresh {@link DependencyDigests.compute}.
   */
  current(memo: DigestMemo, rootId: string | undefined, root: TemplateDeps, resolve: TemplateResolver): string {
    if (memo.generation === this.generation) return memo.digest;
    const generation = this.generation;
    memo.digest = this.compute(rootId, root, resolve);
    // Loading dependencies may itself report loads; the memo is valid for what was read.
    memo.generation = generation === this.generation ? generation : this.generation;
    return memo.digest;
  }

  /**
   * Walks everything the root renders and digests the root's own digest together with every
   * reachable template's identity and digest. The root's own parent (the layout a page extends)
   * is not followed: a block in a page does not render the page's layout. A template with no
   * dependencies keeps its own digest, so keys of dependency-free templates are unchanged.
   */
  compute(rootId: string | undefined, root: TemplateDeps, resolve: TemplateResolver): string {
    const seen = new Map<string, string>();
    const queue: Array<[string, string | undefined]> = [];
    const enqueueDeclared = (id: string | undefined, dynamic: boolean): void => {
      const declared = id === undefined ? undefined : this.cache.declaredDependencies(id);
      if (declared !== undefined) for (const name of declared) queue.push([name, id]);
      else if (dynamic) {
        this.cache.warnOnce(
          `dynamic:${this.engine}:${id ?? root.digest}`,
          `dogpile templates: ${this.engine} template ${id === undefined ? `#${root.digest}` : JSON.stringify(id)} renders a template whose name is an expression, so cached blocks cannot see when it is edited. Declare what it can render with the TemplateCache option \`dependencies: { ${JSON.stringify(id ?? 'template')}: ["…"] }\` (or give the include a literal name).`,
        );
      }
    };
    for (const name of root.renders) queue.push([name, rootId]);
    enqueueDeclared(rootId, root.dynamic);
    if (rootId !== undefined) seen.set(rootId, root.digest);
    for (let i = 0; i < queue.length; i++) {
      const [name, from] = queue[i] as [string, string | undefined];
      let found: ResolvedTemplate;
      try {
        found = resolve(name, from);
      } catch {
        found = { id: `?${name}`, deps: undefined };
      }
      if (seen.has(found.id)) continue;
      const deps = found.deps;
      seen.set(found.id, deps === undefined ? '(missing)' : deps.digest);
      if (deps === undefined) continue;
      for (const dep of deps.renders) queue.push([dep, found.id]);
      if (deps.parent !== undefined) queue.push([deps.parent, found.id]);
      enqueueDeclared(found.id, deps.dynamic);
    }
    if (rootId !== undefined) seen.delete(rootId);
    if (seen.size === 0) return root.digest;
    const parts = [...seen].map(([id, digest]) => `${id}\u0000${digest}`).sort();
    return digestSource(`${root.digest}\u0001${parts.join('\u0001')}`);
  }
}
