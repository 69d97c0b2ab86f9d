// What a status file records of a session's settings: 12 hex digits of SHA-256 over sessionKey()
// (host, port, user, auth, host key, keepalive: paths and names, never a secret), enough for
// `tunnelctl diff` to tell whether a manifest would replace the session.
import { createHash } from "node:crypto";

export function configHash(sessionKey: string): string {
  return createHash("sha256").update(sessionKey).digest("hex").slice(0, 12);
}
