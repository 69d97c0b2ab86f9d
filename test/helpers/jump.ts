// Jump-host helpers for tests: which process holds the TCP connections to a server, and what an
// sshd at LogLevel DEBUG1 says about the direct-tcpip channels it opened.
import { execFileSync } from "node:child_process";
import type { Sshd } from "./sshd.ts";

/** Pids of the processes holding established TCP connections to 127.0.0.1:`port` (their client side). */
export function clientPidsOf(port: number): number[] {
  const out = execFileSync("ss", ["-tnpH", "state", "established", `( dport = :${port} )`], { encoding: "utf8" });
  return [...out.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1]));
}

/** The direct-tcpip channels `hop` opened to 127.0.0.1:`port` (sshd logs each at DEBUG1). */
export function directTcpipTo(hop: Sshd, port: number): number {
  const line = new RegExp(`server_request_direct_tcpip: originator \\S+ port \\d+, target 127\\.0\\.0\\.1 port ${port}\\b`, "g");
  return [...hop.logs().matchAll(line)].length;
}

/** Successful logins on `sshd` (each is one SSH session). */
export function loginsOn(sshd: Sshd): number {
  return [...sshd.logs().matchAll(/Accepted publickey for /g)].length;
}

/** A known_hosts that pins `as`'s host key for `server`'s address: a mismatch for `server`. */
export function wrongKnownHosts(server: Sshd, as: Sshd): string {
  return `[127.0.0.1]:${server.port} ${as.hostPublicKey}\n`;
}
