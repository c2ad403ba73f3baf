// What the multi-process bench workers (bench/redis-worker.ts, bench/tiers-worker.ts) share: the
// start handshake (a worker says "ready" and waits for the start time the runner sends, so that
// every process begins at the same moment) and the stampede each process runs on one cold key.
// Kept free of library imports: workers load only what they measure.

/** What a "stampede" worker prints. */
export interface StampedeResult {
  readonly calls: number;
  readonly values: readonly string[];
  readonly creatorReturnedAt: number | null;
  readonly lastReturnAt: number;
}

/** The one call a stampede makes on the library under test. */
export type GetOrCreate = (key: string, creator: () => Promise<unknown>) => Promise<unknown>;

const now = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Says "ready" on stdout and resolves to the start time the runner sends back on stdin. */
export function startSignal(): Promise<number> {
  return new Promise((resolve) => {
    let buffered = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (chunk: string) => {
      buffered += chunk;
      if (buffered.includes('\n')) {
        process.stdin.pause();
        resolve(Number(buffered.trim()));
      }
    });
    process.stdout.write('ready\n');
  });
}

/**
 * 100 concurrent getOrCreate calls on `key` from the start time on, with a 300 ms creator: how
 * often this process called it, the values it got, and when the creator and the last call returned.
 */
export async function stampede(subject: { readonly getOrCreate: GetOrCreate }, key: string): Promise<StampedeResult> {
  // Warm the creator's code path (lock, store, release) on a key of this process's own.
  await subject.getOrCreate(`warm:${key}:${process.pid}`, async () => 'warm');
  const startAt = await startSignal();
  let calls = 0;
  let creatorReturnedAt: number | null = null;
  const creator = async () => {
    calls++;
    await sleep(300);
    creatorReturnedAt = now();
    return `made-by-${process.pid}`;
  };
  await sleep(Math.max(0, startAt - Date.now()));
  let lastReturnAt = 0;
  const values = await Promise.all(
    Array.from({ length: 100 }, async () => {
      const v = await subject.getOrCreate(key, creator);
      lastReturnAt = Math.max(lastReturnAt, now());
      return String(v);
    }),
  );
  return { calls, values: [...new Set(values)], creatorReturnedAt, lastReturnAt };
}
