// The invalidation bus: how a process tells the others that keys changed, so that they drop their
// L1 (in-process) copies. Messages carry no values, only what changed, the writer's id and a
// version (the writer's sequence number), and a process ignores its own messages. The built-in
// transport is Redis pub/sub on a connection of its own; a bus that loses its subscription says
// so (`onGap`), and the L1 in front of it is then cleared, since messages may have been missed.

import { DogpileError, describe, toBackendError, ValidationError } from './api.js';
import { nodeCrypto } from './node-builtins.js';

/**
 * The parts of an ioredis client (`Redis` or `Cluster`) that {@link RedisBus} uses; any ioredis 5
 * client fits. A structural type, so that the core's declarations never import the ioredis package
 * (an optional peer; see backends/peer-types.ts).
 */
export interface RedisBusClient {
  /** `PUBLISH channel message`. */
  publish(channel: string, message: string): Promise<unknown>;
  /** A new connection with the same options and these overrides (the subscriber). */
  duplicate(override?: { connectionName?: string }): RedisBusClient;
  /** `SUBSCRIBE` (on the subscriber connection). */
  subscribe(...channels: string[]): Promise<unknown>;
  /** Connection events, and pub/sub messages (`message`: channel, text). */
  on(event: string, listener: (...args: never[]) => void): unknown;
  /** `end`: the connection closed for good. */
  once(event: string, listener: (...args: never[]) => void): unknown;
  /** Closes the connection at once. */
  disconnect(): void;
}

/** What a bus message says changed. Keys are the region's stored (mangled) keys. */
export type InvalidationMessage =
  | {
      /** Keys were written or deleted. */
      readonly kind: 'keys';
      /** The stored (mangled) keys. */
      readonly keys: readonly string[];
    }
  | {
      /** The region was invalidated (`region.invalidate`). */
      readonly kind: 'invalidate';
      /** When, ms since the epoch. */
      readonly at: number;
      /** Hard or soft. */
      readonly hard: boolean;
    }
  | {
      /** Tags were invalidated (`region.invalidateTags`). */
      readonly kind: 'tags';
      /** The tags. */
      readonly tags: readonly string[];
      /** When, ms since the epoch. */
      readonly at: number;
      /** Hard or soft. */
      readonly hard: boolean;
    };

/** A message as it travels: the change, who wrote it and that writer's sequence number. */
export type Envelope = InvalidationMessage & {
  /** The writing bus's id. */
  readonly writer: string;
  /** The writer's sequence number. */
  readonly version: number;
};

/** What a bus tells its listener. */
export interface BusListener {
  /** A message from another process (never this bus's own). */
  message(message: Envelope): void;
  /** The subscription was lost: messages may be missed until {@link BusListener.resumed}. */
  gap(): void;
  /** Subscribed (again): messages flow from here on. */
  resumed(): void;
}

/**
 * A transport for invalidation messages. Implement it to use something other than Redis pub/sub
 * (NATS, Postgres LISTEN/NOTIFY...): `start` subscribes and calls `listener.resumed()` once
 * listening, `gap()` whenever the subscription may have missed messages; `publish` must reach
 * every other process subscribed to the same channel.
 */
export interface InvalidationBus {
  /** This process's writer id; messages carrying it are ignored. */
  readonly id: string;
  /** Subscribes; tells `listener` of messages, gaps and resumptions. */
  start(listener: BusListener): void;
  /** Sends `message` to every other process on the channel. */
  publish(message: InvalidationMessage): Promise<void>;
  /** Unsubscribes and closes the bus's connections. */
  close(): Promise<void>;
}

/** Options of {@link RedisBus}. */
export interface RedisBusOptions {
  /** The pub/sub channel. Processes that share cache entries must use the same one. */
  channel: string;
  /** Whether {@link RedisBus.close} also closes `client` (true when the bus opened it). */
  ownsClient?: boolean;
  /** The writer id (default: a random UUID). */
  id?: string;
}

/**
 * Redis pub/sub: PUBLISH on `client`, SUBSCRIBE on a duplicate of it (a connection of its own,
 * named `dogpile-bus`). When the subscriber connection closes, the listener hears `gap()` at once;
 * once it is connected and subscribed again, `resumed()`.
 */
export class RedisBus implements InvalidationBus {
  readonly id: string;
  private subscriber: RedisBusClient | undefined;
  private version = 0;
  private closed = false;
  private readonly channel: string;
  private readonly ownsClient: boolean;

  constructor(
    private readonly client: RedisBusClient,
    options: RedisBusOptions,
  ) {
    this.channel = options.channel;
    this.ownsClient = options.ownsClient ?? false;
    this.id = options.id ?? nodeCrypto().randomUUID();
  }

