// configure() options, and configureFromConfig: reads a flat config object (process.env, an ini
// file) into configure() options, coercing string values.

import { describe, ValidationError } from './api.js';
import type { RegionInvalidationStrategy } from './invalidation.js';
import type { ProxySpec } from './proxies.js';
import type { L1Options } from './tiered.js';

/**
 * Options of `CacheRegion.configure`. `A` is the backend's arguments type: for a built-in backend
 * name it comes from `BackendArgumentsMap`, so a misspelled argument fails typecheck.
 */
export interface ConfigureOptions<A extends object = Readonly<Record<string, unknown>>> {
  /** Seconds until a value is stale. `null`, absent or `-1`: never. `0`: always. */
  expirationTime?: number | null;
  /** Passed to the backend factory; never mutated. An argument the backend does not know is a ValidationError. */
  arguments?: Readonly<A>;
  /** Proxies around the backend; the first is the outermost. Default none. */
  wrap?: readonly ProxySpec[];
  /** Allows configuring a region that already has a backend. Default false. */
  replaceExistingBackend?: boolean;
  /**
   * Custom invalidation (for example one shared through the backend). Default: a process-local
   * `DefaultInvalidationStrategy`.
   */
  regionInvalidator?: RegionInvalidationStrategy;
  /** An in-process memory tier in front of this backend (overrides the region's `l1`). Default: the region's. */
  l1?: L1Options;
}

const INT = /^[-+]?\d+$/;
const FLOAT = /^[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?$/;

/** Coerces one config string: numbers, booleans, null/None, JSON arrays and objects. */
export function coerceValue(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const text = value.trim();
  if (INT.test(text) || FLOAT.test(text)) return Number(text);
  const lower = text.toLowerCase();
  if (lower === 'true') return true;
  if (lower === 'false') return false;
  if (lower === 'none' || lower === 'null') return null;
  if ((text.startsWith('[') && text.endsWith(']')) || (text.startsWith('{') && text.endsWith('}'))) {
    try {
      return JSON.parse(text);
    } catch {}
  }
  return value;
}

/**
 * A config name as the camelCase name the code uses. The rule, the same for every name:
 * - a name with no lower-case letter is environment style (`URL`, `MAX`, `LOCK_TIMEOUT`): it is
 *   lower-cased, then each `_x` becomes `X` (`url`, `max`, `lockTimeout`);
 * - a name with `_` is snake case (`redis_expiration_time`, `Lock_Timeout`): the same;
 * - any other name is taken as written (`lockTimeout`, `maxSize`).
 */
export function configName(name: string): string {
  if (name.includes('_') || !/[a-z]/.test(name)) {
    return name.toLowerCase().replace(/_+([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
  }
  return name;
}

const CONFIG_KEYS = ['backend', 'expiration_time', 'replace_existing_backend', 'arguments.<name>'];

/** Extracts `{ backend, options }` for configure() from the keys under `prefix`. */
export function coerceConfig(
  config: Readonly<Record<string, unknown>>,
  prefix: string,
): { backend: string; options: ConfigureOptions } {
  if (config === null || typeof config !== 'object') {
    throw new ValidationError(`configureFromConfig: config must be an object, got ${describe(config)}`);
  }
  if (typeof prefix !== 'string') {
    throw new ValidationError(`configureFromConfig: prefix must be a string, got ${describe(prefix)}`);
  }
  const base = prefix === '' || /[._]$/.test(prefix) ? prefix : `${prefix}.`;
  const args: Record<string, unknown> = {};
  const options: ConfigureOptions = {};
  let backend: unknown;
  for (const [rawKey, rawValue] of Object.entries(config)) {
    if (!rawKey.startsWith(base)) continue;
    const rest = rawKey.slice(base.length);
    const argMatch = /^arguments[._](.+)$/i.exec(rest);
    if (argMatch) {
      const name = configName(argMatch[1] as string);
      if (Object.hasOwn(args, name)) {
        throw new ValidationError(`configureFromConfig: ${JSON.stringify(rawKey)} sets the argument ${name} a second time`);
      }
      args[name] = coerceValue(rawValue);
      continue;
    }
    switch (configName(rest).toLowerCase()) {
      case 'backend':
        backend = rawValue;
        break;
      case 'expirationtime':
        options.expirationTime = coerceValue(rawValue) as number | null;
        break;
      case 'replaceexistingbackend':
        options.replaceExistingBackend = coerceValue(rawValue) === true;
        break;
      default:
        throw new ValidationError(
          `configureFromConfig: unknown key ${JSON.stringify(rawKey)} under the prefix ${JSON.stringify(base)} (known: ${CONFIG_KEYS.map((k) => base + k).join(', ')}); give the region a prefix of its own (for example CACHE_USERS_)`,
        );
    }
  }
  if (typeof backend !== 'string' || backend.length === 0) {
    throw new ValidationError(`configureFromConfig: no backend under ${JSON.stringify(`${base}backend`)}`);
  }
  options.arguments = args;
  return { backend, options };
}
