// node:crypto and node:net, loaded on first use. Only the SHA-1 key mangler, the memcached and file
// backends and the Redis bus need them, and the main entry exports those modules, so importing
// them at the top would load both into every process that uses dogpile, a memory-only one too
// (about 0.65 MB of heap and their load time, measured from the compiled package).

import { createRequire } from 'node:module';

const load = createRequire(import.meta.url);
let crypto: typeof import('node:crypto') | undefined;
let net: typeof import('node:net') | undefined;

/** `node:crypto`, loaded by the first call. */
export function nodeCrypto(): typeof import('node:crypto') {
  crypto ??= load('node:crypto') as typeof import('node:crypto');
  return crypto;
}

/** `node:net`, loaded by the first call. */
export function nodeNet(): typeof import('node:net') {
  net ??= load('node:net') as typeof import('node:net');
  return net;
}
