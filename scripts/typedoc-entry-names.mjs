// TypeDoc plugin (typedoc.json "plugin"): names each documented module after the package entry
// point it is published as (`dogpile`, `dogpile/eta`, ...) instead of its source path (`src`,
// `integrations/eta`), using the exports map of package.json.
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { Converter, ReflectionKind } from 'typedoc';

/** @param {import('typedoc').Application} app */
export function load(app) {
  const root = new URL('..', import.meta.url);
  const manifest = JSON.parse(readFileSync(new URL('package.json', root), 'utf8'));
  /** Source file (relative to the repository) -> entry point specifier. */
  const names = new Map();
  for (const [subpath, target] of Object.entries(manifest.exports)) {
    if (typeof target !== 'object' || typeof target.types !== 'string') continue;
    const source = target.types.replace(/^\.\/dist\//, '').replace(/\.d\.ts$/, '.ts');
    names.set(source, manifest.name + subpath.slice(1));
  }
  app.converter.on(Converter.EVENT_RESOLVE_BEGIN, (context) => {
    for (const mod of context.project.getReflectionsByKind(ReflectionKind.Module)) {
      const file = mod.sources?.[0]?.fullFileName;
      const name = file && names.get(relative(root.pathname, file));
      if (name) mod.name = name;
      else app.logger.warn(`typedoc-entry-names: module ${mod.name} is not a package entry point`);
    }
  });
}
