// Every region made in this process, weakly held, and the watchers told about each new one. Regions
// register themselves (trackRegion in the constructor); src/region-watch.ts is the public, typed
// face of this registry. A region is never kept alive by being registered.

/** Regions as the registry holds them (typed as CacheRegion only at the public edge). */
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

export function watchAll(watcher: (region: Watched) => void, existing: boolean): () => void {
  if (existing) for (const region of alive()) notify(watcher, region);
  watchers.add(watcher);
  return () => {
    watchers.delete(watcher);
  };
}

/** The regions registered and not yet collected, oldest first. */
export function alive(): Watched[] {
  const out: Watched[] = [];
  for (const ref of live) {
    const region = ref.deref();
    if (region !== undefined) out.push(region);
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
