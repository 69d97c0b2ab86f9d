// Section: WAN — single-connection throughput across a long link. A userspace delay relay
// (bench/delay-relay.ts) sits between the SSH clients and sshd at each round trip; tunnelctl, ssh
// with OpenSSH's default cipher and ssh -c aes128-gcm carry -L and -R forwards over it, measured
// in all four directions, interleaved round by round (bench/lib/order.ts). Then a stalled-reader
// row: 8 downloads at the longest round trip whose readers stop for a while, and the forwarder's
// RSS meanwhile (a window is a promise to buffer).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import type { Sshd } from "../../test/helpers/sshd.ts";
import { freePort } from "../../test/helpers/sshd.ts";
import { spawnScript, type Child } from "../lib/children.ts";
import { download, downloadFor, downloadRequest, sleep, upload, uploadFor, waitAccepting } from "../lib/client.ts";
import { roundOrder } from "../lib/order.ts";
import { cpuSeconds, rssBytes, treeCpuSeconds } from "../lib/proc.ts";
import type { Report } from "../lib/report.ts";
import { GCM, startOpenSsh } from "../lib/rig.ts";
import { GiB, MiB, formatSize } from "../lib/stats.ts";
import { startTunnelctl, tunnelManifest, type TunnelctlOptions } from "../lib/tunnelctl.ts";

export interface WanOptions {
  /** Round trips to measure, ms. */
  rtts: number[];
  /** Seconds each transfer runs (from the connect: ramp-up included). */
  seconds: number;
  rounds: number;
  /** How long the stalled readers stop (ms), at the longest round trip. */
  stallMs: number;
  /** tunnelctl run --window-budget, bytes. */
  budget: number;
  tunnelctl: TunnelctlOptions;
  log: (line: string) => void;
}

type Kind = "tunnelctl" | "ssh" | "ssh-gcm";
interface Direction {
  forward: "L" | "R";
  op: "download" | "upload";
  label: string;
  /** Who receives the bulk: our client side (the window is the forwarder's) or the server. */
  receiver: "client" | "server";
}

const DIRECTIONS: Direction[] = [
  { forward: "L", op: "download", label: "-L download (server → us)", receiver: "client" },
  { forward: "R", op: "upload", label: "-R into our local target (server → us)", receiver: "client" },
  { forward: "L", op: "upload", label: "-L upload (us → server)", receiver: "server" },
  { forward: "R", op: "download", label: "-R out of our local target (us → server)", receiver: "server" },
];
const STALLED_READERS = 8;
/** Each stalled reader first reads this much (its window has grown), then stops. */
const READ_BEFORE_STALL = 48 * MiB;
const RSS_LIMIT = 300 * 1000 * 1000;

interface Forwarder {
  kind: Kind;
  label: string;
  pid: number;
  ports: { L: number; R: number };
}

interface Link {
  rttMs: number;
  forwarders: Forwarder[];
  statusFile: string;
  close(): Promise<void>;
}

async function startLink(sshd: Sshd, targetPort: number, rttMs: number, options: WanOptions, openSshDefault: string): Promise<Link> {
  const cleanups: Array<() => unknown> = [];
  const close = async (): Promise<void> => {
    for (const fn of cleanups.reverse()) await fn();
  };
  try {
    const relay: Child = spawnScript(`delay relay ${rttMs} ms`, "delay-relay.ts", [String(sshd.port), String(rttMs / 2)]);
    cleanups.push(() => relay.stop());
    const { port } = await relay.nextJson<{ port: number }>((v) => typeof v.port === "number", 20_000);
    const home = mkdtempSync(join(tmpdir(), "tunnelctl-wan-"));
    cleanups.push(() => rmSync(home, { recursive: true, force: true }));
    const knownHostsFile = join(home, "known_hosts");
    writeFileSync(knownHostsFile, `[127.0.0.1]:${port} ${sshd.hostPublicKey}\n`);
    const server = { port, username: sshd.username, clientKeyFile: sshd.clientKeyFile, knownHostsFile };

    const forwarders: Forwarder[] = [];
    for (const cipher of [undefined, GCM]) {
      const L = await freePort();
      const R = await freePort();
      const ssh = startOpenSsh(server, cipher, L, R, targetPort);
      cleanups.push(() => ssh.stop());
      await Promise.all([waitAccepting(L, 20_000), waitAccepting(R, 20_000)]);
      forwarders.push({ kind: cipher ? "ssh-gcm" : "ssh", label: cipher ? "ssh aes128-gcm" : `ssh (${openSshDefault})`, pid: ssh.pid, ports: { L, R } });
    }
    const dir = join(home, "manifests");
    const L = await freePort();
    const R = await freePort();
    mkdirSync(dir);
    writeFileSync(join(dir, "wan.yaml"), tunnelManifest("wan", { port, username: sshd.username, keyFile: sshd.clientKeyFile, knownHostsFile }, [{ localPort: L, remotePort: targetPort }], [{ remotePort: R, localPort: targetPort }]));
    const tunnelctl = startTunnelctl(`tunnelctl (${rttMs} ms)`, dir, {
      ...options.tunnelctl,
      extraArgs: [...(options.tunnelctl.extraArgs ?? []), "--status-interval", "200ms", "--window-budget", String(options.budget)],
    });
    cleanups.push(() => tunnelctl.stop("SIGTERM", 10_000));
    await Promise.all([waitAccepting(L, 30_000), waitAccepting(R, 30_000)]);
    forwarders.unshift({ kind: "tunnelctl", label: "tunnelctl", pid: tunnelctl.pid, ports: { L, R } });
    return { rttMs, forwarders, statusFile: join(dir, "wan.yaml.status"), close };
  } catch (err) {
    await close();
    throw err;
  }
}

