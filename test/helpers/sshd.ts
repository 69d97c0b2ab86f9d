// A private OpenSSH sshd for tests: temp dir, generated host and client keys, generated config,
// free loopback port, wait for "Server listening" (never a sleep), stop by pid.
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const SSHD_PATH = process.env.TUNNELCTL_SSHD ?? "/usr/sbin/sshd";

/** True when an sshd binary is available. Under CI=true a missing sshd is a failure, not a skip. */
export function sshdAvailable(): boolean {
  if (existsSync(SSHD_PATH)) return true;
  if (process.env.CI === "true") {
    throw new Error(`sshd not found at ${SSHD_PATH}: CI must install openssh-server`);
  }
  process.stderr.write(`\n*** SKIPPING integration tests: no sshd at ${SSHD_PATH} (apt-get install openssh-server) ***\n\n`);
  return false;
}

export interface SshdOptions {
  /** Extra sshd_config lines (override the defaults below; sshd keeps the first value it reads). */
  config?: string[];
  /** Reuse a port (for stop-and-start-again tests). */
  port?: number;
  /** Keep sshd's stock MaxStartups (10:30:100) instead of the roomy test default. */
  stockLimits?: boolean;
  /** Host key files to serve instead of the generated ed25519 one (hostPublicKey still names that one). */
  hostKeyFiles?: string[];
}

export interface Sshd {
  host: string;
  port: number;
  dir: string;
  username: string;
  clientKeyFile: string; // unencrypted ed25519
  clientPublicKey: string;
  hostPublicKey: string; // "ssh-ed25519 AAAA..."
  hostKeyFingerprint: string; // SHA256:...
  knownHostsFile: string; // a known_hosts with this server's key for [127.0.0.1]:port
  /** Make a client key with a passphrase, authorised on this server. */
  makeEncryptedKey(passphrase: string): string;
  /** Connection options for the Session API with the default key and pinned known_hosts. */
  logs(): string;
  /** Stop the listening sshd only; sessions it forked live on (as after `systemctl restart ssh`). */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Kill the listener and every session process it forked (a crashed or rebooted server). */
  kill(): Promise<void>;
  start(): Promise<void>;
  pid(): number | undefined;
  /** Pids of the per-connection sshd processes (children of the listener). */
  sessionPids(): number[];
}

/** Ports this process has handed out: a test that asks for several before binding any gets distinct ones. */
const handedOut = new Set<number>();

/**
 * A port nothing listens on now, and one this process has not handed out before: the kernel may
 * offer the same free port twice, and two manifests given one port report Conflict.
 */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  for (;;) {
    const port = await unusedPort(host);
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
}

function unusedPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

function keygen(file: string, passphrase = ""): void {
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", passphrase, "-C", "tunnelctl-test", "-f", file], {
    stdio: "ignore",
  });
}

function fingerprint(pubFile: string): string {
  const out = execFileSync("ssh-keygen", ["-l", "-E", "sha256", "-f", pubFile], { encoding: "utf8" });
  const fp = out.split(/\s+/)[1];
  if (!fp?.startsWith("SHA256:")) throw new Error(`unexpected ssh-keygen output: ${out}`);
  return fp;
}

