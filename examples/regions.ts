// A runnable tour of regions and function wrappers on the memory backend:
//   npm run example
import { makeRegion, NO_VALUE, sha1MangleKey } from '../src/index.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// A pretend database that is slow and counts its queries.
let queries = 0;
async function loadUserFromDb(id: number) {
  queries++;
  await sleep(100);
  return { id, name: `user ${id}`, loadedAt: new Date().toISOString() };
}

// 1. Configure a region: memory backend, values stale after 2 seconds.
const users = makeRegion({ name: 'users' }).configure('memory', { expirationTime: 2, arguments: { max: 10_000 } });

// 2. get-or-create: 100 concurrent requests for a cold key run the loader once.
const many = await Promise.all(Array.from({ length: 100 }, () => users.getOrCreate('user:1', () => loadUserFromDb(1))));
console.log(`100 concurrent getOrCreate on a cold key -> ${queries} query; all equal: ${many.every((u) => u === many[0])}`);

// 3. Expiry: after 2 s the value is stale; one caller regenerates, the others get the old value at once.
await sleep(2100);
queries = 0;
const started = Date.now();
const after = await Promise.all(Array.from({ length: 100 }, () => users.getOrCreate('user:1', () => loadUserFromDb(1))));
const stale = after.filter((u) => u.loadedAt === many[0]?.loadedAt).length;
console.log(
  `expired key, 100 callers -> ${queries} regeneration, ${stale} got the stale value (${Date.now() - started} ms total)`,
);

// 4. Wrap a function: keyed by its arguments, with helpers that address the same entries.
const getUser = users.cacheOnArguments({ namespace: 'v1', expirationTime: 60 })(async function getUser(id: number) {
  return loadUserFromDb(id);
});
queries = 0;
await getUser(7);
await getUser(7);
console.log(`getUser(7) twice -> ${queries} query; its key is ${JSON.stringify(getUser.key(7))}`);
await getUser.invalidate(7);
console.log(`after getUser.invalidate(7), getUser.get(7) is NO_VALUE: ${(await getUser.get(7)) === NO_VALUE}`);

// 5. Multi: one call for only the missing ids.
const getUsers = users.cacheMultiOnArguments()(async function getUsers(...ids: number[]) {
  console.log(`  loading ids ${ids.join(', ')} in one call`);
  return Promise.all(ids.map(loadUserFromDb));
});
await getUsers(1, 2, 3);
await getUsers(2, 3, 4);

// 6. Region invalidation: soft serves the old value while one caller regenerates.
await users.invalidate({ hard: false });
console.log('soft-invalidated; next read regenerates once while others see the old value');

// 7. A hashed-key region (keys safe for memcached's 250-byte limit).
const hashed = makeRegion({ keyMangler: sha1MangleKey }).configure('memory');
await hashed.set('a very long key '.repeat(30), 'ok');
console.log(`hashed key read back: ${await hashed.get('a very long key '.repeat(30))}`);
