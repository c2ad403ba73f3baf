// The fresh-hit subjects shared by bench/resilience-worker.ts (timed) and
// bench/hit-instructions.ts (counted under callgrind): a raw lru-cache wrapper and regions with
// and without the resilience options, on the same workload of warm keys (~200-byte objects).
import { LRUCache } from 'lru-cache';
import { makeRegion } from '../src/index.js';

/** An awaited get-or-create, as each subject offers it. */
export type Call = (key: string, creator: () => Promise<object>) => Promise<unknown>;

/**
 * raw (lru-cache wrapper), plain (region, no options), options (failSafe + softTimeout +
 * hardTimeout), listener (plain + one `hit` listener), guarded (options + breaker), all (guarded +
 * backendTimeout: every resilience option), tags (plain, every call with the same `tags` option).
 */
export function hitSubject(subject: string): Call {
  if (subject === 'raw') {
    const cache = new LRUCache<string, object>({ max: 100_000 });
    return async (key, creator) => {
      const v = cache.get(key);
      if (v !== undefined) return v;
      const made = await creator();
      cache.set(key, made);
      return made;
    };
  }
  const options =
    subject === 'options' || subject === 'guarded' || subject === 'all'
      ? { failSafe: { maxStale: 600, retryAfter: 5 }, softTimeout: 0.5, hardTimeout: 5 }
      : {};
  const breaker = subject === 'guarded' || subject === 'all' ? { breaker: { failures: 5, duration: 5 } } : {};
  const timeout = subject === 'all' ? { backendTimeout: 0.5 } : {};
  const region = makeRegion({ ...options, ...breaker, ...timeout }).configure('memory', {
    expirationTime: 3600,
    arguments: { max: 100_000 },
  });
  if (subject === 'listener') {
    let n = 0;
    region.on('hit', () => {
      n++;
    });
    process.on('exit', () => n);
  }
  if (subject === 'tags') {
    const tagged = { tags: ['users'] };
    return (key, creator) => region.getOrCreate(key, creator, tagged);
  }
  return (key, creator) => region.getOrCreate(key, creator);
}

/** Stores `keyCount` keys (`user:<i>`, ~200-byte objects) through `call`; returns them and their creators. */
export async function warmKeys(call: Call, keyCount: number): Promise<{ keys: string[]; creators: (() => Promise<object>)[] }> {
  const keys = Array.from({ length: keyCount }, (_, i) => `user:${i}`);
  const values = keys.map((k, i) => ({
    id: i,
    name: k,
    email: `${k}@example.com`,
    roles: ['reader', 'writer'],
    bio: 'x'.repeat(120),
  }));
  const creators = values.map((v) => async () => v);
  for (let i = 0; i < keyCount; i++) await call(keys[i] as string, creators[i] as () => Promise<object>);
  return { keys, creators };
}
