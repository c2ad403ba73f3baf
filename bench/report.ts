// Figures and markdown tables shared by the benchmark runners (bench/core.ts, bench/redis.ts).

import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');

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

/**
 * Runs a TypeScript worker in a fresh Node process (through tsx) and resolves to the JSON object
 * it prints last. With `onReady`, the worker's stdin is a pipe and `onReady` is called once the
 * worker prints "ready", with a function that sends it one line (the start time).
 */
export function runJsonWorker(
  workerPath: string,
  args: readonly string[],
  onReady?: (send: (line: string | number) => void) => void,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', workerPath, ...args], {
      cwd: root,
      stdio: [onReady ? 'pipe' : 'ignore', 'pipe', 'inherit'],
    });
    let out = '';
    let readySeen = false;
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      out += chunk;
      if (!readySeen && onReady && out.includes('ready\n')) {
        readySeen = true;
        onReady((line) => child.stdin?.write(`${line}\n`));
      }
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !line.startsWith('{')) {
        reject(new Error(`worker ${args.join(' ')} exited with code ${code}; output: ${out.slice(0, 500)}`));
        return;
      }
      resolve(JSON.parse(line));
    });
  });
}

/** Writes a report to bench/results/<name>-<date>.md, says where on stderr, and returns the path. */
export function saveReport(name: string, started: Date, text: string): string {
  const dir = join(here, 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}-${started.toISOString().slice(0, 10)}.md`);
  writeFileSync(file, text);
  process.stderr.write(`saved ${file} (${((Date.now() - started.getTime()) / 1000).toFixed(0)} s)\n`);
  return file;
}
