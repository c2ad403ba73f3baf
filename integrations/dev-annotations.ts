// Development aids for template fragments: HTML comments around each fragment saying whether it
// was a hit or a miss and under which key, and a per-render summary of hits, misses and the render
// time the hits saved. Off unless asked for; annotations are refused in production unless forced.

import { ValidationError } from '../src/index.js';

/** One fragment of a render, as the summary lists it. */
export interface FragmentEntry {
  /** The fragment key (before prefix and version). */
  key: string;
  /** `'miss'`: this render ran the body; `'hit'`: it came from the cache (or another caller's render). */
  outcome: 'hit' | 'miss';
  /** Milliseconds: the body's render time on a miss; on a hit the last miss's render time in this process (0 if unknown). */
  ms: number;
}

/** Per-render fragment counters: pass one as `dogpile: { summary }` in the render context. */
export interface FragmentSummary {
  /** Fragments served from the cache. */
  hits: number;
  /** Fragments whose body this render ran. */
  misses: number;
  /** Milliseconds spent rendering the misses. */
  renderMs: number;
  /** Milliseconds the hits would have cost (their last recorded miss render time). */
  savedMs: number;
  /** Every fragment in the order it completed. */
  fragments: FragmentEntry[];
}

/** A fresh, empty {@link FragmentSummary}. */
export function createFragmentSummary(): FragmentSummary {
  return { hits: 0, misses: 0, renderMs: 0, savedMs: 0, fragments: [] };
}

/** Adds one fragment to a summary. */
export function recordFragment(summary: FragmentSummary, entry: FragmentEntry): void {
  if (entry.outcome === 'hit') {
    summary.hits++;
    summary.savedMs += entry.ms;
  } else {
    summary.misses++;
    summary.renderMs += entry.ms;
  }
  summary.fragments.push(entry);
}

/** `html` between `<!-- dogpile: hit|miss key=... -->` and `<!-- /dogpile -->`. */
export function annotateFragment(html: string, outcome: 'hit' | 'miss', key: string): string {
  // The key cannot end the comment early: no `--` and no `>` inside it.
  const safe = key.replace(/-(?=-)/g, '%2D').replace(/>/g, '%3E');
  return `<!-- dogpile: ${outcome} key=${safe} -->${html}<!-- /dogpile -->`;
}

const ANNOTATION = /<!-- dogpile: (?:hit|miss) key=[^>]* -->|<!-- \/dogpile -->/g;

/** `html` without dogpile annotations (what is stored: annotations never reach the cache). */
export function stripAnnotations(html: string): string {
  return html.includes('<!-- ') ? html.replace(ANNOTATION, '') : html;
}

/**
 * Whether annotations may be turned on, given the `annotate` option of a TemplateCache: `true`
 * under `NODE_ENV=production` is a {@link ValidationError} (use `'force'` to mean it); `false` /
 * unset still allows per-render `dogpile: { annotate: true }` outside production.
 */
export function annotationPolicy(option: unknown, env: string | undefined): { all: boolean; perRender: boolean } {
  if (option === undefined || option === false) return { all: false, perRender: env !== 'production' };
  if (option === 'force') return { all: true, perRender: true };
  if (option === true) {
    if (env === 'production') {
      throw new ValidationError(
        "TemplateCache: annotate: true is refused when NODE_ENV is 'production' (it would put cache keys in every page); pass annotate: 'force' if you mean it",
      );
    }
    return { all: true, perRender: true };
  }
  throw new ValidationError(`TemplateCache: annotate must be true, false or 'force', got ${JSON.stringify(option)}`);
}