export async function runWan(sshd: Sshd, targetPort: number, openSshDefault: string, report: Report, options: WanOptions): Promise<void> {
  const { rtts, rounds, log } = options;
  const sshdPid = sshd.pid();
  const medians = new Map<string, number>(); // `${rtt}|${direction.label}|${kind}` → MiB/s
  const longest = Math.max(...rtts);
  for (const rttMs of rtts) {
    const seconds = options.seconds;
    const timeoutMs = 60_000 + seconds * 1000;
    const link = await startLink(sshd, targetPort, rttMs, options, openSshDefault);
    try {
      // Warm up every path once, unmeasured (JIT, socket buffers).
      for (const f of link.forwarders) {
        for (const d of DIRECTIONS) await (d.op === "upload" ? upload : download)(f.ports[d.forward], 16 * MiB, timeoutMs);
      }
      const units = link.forwarders.flatMap((f) => DIRECTIONS.map((d) => ({ f, d })));
      const rate = new Map<string, number[]>();
      const clientCpu = new Map<Kind, number[]>();
      const serverCpu = new Map<Kind, number[]>();
      const push = <K>(m: Map<K, number[]>, k: K, v: number): void => void m.set(k, [...(m.get(k) ?? []), v]);
      for (let round = 0; round < rounds; round++) {
        for (const { f, d } of roundOrder(units, round)) {
          const c0 = cpuSeconds(f.pid) ?? 0;
          const s0 = sshdPid ? treeCpuSeconds(sshdPid) : 0;
          const { bytes, ms } = await (d.op === "upload" ? uploadFor : downloadFor)(f.ports[d.forward], seconds, timeoutMs);
          const c1 = cpuSeconds(f.pid) ?? 0;
          const s1 = sshdPid ? treeCpuSeconds(sshdPid) : 0;
          const mibs = bytes / MiB / (ms / 1000);
          push(rate, `${d.label}|${f.kind}`, mibs);
          push(clientCpu, f.kind, (c1 - c0) / (bytes / GiB));
          push(serverCpu, f.kind, (s1 - s0) / (bytes / GiB));
          log(`  wan ${rttMs} ms round ${round + 1}/${rounds} ${f.label} ${d.label}: ${mibs.toFixed(1)} MiB/s`);
          await sleep(50);
        }
      }
      for (const d of DIRECTIONS) {
        for (const f of link.forwarders) {
          const row = report.add("wan", `${d.label}, RTT ${rttMs} ms, ${seconds} s`, f.label, "MiB/s", rate.get(`${d.label}|${f.kind}`) ?? [], "higher");
          medians.set(`${rttMs}|${d.label}|${f.kind}`, row.summary.median);
        }
      }
      for (const f of link.forwarders) {
        report.add("wan", `client CPU per GiB, RTT ${rttMs} ms`, f.label, "CPU s", clientCpu.get(f.kind) ?? []);
        report.add("wan", `sshd CPU per GiB, RTT ${rttMs} ms`, f.label, "CPU s", serverCpu.get(f.kind) ?? []);
      }
      if (rttMs === longest) await stalledReaders(link, report, options);
    } finally {
      await link.close();
    }
  }

  const ratio = (rtt: number, d: Direction): number => (medians.get(`${rtt}|${d.label}|tunnelctl`) ?? NaN) / (medians.get(`${rtt}|${d.label}|ssh`) ?? NaN);
  for (const rtt of rtts) {
    for (const d of DIRECTIONS) {
      const r = ratio(rtt, d);
      const name = `wan ${d.label} at ${rtt} ms: tunnelctl ÷ ssh default`;
      if (rtt === 0) report.check(name, r, "≥ 1.0×", "×", r >= 1.0);
      else if (d.receiver === "server") report.check(name, r, "≥ 1.0× (the server's window is the limit)", "×", r >= 1.0);
      else if (rtt === 50) report.check(name, r, "≥ 3×", "×", r >= 3);
      else if (rtt === 100) report.check(name, r, "≥ 5×", "×", r >= 5);
      else report.check(name, r, "(no target)", "×", true);
    }
  }
}

