// Worker of bench/wake.ts: one process of a 4-process stampede on one cold key (ours, l1 over
// redis), with timestamps taken at each step of the wake-up (by wrapping the backend's methods from
// outside, so the library runs as shipped). Arguments: <mode> <redisPort> <key>
// mode "stampede": the bench:tiers stampede (bench/stampede-worker.ts); with WAKE_TRACE=1, a
//   timestamp at each step (which costs a little); with WAKE_WARM=1, one stampede on another key
//   first, so that the waiting path has run once in most processes (a diagnostic);
// mode "pubsub": the floor: a bare ioredis PUBLISH of a same-sized message at the same moment
//   (300 ms after the start) by the process told to (env WAKE_PUBLISHER=1), the others subscribed;
//   prints when it was published / received.

import { type StampedeResult, stampede, startSignal } from './stampede-worker.js';

const now = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const trace: [string, number][] = [];
const mark = (label: string): void => {
  trace.push([label, now()]);
};

const [mode, portArg, key] = process.argv.slice(2);
const port = Number(portArg);
const url = `redis://127.0.0.1:${port}`;
const TRACE = process.env.WAKE_TRACE === '1';

type AnyFn = (...args: unknown[]) => unknown;
function wrap(target: object, name: string, before?: string, after?: string): void {
  const o = target as Record<string, AnyFn>;
  const original = o[name] as AnyFn;
  o[name] = function (this: unknown, ...args: unknown[]) {
    if (before) mark(before);
    const out = original.apply(this, args);
    if (after && out instanceof Promise)
      out.then(
        () => mark(after),
        () => mark(`${after} (failed)`),
      );
    else if (after) mark(after);
    return out;
  };
}

let result: unknown;
if (mode === 'stampede') {
  const { makeRegion } = await import('../src/index.js');
  const region = makeRegion({ name: 'bench', lockWaitTimeout: 30 }).configure('redis', {
    expirationTime: 3600,
    arguments: { url, keyPrefix: 'ours:', distributedLock: true, lockTimeout: 30 },
    l1: { max: 10_000 },
  });
  await region.ready();
  const tier = region.backend as unknown as {
    whenListening(): Promise<void>;
    l2: Record<string, unknown>;
    l1: object;
  };
  await tier.whenListening();
  if (TRACE) {
    const redis = tier.l2 as Record<string, unknown> & { client: Record<string, AnyFn>; subscriber: { prependListener: AnyFn } };
    wrap(redis.client, 'eval', 'eval sent', 'eval replied');
    wrap(redis.client, 'getBuffer', 'GET sent', 'GET replied');
    wrap(redis.client, 'set', 'SET sent', 'SET replied');
    wrap(redis.client, 'publish', 'bus publish sent', 'bus publish replied');
    wrap(redis, 'decoded', 'waiter resumed: decode', 'decoded');
    wrap(redis, 'offerLanded', undefined, 'offered');
    wrap(redis, 'get', 'redis.get', undefined);
    wrap(tier.l1, 'set', 'L1 fill', undefined);
    wrap(tier, 'message', 'bus message received', undefined);
    redis.subscriber.prependListener('messageBuffer', (channel: Buffer, message: Buffer) => {
      mark(`notice received (${channel.toString().endsWith('value') ? 'with value' : 'no value'}, ${message.length} B)`);
    });
    // Socket level: when the command connection writes, and when the subscriber's socket has data.
    const stream = (redis.client as unknown as { stream: { write: AnyFn } }).stream;
    const write = stream.write;
    stream.write = function (this: unknown, ...args: unknown[]) {
      mark('socket write (commands)');
      return write.apply(this, args);
    };
    (redis.subscriber as unknown as { stream: { prependListener: AnyFn } }).stream.prependListener('data', () =>
      mark('socket data (lock subscriber)'),
    );
  }
  let firstReturn = 0;
  const traced = {
    getOrCreate: async (k: string, creator: () => Promise<unknown>) => {
      const v = await region.getOrCreate(k, async () => {
        const out = await creator();
        if (k === key) mark('creator returned');
        return out;
      });
      if (k === key && firstReturn === 0) {
        firstReturn = now();
        mark('first caller returns');
      }
      return v;
    },
  };
  const subject = TRACE ? traced : { getOrCreate: (k: string, c: () => Promise<unknown>) => region.getOrCreate(k, c) };
  let r: StampedeResult;
  if (process.env.WAKE_WARM === '1') {
    // Diagnostic: one stampede on another key first (so that the waiter's path has run once in
    // most processes), then the measured one, 1 s after the common start.
    const began = await startSignal();
    await sleep(Math.max(0, began - Date.now()));
    const warm = async () => {
      await sleep(100);
      return 'w';
    };
    await Promise.all(Array.from({ length: 100 }, () => region.getOrCreate(`${key}:warm`, warm)));
    await sleep(Math.max(0, began + 1000 - Date.now()));
    let calls = 0;
    let creatorReturnedAt: number | null = null;
    let lastReturnAt = 0;
    const values = await Promise.all(
      Array.from({ length: 100 }, async () => {
        const v = await subject.getOrCreate(String(key), async () => {
          calls++;
          await sleep(300);
          creatorReturnedAt = now();
          return `made-by-${process.pid}`;
        });
        lastReturnAt = Math.max(lastReturnAt, now());
        return String(v);
      }),
    );
    r = { calls, values: [...new Set(values)], creatorReturnedAt, lastReturnAt };
  } else r = await stampede(subject, String(key));
  mark('last caller returns (stampede)');
  result = { ...r, trace };
  await region.close();
} else {
  const { Redis } = await import('ioredis');
  const publisher = process.env.WAKE_PUBLISHER === '1';
  const pub = new Redis(url); // no auto-pipelining: the PUBLISH is written at once
  const sub = new Redis(url);
  let receivedAt: number | null = null;
  await sub.subscribe('floor');
  sub.on('messageBuffer', () => {
    receivedAt = now();
  });
  const payload = Buffer.alloc(75, 120); // the size of the stampede's release notice
  const startAt = await startSignal();
  await sleep(Math.max(0, startAt - Date.now()));
  let publishedAt: number | null = null;
  if (publisher) {
    await sleep(300);
    publishedAt = now();
    await pub.publish('floor', payload);
  }
  await sleep(publisher ? 50 : 400);
  result = { publishedAt, receivedAt };
  pub.disconnect();
  sub.disconnect();
}
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