export async function startSshd(options: SshdOptions = {}): Promise<Sshd> {
  // sshd run as root insists on its privilege-separation directory.
  if (process.getuid?.() === 0) mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
  const dir = mkdtempSync(join(tmpdir(), "tunnelctl-sshd-"));
  chmodSync(dir, 0o700);
  const hostKey = join(dir, "host_ed25519");
  const clientKeyFile = join(dir, "client_ed25519");
  keygen(hostKey);
  keygen(clientKeyFile);
  const authorizedKeys = join(dir, "authorized_keys");
  writeFileSync(authorizedKeys, readFileSync(`${clientKeyFile}.pub`, "utf8"), { mode: 0o600 });
  const port = options.port ?? (await freePort());
  const username = process.env.USER ?? execFileSync("id", ["-un"], { encoding: "utf8" }).trim();
  const hostPublicKey = readFileSync(`${hostKey}.pub`, "utf8").trim().split(" ").slice(0, 2).join(" ");
  const knownHostsFile = join(dir, "known_hosts");
  writeFileSync(knownHostsFile, `[127.0.0.1]:${port} ${hostPublicKey}\n`);
  const config = [
    ...(options.config ?? []),
    `Port ${port}`,
    "ListenAddress 127.0.0.1",
    ...(options.hostKeyFiles ?? [hostKey]).map((file) => `HostKey ${file}`),
    `PidFile ${join(dir, "sshd.pid")}`,
    `AuthorizedKeysFile ${authorizedKeys}`,
    "PubkeyAuthentication yes",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "UsePAM no",
    "StrictModes no",
    "PermitRootLogin yes",
    "AllowTcpForwarding yes",
    "GatewayPorts clientspecified",
    "LogLevel VERBOSE",
    ...(options.stockLimits ? [] : ["MaxStartups 100:30:200"]),
    "MaxSessions 100",
  ];
  const configFile = join(dir, "sshd_config");
  writeFileSync(configFile, config.join("\n") + "\n");

  let child: ChildProcess | undefined;
  let log = "";

  const start = (): Promise<void> =>
    new Promise((resolve, reject) => {
      // -D: foreground, -e: log to stderr (where we wait for "Server listening").
      // detached: its own process group, so kill() reaches the session processes too.
      const proc = spawn(SSHD_PATH, ["-D", "-e", "-f", configFile], { stdio: ["ignore", "ignore", "pipe"], detached: true });
      child = proc;
      let ready = false;
      const timer = setTimeout(() => {
        if (!ready) {
          proc.kill("SIGKILL");
          reject(new Error(`sshd did not start listening on 127.0.0.1:${port} within 10s:\n${log}`));
        }
      }, 10_000);
      proc.stderr!.setEncoding("utf8");
      proc.stderr!.on("data", (chunk: string) => {
        log += chunk;
        if (!ready && log.includes(`Server listening on 127.0.0.1 port ${port}`)) {
          ready = true;
          clearTimeout(timer);
          resolve();
        }
      });
      proc.once("exit", (code, signal) => {
        clearTimeout(timer);
        if (!ready) reject(new Error(`sshd exited (${code ?? signal}) before listening:\n${log}`));
      });
    });

  const stop = async (signal: NodeJS.Signals = "SIGTERM"): Promise<void> => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once("exit", () => resolve());
      proc.kill(signal);
    });
    child = undefined;
  };

  await start();

  let extraKeys = 0;
  return {
    host: "127.0.0.1",
    port,
    dir,
    username,
    clientKeyFile,
    clientPublicKey: readFileSync(`${clientKeyFile}.pub`, "utf8").trim(),
    hostPublicKey,
    hostKeyFingerprint: fingerprint(`${hostKey}.pub`),
    knownHostsFile,
    makeEncryptedKey(passphrase: string): string {
      const file = join(dir, `client_enc_${++extraKeys}`);
      keygen(file, passphrase);
      writeFileSync(authorizedKeys, readFileSync(`${file}.pub`, "utf8"), { flag: "a" });
      return file;
    },
    logs: () => log,
    stop,
    start,
    pid: () => child?.pid,
    sessionPids: () => (child?.pid ? childPids(child.pid) : []),
    async kill() {
      const proc = child;
      const group = proc?.pid;
      const sessions = group ? allDescendants(group) : [];
      if (proc && group && proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
        try {
          process.kill(-group, "SIGKILL");
        } catch {
          proc.kill("SIGKILL");
        }
        await exited;
      }
      // Session processes re-parented elsewhere (setsid) are killed by pid.
      for (const pid of sessions) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
      child = undefined;
    },
  };
}

/** Stop sshd, the session processes it forked, and remove its directory. */
export async function destroySshd(sshd: Sshd | undefined): Promise<void> {
  if (!sshd) return;
  await sshd.kill();
  rmSync(sshd.dir, { recursive: true, force: true });
}

/** Direct children of `pid` (Linux /proc). */
export function childPids(pid: number): number[] {
  try {
    const tasks = readdirSync(`/proc/${pid}/task`);
    return tasks.flatMap((t) => {
      try {
        return readFileSync(`/proc/${pid}/task/${t}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
      } catch {
        return [];
      }
    });
  } catch {
    return [];
  }
}

/** Every descendant of `pid` (Linux /proc), each before its own children. */
export function allDescendants(pid: number): number[] {
  const out: number[] = [];
  for (const c of childPids(pid)) out.push(c, ...allDescendants(c));
  return out;
}
