// The structural peer types (src/backends/peer-types.ts) that stand in for ioredis's and lmdb's
// in the core's declarations: real ioredis clients and lmdb databases fit them (the typecheck of
// this file fails otherwise), and every member they list exists on the real objects at run time.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Cluster, Redis } from 'ioredis';
import { open } from 'lmdb';
import type { LmdbDatabase, LmdbRootDatabase, RedisClient, RedisPipeline } from '../../src/backends/peer-types.js';
import type { RedisBackendArguments } from '../../src/index.js';

// Every member, so a member added to a type must be added here (the Record makes it exhaustive).
const REDIS_MEMBERS: Record<keyof RedisClient, true> = {
  getBuffer: true,
  mgetBuffer: true,
  set: true,
  del: true,
  exists: true,
  eval: true,
  pipeline: true,
  duplicate: true,
  subscribe: true,
  quit: true,
  disconnect: true,
  on: true,
};
const PIPELINE_MEMBERS: Record<keyof RedisPipeline, true> = { set: true, exec: true };
const DATABASE_MEMBERS: Record<keyof LmdbDatabase<Buffer, string>, true> = {
  get: true,
  put: true,
  remove: true,
  transaction: true,
  transactionSync: true,
  putSync: true,
  removeSync: true,
};
const ROOT_MEMBERS: Record<keyof LmdbRootDatabase, true> = { close: true };

function missing(object: object, members: Record<string, true>): string[] {
  return Object.keys(members).filter((m) => typeof (object as Record<string, unknown>)[m] !== 'function');
}

describe('peer types', () => {
  it('ioredis Redis and Cluster clients fit RedisClient (and the `client` argument)', async () => {
    // lazyConnect: nothing connects; the port is never dialled.
    const redis: RedisClient = new Redis({ lazyConnect: true, port: 1 });
    const cluster: RedisClient = new Cluster([{ host: '127.0.0.1', port: 1 }], { lazyConnect: true });
    const args: RedisBackendArguments[] = [{ client: new Redis({ lazyConnect: true, port: 1 }) }, { client: cluster }];
    assert.equal(args.length, 2);
    for (const client of [redis, cluster]) {
      assert.deepEqual(missing(client, REDIS_MEMBERS), []);
      assert.deepEqual(missing(client.pipeline(), PIPELINE_MEMBERS), []);
      client.disconnect();
    }
    for (const { client } of args) client?.disconnect();
  });

  it('lmdb databases fit LmdbRootDatabase and LmdbDatabase', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dogpile-peer-types-'));
    try {
      const lmdbRoot = open({ path: dir, maxDbs: 2 });
      const root: LmdbRootDatabase = lmdbRoot;
      const db: LmdbDatabase<Buffer, string> = lmdbRoot.openDB<Buffer, string>({ name: 'v', encoding: 'binary' });
      assert.deepEqual(missing(root, ROOT_MEMBERS), []);
      assert.deepEqual(missing(db, DATABASE_MEMBERS), []);
      await db.put('k', Buffer.from('v'));
      assert.equal(db.get('k')?.toString(), 'v');
      await root.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
