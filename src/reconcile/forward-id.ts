// Forward identity and session identity. SPEC §2: a local forward is identified by
// (bindAddress, localPort), a remote forward by (bindAddress, remotePort); everything else about
// a forward is an in-place change. A session is identified by the fields it was opened with.
import { canonicalJson } from "../manifest/canonical-json.ts";
import type { LocalForwardSpec, RemoteForwardSpec, TunnelSpec } from "../manifest/types.ts";
import type { ForwardId, ForwardKind } from "./types.ts";

/** `host:port`, with an IPv6 literal bracketed (`[::1]:8080`) so the port stays unambiguous. */
export function formatHostPort(host: string, port: number): string {
  const bracketed = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
  return `${bracketed}:${port}`;
}

/** `local/127.0.0.1:8080`, `local/[::1]:8080`; a dynamic (SOCKS) forward: `dynamic/127.0.0.1:1080`. */
export function localForwardId(forward: Pick<LocalForwardSpec, "bindAddress" | "localPort"> & { socks?: unknown; localPath?: string | undefined }): ForwardId {
  if (forward.localPath !== undefined) return `local/unix:${forward.localPath}`;
  return `${forward.socks !== undefined ? "dynamic" : "local"}/${formatHostPort(forward.bindAddress, forward.localPort)}`;
}

/** `remote/127.0.0.1:9000`; a server-chosen port keeps the spec's 0: `remote/127.0.0.1:0`. */
export function remoteForwardId(forward: Pick<RemoteForwardSpec, "bindAddress" | "remotePort"> & { remotePath?: string | undefined }): ForwardId {
  if (forward.remotePath !== undefined) return `remote/unix:${forward.remotePath}`;
  return `remote/${formatHostPort(forward.bindAddress, forward.remotePort)}`;
}

/** For people: `local/127.0.0.1:8080` → `local 127.0.0.1:8080` (used in condition messages). */
export function describeForwardId(id: ForwardId): string {
  return id.replace("/", " ");
}

/** Total order over forwards: kind, then bind address, then port as a number (8080 before 10000). */
export function compareForwardKeys(
  a: { kind: ForwardKind; bindAddress: string; port: number },
  b: { kind: ForwardKind; bindAddress: string; port: number },
): number {
  if (a.kind !== b.kind) return a.kind < b.kind ? -1 : 1;
  if (a.bindAddress !== b.bindAddress) return a.bindAddress < b.bindAddress ? -1 : 1;
  return a.port - b.port;
}

/**
 * Canonical string over the session-level fields only: host, port, username, auth, hostKey,
 * keepalive and the jump hosts (a hop added, removed or edited replaces the session). Forwards, reconnect and suspend are excluded — changing them never replaces the
 * session. Object keys are sorted and undefined fields dropped, so two specs that mean the same
 * session give the same key; `hostKey.fingerprints` is a set of pins, so its order is ignored.
 */
export function sessionKey(spec: TunnelSpec): string {
  return canonicalJson({
    host: spec.host,
    port: spec.port,
    username: spec.username,
    auth: spec.auth,
    hostKey: { ...spec.hostKey, fingerprints: [...spec.hostKey.fingerprints].sort() },
    keepalive: spec.keepalive,
    ...(spec.jump ? { jump: spec.jump.map((hop) => ({ ...hop, hostKey: { ...hop.hostKey, fingerprints: [...hop.hostKey.fingerprints].sort() } })) } : {}),
  });
}
