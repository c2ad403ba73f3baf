// Turning `wrap` entries into proxy instances, and keeping one proxy instance to one region: a
// ProxyBackend forwards to the one backend it wraps, so a second region wrapping the same instance
// would silently re-point it, and the first region would read the second one's data.

import { describe, ValidationError } from './api.js';
import { ProxyBackend } from './backends/base.js';

/** A proxy class (instantiated with no arguments) or instance, for `configure({ wrap })`. */
export type ProxySpec = ProxyBackend | (new () => ProxyBackend);

/** Which region each proxy instance serves. */
const owners = new WeakMap<ProxyBackend, object>();

/**
 * The proxy for `spec`: the instance itself, or a new instance of a ProxyBackend class (the bare
 * `ProxyBackend` class included: it is a pass-through). An instance already serving another region
 * is a ValidationError. Nothing is recorded until {@link claimProxies}.
 */
export function toProxy(spec: unknown, owner: object): ProxyBackend {
  if (spec instanceof ProxyBackend) {
    const current = owners.get(spec);
    if (current !== undefined && current !== owner) {
      throw new ValidationError(
        `wrap: this ${spec.constructor.name} instance already wraps another region's backend; one proxy instance forwards to one backend, so give each region its own instance (or pass the class, which makes one per region)`,
      );
    }
    return spec;
  }
  if (typeof spec === 'function' && (spec === ProxyBackend || spec.prototype instanceof ProxyBackend)) {
    return new (spec as new () => ProxyBackend)();
  }
  throw new ValidationError(`wrap: ${describe(spec)} is not a ProxyBackend class or instance`);
}

/** Records that `proxies` now serve `owner`. */
export function claimProxies(proxies: readonly ProxyBackend[], owner: object): void {
  for (const p of proxies) owners.set(p, owner);
}
