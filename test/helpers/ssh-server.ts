// Throwaway SSH servers of every kind the product is tested against, behind one shape: OpenSSH's
// sshd, dropbear, asyncssh and the embedded ssh2 server of the demo. Each runs on a free loopback
// port with keys generated for it; each test file starts its own and kills it by pid at the end.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { startEmbeddedServer } from "../../src/demo/embedded-server.ts";
import type { ConnectOptions } from "../../src/index.ts";
import { probe, waitFor } from "./net.ts";
import { destroySshd, freePort, startSshd, SSHD_PATH } from "./sshd.ts";

export type ServerKind = "openssh" | "dropbear" | "asyncssh" | "embedded";
export const SERVER_KINDS: readonly ServerKind[] = ["openssh", "dropbear", "asyncssh", "embedded"];
export type KeyType = "ed25519" | "ecdsa" | "rsa";

export const DROPBEAR_PATH = process.env.TUNNELCTL_DROPBEAR ?? "/usr/sbin/dropbear";
/** Debian's python, which has python3-asyncssh; the python3 on PATH may be another one. */
export const ASYNCSSH_PYTHON = process.env.TUNNELCTL_ASYNCSSH_PYTHON ?? "/usr/bin/python3";
const ASYNCSSH_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), "asyncssh-server.py");

export interface ClientKey {
  file: string;
  passphrase?: string;
}

export interface TestSshServer {
  kind: ServerKind;
  host: string;
  port: number;
  dir: string;
  username: string;
  /** Unencrypted ed25519 client key, authorised. */
  clientKeyFile: string;
  /** Authorised client keys of every type, and an encrypted ed25519 one. */
  clientKeys: Record<KeyType | "encrypted", ClientKey>;
  /** One known_hosts line per host key type name (ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa). */
  knownHostsLines: Record<string, string>;
  /** A known_hosts with every host key of this server. */
  knownHostsFile: string;
  /** SHA256 fingerprint of each host key, by key type name. */
  hostKeyFingerprints: Record<string, string>;
  logs(): string;
  kill(): Promise<void>;
}

export interface TestServerOptions {
  /** Host key types to generate (default: ed25519 only). */
  hostKeyTypes?: KeyType[];
  /** dropbear: extra command line flags (e.g. "-k": no remote forwarding). */
  dropbearFlags?: string[];
  /** asyncssh: answer global requests it has no handler for with SSH_MSG_UNIMPLEMENTED (RFC 4253 §11.4). */
  asyncsshUnimplementedGlobals?: boolean;
  /** asyncssh: never answer these global requests (a server that hangs on them). */
  asyncsshIgnoreGlobals?: string[];
  /** asyncssh: handle the first of these global requests this many seconds late ("tcpip-forward:1.5"). */
  asyncsshDelayFirstGlobals?: string[];
  /** asyncssh: refuse remote forwarding. */
  asyncsshNoRemoteForwarding?: boolean;
  /** OpenSSH: extra sshd_config lines. */
  sshdConfig?: string[];
}

/** Is this kind of server installed? Under CI=true a missing server is a failure, not a skip. */
export function serverAvailable(kind: ServerKind): boolean {
  const missing = missingReason(kind);
  if (!missing) return true;
  if (process.env.CI === "true") throw new Error(`${kind} is not available: ${missing}`);
  process.stderr.write(`\n*** SKIPPING ${kind} tests: ${missing} ***\n\n`);
  return false;
}

function missingReason(kind: ServerKind): string | undefined {
  switch (kind) {
    case "openssh":
      return existsSync(SSHD_PATH) ? undefined : `no sshd at ${SSHD_PATH} (apt-get install openssh-server)`;
    case "dropbear":
      if (!existsSync(DROPBEAR_PATH)) return `no dropbear at ${DROPBEAR_PATH} (apt-get install dropbear-bin)`;
      return commandWorks("unshare", [...unshareFlags(), "true"])
        ? undefined
        : "dropbear reads authorized_keys only from the user's home; the harness needs `unshare -m` (root, or user namespaces) to give it a private one";
    case "asyncssh":
      return commandWorks(ASYNCSSH_PYTHON, ["-c", "import asyncssh"])
        ? undefined
        : `${ASYNCSSH_PYTHON} cannot import asyncssh (apt-get install python3-asyncssh)`;
    case "embedded":
      return undefined;
  }
}

function unshareFlags(): string[] {
  return process.getuid?.() === 0 ? ["-m"] : ["-r", "-m"];
}

