// Type-level tests, checked by `npm run typecheck` (never run): every `@ts-expect-error` line must
// fail to compile, and every other line must compile. A misspelled backend argument, a shouldCacheFn
// that does not fit the wrapped function, and a record preset for numeric arguments are caught
// before the code runs. (Issue 13.)
import {
  type BackendArgumentsMap,
  type CacheBackend,
  type CachedValue,
  MemoryBackend,
  makeRegion,
  NO_VALUE,
  ProxyBackend,
} from '../../src/index.js';

const region = makeRegion();
const again = { replaceExistingBackend: true } as const;

// --- configure: arguments typed per built-in backend name --------------------------------------
region.configure('redis', { arguments: { url: 'redis://127.0.0.1:6379', redisOptions: { connectionName: 'web' } } });
// @ts-expect-error misspelled argument (url)
region.configure('redis', { ...again, arguments: { ulr: 'redis://127.0.0.1:6379' } });
region.configure('memory', { ...again, arguments: { max: 10 } });
// @ts-expect-error misspelled argument (max)
region.configure('memory', { ...again, arguments: { maxx: 10 } });
// @ts-expect-error wrong type for a known argument
region.configure('memcached', { ...again, arguments: { servers: 11211 } });
region.configure('memcached', { ...again, arguments: { servers: ['127.0.0.1:11211'], poolSize: 2, deadRetry: 1.5 } });
// @ts-expect-error url is not a redis-cluster argument (nodes are)
region.configure('redis-cluster', { ...again, arguments: { url: 'redis://x' } });
region.configure('redis-cluster', {
  ...again,
  arguments: { nodes: ['127.0.0.1:7000'], clusterOptions: { scaleReads: 'slave' } },
});
region.configure('redis-sentinel', { ...again, arguments: { sentinels: ['127.0.0.1:26379'], name: 'mymaster' } });
// @ts-expect-error the null backend takes no arguments
region.configure('null', { ...again, arguments: { max: 1 } });
region.configure('file', { ...again, arguments: { path: '/tmp/cache.mdb', lockTimeout: 0.5 } });
const misspelled = { ulr: 'redis://x' };
// @ts-expect-error a variable with a misspelled argument is caught too
region.configure('redis', { ...again, arguments: misspelled });
// @ts-expect-error misspelled configure option
region.configure('memory', { ...again, expirationTme: 5 });

// Module specifiers, names held in a string, and instances keep a loose type.
region.configure('my-backend-package', { ...again, arguments: { anything: 1 } });
const fromEnv: string = 'redis';
region.configure(fromEnv, { ...again, arguments: { anything: 1 } });
const instance: CacheBackend = new MemoryBackend();
region.configure(instance, { ...again, wrap: [ProxyBackend, new ProxyBackend()] });

const redisArgs: BackendArgumentsMap['redis'] = { url: 'redis://x', lockTimeout: 1.5 };
void redisArgs;

// --- cacheOnArguments: shouldCacheFn typed from the wrapped function's result ------------------
interface Row {
  id: number;
}
const loadRows = async (_q: string): Promise<Row[]> => [];

// Unannotated, as the README writes it: compiles.
region.cacheOnArguments({ shouldCacheFn: (rows) => rows.length > 0 })(loadRows);
// Annotated: the wrapped function is checked against it.
const cached = region.cacheOnArguments({ shouldCacheFn: (rows: Row[]) => rows.length > 0 })(loadRows);
const rows: Promise<Row[]> = cached('q');
void rows;
// @ts-expect-error the function resolves to Row[], not string[]
region.cacheOnArguments({ shouldCacheFn: (names: string[]) => names.length > 0 })(loadRows);
region.cacheOnArguments({ shouldCacheFn: (n: number) => n > 0 })(async () => 1);
region.cacheOnArguments({ shouldCacheFn: (n: number) => n > 0 })(() => 1);

// --- cacheMultiOnArguments.set: records only for string arguments -----------------------------
const byId = region.cacheMultiOnArguments()(async (...ids: number[]) => ids.map((id) => ({ id })));
void byId.set(new Map([[1, { id: 1 }]]));
// @ts-expect-error a record's keys are strings: it would address byId("1"), not byId(1)
void byId.set({ 1: { id: 1 } });
const byName = region.cacheMultiOnArguments()(async (...names: string[]) => names);
void byName.set({ ann: 'x' });
void byName.set(new Map([['ann', 'x']]));
region.cacheMultiOnArguments({ shouldCacheFn: (v: string) => v !== '' })(async (...names: string[]) => names);
// @ts-expect-error the function's values are strings, not numbers
region.cacheMultiOnArguments({ shouldCacheFn: (v: number) => v > 0 })(async (...names: string[]) => names);

// --- misc ------------------------------------------------------------------------------------
// @ts-expect-error misspelled region option
makeRegion({ keyManglr: (k: string) => k });
const stored: CachedValue | typeof NO_VALUE = NO_VALUE;
void stored;

// --- a third-party backend registered by declaration merging ---------------------------------
declare module '../../src/index.js' {
  interface BackendArgumentsMap {
    'map-backend': { size?: number };
  }
}
region.configure('map-backend', { ...again, arguments: { size: 1 } });
// @ts-expect-error a merged backend's arguments are checked too
region.configure('map-backend', { ...again, arguments: { sise: 1 } });
