// A route: how to reach an SSH server — directly over TCP, or through jump hosts (OpenSSH
// ProxyJump). Pure: a TunnelSpec → the endpoints to dial in order, their keys and their names.
import { canonicalJson } from "../../manifest/canonical-json.ts";
import type { TunnelSpec } from "../../manifest/types.ts";
import type { ConnectionOptions } from "../connection.ts";
import { formatHostPort } from "../errors.ts";

/** One SSH server on the way: what SshConnection.open needs to log in to it. */
export type Endpoint = ConnectionOptions;

export interface Route {
  /** Jump hosts in order: hop 1 over TCP, each next one through a direct-tcpip channel of the previous. */
  hops: Endpoint[];
  /** The server the session is for, reached through the last hop (or over TCP without hops). */
  target: Endpoint;
}

/** What the status says about one hop of a live session. */
export interface HopInfo {
  host: string;
  port: number;
  hostKeyFingerprint: string;
}

/** A tunnel's route: its hops (each with the tunnel's keepalive and connect timeout) and the target. */
export function routeOf(spec: TunnelSpec): Route {
  const common = {
    keepalive: spec.keepalive,
    ...(spec.connectTimeout !== undefined ? { readyTimeout: spec.connectTimeout } : {}),
    // A hop's channel carries the whole inner session: its receive window is tuned alike.
    ...(spec.transport !== undefined ? { maxWindow: spec.transport.maxWindow } : {}),
  };
  return {
    hops: (spec.jump ?? []).map((hop) => ({ host: hop.host, port: hop.port, username: hop.username, auth: hop.auth, hostKey: hop.hostKey, ...common })),
    target: { host: spec.host, port: spec.port, username: spec.username, auth: spec.auth, hostKey: spec.hostKey, ...common },
  };
}

/**
 * Identity of the session to hops[0..index] (inclusive): two routes whose first hops are the same
 * servers with the same credentials and checks can ride one hop session.
 */
export function hopChainKey(hops: readonly Endpoint[], index: number): string {
  return canonicalJson(
    hops.slice(0, index + 1).map((hop) => ({
      host: hop.host,
      port: hop.port ?? 22,
      username: hop.username,
      auth: hop.auth,
      hostKey: hop.hostKey ? { ...hop.hostKey, fingerprints: [...(hop.hostKey.fingerprints ?? [])].sort() } : undefined,
      keepalive: hop.keepalive,
      readyTimeout: hop.readyTimeout,
    })),
  );
}

/** `hop 2 (bastion-b.example:22)`: how every message names a hop (1-based). */
export function hopLabel(index: number, hop: Pick<Endpoint, "host" | "port">): string {
  return `hop ${index + 1} (${formatHostPort(hop.host, hop.port ?? 22)})`;
}
