// `tunnelctl diff DIR [--against OTHERDIR]`: what `run` would do if DIR were what it watches —
// against the running state its status files record, or against another manifest tree (CI on a
// pull request: base vs head). Exit codes as `kubectl diff`: 0 no change, 1 changes, 2 errors.
// Reads files only; never connects anywhere.
import os from "node:os";
import type { LocalForwardSpec, Tunnel } from "../manifest/index.ts";
import { diffTunnels, observedFromSpec, type ActualEntry, type DesiredEntry, type TunnelChange } from "../reconcile/diff.ts";
import { formatHostPort, sessionKey } from "../reconcile/forward-id.ts";
import type { Action, ObservedTunnel } from "../reconcile/types.ts";
import { configHash } from "../status/config-hash.ts";
import type { TunnelStatusDoc } from "../status/index.ts";
import type { CliOutput } from "./exit-codes.ts";
import { displayPathOf } from "./manifest-files.ts";
import { loadManifestTree } from "./manifest-tree.ts";
import { readStatusTree } from "./status-files.ts";
import { count } from "./validate.ts";

export const EXIT_NO_CHANGES = 0;
export const EXIT_CHANGES = 1;
export const EXIT_DIFF_ERROR = 2;

export interface DiffOptions {
  dir: string;
  /** Compare with this manifest tree instead of the running state. */
  against?: string | undefined;
  /** Where the running controller writes status files (as `run --status-dir`); default DIR. */
  statusDir?: string | undefined;
  output: "text" | "json";
  homeDir?: string;
}

export async function runDiff(options: DiffOptions, output: CliOutput): Promise<number> {
  const homeDir = options.homeDir ?? os.homedir();
  const head = await loadManifestTree([options.dir], homeDir);
  const base = options.against !== undefined ? await loadManifestTree([options.against], homeDir) : undefined;
  const errors = [...head.errors, ...(base?.errors ?? [])];
  const status = base === undefined ? await readStatusTree(options.statusDir ?? options.dir) : undefined;
  errors.push(...(status?.problems ?? []));
  if (errors.length > 0) {
    if (options.output === "json") output.out(`${JSON.stringify({ errors }, null, 2)}\n`);
    else for (const line of errors) output.out(`${line}\n`);
    output.err(`tunnelctl diff: ${count(errors.length, "error")}: nothing compared\n`);
    return EXIT_DIFF_ERROR;
  }

  const desired = new Map<string, DesiredEntry>(head.tunnels.map((t) => [t.name, { spec: t.spec, manifest: displayPathOf(t.file) }]));
  const actual = new Map<string, ActualEntry>();
  if (base !== undefined) {
    for (const t of base.tunnels) actual.set(t.name, { observed: observedFromSpec(t.spec), manifest: displayPathOf(t.file) });
  } else {
    const byName = new Map(head.tunnels.map((t) => [t.name, t]));
    for (const doc of status?.docs ?? []) {
      if (doc.metadata.name === "") continue; // a document that never had a valid name runs nothing
      actual.set(doc.metadata.name, { observed: observedFromStatus(doc, byName.get(doc.metadata.name)), manifest: doc.metadata.manifest });
    }
  }
  const changes = diffTunnels(desired, actual);
  const changed = changes.filter((c) => c.change !== "unchanged");
  if (options.output === "json") {
    output.out(`${JSON.stringify({ changes, summary: summarize(changes) }, null, 2)}\n`);
  } else {
    for (const c of changed) output.out(describeChange(c, desired.get(c.name)?.spec));
    output.out(`${summaryLine(changes)}\n`);
  }
  return changed.length > 0 ? EXIT_CHANGES : EXIT_NO_CHANGES;
}

/**
 * What a status document says runs: its forwards (all but Draining ones, which are already
 * deleted), and its session as far as the status tells: the hash of the settings it was opened
 * with. A tunnel with no open session runs its status's generation when the manifest still has
 * it (the controller is only retrying), otherwise nothing (the controller will open one).
 */
