// Every region made in this process, weakly held, and the watchers told about each new one: what
// "instrument all regions" (dogpile/otel) and other process-wide tooling build on. A region is
// never kept alive by being watched.

/** What the watch registry knows of a region: only that it is one (avoids an import cycle). */
type Watched = object;

const live = new Set<WeakRef<Watched>>();
const cleanup = new FinalizationRegistry<WeakRef<Watched>>((ref) => live.delete(ref));
const watchers = new Set<(region: Watched) => void>();

/** Called by every region's constructor. @internal */
export function trackRegion(region: Watched): void {
  const ref = new WeakRef(region);
  live.add(ref);
  cleanup.register(region, ref);
  for (const watcher of watchers) notify(watcher, region);
}

/**
 * Calls `watcher` for every region that exists now (unless `existing` is false) and for every
 * region made from now on, until the returned function is called. Regions are held weakly: a
 * region the application drops is not kept alive by the watch. A watcher that throws does not stop
 * the region from being made; its error is reported through `process.emitWarning`.
 */
export function watchRegions<R extends Watched>(watcher: (region: R) => void, existing = true): () => void {
  const w = watcher as (region: Watched) => void;
  if (existing) {
    for (const ref of live) {
      const region = ref.deref();
      if (region !== undefined) notify(w, region);
    }
  }
  watchers.add(w);
  return () => {
    watchers.delete(w);
  };
}

/** The regions alive now (made and not yet collected). */
export function liveRegions<R extends Watched>(): R[] {
  const out: R[] = [];
  for (const ref of live) {
    const region = ref.deref();
    if (region !== undefined) out.push(region as R);
  }
  return out;
}

function notify(watcher: (region: Watched) => void, region: Watched): void {
  try {
    watcher(region);
  } catch (err) {
    process.emitWarning(`dogpile: a region watcher threw: ${err instanceof Error ? err.message : String(err)}`, {
      code: 'DOGPILE_WATCHER',
    });
  }
}
