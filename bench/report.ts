// Figures and markdown tables shared by the benchmark runners (bench/core.ts, bench/redis.ts).

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The median of `xs` (the mean of the middle two for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** The nearest-rank `p`th percentile of `xs`. */
export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] as number;
}

/** Operations per second as 12.34M, 56.7k or 890. */
export const fmtOps = (n: number): string =>
  n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : n.toFixed(0);

/** The installed version of a package, or "?". */
export function version(pkg: string): string {
  try {
    return (JSON.parse(readFileSync(join(root, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '?';
  }
}

/** A markdown table with padded columns (as biome formats it); `align` has one 'l' or 'r' per column. */
export function table(headers: readonly string[], align: string, rows: readonly (readonly string[])[]): string[] {
  const len = (x: string): number => [...x].length;
  const widths = headers.map((h, i) => Math.max(len(h), ...rows.map((r) => len(r[i] ?? ''))));
  const cell = (x: string, i: number): string => {
    const pad = ' '.repeat((widths[i] as number) - len(x));
    return align[i] === 'r' ? pad + x : x + pad;
  };
  const line = (cells: readonly string[]): string => `| ${cells.map(cell).join(' | ')} |`;
  const rule = widths.map((w, i) => (align[i] === 'r' ? `${'-'.repeat(w - 1)}:` : '-'.repeat(w)));
  return [line(headers), `| ${rule.join(' | ')} |`, ...rows.map(line)];
}

/** "1" when every round agrees, else "min–max". */
export function span(xs: readonly number[]): string {
  const lo = Math.min(...xs);
  const hi = Math.max(...xs);
  return lo === hi ? String(lo) : `${lo}–${hi}`;
}
