// The forwarding rig for sections 1-4: one private OpenSSH sshd, one target process, and every
// contender up at once so rounds can interleave them — direct TCP, a plain Node relay, OpenSSH
// `ssh -N -L/-R` with the default cipher and with aes128-gcm, and `tunnelctl run` on a manifest.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import ssh2 from "ssh2";
import { destroySshd, freePort, startSshd, type Sshd } from "../../test/helpers/sshd.ts";
import { atExit, spawnChild, spawnScript, type Child } from "./children.ts";
import { waitAccepting } from "./client.ts";
import { NODE_FLAGS } from "../../src/cli/node-flags.ts";
import { startTunnelctl, tunnelManifest } from "./tunnelctl.ts";

export type ContenderKind = "direct" | "relay" | "openssh" | "tunnelctl";

export interface Contender {
  id: string;
  label: string;
  kind: ContenderKind;
  /** -L or -R; undefined for the direct and relay paths, which have no direction. */
  direction: "L" | "R" | undefined;
  cipher: string | undefined;
  /** Where the client connects. */
  port: number;
  /** The forwarding process (for CPU and RSS), when there is one. */
  pid: number | undefined;
}

export interface Rig {
  sshd: Sshd;
  targets: Child;
  targetPort: number;
  tunnelctl: Child;
  tunnelctlDir: string;
  contenders: Contender[];
  ciphers: { openSshDefault: string; tunnelctl: string };
  close(): Promise<void>;
}

export const GCM = "aes128-gcm@openssh.com";

export interface RigOptions {
  cpuProfDir?: string | undefined;
  built?: boolean | undefined;
  root?: string | undefined;
  nodeArgs?: string[] | undefined;
  runArgs?: string[] | undefined;
}

