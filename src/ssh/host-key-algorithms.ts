// Which host key algorithms to offer a server, in which order. OpenSSH's ssh puts the algorithms
// of the key types it already knows for the host first (order_hostkeyalgs): a server with
// ed25519, ecdsa and rsa keys, known only by its ecdsa key, then presents that one. ssh2 offers a
// fixed order, and the server picks the first it has: the ed25519 key, "unknown".
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const constants = require("ssh2/lib/protocol/constants.js") as { DEFAULT_SERVER_HOST_KEY: string[] };

/** ssh2's own order (ed25519 first when the runtime has it, ecdsa, rsa-sha2, ssh-rsa). */
export const DEFAULT_HOST_KEY_ALGORITHMS: readonly string[] = Object.freeze([...constants.DEFAULT_SERVER_HOST_KEY]);

/** The signature algorithms that a key of this type (as known_hosts names it) can be checked with. */
export function algorithmsForKeyType(keyType: string): string[] {
  // An RSA key signs with SHA-2 (RFC 8332) or, on old servers, SHA-1; known_hosts says "ssh-rsa" for all three.
  if (keyType === "ssh-rsa") return ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"];
  return [keyType];
}

/**
 * The algorithms to offer: those of the key types already known for this host first, then the
 * rest, each group in `available`'s order. Nothing known: `available` unchanged. Known types this
 * client cannot check (ssh-dss, certificates) add nothing.
 */
export function orderHostKeyAlgorithms(knownKeyTypes: readonly string[], available: readonly string[] = DEFAULT_HOST_KEY_ALGORITHMS): string[] {
  const preferred = new Set(knownKeyTypes.flatMap(algorithmsForKeyType));
  const first = available.filter((a) => preferred.has(a));
  if (first.length === 0) return [...available];
  return [...first, ...available.filter((a) => !preferred.has(a))];
}
