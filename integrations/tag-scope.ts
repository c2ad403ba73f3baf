// Tag propagation between nested fragments. A fragment rendered inside another one's body (a miss
// of the outer fragment) reports its tags to the outer one, which stores them with its own: the
// outer fragment holds the inner one's HTML, so invalidating the inner's tag must refresh the outer
// too. The scope is an AsyncLocalStorage entered only while a fragment's body renders (misses). A
// module-level count of the bodies rendering now lets a hit skip even the `getStore()` when none
// renders anywhere in the process (the usual warm page), and the storage is disabled meanwhile.

import { AsyncLocalStorage } from 'node:async_hooks';
import type { CacheRegion, CreatorContext } from '../src/index.js';

const tagScope = new AsyncLocalStorage<Set<string>>();

/**
 * Fragment bodies rendering now. On Node 20 an enabled AsyncLocalStorage costs every promise of
 * the process a hook call, which doubled the cost of a block hit; the scope is therefore disabled
 * whenever no body renders (hits never need it), and `run` enables it again on the next miss.
 */
let rendering = 0;

/** How often the scope was looked up and entered (for tests: a tag-less warm page does neither). */
const usage = { lookups: 0, entries: 0 };

/** @internal For tests: how often the tag scope was looked up (`getStore`) and entered (`run`) so far. */
export function tagScopeUsage(): Readonly<{ lookups: number; entries: number }> {
  return { ...usage };
}

/**
 * The tag set of the fragment whose body is rendering around this call, or `undefined` at top
 * level. Free (a counter test) while no fragment body renders anywhere in the process.
 */
export function enclosingFragmentTags(): Set<string> | undefined {
  if (rendering === 0) return undefined;
  usage.lookups++;
  return tagScope.getStore();
}

/** @internal For the engine adapters: adds `tags` to the fragment whose body is rendering around this call, if any. */
export function reportFragmentTags(tags: readonly string[] | undefined): void {
  if (tags === undefined || tags.length === 0) return;
  const scope = enclosingFragmentTags();
  if (scope !== undefined) for (const t of tags) scope.add(t);
}

/**
 * @internal For the engine adapters and page caching. Runs `render` (a fragment's body) collecting the tags of the fragments rendered inside it into
 * `into`; the caller stores them with the fragment.
 */
export function collectFragmentTags<R>(into: Set<string>, render: () => R): R {
  rendering++;
  usage.entries++;
  let out: R;
  try {
    out = tagScope.run(into, render);
  } catch (err) {
    leaveScope();
    throw err;
  }
  if (out !== null && typeof (out as { then?: unknown }).then === 'function') {
    (out as Promise<unknown>).then(leaveScope, leaveScope);
  } else leaveScope();
  return out;
}

function leaveScope(): void {
  if (--rendering === 0) tagScope.disable();
}

/** `declared` plus the collected tags not in it, or `undefined` when nothing was added. */
export function widenedTags(declared: readonly string[] | undefined, collected: ReadonlySet<string>): string[] | undefined {
  if (collected.size === 0) return undefined;
  let out: string[] | undefined;
  for (const t of collected) {
    if (declared?.includes(t)) continue;
    out ??= declared === undefined ? [] : [...declared];
    out.push(t);
  }
  return out;
}

/**
 * A fragment's creator: renders its body collecting the tags of the fragments inside it, hands
 * them to the region (stored with the fragment's own, after the body: `CreatorContext.addTags`)
 * and to the fragment around this one (`parent`), if any.
 */
export async function renderFragment(
  render: () => string | Promise<string>,
  context: CreatorContext,
  parent: Set<string> | undefined,
): Promise<string> {
  const collected = new Set<string>();
  const html = String(await collectFragmentTags(collected, render));
  if (collected.size > 0) {
    context.addTags([...collected]);
    if (parent !== undefined) for (const t of collected) parent.add(t);
  }
  return html;
}

/**
 * One fragment's trip through its region when tags are in play around it: a fragment rendered
 * inside another fragment's body reports its declared tags to that one at once and, once fetched,
 * the tags stored with it (its own and its inner fragments'), or those its body collected.
 * Fragments with no enclosing fragment never make one (see `TemplateCache.fetch`).
 */
export class NestedFragmentCall {
  /** The body's output, when this call rendered it. */
  created: string | undefined;

  constructor(
    private readonly region: CacheRegion,
    private readonly stored: string,
    private readonly render: () => string | Promise<string>,
    private readonly parent: Set<string>,
    tags: readonly string[] | undefined,
  ) {
    if (tags !== undefined) for (const t of tags) parent.add(t);
  }

  async create(context: CreatorContext): Promise<string> {
    const html = await renderFragment(this.render, context, this.parent);
    this.created = html;
    return html;
  }

  /**
   * The fetched fragment: when it is a hit (or another caller's creation), the stored fragment's
   * tags (its own and those of fragments inside it) go to the outer fragment first. One extra
   * read, only while an outer fragment renders.
   */
  settle(html: string): string | Promise<string> {
    if (this.created !== undefined) return html;
    const parent = this.parent;
    return this.region.getValueMetadata(this.stored, { ignoreExpiration: true }).then(
      (v) => {
        const tags = v?.metadata.tags;
        if (tags !== undefined) for (const t of tags) parent.add(t);
        return html;
      },
      () => html, // a failing backend: the declared tags were reported already
    );
  }
}