function commandWorks(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

export function keygen(file: string, type: KeyType, passphrase = ""): void {
  const bits = type === "rsa" ? ["-b", "3072"] : type === "ecdsa" ? ["-b", "256"] : [];
  execFileSync("ssh-keygen", ["-q", "-t", type, ...bits, "-N", passphrase, "-C", "tunnelctl-test", "-f", file], { stdio: "ignore" });
}

function fingerprintOfLine(line: string): string {
  const blob = Buffer.from(line.split(" ")[1] ?? "", "base64");
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

/** Key material shared by every kind: host keys (OpenSSH format), client keys, authorized_keys. */
interface Material {
  dir: string;
  hostKeys: Array<{ type: KeyType; file: string; publicLine: string }>;
  clientKeys: Record<KeyType | "encrypted", ClientKey>;
  authorizedKeys: string;
}

function makeMaterial(kind: ServerKind, hostKeyTypes: KeyType[]): Material {
  const dir = mkdtempSync(join(tmpdir(), `tunnelctl-${kind}-`));
  chmodSync(dir, 0o700);
  const hostKeys = hostKeyTypes.map((type) => {
    const file = join(dir, `host_${type}`);
    keygen(file, type);
    return { type, file, publicLine: readFileSync(`${file}.pub`, "utf8").trim().split(" ").slice(0, 2).join(" ") };
  });
  const client = (name: string, type: KeyType, passphrase?: string): ClientKey => {
    const file = join(dir, `client_${name}`);
    keygen(file, type, passphrase);
    return passphrase === undefined ? { file } : { file, passphrase };
  };
  const clientKeys = {
    ed25519: client("ed25519", "ed25519"),
    ecdsa: client("ecdsa", "ecdsa"),
    rsa: client("rsa", "rsa"),
    encrypted: client("encrypted", "ed25519", "correct horse battery"),
  };
  const authorizedKeys = join(dir, "authorized_keys");
  writeFileSync(authorizedKeys, Object.values(clientKeys).map((k) => readFileSync(`${k.file}.pub`, "utf8")).join(""), { mode: 0o600 });
  return { dir, hostKeys, clientKeys, authorizedKeys };
}

function describeServer(
  kind: ServerKind,
  port: number,
  material: Material,
  username: string,
  hooks: { logs(): string; kill(): Promise<void> },
): TestSshServer {
  const knownHostsLines: Record<string, string> = {};
  const hostKeyFingerprints: Record<string, string> = {};
  for (const key of material.hostKeys) {
    const typeName = key.publicLine.split(" ")[0]!;
    knownHostsLines[typeName] = `[127.0.0.1]:${port} ${key.publicLine}`;
    hostKeyFingerprints[typeName] = fingerprintOfLine(key.publicLine);
  }
  const knownHostsFile = join(material.dir, "known_hosts");
  writeFileSync(knownHostsFile, Object.values(knownHostsLines).join("\n") + "\n");
  return {
    kind,
    host: "127.0.0.1",
    port,
    dir: material.dir,
    username,
    clientKeyFile: material.clientKeys.ed25519.file,
    clientKeys: material.clientKeys,
    knownHostsLines,
    knownHostsFile,
    hostKeyFingerprints,
    logs: hooks.logs,
    async kill() {
      await hooks.kill();
      rmSync(material.dir, { recursive: true, force: true });
    },
  };
}

/** Start a server of `kind` on a free loopback port. */
export async function startTestServer(kind: ServerKind, options: TestServerOptions = {}): Promise<TestSshServer> {
  switch (kind) {
    case "openssh":
      return startOpenSsh(options);
    case "dropbear":
      return startDropbear(options);
    case "asyncssh":
      return startAsyncssh(options);
    case "embedded":
      return startEmbedded(options);
  }
}

async function startOpenSsh(options: TestServerOptions): Promise<TestSshServer> {
  const material = makeMaterial("openssh", options.hostKeyTypes ?? ["ed25519"]);
  const sshd = await startSshd({
    config: [...(options.sshdConfig ?? []), `AuthorizedKeysFile ${material.authorizedKeys}`],
    hostKeyFiles: material.hostKeys.map((k) => k.file),
  });
  return describeServer("openssh", sshd.port, material, sshd.username, { logs: () => sshd.logs(), kill: () => destroySshd(sshd) });
}

/** A child process that is ours until kill(): its own process group, output collected. */
function spawnServer(cmd: string, args: string[]): { proc: ChildProcess; logs(): string; kill(): Promise<void> } {
  const proc = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], detached: true });
  let log = "";
  proc.stdout!.setEncoding("utf8").on("data", (d: string) => (log += d));
  proc.stderr!.setEncoding("utf8").on("data", (d: string) => (log += d));
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  return {
    proc,
    logs: () => log,
    async kill() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      try {
        process.kill(-proc.pid!, "SIGKILL"); // the group: per-connection children too
      } catch {
        proc.kill("SIGKILL");
      }
      await exited;
    },
  };
}

