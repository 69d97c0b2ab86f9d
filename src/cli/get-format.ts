// Rendering status documents for people: the `get` table, its wide form and the demo's view.
// Pure: the clock is passed in.
import { parseDuration } from "../manifest/duration.ts";
import type { DynamicForwardStatus, LocalForwardStatus, RemoteForwardStatus, TunnelStatusDoc } from "../status/index.ts";

/** A status not confirmed for this many of its confirm intervals is stale (kubectl: node NotReady/Unknown). */
export const STALE_AFTER_INTERVALS = 3;

export interface TableOptions {
  /** Now, in ms since the epoch, for the AGE column. */
  now: number;
  /** Add RECONNECTS, SERVER, VIA (the jump hosts) and MANIFEST, and a second table with one row per forward. */
  wide?: boolean;
  /** Show AGE (the demo leaves it out: the table is reprinted only when it changes). */
  age?: boolean;
}

export function renderTunnels(docs: readonly TunnelStatusDoc[], options: TableOptions): string {
  const wide = options.wide ?? false;
  const age = options.age ?? true;
  const header = ["NAME", "PHASE", "SESSION", "FORWARDS", ...(age ? ["AGE"] : []), ...(wide ? ["RECONNECTS", "SERVER", "VIA", "MANIFEST"] : []), "MESSAGE"];
  const rows = docs.map((doc) => {
    const { status } = doc;
    const stale = staleFor(doc, options.now);
    return [
      doc.metadata.name,
      stale === undefined ? status.phase : "Unknown",
      status.session.state,
      summarizeForwards(doc),
      ...(age ? [ageOf(doc, options.now)] : []),
      ...(wide ? [String(status.session.reconnects), status.session.serverVersion || "-", viaOf(doc), doc.metadata.manifest] : []),
      stale === undefined ? messageOf(doc) : staleMessage(doc, stale),
    ];
  });
  const tunnels = formatTable([header, ...rows]);
  return wide ? `${tunnels}\n${renderForwards(docs)}` : tunnels;
}

/**
 * One row per forward: where it listens, where it leads, its state and traffic. `compact` (the
 * demo's view) leaves out the explanations in brackets so that a row fits 80 columns.
 */
export function renderForwards(docs: readonly TunnelStatusDoc[], options: { compact?: boolean } = {}): string {
  const header = ["TUNNEL", "KIND", "LISTEN", "TARGET", "STATE", "CONNS", "IN", "OUT", "MESSAGE"];
  const compact = options.compact ?? false;
  const rows = docs.flatMap((doc) => [
    ...doc.status.forwards.local.map((forward) => localRow(doc.metadata.name, forward, compact)),
    ...doc.status.forwards.remote.map((forward) => remoteRow(doc.metadata.name, forward, compact)),
    ...(doc.status.forwards.dynamic ?? []).map((forward) => dynamicRow(doc.metadata.name, forward, compact)),
  ]);
  if (rows.length === 0) return "No forwards.\n";
  return formatTable([header, ...rows], compact ? 2 : 3);
}

function localRow(tunnel: string, forward: LocalForwardStatus, compact: boolean): string[] {
  return [
    tunnel,
    "local",
    forward.localPath !== undefined ? `unix:${forward.localPath}` : hostPort(forward.bindAddress, forward.localPort),
    forward.remotePath !== undefined
      ? `unix:${forward.remotePath}${compact ? "" : " (on the server)"}`
      : `${hostPort(forward.remoteHost, forward.remotePort)}${compact ? "" : " (from server)"}`,
    ...trafficColumns(forward),
  ];
}

function remoteRow(tunnel: string, forward: RemoteForwardStatus, compact: boolean): string[] {
  const listen =
    forward.remotePath !== undefined
      ? `unix:${forward.remotePath}`
      : forward.remotePort !== 0
      ? hostPort(forward.bindAddress, forward.remotePort)
      : forward.boundPort !== undefined
        ? `${hostPort(forward.bindAddress, forward.boundPort)}${compact ? "" : " (port 0: chosen by server)"}`
        : `${hostPort(forward.bindAddress, 0)}${compact ? "" : " (not bound yet)"}`;
  const target = forward.localPath !== undefined ? `unix:${forward.localPath}` : hostPort(forward.localHost, forward.localPort);
  return [tunnel, "remote", `server ${listen}`, target, ...trafficColumns(forward)];
}

function dynamicRow(tunnel: string, forward: DynamicForwardStatus, compact: boolean): string[] {
  const allow = forward.allow === undefined ? "any (SOCKS)" : compact ? "allow list" : `SOCKS: ${forward.allow.join(", ")}`;
  return [tunnel, "dynamic", hostPort(forward.bindAddress, forward.localPort), allow, ...trafficColumns(forward)];
}

function trafficColumns(forward: LocalForwardStatus | RemoteForwardStatus | DynamicForwardStatus): string[] {
  return [
    forward.state,
    `${forward.activeConnections}/${forward.totalConnections}`,
    formatBytes(forward.bytesIn),
    formatBytes(forward.bytesOut),
    forward.message,
  ];
}