export async function startRig(options: RigOptions = {}): Promise<Rig> {
  const cleanups: Array<() => Promise<unknown> | unknown> = [];
  const close = async (): Promise<void> => {
    for (const fn of cleanups.reverse()) await fn();
  };
  try {
    const sshd = await startSshd();
    const removeHook = atExit(() => {
      const pid = sshd.pid();
      if (pid) process.kill(-pid, "SIGKILL");
    });
    cleanups.push(() => destroySshd(sshd), removeHook);

    const targets = spawnScript("targets", "target-server.ts");
    cleanups.push(() => targets.stop());
    const { port: targetPort } = await targets.nextJson<{ port: number }>((v) => typeof v.port === "number", 20_000);

    // The relay is the ceiling for a Node forwarder: it runs with the same V8 flags as tunnelctl.
    const relay = spawnScript("relay", "relay.ts", [String(targetPort)], NODE_FLAGS);
    cleanups.push(() => relay.stop());
    const { port: relayPort } = await relay.nextJson<{ port: number }>((v) => typeof v.port === "number", 20_000);

    const contenders: Contender[] = [
      { id: "direct", label: "direct TCP", kind: "direct", direction: undefined, cipher: undefined, port: targetPort, pid: undefined },
      { id: "relay", label: "Node relay (no crypto)", kind: "relay", direction: undefined, cipher: undefined, port: relayPort, pid: relay.pid },
    ];

    const openSshDefault = negotiatedOpenSshCipher(sshd);
    for (const cipher of [undefined, GCM]) {
      const localPort = await freePort();
      const remotePort = await freePort();
      const ssh = startOpenSsh(sshd, cipher, localPort, remotePort, targetPort);
      cleanups.push(() => ssh.stop());
      await Promise.race([
        Promise.all([waitAccepting(localPort, 15_000), waitAccepting(remotePort, 15_000)]),
        ssh.exited.then((code) => {
          throw new Error(`ssh exited (${code}) before its forwards were up:\n${ssh.tail()}`);
        }),
      ]);
      const name = cipher === undefined ? `default: ${openSshDefault}` : "aes128-gcm";
      const suffix = cipher === undefined ? "" : "-gcm";
      contenders.push(
        { id: `ssh${suffix}-L`, label: `ssh -L (${name})`, kind: "openssh", direction: "L", cipher: cipher ?? openSshDefault, port: localPort, pid: ssh.pid },
        { id: `ssh${suffix}-R`, label: `ssh -R (${name})`, kind: "openssh", direction: "R", cipher: cipher ?? openSshDefault, port: remotePort, pid: ssh.pid },
      );
    }

    const tunnelctlCipher = await negotiatedSsh2Cipher(sshd);
    const dir = mkdtempSync(join(tmpdir(), "tunnelctl-bench-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const localPort = await freePort();
    const remotePort = await freePort();
    const server = { port: sshd.port, username: sshd.username, keyFile: sshd.clientKeyFile, knownHostsFile: sshd.knownHostsFile };
    writeFileSync(
      join(dir, "bench.yaml"),
      tunnelManifest("bench", server, [{ localPort, remotePort: targetPort }], [{ remotePort, localPort: targetPort }]),
    );
    const tunnelctl = startTunnelctl("tunnelctl", dir, { cpuProfDir: options.cpuProfDir, built: options.built, root: options.root, nodeArgs: options.nodeArgs, extraArgs: options.runArgs });
    cleanups.push(() => tunnelctl.stop("SIGTERM", 10_000));
    await Promise.race([
      Promise.all([waitAccepting(localPort, 30_000), waitAccepting(remotePort, 30_000)]),
      tunnelctl.exited.then((code) => {
        throw new Error(`tunnelctl exited (${code}) before its forwards were up:\n${tunnelctl.tail()}`);
      }),
    ]);
    contenders.push(
      { id: "tunnelctl-L", label: `tunnelctl local (${tunnelctlCipher})`, kind: "tunnelctl", direction: "L", cipher: tunnelctlCipher, port: localPort, pid: tunnelctl.pid },
      { id: "tunnelctl-R", label: `tunnelctl remote (${tunnelctlCipher})`, kind: "tunnelctl", direction: "R", cipher: tunnelctlCipher, port: remotePort, pid: tunnelctl.pid },
    );

    return { sshd, targets, targetPort, tunnelctl, tunnelctlDir: dir, contenders, ciphers: { openSshDefault, tunnelctl: tunnelctlCipher }, close };
  } catch (err) {
    await close();
    throw err;
  }
}

function sshArgs(sshd: Pick<Sshd, "port" | "username" | "clientKeyFile" | "knownHostsFile">, cipher: string | undefined): string[] {
  return [
    "-F", "/dev/null",
    "-p", String(sshd.port),
    "-l", sshd.username,
    "-i", sshd.clientKeyFile,
    "-o", "IdentitiesOnly=yes",
    "-o", "BatchMode=yes",
    "-o", "StrictHostKeyChecking=yes",
    "-o", `UserKnownHostsFile=${sshd.knownHostsFile}`,
    "-o", "GlobalKnownHostsFile=/dev/null",
    "-o", "ExitOnForwardFailure=yes",
    ...(cipher ? ["-c", cipher] : []),
  ];
}

export function startOpenSsh(sshd: Pick<Sshd, "port" | "username" | "clientKeyFile" | "knownHostsFile">, cipher: string | undefined, localPort: number, remotePort: number, targetPort: number): Child {
  return spawnChild(`ssh${cipher ? ` -c ${cipher}` : ""}`, "/usr/bin/ssh", [
    "-N",
    ...sshArgs(sshd, cipher),
    "-L", `127.0.0.1:${localPort}:127.0.0.1:${targetPort}`,
    "-R", `127.0.0.1:${remotePort}:127.0.0.1:${targetPort}`,
    "127.0.0.1",
  ]);
}

/** The cipher OpenSSH's client negotiates by default with this sshd (from `ssh -v ... true`). */
function negotiatedOpenSshCipher(sshd: Sshd): string {
  const r = spawnSync("/usr/bin/ssh", ["-v", ...sshArgs(sshd, undefined), "127.0.0.1", "true"], { encoding: "utf8", timeout: 15_000 });
  return /kex: client->server cipher: (\S+)/.exec(r.stderr ?? "")?.[1] ?? "unknown";
}

/** The cipher ssh2 (tunnelctl's SSH library, default algorithms) negotiates with this sshd. */
function negotiatedSsh2Cipher(sshd: Sshd): Promise<string> {
  return new Promise((resolve) => {
    const client = new ssh2.Client();
    let cipher = "unknown";
    const timer = setTimeout(() => client.destroy(), 15_000);
    const done = (): void => {
      clearTimeout(timer);
      client.end();
      resolve(cipher);
    };
    client.on("ready", done);
    client.on("error", done);
    client.on("close", done);
    client.connect({
      host: "127.0.0.1",
      port: sshd.port,
      username: sshd.username,
      privateKey: readFileSync(sshd.clientKeyFile),
      hostVerifier: () => true, // our own sshd, just started; only the cipher is of interest
      debug: (line: string) => {
        const m = /^Handshake: C->S Cipher: (\S+)/.exec(line);
        if (m?.[1]) cipher = m[1];
      },
    });
  });
}
