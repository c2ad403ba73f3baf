// watchRegions / liveRegions: the public face of the region registry (src/region-registry.ts), what
// "instrument all regions" in dogpile/otel and other process-wide tooling build on.

import { describe, ValidationError } from './api.js';
import type { CacheRegion } from './region.js';
import { alive, watchAll } from './region-registry.js';
import { checkKnownNames } from './validate.js';

/**
 * Calls `watcher` with every region alive now (unless `options.existing` is false) and with every
 * region made from now on, until the returned function is called. Regions are held weakly: being
 * watched never keeps a region alive. A watcher that throws is reported with
 * `process.emitWarning` (code `DOGPILE_WATCHER`) and does not stop the region from being made.
 * This is what `instrumentAllRegions` in `dogpile/otel` builds on.
 */
export function watchRegions(watcher: (region: CacheRegion) => void, options: { existing?: boolean } = {}): () => void {
  if (typeof watcher !== 'function') {
    throw new ValidationError(`watchRegions: watcher must be a function, got ${describe(watcher)}`);
  }
  if (options === null || typeof options !== 'object') {
    throw new ValidationError(`watchRegions: options must be an object, got ${describe(options)}`);
  }
  checkKnownNames('watchRegions', 'option', options, ['existing']);
  if (options.existing !== undefined && typeof options.existing !== 'boolean') {
    throw new ValidationError(`watchRegions: existing must be a boolean, got ${describe(options.existing)}`);
  }
  return watchAll(watcher as (region: object) => void, options.existing ?? true);
}

/** The regions alive in this process now (made and not yet garbage-collected), oldest first. */
export function liveRegions(): CacheRegion[] {
  return alive() as CacheRegion[];
}