  /** See {@link InvalidationBus.start}. */
  start(listener: BusListener): void {
    if (this.subscriber || this.closed) return;
    // The publisher closed for good (its backend was closed): the subscriber goes with it.
    this.client.once('end', () => {
      void this.close();
    });
    const sub = this.client.duplicate({ connectionName: 'dogpile-bus' });
    this.subscriber = sub;
    let listening = false;
    const subscribe = (): void => {
      sub.subscribe(this.channel).then(
        () => {
          if (this.closed || listening) return;
          listening = true;
          listener.resumed();
        },
        () => {}, // the connection dropped again; its next 'ready' tries anew
      );
    };
    sub.on('error', () => {}); // ioredis reconnects on its own; the gap is reported on 'close'
    sub.on('close', () => {
      if (!listening) return;
      listening = false;
      listener.gap();
    });
    sub.on('ready', subscribe);
    sub.on('message', (channel: string, text: string) => {
      if (channel !== this.channel) return;
      const message = parseEnvelope(text);
      if (message !== undefined && message.writer !== this.id) listener.message(message);
    });
  }

  /** See {@link InvalidationBus.publish}. */
  async publish(message: InvalidationMessage): Promise<void> {
    const text = JSON.stringify({ ...message, writer: this.id, version: ++this.version });
    try {
      await this.client.publish(this.channel, text);
    } catch (err) {
      throw err instanceof DogpileError ? err : toBackendError(err, 'invalidation bus PUBLISH failed');
    }
  }

  /** See {@link InvalidationBus.close}. */
  async close(): Promise<void> {
    this.closed = true;
    const sub = this.subscriber;
    this.subscriber = undefined;
    // disconnect(), not QUIT: a subscriber has nothing to flush, and QUIT to a server that is gone
    // would leave ioredis reconnecting (and the process alive) for good.
    sub?.disconnect();
    if (this.ownsClient) this.client.disconnect();
  }
}

/**
 * A Redis bus over connections of its own, to `url`: for L2 stores that are not Redis (memcached,
 * file). ioredis is imported when the bus starts.
 */
export class UrlRedisBus implements InvalidationBus {
  readonly id = nodeCrypto().randomUUID();
  private inner: Promise<RedisBus> | undefined;
  private closed = false;

  constructor(
    private readonly url: string,
    private readonly channel: string,
  ) {}

  /** See {@link InvalidationBus.start}. */
  start(listener: BusListener): void {
    this.bus()
      .then((bus) => bus.start(listener))
      .catch(() => {}); // no ioredis: the bus never listens, so L1 stays bypassed
  }

  /** See {@link InvalidationBus.publish}. */
  async publish(message: InvalidationMessage): Promise<void> {
    await (await this.bus()).publish(message);
  }

  /** See {@link InvalidationBus.close}. */
  async close(): Promise<void> {
    this.closed = true;
    const inner = this.inner;
    if (inner) await (await inner.catch(() => undefined))?.close();
  }

  private bus(): Promise<RedisBus> {
    if (this.closed) return Promise.reject(new DogpileError('the invalidation bus is closed'));
    this.inner ??= (async () => {
      let mod: { Redis: typeof import('ioredis').Redis };
      try {
        mod = await import('ioredis');
      } catch (cause) {
        throw new DogpileError('l1.bus with a url needs the ioredis package: npm install ioredis', { cause });
      }
      const client = new mod.Redis(this.url, { maxRetriesPerRequest: 1, commandTimeout: 5000, connectTimeout: 5000 });
      client.on('error', () => {});
      return new RedisBus(client as unknown as RedisBusClient, { channel: this.channel, ownsClient: true, id: this.id });
    })();
    return this.inner;
  }
}

/** Checks a user-supplied bus object. */
export function checkBus(value: unknown, name: string): asserts value is InvalidationBus {
  const bus = value as Partial<InvalidationBus> | null;
  if (
    !bus ||
    typeof bus !== 'object' ||
    typeof bus.id !== 'string' ||
    typeof bus.start !== 'function' ||
    typeof bus.publish !== 'function' ||
    typeof bus.close !== 'function'
  ) {
    throw new ValidationError(
      `${name} must be false, { url, channel? } or an InvalidationBus (id, start, publish, close), got ${describe(value)}`,
    );
  }
}

function parseEnvelope(text: string): Envelope | undefined {
  let m: Record<string, unknown>;
  try {
    m = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (m === null || typeof m !== 'object' || typeof m.writer !== 'string' || typeof m.version !== 'number') return undefined;
  const strings = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');
  if (m.kind === 'keys' && strings(m.keys)) return m as unknown as Envelope;
  if (typeof m.at !== 'number' || typeof m.hard !== 'boolean') return undefined;
  if (m.kind === 'invalidate') return m as unknown as Envelope;
  if (m.kind === 'tags' && strings(m.tags)) return m as unknown as Envelope;
  return undefined;
}
