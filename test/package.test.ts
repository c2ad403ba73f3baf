// The package as users get it. Builds (when dist/ is older than the sources), packs the tarball
// with `npm pack`, and installs it with npm into two consumer projects in a temporary directory
// outside the repository, offline: the tarball itself, plus this repository's already-installed
// packages as local links (its dependencies, @types/node, and in the second project the optional
// peers), so nothing is fetched and it works on a clean clone after `npm ci`. The first project
// has no optional peer at all. Then: every subpath export loads from `import` and from `require`;
// strict TypeScript consumers typecheck with skipLibCheck off under module nodenext and under
// moduleResolution bundler; a memory-backend program and a CommonJS Express app run from the
// tarball; publint and arethetypeswrong check it; declarations import an optional peer only in
// that peer's own entry point. Also: importing the core loads no optional peer.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';

const ROOT = resolve(import.meta.dirname, '..');
const FIXTURES = join(ROOT, 'test/fixtures/consumer');
const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  exports: Record<string, unknown>;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
};
/** Every subpath export as a specifier (`dogpile`, `dogpile/express`, ...), package.json aside. */
const SPECIFIERS = Object.keys(manifest.exports)
  .filter((subpath) => subpath !== './package.json')
  .map((subpath) => manifest.name + subpath.slice(1));
const PEERS = Object.keys(manifest.peerDependencies ?? {});
/**
 * Entry points that exist only to adapt one peer and import it statically: each needs that peer
 * (and may name it in its declarations); every other entry point loads without any peer.
 */
const OWN_PEER: Readonly<Record<string, string>> = { 'dogpile/otel': '@opentelemetry/api' };
const PEERLESS_SPECIFIERS = SPECIFIERS.filter((s) => OWN_PEER[s] === undefined);
/** Peers that ship no declarations of their own come with an @types package. */
const PEER_TYPES = PEERS.map((p) => `@types/${p}`).filter((t) => existsSync(join(ROOT, 'node_modules', t)));

describe('package', () => {
  it('`import "dogpile"` loads only the core and lru-cache', () => {
    buildIfStale();
    const run = spawnSync(
      process.execPath,
      [
        '--import',
        './test/fixtures/trace-register.mjs',
        '--input-type=module',
        '-e',
        "const d = await import('dogpile'); const r = d.makeRegion().configure('memory'); await r.set('a', 1); console.log(await r.get('a'));",
      ],
      { encoding: 'utf8', cwd: ROOT },
    );
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout.trim(), '1');
    const resolved = run.stderr
      .split('\n')
      .filter((l) => l.startsWith('resolve:'))
      .map((l) => l.slice('resolve:'.length));
    assert.deepEqual([...new Set(resolved)].sort(), ['dogpile', 'lru-cache']);
  });

  it('a memory region loads neither node:crypto nor node:net; the SHA-1 mangler loads crypto when first called', () => {
    // Only the SHA-1 mangler, the memcached and file backends and the Redis bus use them (~0.65 MB
    // of heap), and the main entry exports those modules: they load the two on first use.
    buildIfStale();
    const script = `
      const before = new Set(process.moduleLoadList);
      const d = await import('dogpile');
      const r = d.makeRegion().configure('memory');
      await r.set('a', 1);
      await r.getOrCreate('b', () => 2);
      const added = () => process.moduleLoadList.filter((m) => !before.has(m) && (m === 'NativeModule crypto' || m === 'NativeModule net'));
      const first = added();
      const digest = d.sha1MangleKey('x');
      console.log(JSON.stringify({ first, then: added(), digest }));
    `;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', cwd: ROOT });
    assert.equal(run.status, 0, run.stderr);
    const out = JSON.parse(run.stdout) as { first: string[]; then: string[]; digest: string };
    assert.deepEqual(out.first, []);
    assert.deepEqual(out.then, ['NativeModule crypto']);
    assert.equal(out.digest, '11f6ad8ec52a2984abaafd7c3b516503785c2072');
  });

  it('exports the documented names', async () => {
    buildIfStale();
    const d = (await import('dogpile')) as Record<string, unknown>;
    for (const name of [
      'makeRegion',
      'CacheRegion',
      'NO_VALUE',
      'CachedValue',
      'BaseBackend',
      'ProxyBackend',
      'registerBackend',
      'sha1MangleKey',
      'lengthConditionalMangler',
      'functionKeyGenerator',
      'kwargFunctionKeyGenerator',
      'DogpileError',
      'RegionNotConfiguredError',
      'RegionAlreadyConfiguredError',
      'PluginNotFoundError',
      'ValidationError',
      'LockTimeoutError',
      'BackendError',
      'CreatorTimeoutError',
      'CircuitOpenError',
    ]) {
      assert.ok(name in d, `dogpile does not export ${name}`);
    }
    const testing = (await import('dogpile/testing')) as Record<string, unknown>;
    assert.equal(typeof testing.backendConformance, 'function');
    const otel = (await import('dogpile/otel')) as Record<string, unknown>;
    assert.equal(typeof otel.instrumentRegion, 'function');
  });
});

