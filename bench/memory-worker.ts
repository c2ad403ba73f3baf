// One measurement of the memory benchmark, in a fresh process (spawned by bench/memory.ts): fills
// a store with ENTRIES records of ~200 bytes and prints the heap + external bytes after a full GC,
// before and after, as one JSON line.
// Usage: memory-worker.ts <subject (MEMORY_SUBJECTS)> <entries>

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { payload } from './payload.js';

// The same as running with --expose-gc, without needing the flag on the command line.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** What the benchmark can fill. */
export const MEMORY_SUBJECTS = [
  'raw',
  'ours-set',
  'ours-goc',
  'ours-goc-5ms',
  'backend',
  'ours-clone',
  'ours-l1',
  'ours-lru',
] as const;
export type MemorySubject = (typeof MEMORY_SUBJECTS)[number];

/** What a worker prints. */
export interface MemoryResult {
  subject: MemorySubject;
  entries: number;
  /** heapUsed + external after a full GC, with the store made but empty (bytes). */
  emptyBytes: number;
  /** The same with every entry stored (bytes). */
  fullBytes: number;
}

type Put = (key: string, value: object) => Promise<unknown>;

async function store(subject: MemorySubject, entries: number): Promise<{ put: Put; keep: unknown }> {
  if (subject === 'raw') {
    const { LRUCache } = await import('lru-cache');
    const cache = new LRUCache<string, object>({ max: entries });
    return { put: async (k, v) => cache.set(k, v), keep: cache };
  }
  const { makeRegion, MemoryBackend, CachedValue, VALUE_VERSION } = await import('../src/index.js');
  if (subject === 'backend') {
    const backend = new MemoryBackend({ max: entries });
    return { put: (k, v) => backend.set(k, new CachedValue(v, { ct: Date.now(), v: VALUE_VERSION })), keep: backend };
  }
  if (subject === 'ours-l1') {
    // The L1 alone: in front of the null backend (nothing stored out of process), no bus.
    const region = makeRegion().configure('null', {
      expirationTime: 3600,
      l1: {
        max: entries,
        bus: false,
        ...(process.env.L1_TTL ? { expirationTime: Number(process.env.L1_TTL) } : {}),
      },
    });
    return { put: (k, v) => region.getOrCreate(k, () => v), keep: region };
  }
  if (subject === 'ours-goc-5ms') {
    // Creators that take 5 ms each, as a database call would (on the region's clock, which the
    // creator moves on: 100,000 real 5 ms waits would take minutes and change nothing stored).
    const { ManualClock } = await import('../src/clock.js');
    const clock = new ManualClock(Date.now());
    const region = makeRegion({ clock }).configure('memory', { expirationTime: 3600, arguments: { max: entries } });
    return {
      put: (k, v) =>
        region.getOrCreate(k, () => {
          clock.advance(0.005);
          return v;
        }),
      keep: region,
    };
  }
  // ours-lru: a store that needs lru-cache (maxSize, here never reached), which keeps CachedValues.
  const args =
    subject === 'ours-clone'
      ? { max: entries, clone: true }
      : subject === 'ours-lru'
        ? { max: entries, maxSize: 1e12 }
        : { max: entries };
  const region = makeRegion().configure('memory', { expirationTime: 3600, arguments: args });
  if (subject === 'ours-goc') return { put: (k, v) => region.getOrCreate(k, () => v), keep: region };
  return { put: (k, v) => region.set(k, v), keep: region };
}

function usedBytes(): number {
  gc();
  gc();
  const { heapUsed, external } = process.memoryUsage();
  return heapUsed + external;
}

async function main(): Promise<void> {
  const [subject, count = '100000'] = process.argv.slice(2) as [MemorySubject, string?];
  if (!MEMORY_SUBJECTS.includes(subject)) throw new Error(`unknown subject ${JSON.stringify(subject)}`);
  const entries = Number(count);
  const { put, keep } = await store(subject, entries);
  const emptyBytes = usedBytes();
  for (let i = 0; i < entries; i++) await put(`user:${i}`, payload(i));
  const fullBytes = usedBytes();
  if (!keep) throw new Error('store lost');
  const result: MemoryResult = { subject, entries, emptyBytes, fullBytes };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

await main();
