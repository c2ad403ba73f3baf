// A private redis-server for one test file: started before its tests, stopped after them, with a
// raw ioredis client to look at what the backend stored.
import { after, before } from 'node:test';
import { Redis } from 'ioredis';
import { type ServerProcess, startRedis } from './servers.js';

/** The file's server and raw client (available once its `before` hook has run). */
export interface PrivateRedis {
  readonly server: ServerProcess;
  readonly raw: Redis;
  /** `redis://127.0.0.1:<port>` of the server. */
  url(): string;
}

/** Registers `before` / `after` hooks that start and stop a private redis-server. */
export function privateRedis(): PrivateRedis {
  let server: ServerProcess | undefined;
  let raw: Redis | undefined;
  before(async () => {
    server = await startRedis();
    raw = new Redis(server.port, '127.0.0.1');
  });
  after(async () => {
    raw?.disconnect();
    await server?.stop();
  });
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the private redis-server is not started yet (use it inside a test)');
    return value;
  };
  return {
    get server() {
      return started(server);
    },
    get raw() {
      return started(raw);
    },
    url: () => `redis://127.0.0.1:${started(server).port}`,
  };
}