describe('the packed tarball, installed into consumer projects', () => {
  let work: string;
  let tarball: string;
  let packedFiles: string[];
  /** A project with dogpile and its dependencies only: no optional peer. */
  let bare: string;
  /** A project with dogpile and every optional peer (and their @types). */
  let full: string;

  before(() => {
    buildIfStale();
    work = mkdtempSync(join(tmpdir(), 'dogpile-package-'));
    ({ tarball, files: packedFiles } = pack(work));
    bare = consumer(
      join(work, 'bare'),
      tarball,
      ['@types/node'],
      ['core.ts', 'require.cts', 'memory-program.mjs', 'tsconfig.nodenext.json', 'tsconfig.bundler.json'],
    );
    full = consumer(join(work, 'full'), tarball, ['@types/node', ...PEERS, ...PEER_TYPES], readdirSync(FIXTURES));
  });
  after(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('holds the build, the license, README and CHANGELOG, and no tests or benchmarks', () => {
    for (const file of ['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md', 'dist/src/index.js', 'dist/src/index.d.ts']) {
      assert.ok(packedFiles.includes(file), `the tarball lacks ${file}`);
    }
    assert.deepEqual(
      packedFiles.filter((f) => /^(test|bench|examples|scripts)\//.test(f) || f.endsWith('.tsbuildinfo')),
      [],
    );
  });

  it('every source map carries the sources it names (they are not shipped as files)', () => {
    const pkg = join(bare, 'node_modules', 'dogpile');
    const maps = packedFiles.filter((f) => f.endsWith('.js.map'));
    assert.ok(maps.length > 10, `only ${maps.length} source maps`);
    const unresolved: string[] = [];
    for (const file of maps) {
      const map = JSON.parse(readFileSync(join(pkg, file), 'utf8')) as { sources: string[]; sourcesContent?: (string | null)[] };
      map.sources.forEach((source, i) => {
        const shipped = existsSync(resolve(pkg, dirname(file), source));
        if (!shipped && typeof map.sourcesContent?.[i] !== 'string') unresolved.push(`${file} -> ${source}`);
      });
    }
    assert.deepEqual(unresolved, []);
  });

  it('the bare project really has no optional peer to find', () => {
    const require = createRequire(join(bare, 'index.js'));
    for (const peer of PEERS) assert.throws(() => require.resolve(peer), { code: 'MODULE_NOT_FOUND' }, peer);
    assert.equal(require.resolve('dogpile').startsWith(join(bare, 'node_modules', 'dogpile')), true);
  });

  it('every subpath export loads with import, with no optional peer installed', () => {
    const code = `for (const s of JSON.parse(process.argv[1])) { const m = await import(s); if (Object.keys(m).length === 0) throw new Error(s + ' exports nothing'); } console.log('ok');`;
    const run = node(bare, ['--input-type=module', '-e', code, JSON.stringify(PEERLESS_SPECIFIERS)]);
    assert.equal(run.stdout.trim(), 'ok');
  });

  it('an entry point that adapts one peer loads once that peer is installed (import and require)', () => {
    const specifiers = JSON.stringify(Object.keys(OWN_PEER));
    const esm = `for (const s of JSON.parse(process.argv[1])) { const m = await import(s); if (Object.keys(m).length === 0) throw new Error(s); } console.log('ok');`;
    assert.equal(node(full, ['--input-type=module', '-e', esm, specifiers]).stdout.trim(), 'ok');
    const cjs = `for (const s of JSON.parse(process.argv[1])) { if (Object.keys(require(s)).length === 0) throw new Error(s); } console.log('ok');`;
    assert.equal(node(full, ['--input-type=commonjs', '-e', cjs, specifiers]).stdout.trim(), 'ok');
  });

  it('every subpath export loads with require (Node >= 20.19 loads ES modules from require)', () => {
    const code = `for (const s of JSON.parse(process.argv[1])) { const m = require(s); if (Object.keys(m).length === 0) throw new Error(s + ' exports nothing'); } console.log(typeof require('dogpile').makeRegion, require('dogpile/package.json').name);`;
    const run = node(bare, ['--input-type=commonjs', '-e', code, JSON.stringify(PEERLESS_SPECIFIERS)]);
    assert.equal(run.stdout.trim(), 'function dogpile');
  });

  it('import and require give the same module instance', () => {
    const code = `const viaRequire = require('dogpile'); import('dogpile').then((viaImport) => console.log(viaImport.makeRegion === viaRequire.makeRegion && viaImport.NO_VALUE === viaRequire.NO_VALUE));`;
    assert.equal(node(bare, ['--input-type=commonjs', '-e', code]).stdout.trim(), 'true');
  });

  it('runs a memory-backend program', () => {
    const run = node(bare, ['memory-program.mjs']);
    assert.deepEqual(JSON.parse(run.stdout), { values: [42], first: 49, second: 49, created: 2, missing: true });
  });

  it('the core typechecks with no optional peer installed (nodenext and bundler, skipLibCheck off)', () => {
    typecheck(bare, 'tsconfig.nodenext.json');
    typecheck(bare, 'tsconfig.bundler.json');
  });

  it('the core and every integration typecheck with the peers installed (nodenext and bundler)', () => {
    typecheck(full, 'tsconfig.nodenext.json');
    typecheck(full, 'tsconfig.bundler.json');
  });

  it('an unused @ts-expect-error fails the consumer typecheck (the expectations are checked)', () => {
    const dir = join(work, 'bare-broken');
    mkdirSync(dir);
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'broken', private: true, type: 'module' }));
    const source = readFileSync(join(FIXTURES, 'core.ts'), 'utf8').replace("await loadUser('1');", 'await loadUser(1);');
    writeFileSync(join(dir, 'core.ts'), source);
    copyFileSync(join(FIXTURES, 'tsconfig.bundler.json'), join(dir, 'tsconfig.json'));
    symlinkNodeModules(dir, bare);
    const run = spawnSync(process.execPath, [tscPath(), '-p', 'tsconfig.json'], { cwd: dir, encoding: 'utf8' });
    assert.notEqual(run.status, 0);
    const errors = run.stdout.split('\n').filter((line) => line.includes('error TS'));
    assert.equal(errors.length, 1, run.stdout);
    assert.match(errors[0] ?? '', /error TS2578: Unused '@ts-expect-error' directive/);
  });

  it('a CommonJS Express app serves a cached page through dogpile/express', () => {
    const run = node(full, ['express-app.cjs']);
    const { bodies, renders } = JSON.parse(run.stdout) as { bodies: string[]; renders: number };
    assert.deepEqual(bodies, ['200 <p>rendered 1</p>\n', '200 <p>rendered 1</p>\n']);
    assert.equal(renders, 1, 'the cached block rendered once');
  });

  it('declarations import an optional peer only in that peer’s own entry point', () => {
    const pkg = join(bare, 'node_modules', 'dogpile');
    const leaks: string[] = [];
    for (const [subpath, target] of Object.entries(manifest.exports)) {
      const types = (target as { types?: string }).types;
      if (types === undefined) continue;
      const specifierOf = manifest.name + subpath.slice(1);
      const own = OWN_PEER[specifierOf] ?? subpath.slice(2); // './handlebars' -> 'handlebars'
      for (const [file, specifier] of bareImports(join(pkg, types))) {
        const peer = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0];
        if (peer !== undefined && PEERS.includes(peer) && peer !== own) {
          leaks.push(`${manifest.name}${subpath.slice(1)}: ${relative(pkg, file)} imports ${specifier}`);
        }
      }
    }
    assert.deepEqual(leaks, []);
  });

  it('publint finds nothing to report', () => {
    const run = spawnSync(process.execPath, [binPath('publint', 'publint'), 'run', tarball, '--strict'], {
      cwd: work,
      encoding: 'utf8',
    });
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /All good!/);
  });

  it('arethetypeswrong finds no problem beyond the two accepted ones (see .attw.json and README)', () => {
    // .attw.json (read from the repository root): profile node16 skips the node10 resolution, which
    // cannot read `exports`; cjs-resolves-to-esm is accepted because Node >= 20.19 require()s ESM.
    const run = spawnSync(
      process.execPath,
      [binPath('@arethetypeswrong/cli', 'attw'), tarball, '--no-definitely-typed', '--format', 'json'],
      {
        cwd: ROOT,
        encoding: 'utf8',
      },
    );
    assert.equal(run.status, 0, run.stdout + run.stderr);
    const { analysis } = JSON.parse(run.stdout) as {
      analysis: { problems: { kind: string; entrypoint?: string; resolutionKind?: string }[] };
    };
    const accepted = (p: { kind: string; resolutionKind?: string }) =>
      (p.kind === 'CJSResolvesToESM' && p.resolutionKind === 'node16-cjs') ||
      (p.kind === 'NoResolution' && p.resolutionKind === 'node10');
    assert.deepEqual(
      analysis.problems.filter((p) => !accepted(p)),
      [],
    );
  });
});

