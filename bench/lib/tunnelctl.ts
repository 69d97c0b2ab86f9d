// tunnelctl as a user runs it: `tunnelctl run DIR` in its own process, from manifests on disk.
import { writeFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { NODE_FLAGS } from "../../src/cli/node-flags.ts";
import { ROOT, spawnChild, type Child } from "./children.ts";

export interface TunnelctlOptions {
  /** Write a V8 CPU profile into this folder on exit (node --cpu-prof). */
  cpuProfDir?: string | undefined;
  /** Run the compiled CLI (bin/tunnelctl.js, needs `npm run build`) instead of src/ under tsx. */
  built?: boolean | undefined;
  extraArgs?: string[] | undefined;
  /** Another checkout to run instead of this one (to measure a proposed change side by side). */
  root?: string | undefined;
  /** Extra node options (e.g. --prof, --max-semi-space-size=...), after tunnelctl's own NODE_FLAGS. */
  nodeArgs?: string[] | undefined;
}

export function startTunnelctl(name: string, dir: string, options: TunnelctlOptions = {}): Child {
  // The flags bin/tunnelctl.js starts node with, so that the bench measures what users run.
  const node: string[] = [...NODE_FLAGS, ...(options.nodeArgs ?? [])];
  if (options.cpuProfDir) node.push("--cpu-prof", "--cpu-prof-dir", options.cpuProfDir);
  const root = options.root ?? ROOT;
  const entry = options.built ? [join(root, "bin", "tunnelctl.js")] : ["--import", "tsx", join(root, "src", "cli", "main.ts")];
  return spawnChild(name, process.execPath, [...node, ...entry, "run", dir, "--log-level", "info", ...(options.extraArgs ?? [])]);
}

export interface ServerRef {
  port: number;
  username: string;
  keyFile: string;
  knownHostsFile: string;
}

export interface LocalForwardDef {
  localPort: number;
  remotePort: number;
}

export interface RemoteForwardDef {
  remotePort: number;
  localPort: number;
}

/** One Tunnel manifest (SPEC §2) for a loopback server. */
/** A Tunnel manifest for a bench server; `bastion`: reach it through that jump host (spec.jump). */
export function tunnelManifest(name: string, server: ServerRef, local: LocalForwardDef[], remote: RemoteForwardDef[] = [], bastion?: ServerRef): string {
  const lines = [
    "apiVersion: tunnelctl/v1",
    "kind: Tunnel",
    "metadata:",
    `  name: ${name}`,
    "spec:",
    "  host: 127.0.0.1",
    `  port: ${server.port}`,
    `  username: ${server.username}`,
    "  auth:",
    `    privateKeyFile: ${server.keyFile}`,
    "  hostKey:",
    `    knownHostsFile: ${server.knownHostsFile}`,
    ...(bastion
      ? ["  jump:", `    - {host: 127.0.0.1, port: ${bastion.port}, username: ${bastion.username}, auth: {privateKeyFile: ${bastion.keyFile}}, hostKey: {knownHostsFile: ${bastion.knownHostsFile}}}`]
      : []),
    "  forwards:",
  ];
  lines.push(local.length ? "    local:" : "    local: []");
  for (const f of local) lines.push(`      - {localPort: ${f.localPort}, remoteHost: 127.0.0.1, remotePort: ${f.remotePort}}`);
  lines.push(remote.length ? "    remote:" : "    remote: []");
  for (const f of remote) lines.push(`      - {remotePort: ${f.remotePort}, localHost: 127.0.0.1, localPort: ${f.localPort}}`);
  return `${lines.join("\n")}\n`;
}

/** Replace a manifest the way editors and git do: write a hidden temp file, rename it into place. */
export function writeManifestAtomically(dir: string, file: string, text: string): void {
  const tmp = join(dir, `.${file}.tmp`);
  writeFileSync(tmp, text);
  renameSync(tmp, join(dir, file));
}
