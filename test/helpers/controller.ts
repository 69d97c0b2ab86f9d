// Drive the real `tunnelctl run` process: spawn it on a directory, read its status files, and
// write manifests for a test sshd. The resync interval is long on purpose: changes must be
// picked up by the watcher, not by the periodic rescan.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import { waitFor } from "./net.ts";
import type { Sshd } from "./sshd.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const CLI = join(ROOT, "src", "cli", "main.ts");

export interface RunningController {
  proc: ChildProcess;
  output(): string;
  /** Send a signal and wait for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

export function startRun(dir: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): RunningController {
  const proc = spawn(
    process.execPath,
    ["--import", "tsx", CLI, "run", dir, "--resync", "10m", "--status-interval", "300ms", "--log-level", "debug", ...args],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } },
  );
  let out = "";
  proc.stdout!.setEncoding("utf8").on("data", (d: string) => (out += d));
  proc.stderr!.setEncoding("utf8").on("data", (d: string) => (out += d));
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  return {
    proc,
    output: () => out,
    exited,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

export interface StatusDoc {
  metadata: { name: string; manifest: string };
  status: {
    phase: string;
    observedGeneration: string;
    confirmedAt?: string;
    confirmInterval?: string;
    conditions: Array<{ type: string; status: string; reason: string; message: string; lastTransitionTime: string }>;
    session: { state: string; reconnects: number; lastError: string; serverVersion: string; connectedSince?: string; hostKeyFingerprint?: string };
    forwards: {
      local: Array<{
        localPort: number;
        remotePort: number;
        state: string;
        reason?: string;
        message: string;
        activeConnections: number;
        totalConnections: number;
        failedConnections?: number;
        bytesIn?: number;
        bytesOut?: number;
      }>;
      remote: Array<{ remotePort: number; boundPort?: number; state: string; reason?: string; message: string; activeConnections?: number; totalConnections?: number }>;
    };
    errors: string[];
  };
}

export function readStatus(path: string): StatusDoc[] | undefined {
  if (!existsSync(path)) return undefined;
  try {
    return parseAllDocuments(readFileSync(path, "utf8")).map((d) => d.toJS() as StatusDoc);
  } catch {
    return undefined; // never happens with atomic writes; tolerated anyway
  }
}

/** Wait until the status file at `path` satisfies `predicate` (for every or the named doc). */
export async function waitForStatus(
  path: string,
  predicate: (docs: StatusDoc[]) => boolean,
  what: string,
  controller?: RunningController,
  timeoutMs = 15_000,
): Promise<StatusDoc[]> {
  try {
    return await waitFor<StatusDoc[] | false>(() => {
      const docs = readStatus(path);
      return docs !== undefined && predicate(docs) ? docs : false;
    }, what, timeoutMs) as StatusDoc[];
  } catch (err) {
    const last = existsSync(path) ? readFileSync(path, "utf8") : "(no status file)";
    throw new Error(`${(err as Error).message}\n--- status ${path}:\n${last}\n--- controller output (tail):\n${controller?.output().slice(-4000) ?? ""}`);
  }
}

export const phaseIs = (phase: string) => (docs: StatusDoc[]) => docs.length > 0 && docs.every((d) => d.status.phase === phase);

export interface LocalFwd {
  localPort: number;
  remotePort: number;
  remoteHost?: string;
  bindAddress?: string;
  connectTimeout?: string | number;
}
export interface RemoteFwd {
  remotePort: number;
  localPort: number;
  localHost?: string;
  bindAddress?: string;
}

/**
 * A Tunnel manifest for the test sshd. `keepalive` / `reconnect` replace the defaults (flow maps,
 * e.g. "{interval: 500ms, countMax: 2}"); `auth` / `hostKey` replace the default key and
 * known_hosts (field → YAML scalar or flow value, e.g. {privateKeyFile: f, passphraseEnv: "PASS"}).
 */
export function manifest(
  sshd: Pick<Sshd, "port" | "username" | "clientKeyFile" | "knownHostsFile">,
  name: string,
  forwards: { local?: LocalFwd[]; remote?: RemoteFwd[] },
  extra: {
    spec?: string;
    labels?: string;
    keepalive?: string;
    reconnect?: string;
    auth?: Record<string, string | boolean>;
    hostKey?: Record<string, string>;
  } = {},
): string {
  const block = (fields: Record<string, string | boolean>): string =>
    Object.entries(fields)
      .map(([k, v]) => `    ${k}: ${String(v)}`)
      .join("\n");
  const local = (forwards.local ?? [])
    .map(
      (f) =>
        `      - {bindAddress: ${f.bindAddress ?? "127.0.0.1"}, localPort: ${f.localPort}, remoteHost: ${f.remoteHost ?? "127.0.0.1"}, remotePort: ${f.remotePort}${
          f.connectTimeout !== undefined ? `, connectTimeout: ${f.connectTimeout}` : ""
        }}`,
    )
    .join("\n");
  const remote = (forwards.remote ?? [])
    .map((f) => `      - {bindAddress: ${f.bindAddress ?? "127.0.0.1"}, remotePort: ${f.remotePort}, localHost: ${f.localHost ?? "127.0.0.1"}, localPort: ${f.localPort}}`)
    .join("\n");
  return `apiVersion: tunnelctl/v1
kind: Tunnel
metadata:
  name: ${name}
${extra.labels ? `  labels: ${extra.labels}\n` : ""}spec:
  host: 127.0.0.1
  port: ${sshd.port}
  username: ${sshd.username}
  auth:
${block(extra.auth ?? { privateKeyFile: sshd.clientKeyFile })}
  hostKey:
${block(extra.hostKey ?? { knownHostsFile: sshd.knownHostsFile })}
  keepalive: ${extra.keepalive ?? "{interval: 2s, countMax: 3}"}
  reconnect: ${extra.reconnect ?? "{minDelay: 200ms, maxDelay: 2s}"}
${extra.spec ?? ""}  forwards:
    local:${local ? `\n${local}` : " []"}
    remote:${remote ? `\n${remote}` : " []"}
`;
}