/** 8 downloads through tunnelctl -L and ssh -L that read READ_BEFORE_STALL, then stop reading. */
async function stalledReaders(link: Link, report: Report, options: WanOptions): Promise<void> {
  for (const f of link.forwarders.filter((x) => x.kind !== "ssh-gcm")) {
    const rss0 = rssBytes(f.pid) ?? 0;
    const sockets: Socket[] = [];
    const counts: number[] = [];
    for (let i = 0; i < STALLED_READERS; i++) {
      const s = connect({ host: "127.0.0.1", port: f.ports.L, noDelay: true });
      s.on("error", () => undefined);
      s.write(downloadRequest(64 * GiB));
      counts.push(0);
      s.on("data", (c: Buffer) => {
        counts[i]! += c.length;
        if (counts[i]! >= READ_BEFORE_STALL) s.pause();
      });
      sockets.push(s);
    }
    const deadline = Date.now() + 120_000;
    while (counts.some((n) => n < READ_BEFORE_STALL) && Date.now() < deadline) await sleep(20);
    const window = f.kind === "tunnelctl" ? largestWindow(link.statusFile) : undefined;
    let peak = rssBytes(f.pid) ?? 0;
    const t0 = Date.now();
    while (Date.now() - t0 < options.stallMs) {
      peak = Math.max(peak, rssBytes(f.pid) ?? 0);
      await sleep(50);
    }
    for (const s of sockets) s.destroy();
    const growth = (peak - rss0) / MiB;
    options.log(`  wan stalled readers ${f.label}: RSS ${(rss0 / MiB).toFixed(0)} → peak ${(peak / MiB).toFixed(0)} MiB${window ? `, largest window ${formatSize(window)}` : ""}`);
    report.add("wan", `peak RSS, ${STALLED_READERS} readers stopped ${options.stallMs / 1000} s at RTT ${link.rttMs} ms`, f.label, "MiB", [peak / MiB]);
    report.add("wan", `RSS growth, ${STALLED_READERS} readers stopped ${options.stallMs / 1000} s at RTT ${link.rttMs} ms`, f.label, "MiB", [growth]);
    if (f.kind === "tunnelctl") {
      // What may be buffered: the budget, plus ssh2's own 2 MiB window and 2 MiB stream buffer per connection.
      const bound = options.budget / MiB + STALLED_READERS * 4;
      report.check(`wan stalled readers: tunnelctl peak RSS`, peak / MiB, `< ${(RSS_LIMIT / MiB).toFixed(0)} MiB`, "MiB", peak < RSS_LIMIT);
      report.check(`wan stalled readers: tunnelctl RSS growth within the window budget`, growth, `≤ ${bound.toFixed(0)} MiB (budget + 4 MiB per connection)`, "MiB", growth <= bound, window ? `largest window before the stall: ${formatSize(window)}` : "");
    }
    await sleep(500);
  }
}

/** The largest receiveWindow the tunnelctl status file shows for a forward now. */
function largestWindow(statusFile: string): number | undefined {
  try {
    const doc = parseAllDocuments(readFileSync(statusFile, "utf8"))[0]?.toJS() as { status?: { forwards?: { local?: Array<{ receiveWindow?: number }> } } } | undefined;
    return Math.max(0, ...(doc?.status?.forwards?.local ?? []).map((f) => f.receiveWindow ?? 0)) || undefined;
  } catch {
    return undefined;
  }
}
