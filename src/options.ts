// The option names makeRegion(), configure() and the function wrappers accept, so that a misspelled option
// (`expirationTme`, `keyManglr`) is a ValidationError at the call instead of being ignored (a
// misspelled expiration would mean values never expire). A new option must be added here.

import { checkKnownNames } from './validate.js';

/**
 * Options of makeRegion(): today's, plus the names of the resilience, two-tier and tag features
 * (API.md's second round, and `backendTimeout` / `tagRefreshInterval` of their branches).
 */
export const REGION_OPTION_NAMES: readonly string[] = [
  'name',
  'functionKeyGenerator',
  'functionMultiKeyGenerator',
  'keyMangler',
  'serializer',
  'asyncCreationRunner',
  'backgroundRefresh',
  'lockWaitTimeout',
  'failOpen',
  'onError',
  'clock',
  'failSafe',
  'softTimeout',
  'hardTimeout',
  'breaker',
  'earlyRefresh',
  'l1',
  'backendTimeout',
  'tagRefreshInterval',
];

/** Options of region.configure(). */
export const CONFIGURE_OPTION_NAMES: readonly string[] = [
  'expirationTime',
  'arguments',
  'wrap',
  'replaceExistingBackend',
  'regionInvalidator',
  'l1',
];

/** Options of cacheOnArguments(), including the per-wrapper resilience and tag options. */
export const WRAPPER_OPTION_NAMES: readonly string[] = [
  'namespace',
  'expirationTime',
  'shouldCacheFn',
  'toStr',
  'functionKeyGenerator',
  'failSafe',
  'softTimeout',
  'hardTimeout',
  'tags',
  'earlyRefresh',
];

/** Options of cacheMultiOnArguments(). */
export const MULTI_WRAPPER_OPTION_NAMES: readonly string[] = [
  // Early refresh is single-key only: a multi wrapper rejects it (a ValidationError, not ignored).
  ...WRAPPER_OPTION_NAMES.filter((n) => n !== 'functionKeyGenerator' && n !== 'earlyRefresh'),
  'asDict',
  'functionMultiKeyGenerator',
];

/** Throws a ValidationError naming the first option of makeRegion() that does not exist. */
export function checkRegionOptionNames(options: object): void {
  checkKnownNames('makeRegion', 'option', options, REGION_OPTION_NAMES);
}

/** Throws a ValidationError naming the first option of configure() that does not exist. */
export function checkConfigureOptionNames(options: object): void {
  checkKnownNames('configure', 'option', options, CONFIGURE_OPTION_NAMES);
}