export function observedFromStatus(doc: TunnelStatusDoc, desired: Tunnel | undefined): ObservedTunnel {
  const { status } = doc;
  const wantKey = desired !== undefined ? sessionKey(desired.spec) : undefined;
  const timeoutOf = (port: number, bind: string): number =>
    desired?.spec.forwards.local.find((f) => f.localPort === port && f.bindAddress === bind)?.connectTimeout ?? 30_000;
  const local: LocalForwardSpec[] = status.forwards.local
    .filter((f) => f.state !== "Draining")
    .map((f) => ({
      bindAddress: f.bindAddress,
      localPort: f.localPort,
      remoteHost: f.remoteHost,
      remotePort: f.remotePort,
      connectTimeout: f.connectTimeout ?? timeoutOf(f.localPort, f.bindAddress),
      ...(f.localPath !== undefined ? { localPath: f.localPath, mode: parseInt(f.mode ?? "600", 8) } : {}),
      ...(f.remotePath !== undefined ? { remotePath: f.remotePath } : {}),
    }));
  for (const f of status.forwards.dynamic ?? []) {
    if (f.state === "Draining") continue;
    local.push({ bindAddress: f.bindAddress, localPort: f.localPort, remoteHost: "", remotePort: 0, connectTimeout: f.connectTimeout, socks: f.allow !== undefined ? { allow: [...f.allow] } : {} });
  }
  const remote = status.forwards.remote
    .filter((f) => f.state !== "Draining")
    .map((f) => ({
      bindAddress: f.bindAddress,
      remotePort: f.remotePort,
      localHost: f.localHost,
      localPort: f.localPort,
      ...(f.remotePath !== undefined ? { remotePath: f.remotePath } : {}),
      ...(f.localPath !== undefined ? { localPath: f.localPath } : {}),
    }));
  const hash = status.session.configHash ?? "";
  if (hash !== "") {
    const same = wantKey !== undefined && configHash(wantKey) === hash;
    return { sessionKey: same ? wantKey : `running ${hash}`, sessionState: "Connected", local, remote };
  }
  if (status.phase === "Suspended") return { sessionKey: undefined, sessionState: "Closed", local: [], remote: [] };
  if (desired !== undefined && desired.generation === status.observedGeneration) return { sessionKey: wantKey, sessionState: "Connected", local, remote };
  return { sessionKey: undefined, sessionState: "Closed", local, remote };
}

const SIGN: Record<TunnelChange["change"], string> = { create: "+", update: "~", delete: "-", unchanged: " " };

function describeChange(change: TunnelChange, spec: Tunnel["spec"] | undefined): string {
  const lines = [`${SIGN[change.change]} ${change.name} (${change.manifest}): ${change.change}`];
  for (const action of change.actions) lines.push(`    ${describeAction(action, spec)}`);
  return `${lines.join("\n")}\n`;
}

export function describeAction(action: Action, spec: Tunnel["spec"] | undefined): string {
  const hops = (spec?.jump ?? []).map((hop) => `${hop.username}@${formatHostPort(hop.host, hop.port)}`);
  const server = spec ? `${spec.username}@${formatHostPort(spec.host, spec.port)}${hops.length > 0 ? ` via ${hops.join(" > ")}` : ""}` : "";
  switch (action.type) {
    case "open-session":
      return `+ open session ${server}`.trimEnd();
    case "replace-session":
      return `~ replace session: now ${server} (session settings changed; local listeners stay bound)`;
    case "close-session":
      return "- close session";
    case "open-local":
    case "update-local":
    case "close-local": {
      const f = action.forward;
      const what = `${f.socks !== undefined ? "dynamic" : "local"} ${f.localPath !== undefined ? `unix:${f.localPath}` : formatHostPort(f.bindAddress, f.localPort)}`;
      const target =
        f.socks !== undefined
          ? `SOCKS to ${f.socks.allow === undefined ? "any destination" : f.socks.allow.join(", ")} (connectTimeout ${f.connectTimeout}ms)`
          : `${f.remotePath !== undefined ? `unix:${f.remotePath} on the server` : formatHostPort(f.remoteHost, f.remotePort)} (connectTimeout ${f.connectTimeout}ms)`;
      return action.type === "open-local" ? `+ open ${what} → ${target}` : action.type === "update-local" ? `~ update ${what} → ${target}` : `- close ${what}`;
    }
    case "open-remote":
    case "update-remote":
    case "close-remote": {
      const f = action.forward;
      const what = `remote ${f.remotePath !== undefined ? `unix:${f.remotePath}` : formatHostPort(f.bindAddress, f.remotePort)} (on the server)`;
      const target = f.localPath !== undefined ? `unix:${f.localPath}` : formatHostPort(f.localHost, f.localPort);
      return action.type === "open-remote" ? `+ open ${what} → ${target}` : action.type === "update-remote" ? `~ update ${what} → ${target}` : `- close ${what}`;
    }
  }
}

function summarize(changes: readonly TunnelChange[]): Record<TunnelChange["change"], number> {
  const out = { create: 0, update: 0, delete: 0, unchanged: 0 };
  for (const c of changes) out[c.change]++;
  return out;
}

function summaryLine(changes: readonly TunnelChange[]): string {
  const s = summarize(changes);
  if (s.create + s.update + s.delete === 0) return `No changes (${count(s.unchanged, "tunnel")} unchanged)`;
  return `${count(s.create + s.update + s.delete, "tunnel")} to change: ${s.create} to create, ${s.update} to update, ${s.delete} to delete; ${s.unchanged} unchanged`;
}
