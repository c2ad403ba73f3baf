// The API reference: TypeDoc over every entry point (typedoc.json) reports no warning, so every
// public name has a doc comment, every {@link} resolves and every referenced type is documented
// or deliberately internal. `npm run docs` writes the HTML to docs/api; this only validates.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';

const ROOT = resolve(import.meta.dirname, '..');

describe('API reference', () => {
  it('typedoc validates every entry point with no warning', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'node_modules/typedoc/package.json'), 'utf8')) as {
      bin: Record<string, string>;
    };
    const bin = join(ROOT, 'node_modules/typedoc', pkg.bin.typedoc as string);
    const run = spawnSync(process.execPath, [bin, '--emit', 'none', '--logLevel', 'Warn'], { cwd: ROOT, encoding: 'utf8' });
    const output = `${run.stdout}${run.stderr}`;
    assert.equal(run.status, 0, output);
    assert.doesNotMatch(output, /warning|error/i);
  });

  it('the entry points typedoc documents are the package exports', () => {
    const config = JSON.parse(readFileSync(join(ROOT, 'typedoc.json'), 'utf8')) as { entryPoints: string[] };
    const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      exports: Record<string, string | { types?: string }>;
    };
    const exported = Object.values(manifest.exports)
      .map((target) => (typeof target === 'string' ? undefined : target.types))
      .filter((types): types is string => types !== undefined)
      .map((types) => types.replace(/^\.\/dist\//, '').replace(/\.d\.ts$/, '.ts'))
      .sort();
    assert.deepEqual([...config.entryPoints].sort(), exported);
  });
});
