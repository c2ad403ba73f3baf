// Instructions per fresh hit, counted by valgrind (exact where timings on a shared machine are
// not): run under `valgrind --tool=callgrind node --single-threaded bench/hit-instructions.mjs
// <subject> <keys> <hits>` twice with two hit counts; the difference of the totals divided by the
// difference of the hit counts is the cost of one hit (start-up and the misses cancel out).
// Subjects: raw (lru-cache wrapper), plain (region, no options), all (every resilience option).
// Needs `npm run build` (it imports dist/, so no TypeScript loader is counted).
import { LRUCache } from 'lru-cache';
import { makeRegion } from '../dist/src/index.js';

const [subject = 'plain', keyArg = '10000', hitArg = '100000'] = process.argv.slice(2);
const keyCount = Number(keyArg);
const hits = Number(hitArg);

function call() {
  if (subject === 'raw') {
    const cache = new LRUCache({ max: 100_000 });
    return async (key, creator) => {
      const v = cache.get(key);
      if (v !== undefined) return v;
      const made = await creator();
      cache.set(key, made);
      return made;
    };
  }
  const options =
    subject === 'all'
      ? {
          failSafe: { maxStale: 600, retryAfter: 5 },
          softTimeout: 0.5,
          hardTimeout: 5,
          breaker: { failures: 5, duration: 5 },
          backendTimeout: 0.5,
        }
      : {};
  const region = makeRegion(options).configure('memory', { expirationTime: 3600, arguments: { max: 100_000 } });
  return (key, creator) => region.getOrCreate(key, creator);
}

const getOrCreate = call();
const keys = Array.from({ length: keyCount }, (_, i) => `user:${i}`);
const values = keys.map((k, i) => ({ id: i, name: k, email: `${k}@example.com`, roles: ['reader', 'writer'], bio: 'x'.repeat(120) }));
for (let i = 0; i < keyCount; i++) await getOrCreate(keys[i], async () => values[i]);
let sink = 0;
for (let i = 0; i < hits; i++) {
  const v = await getOrCreate(keys[i % keyCount], async () => values[0]);
  sink += v.id;
}
process.stdout.write(`${subject} ${keyCount} keys ${hits} hits (${sink})\n`);