/** Rebuilds dist/ when any source file is newer than it (the suite's `npm test` builds first). */
function buildIfStale(): void {
  const built = join(ROOT, 'dist/src/index.js');
  const builtAt = existsSync(built) ? statSync(built).mtimeMs : 0;
  const newest = Math.max(...['src', 'integrations'].flatMap((dir) => sourceTimes(join(ROOT, dir))));
  if (newest > builtAt) execFileSync(process.execPath, [tscPath(), '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });
}

function sourceTimes(dir: string): number[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? sourceTimes(path) : [statSync(path).mtimeMs];
  });
}

/** `npm pack` into `dir` (the build is done already, so no lifecycle scripts). */
function pack(dir: string): { tarball: string; files: string[] } {
  const out = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  const [info] = JSON.parse(out) as { filename: string; files: { path: string }[] }[];
  assert.ok(info, 'npm pack printed no result');
  return { tarball: join(dir, info.filename), files: info.files.map((f) => f.path) };
}

/**
 * A consumer project in `dir`: `npm install --offline` of the tarball, with the tarball's own
 * dependencies and `extra` packages given as this repository's installed folders (npm links
 * them, so nothing is fetched), and `fixtures` copied in.
 */
function consumer(dir: string, tgz: string, extra: string[], fixtures: string[]): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `consumer-${basename(dir)}`, private: true, type: 'module' }));
  const local = [...Object.keys(manifest.dependencies ?? {}), ...extra].map((name) => join(ROOT, 'node_modules', name));
  execFileSync(
    'npm',
    [
      'install',
      '--offline',
      '--ignore-scripts',
      '--no-audit',
      '--no-fund',
      '--no-package-lock',
      '--loglevel=error',
      tgz,
      ...local,
    ],
    { cwd: dir, encoding: 'utf8' },
  );
  for (const file of fixtures) copyFileSync(join(FIXTURES, file), join(dir, file));
  return dir;
}

