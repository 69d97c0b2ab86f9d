// Section "socks": a dynamic forward (SOCKS5 through the SSH session) beside OpenSSH's `ssh -D`,
// both against one private sshd: connect + SOCKS handshake + 1-byte echo, sequential, and one
// bulk download through the proxy. Contenders run interleaved (Williams order), as elsewhere.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { destroySshd, freePort, startSshd } from "../../test/helpers/sshd.ts";
import { spawnChild, spawnScript } from "../lib/children.ts";
import { waitAccepting } from "../lib/client.ts";
import { roundOrder } from "../lib/order.ts";
import type { Report } from "../lib/report.ts";
import { percentile } from "../lib/stats.ts";
import { startTunnelctl, tunnelManifest } from "../lib/tunnelctl.ts";

export interface SocksOptions {
  connections: number;
  rounds: number;
  /** Bytes downloaded through each proxy per round. */
  size: number;
  log: (line: string) => void;
}

interface Proxy {
  id: string;
  label: string;
  port: number;
}

export async function runSocks(report: Report, options: SocksOptions): Promise<void> {
  const { log } = options;
  const sshd = await startSshd();
  const targets = spawnScript("targets", "target-server.ts");
  const dir = mkdtempSync(join(tmpdir(), "tunnelctl-bench-socks-"));
  try {
    const { port: targetPort } = await targets.nextJson<{ port: number }>((v) => typeof v.port === "number", 20_000);
    const [sshPort, ctlPort] = [await freePort(), await freePort()];
    const ssh = spawnChild("ssh -D", "/usr/bin/ssh", [
      "-N", "-F", "/dev/null", "-p", String(sshd.port), "-l", sshd.username, "-i", sshd.clientKeyFile,
      "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
      "-o", `UserKnownHostsFile=${sshd.knownHostsFile}`, "-o", "GlobalKnownHostsFile=/dev/null", "-o", "ExitOnForwardFailure=yes",
      "-D", `127.0.0.1:${sshPort}`, "127.0.0.1",
    ]);
    const server = { port: sshd.port, username: sshd.username, keyFile: sshd.clientKeyFile, knownHostsFile: sshd.knownHostsFile };
    writeFileSync(join(dir, "socks.yaml"), tunnelManifest("socks", server, []).replace("    remote: []", `    remote: []\n    dynamic:\n      - {localPort: ${ctlPort}}`));
    const ctl = startTunnelctl("tunnelctl", dir, {});
    try {
      await Promise.all([waitAccepting(sshPort, 15_000), waitAccepting(ctlPort, 30_000)]);
      const proxies: Proxy[] = [
        { id: "ssh-D", label: "ssh -D", port: sshPort },
        { id: "tunnelctl-D", label: "tunnelctl dynamic forward", port: ctlPort },
      ];
      for (const p of proxies) for (let i = 0; i < 50; i++) await socksEcho(p.port, targetPort); // unmeasured warm-up
      const latency = new Map<string, number[]>(proxies.map((p) => [p.id, []]));
      const throughput = new Map<string, number[]>(proxies.map((p) => [p.id, []]));
      const perRound = Math.ceil(options.connections / options.rounds);
      for (let round = 0; round < options.rounds; round++) {
        for (const p of roundOrder(proxies, round)) {
          for (let i = 0; i < perRound; i++) latency.get(p.id)!.push(await socksEcho(p.port, targetPort));
          const ms = await socksDownload(p.port, targetPort, options.size);
          throughput.get(p.id)!.push(options.size / (1024 * 1024) / (ms / 1000));
        }
        log(`  socks round ${round + 1}/${options.rounds}`);
      }
      for (const p of proxies) {
        report.add("socks", "SOCKS5 connect + handshake + 1-byte echo", p.label, "ms", latency.get(p.id)!);
        report.add("socks", `download ${Math.round(options.size / (1024 * 1024))} MiB through the proxy`, p.label, "MiB/s", throughput.get(p.id)!);
      }
      const ratio = percentile(latency.get("tunnelctl-D")!, 50) / percentile(latency.get("ssh-D")!, 50);
      log(`  socks: p50 latency tunnelctl/ssh -D = ${ratio.toFixed(2)}×`);
    } finally {
      await ctl.stop("SIGTERM", 10_000);
      await ssh.stop();
    }
  } finally {
    await targets.stop();
    await destroySshd(sshd);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A SOCKS5 CONNECT to 127.0.0.1:targetPort through the proxy; resolves with the connected socket. */
function socksConnect(proxyPort: number, targetPort: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port: proxyPort, noDelay: true });
    let got = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`SOCKS handshake via :${proxyPort} timed out`));
    }, 10_000);
    socket.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    const request = Buffer.from([5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, targetPort >> 8, targetPort & 255]);
    socket.once("connect", () => socket.write(request)); // greeting and request in one write, as curl does
    const onData = (chunk: Buffer): void => {
      got = Buffer.concat([got, chunk]);
      if (got.length < 12) return;
      socket.off("data", onData);
      clearTimeout(timer);
      if (got[3] !== 0) {
        socket.destroy();
        reject(new Error(`SOCKS via :${proxyPort} refused: reply ${got[3]}`));
        return;
      }
      if (got.length > 12) socket.unshift(got.subarray(12));
      resolve(socket);
    };
    socket.on("data", onData);
  });
}

async function socksEcho(proxyPort: number, targetPort: number): Promise<number> {
  const t0 = performance.now();
  const socket = await socksConnect(proxyPort, targetPort);
  await new Promise<void>((resolve, reject) => {
    socket.once("data", () => resolve());
    socket.once("error", reject);
    socket.write("E");
  });
  const elapsed = performance.now() - t0;
  socket.destroy();
  return elapsed;
}

async function socksDownload(proxyPort: number, targetPort: number, size: number): Promise<number> {
  const socket = await socksConnect(proxyPort, targetPort);
  const t0 = performance.now();
  const request = Buffer.alloc(9);
  request.write("D");
  request.writeBigUInt64BE(BigInt(size), 1);
  return new Promise<number>((resolve, reject) => {
    let received = 0;
    socket.on("data", (c: Buffer) => (received += c.length));
    socket.once("end", () => (received >= size ? resolve(performance.now() - t0) : reject(new Error(`download via :${proxyPort}: ${received} of ${size} bytes`))));
    socket.once("error", reject);
    socket.end(request);
  });
}