function exitedEarly(kind: string, server: { proc: ChildProcess; logs(): string }): void {
  if (server.proc.exitCode !== null) throw new Error(`${kind} exited (${server.proc.exitCode}) before listening:\n${server.logs()}`);
}

async function startDropbear(options: TestServerOptions): Promise<TestSshServer> {
  const material = makeMaterial("dropbear", options.hostKeyTypes ?? ["ed25519"]);
  // dropbear reads ~/.ssh/authorized_keys of the user, with no option to point elsewhere: it runs
  // in a private mount namespace where a throwaway directory is mounted over that home.
  const user = userInfo();
  const home = join(material.dir, "home");
  mkdirSync(join(home, ".ssh"), { recursive: true, mode: 0o700 });
  chmodSync(home, 0o700);
  writeFileSync(join(home, ".ssh", "authorized_keys"), readFileSync(material.authorizedKeys, "utf8"), { mode: 0o600 });
  // dropbear's own key format, converted from the OpenSSH keys (the same known_hosts fits).
  const keyArgs = material.hostKeys.flatMap((k) => {
    const converted = `${k.file}.dropbear`;
    execFileSync("dropbearconvert", ["openssh", "dropbear", k.file, converted], { stdio: "ignore" });
    return ["-r", converted];
  });
  const port = await freePort();
  const args = ["-F", "-E", "-s", "-p", `127.0.0.1:${port}`, "-P", join(material.dir, "dropbear.pid"), ...keyArgs, ...(options.dropbearFlags ?? [])];
  const mountAndRun = 'mount --bind "$1" "$2" && shift 2 && exec "$@"';
  const server = spawnServer("unshare", [...unshareFlags(), "--", "sh", "-c", mountAndRun, "sh", home, user.homedir, DROPBEAR_PATH, ...args]);
  // dropbear says nothing when it starts listening: wait until the port accepts.
  await waitFor(
    async () => {
      exitedEarly("dropbear", server);
      return (await probe(port)) === "accepted";
    },
    `dropbear listening on 127.0.0.1:${port}`,
    15_000,
  );
  return describeServer("dropbear", port, material, user.username, server);
}

async function startAsyncssh(options: TestServerOptions): Promise<TestSshServer> {
  const material = makeMaterial("asyncssh", options.hostKeyTypes ?? ["ed25519"]);
  const port = await freePort();
  const args = [
    "-W",
    "ignore",
    ASYNCSSH_SCRIPT,
    "--port",
    String(port),
    "--authorized-keys",
    material.authorizedKeys,
    ...material.hostKeys.flatMap((k) => ["--host-key", k.file]),
    ...(options.asyncsshUnimplementedGlobals ? ["--unimplemented-globals"] : []),
    ...(options.asyncsshNoRemoteForwarding ? ["--no-remote-forwarding"] : []),
    ...(options.asyncsshIgnoreGlobals ?? []).flatMap((name) => ["--ignore-global", name]),
    ...(options.asyncsshDelayFirstGlobals ?? []).flatMap((spec) => ["--delay-first-global", spec]),
  ];
  const server = spawnServer(ASYNCSSH_PYTHON, args);
  await waitFor(
    () => {
      exitedEarly("asyncssh", server);
      return server.logs().includes(`listening on 127.0.0.1 port ${port}`);
    },
    `asyncssh listening on 127.0.0.1:${port}`,
    15_000,
  );
  return describeServer("asyncssh", port, material, userInfo().username, server);
}

async function startEmbedded(options: TestServerOptions): Promise<TestSshServer> {
  const types = options.hostKeyTypes ?? ["ed25519"];
  if (types.length !== 1) throw new Error("the embedded server serves one host key");
  const material = makeMaterial("embedded", types);
  const port = await freePort();
  let log = "";
  const server = await startEmbeddedServer({
    hostKey: readFileSync(material.hostKeys[0]!.file, "utf8"),
    authorizedKeys: readFileSync(material.authorizedKeys, "utf8").split("\n"),
    port,
    onError: (err) => (log += `${err.message}\n`),
  });
  return describeServer("embedded", port, material, userInfo().username, { logs: () => log, kill: () => server.close() });
}

/** Session API options for this server: its user, the ed25519 client key, its known_hosts. */
export function sessionOptions(server: TestSshServer, extra: Partial<ConnectOptions> = {}): ConnectOptions {
  return {
    username: server.username,
    port: server.port,
    auth: { privateKeyFile: server.clientKeyFile },
    hostKey: { knownHostsFile: server.knownHostsFile },
    ...extra,
  };
}

/** How many lines of the server's output contain `text`. */
export function countInLogs(server: TestSshServer, text: string): number {
  return server.logs().split("\n").filter((line) => line.includes(text)).length;
}