function symlinkNodeModules(dir: string, from: string): void {
  execFileSync('ln', ['-s', join(from, 'node_modules'), join(dir, 'node_modules')]);
}

/** Runs node in a consumer project; fails the test with its output when it exits non-zero. */
function node(cwd: string, args: string[]): { stdout: string; stderr: string } {
  const run = spawnSync(process.execPath, args, { cwd, encoding: 'utf8', env: cleanEnv() });
  assert.equal(run.status, 0, `node ${args[0]} failed:\n${run.stdout}\n${run.stderr}`);
  return run;
}

function typecheck(cwd: string, project: string): void {
  const run = spawnSync(process.execPath, [tscPath(), '-p', project], { cwd, encoding: 'utf8' });
  assert.equal(run.status, 0, `tsc -p ${project} in ${basename(cwd)}:\n${run.stdout}${run.stderr}`);
}

/** The environment without this test runner's hooks (tsx, node:test), as a user's shell has it. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  delete env.NODE_TEST_CONTEXT;
  return env;
}

function tscPath(): string {
  return binPath('typescript', 'tsc');
}

/** The JS file of a dev dependency's executable. */
function binPath(pkg: string, bin: string): string {
  const pkgJson = JSON.parse(readFileSync(join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as {
    bin: string | Record<string, string>;
  };
  const path = typeof pkgJson.bin === 'string' ? pkgJson.bin : pkgJson.bin[bin];
  assert.ok(path, `${pkg} has no ${bin} executable`);
  return join(ROOT, 'node_modules', pkg, path);
}

/** Every non-relative import in a declaration file and the declaration files it imports, transitively. */
function bareImports(entry: string): [file: string, specifier: string][] {
  const seen = new Set<string>();
  const found: [string, string][] = [];
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    for (const match of text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)['"]([^'"]+)['"]/g)) {
      const specifier = match[1] as string;
      if (specifier.startsWith('.')) visit(resolve(dirname(file), specifier.replace(/\.js$/, '.d.ts')));
      else found.push([file, specifier]);
    }
  };
  visit(entry);
  return found;
}