/** The jump hosts in order, `bastion-a:22 > bastion-b:22`, or "-" for a direct session. */
export function viaOf(doc: TunnelStatusDoc): string {
  const via = doc.status.session.via ?? [];
  return via.length === 0 ? "-" : via.map((hop) => hostPort(hop.host, hop.port)).join(" > ");
}

/** "2/2 active", or "-" for a tunnel without forwards. */
export function summarizeForwards(doc: TunnelStatusDoc): string {
  const all = [...doc.status.forwards.local, ...doc.status.forwards.remote, ...(doc.status.forwards.dynamic ?? [])];
  if (all.length === 0) return "-";
  return `${all.filter((forward) => forward.state === "Active").length}/${all.length} active`;
}

/**
 * How long a status document has gone unconfirmed, when that is longer than STALE_AFTER_INTERVALS
 * of its confirm intervals (no controller keeps it up to date); undefined when it is live, was
 * written by a controller that stopped cleanly (phase Stopped says so), or carries no heartbeat.
 */
export function staleFor(doc: TunnelStatusDoc, now: number): number | undefined {
  const { confirmedAt, confirmInterval, phase } = doc.status;
  if (phase === "Stopped" || confirmedAt === undefined || confirmInterval === undefined) return undefined;
  const at = Date.parse(confirmedAt);
  let interval: number;
  try {
    interval = parseDuration(confirmInterval);
  } catch {
    return undefined;
  }
  if (Number.isNaN(at)) return undefined;
  const age = now - at;
  return age > STALE_AFTER_INTERVALS * interval ? age : undefined;
}

function staleMessage(doc: TunnelStatusDoc, age: number): string {
  return `status not confirmed for ${formatAge(age)} (it last said ${doc.status.phase}): is the controller running?`;
}

/** The one thing an operator should read first: the error, else what holds the tunnel back. */
export function messageOf(doc: TunnelStatusDoc): string {
  const { status } = doc;
  const [firstError] = status.errors;
  if (firstError !== undefined) {
    return status.errors.length > 1 ? `${firstError} (and ${status.errors.length - 1} more)` : firstError;
  }
  if (status.phase === "Stopped") return status.conditions.find((c) => c.type === "Ready")?.message ?? "tunnelctl stopped";
  const synced = status.conditions.find((c) => c.type === "Synced" && c.status === "False");
  if (synced !== undefined) return `${synced.reason}: ${synced.message}`;
  if (status.session.lastError !== "") return status.session.lastError;
  const local = status.forwards.local.find((forward) => forward.state !== "Active");
  if (local !== undefined) return `local ${hostPort(local.bindAddress, local.localPort)}: ${describeState(local)}`;
  const remote = status.forwards.remote.find((forward) => forward.state !== "Active");
  if (remote !== undefined) return `remote ${hostPort(remote.bindAddress, remote.remotePort)}: ${describeState(remote)}`;
  const dynamic = (status.forwards.dynamic ?? []).find((forward) => forward.state !== "Active" || forward.message !== "");
  if (dynamic !== undefined) return `dynamic ${hostPort(dynamic.bindAddress, dynamic.localPort)}: ${describeState(dynamic)}`;
  const unhappy = status.conditions.find((condition) => condition.status !== "True" && condition.message !== "");
  return unhappy?.message ?? "";
}

function describeState(forward: LocalForwardStatus | RemoteForwardStatus | DynamicForwardStatus): string {
  return forward.message === "" ? forward.state : `${forward.state}: ${forward.message}`;
}

/** How long the session has been connected, like kubectl's AGE: 45s, 12m, 3h, 2d. */
export function ageOf(doc: TunnelStatusDoc, now: number): string {
  const since = Date.parse(doc.status.session.connectedSince);
  if (doc.status.session.state !== "Connected" || Number.isNaN(since)) return "-";
  return formatAge(Math.max(0, now - since));
}

export function formatAge(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 120) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h`;
  return `${Math.floor(hours / 24)}d`;
}

export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value}B` : `${value.toFixed(1)}${units[unit]}`;
}

/** `host:port`, with brackets around an IPv6 address. */
export function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Every line cut to `width` characters, the cut marked with an ellipsis (the message column is last). */
export function fitLines(text: string, width: number): string {
  return text
    .split("\n")
    .map((line) => (line.length > width ? `${line.slice(0, Math.max(0, width - 1))}…` : line))
    .join("\n");
}

/** Columns padded to their widest cell, `gap` (three) spaces apart; no trailing spaces. */
export function formatTable(rows: readonly (readonly string[])[], gap = 3): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, index) => (widths[index] = Math.max(widths[index] ?? 0, cell.length)));
  const lines = rows.map((row) =>
    row
      .map((cell, index) => (index === row.length - 1 ? cell : cell.padEnd(widths[index] ?? 0)))
      .join(" ".repeat(gap))
      .trimEnd(),
  );
  return `${lines.join("\n")}\n`;
}
