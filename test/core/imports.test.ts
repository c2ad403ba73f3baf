// The module graph of src/ has no cycles (region.ts once imported decorators.ts and config.ts,
// which imported it back): every relative import, types included, points "down".
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const src = fileURLToPath(new URL('../../src', import.meta.url));

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : name.endsWith('.ts') ? [path] : [];
  });
}

describe('src module graph', () => {
  it('has no import cycle', () => {
    const graph = new Map<string, string[]>();
    for (const file of files(src)) {
      const text = readFileSync(file, 'utf8');
      const deps = [...text.matchAll(/from '(\.{1,2}\/[^']+)\.js'/g)].map((m) => resolve(dirname(file), `${m[1]}.ts`));
      graph.set(file, deps);
    }
    const state = new Map<string, 'visiting' | 'done'>();
    const visit = (file: string, path: string[]): void => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'visiting') {
        assert.fail(`import cycle: ${[...path, file].map((f) => relative(src, f)).join(' -> ')}`);
      }
      state.set(file, 'visiting');
      for (const dep of graph.get(file) ?? []) visit(dep, [...path, file]);
      state.set(file, 'done');
    };
    for (const file of graph.keys()) visit(file, []);
    assert.ok(graph.size > 10);
  });
});
