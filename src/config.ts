// configure() options, and configureFromConfig: reads a flat config object (process.env, an ini
// file) into configure() options, coercing string values.

import { describe, ValidationError } from './api.js';
import { ProxyBackend } from './backends/base.js';
import type { RegionInvalidationStrategy } from './invalidation.js';

/** A proxy class (instantiated with no arguments) or instance, for `configure({ wrap })`. */
export type ProxySpec = ProxyBackend | (new () => ProxyBackend);

/** Options of `CacheRegion.configure`. */
export interface ConfigureOptions {
  /** Seconds until a value is stale. `null`, absent or `-1`: never. `0`: always. */
  expirationTime?: number | null;
  /** Passed to the backend factory; never mutated. */
  arguments?: Readonly<Record<string, unknown>>;
  /** Proxies around the backend; the first is the outermost. */
  wrap?: readonly ProxySpec[];
  /** Allows configuring a region that already has a backend. */
  replaceExistingBackend?: boolean;
  /** Custom invalidation (for example one shared through the backend). */
  regionInvalidator?: RegionInvalidationStrategy;
}

/** A {@link ProxySpec} as an instance. */
export function toProxy(spec: ProxySpec): ProxyBackend {
  if (spec instanceof ProxyBackend) return spec;
  if (typeof spec === 'function' && spec.prototype instanceof ProxyBackend) return new spec();
  throw new ValidationError(`wrap: ${describe(spec)} is not a ProxyBackend class or instance`);
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

/** `redis_expiration_time` and `REDIS_EXPIRATION_TIME` → `redisExpirationTime`. */
function camelCase(name: string): string {
  if (!name.includes('_')) return name;
  return name.toLowerCase().replace(/_+([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

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
      args[camelCase(argMatch[1] as string)] = coerceValue(rawValue);
      continue;
    }
    switch (camelCase(rest).toLowerCase()) {
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
        break;
    }
  }
  if (typeof backend !== 'string' || backend.length === 0) {
    throw new ValidationError(`configureFromConfig: no backend under ${JSON.stringify(`${base}backend`)}`);
  }
  options.arguments = args;
  return { backend, options };
}
