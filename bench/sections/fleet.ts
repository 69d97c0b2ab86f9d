// Sections 5 and 6: fleets of tunnels under one `tunnelctl run`.
//  - reconcile: with N tunnels loaded, edit one manifest (rename into place) to add a local
//    forward on a new port, and time rename → that port accepting; E edits per size.
//  - scale: cold start of N tunnels × F forwards to every status file Ready; RSS per session and
//    per forward (RSS after a bulk add of K local forwards to every tunnel); shutdown time. Then
//    the same N tunnels behind one bastion (spec.jump): one embedded server is the jump host of
//    every tunnel (one shared hop session), the others are the targets.
// One tunnel runs against the private OpenSSH sshd; bigger fleets run against tunnelctl's
// embedded ssh2 Server (several per process, two processes), since one sshd session process per
// tunnel would cost ~10 MB each and a fork + re-exec per handshake.
import { chmodSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { destroySshd, startSshd, type Sshd } from "../../test/helpers/sshd.ts";
import { generateKeyPair } from "../../src/demo/keys.ts";
import { atExit, spawnScript, type Child } from "../lib/children.ts";
import { echoOnce, sleep, tryConnect } from "../lib/client.ts";
import { cpuSeconds, portsInUse, rssBytes } from "../lib/proc.ts";
import type { Report, Row } from "../lib/report.ts";
import { MiB, percentile } from "../lib/stats.ts";
import { startTunnelctl, tunnelManifest, type LocalForwardDef, type RemoteForwardDef, type ServerRef } from "../lib/tunnelctl.ts";

export interface FleetOptions {
  /** Fleet sizes for the reconcile (edit) measurement; empty: none. */
  sizes: number[];
  /** Fleet size for the cold start and memory measurement; undefined: none. */
  scaleTunnels: number | undefined;
  edits: number;
  forwards: number;
  remoteForwards: number;
  servers: number;
  cpuProfDir: string | undefined;
  built: boolean;
  cpuPerGiB: Row[];
  /** Run tunnelctl with --status-dir outside the watched directory (SPEC §5) instead of status files beside the manifests. */
  statusDirElsewhere: boolean;
  root: string | undefined;
  nodeArgs: string[];
  runArgs: string[];
  /** How long to watch the CPU of an idle, converged fleet. */
  idleWindowMs: number;
  log: (line: string) => void;
}

/** Local forwards added to each of BULK_TUNNELS tunnels after the cold start (RSS per forward). */
const BULK_ADD = 10;
const BULK_TUNNELS = 100;
const EDIT_TIMEOUT_MS = 10_000;
const EDIT_SPACING_MS = 150;
const READY_TIMEOUT_MS = 240_000;
/** tunnelctl's own deadline is 5 s (SPEC §5); past this we SIGKILL it. */
const STOP_GRACE_MS = 30_000;

/** Ports below the ephemeral range (32768+), skipping any in use now. */
class PortPool {
  private next = 10_000;
  private readonly used = portsInUse();
  take(): number {
    while (this.used.has(this.next)) this.next++;
    if (this.next >= 32_768) throw new Error("out of ports below the ephemeral range");
    return this.next++;
  }
}

interface Infra {
  sshd: Sshd | undefined;
  embedded: ServerRef[];
  embeddedProcs: Child[];
  targetPort: number;
  targets: Child;
  dir: string;
  close(): Promise<void>;
}

async function startInfra(options: FleetOptions, needSshd: boolean, needEmbedded: boolean): Promise<Infra> {
  const dir = mkdtempSync(join(tmpdir(), "tunnelctl-fleet-"));
  const targets = spawnScript("targets", "target-server.ts");
  const { port: targetPort } = await targets.nextJson<{ port: number }>((v) => typeof v.port === "number", 20_000);
  let sshd: Sshd | undefined;
  let removeHook: () => unknown = () => undefined;
  if (needSshd) {
    sshd = await startSshd();
    const s = sshd;
    removeHook = atExit(() => {
      const pid = s.pid();
      if (pid) process.kill(-pid, "SIGKILL");
    });
  }
  const embedded: ServerRef[] = [];
  const embeddedProcs: Child[] = [];
  if (needEmbedded) {
    const key = generateKeyPair("tunnelctl-bench-client");
    const keyFile = join(dir, "client_key");
    writeFileSync(keyFile, key.privateKey, { mode: 0o600 });
    chmodSync(keyFile, 0o600);
    writeFileSync(`${keyFile}.pub`, `${key.publicKey}\n`);
    const knownHostsFile = join(dir, "known_hosts");
    const procs = Math.min(options.servers, 2);
    const lines: string[] = [];
    for (let p = 0; p < procs; p++) {
      const count = Math.floor(options.servers / procs) + (p < options.servers % procs ? 1 : 0);
      const child = spawnScript(`embedded-ssh-${p}`, "embedded-ssh.ts", [String(count), `${keyFile}.pub`]);
      embeddedProcs.push(child);
      const info = await child.nextJson<{ ports: number[]; hostPublicKey: string }>((v) => Array.isArray(v.ports), 30_000);
      for (const port of info.ports) {
        lines.push(`[127.0.0.1]:${port} ${info.hostPublicKey}`);
        embedded.push({ port, username: "bench", keyFile, knownHostsFile });
      }
    }
    writeFileSync(knownHostsFile, `${lines.join("\n")}\n`);
  }
  return {
    sshd,
    embedded,
    embeddedProcs,
    targetPort,
    targets,
    dir,
    async close() {
      for (const c of embeddedProcs) await c.stop();
      await targets.stop();
      await destroySshd(sshd);
      removeHook();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

interface TunnelDef {
  file: string;
  name: string;
  server: ServerRef;
  local: LocalForwardDef[];
  remote: RemoteForwardDef[];
}

function statusText(dir: string, file: string): string {
  try {
    return readFileSync(join(dir, `${file}.status`), "utf8");
  } catch {
    return "";
  }
}

/** Ready, with every forward Active (the count tells an old status from the new one). */
function isReady(text: string, forwards: number): boolean {
  if (!/^\s*phase: Ready$/m.test(text)) return false;
  return (text.match(/^\s*state: Active$/gm)?.length ?? 0) === forwards;
}

async function waitAllReady(dir: string, tunnels: TunnelDef[], timeoutMs: number, child: Child, log?: (line: string) => void): Promise<number> {
  const t0 = performance.now();
  const pending = new Set(tunnels);
  let lastLog = t0;
  while (pending.size > 0) {
    if (log && performance.now() - lastLog > 10_000) {
      lastLog = performance.now();
      const phases = new Map<string, number>();
      for (const t of pending) {
        const phase = /^\s*phase: (\w+)$/m.exec(statusText(dir, t.file))?.[1] ?? "no status";
        phases.set(phase, (phases.get(phase) ?? 0) + 1);
      }
      log(`  ${((lastLog - t0) / 1000).toFixed(0)} s: ${pending.size} of ${tunnels.length} not Ready yet (${[...phases].map(([k, v]) => `${k} ${v}`).join(", ")})`);
    }
    for (const t of [...pending]) if (isReady(statusText(dir, t.file), t.local.length + t.remote.length)) pending.delete(t);
    if (pending.size === 0) break;
    if (child.proc.exitCode !== null) throw new Error(`tunnelctl exited while ${pending.size} tunnels were not Ready:\n${child.tail().slice(-1500)}`);
    if (performance.now() - t0 > timeoutMs) {
      const first = [...pending][0]!;
      throw new Error(`${pending.size} of ${tunnels.length} tunnels not Ready after ${timeoutMs} ms; e.g. ${first.file}:\n${statusText(dir, first.file).slice(0, 1500)}\n--- tunnelctl output (tail):\n${child.tail().slice(-1500)}`);
    }
    await sleep(50);
  }
  return performance.now() - t0;
}

export async function runFleet(report: Report, options: FleetOptions): Promise<void> {
  const { log } = options;
  const sizes = [...new Set([...options.sizes, ...(options.scaleTunnels ? [options.scaleTunnels] : [])])].sort((a, b) => a - b);
  if (sizes.length === 0) return;
  const infra = await startInfra(options, sizes.includes(1), sizes.some((n) => n > 1));
  try {
    // tunnelctl with nothing to do: the baseline for RSS per session.
    const baselineDir = mkdtempSync(join(infra.dir, "empty-"));
    const idle = startTunnelctl("tunnelctl (empty)", baselineDir, { built: options.built, root: options.root, nodeArgs: options.nodeArgs, extraArgs: options.runArgs });
    await idle.waitLine("controller started", 30_000);
    await sleep(1000);
    const baselineRss = rssBytes(idle.pid) ?? NaN;
    await idle.stop();
    report.add("scale", "RSS with no tunnels (baseline)", "tunnelctl", "MiB", [baselineRss / MiB]);
    log(`fleet: baseline RSS ${(baselineRss / MiB).toFixed(1)} MiB`);

    const p99BySize = new Map<number, number>();
    const p50BySize = new Map<number, number>();
    let scaleRss = NaN;
    for (const size of sizes) {
      const editing = options.sizes.includes(size) ? options.edits : 0;
      const scale = size === options.scaleTunnels;
      const result = await runOneFleet(infra, size, { ...options, edits: editing, scale, baselineRss }, report);
      if (editing > 0) {
        p99BySize.set(size, result.p99);
        p50BySize.set(size, result.p50);
      }
      if (scale) scaleRss = result.rssReady;
    }
    if (options.scaleTunnels && options.forwards > 1) {
      // The same number of sessions with one local forward each: RSS per forward is the
      // difference over the extra forwards, RSS per session what is left per tunnel.
      const n = options.scaleTunnels;
      const one = await runOneFleet(infra, n, { ...options, forwards: 1, remoteForwards: 0, edits: 0, scale: false, baselineRss }, report);
      const perForward = (scaleRss - one.rssReady) / (n * (options.forwards - 1));
      const perSession = (one.rssReady - baselineRss) / n - perForward;
      const label = `${n} tunnels: ${options.forwards} fwd vs 1 fwd each`;
      report.add("scale", "RSS per forward", label, "KiB", [perForward / 1024]);
      report.add("scale", "RSS per session (per tunnel, less its one forward)", label, "KiB", [perSession / 1024]);
      log(`fleet: RSS per forward ${(perForward / 1024).toFixed(1)} KiB, per session ${(perSession / 1024).toFixed(1)} KiB`);
    }
    if (options.scaleTunnels && infra.embedded.length >= 2) {
      // Every tunnel through one bastion: its session is shared, every target handshake rides it.
      const n = options.scaleTunnels;
      const bastion = await runOneFleet(infra, n, { ...options, edits: 0, scale: false, baselineRss, bastion: true }, report);
      log(`fleet: ${n} tunnels behind one bastion: RSS ${(bastion.rssReady / MiB).toFixed(1)} MiB`);
    }
    if (p99BySize.size > 0) {
      const largest = Math.max(...p99BySize.keys());
      const p99 = p99BySize.get(largest)!;
      report.check(`edit → accepting p99 at ${largest} tunnel${largest === 1 ? "" : "s"}`, p99, "≤ 50 ms", "ms", p99 <= 50);
      const smallest = Math.min(...p50BySize.keys());
      if (largest !== smallest) {
        const growth = p50BySize.get(largest)! / p50BySize.get(smallest)!;
        report.check(`edit → accepting p50, ${largest} ÷ ${smallest} tunnel${smallest === 1 ? "" : "s"}`, growth, "≈ 1× (not growing with the fleet; met if ≤ 2×)", "×", growth <= 2);
      }
    }
  } finally {
    await infra.close();
  }
}

interface OneOptions extends FleetOptions {
  edits: number;
  scale: boolean;
  baselineRss: number;
  /** Every tunnel through the first embedded server as its jump host; the others are the targets. */
  bastion?: boolean;
}

interface OneResult {
  p50: number;
  p99: number;
  rssReady: number;
}

async function runOneFleet(infra: Infra, size: number, options: OneOptions, report: Report): Promise<OneResult> {
  const { log } = options;
  const ports = new PortPool();
  const dir = mkdtempSync(join(infra.dir, `fleet-${size}-`));
  const useSshd = size === 1 && infra.sshd !== undefined && !options.bastion;
  const bastion = options.bastion ? infra.embedded[0] : undefined;
  const targets = bastion ? infra.embedded.slice(1) : infra.embedded;
  const serverLabel = useSshd
    ? "OpenSSH sshd"
    : bastion
      ? `behind 1 bastion, ${targets.length} target${targets.length === 1 ? "" : "s"} (embedded ssh2 Servers)`
      : `${infra.embedded.length} embedded ssh2 Servers`;
  const localCount = options.forwards - options.remoteForwards;
  const label = `${size} tunnel${size === 1 ? "" : "s"} × ${options.forwards} fwd (${localCount} L + ${options.remoteForwards} R), ${serverLabel}${options.statusDirElsewhere ? ", --status-dir" : ""}`;
  const tunnels: TunnelDef[] = [];
  for (let i = 0; i < size; i++) {
    const sshd = infra.sshd;
    const server: ServerRef = useSshd && sshd
      ? { port: sshd.port, username: sshd.username, keyFile: sshd.clientKeyFile, knownHostsFile: sshd.knownHostsFile }
      : targets[i % targets.length]!;
    const name = `t-${String(i).padStart(4, "0")}`;
    tunnels.push({
      file: `${name}.yaml`,
      name,
      server,
      local: Array.from({ length: localCount }, () => ({ localPort: ports.take(), remotePort: infra.targetPort })),
      remote: Array.from({ length: options.remoteForwards }, () => ({ remotePort: ports.take(), localPort: infra.targetPort })),
    });
  }
  for (const t of tunnels) writeFileSync(join(dir, t.file), tunnelManifest(t.name, t.server, t.local, t.remote, bastion));

  const statusDir = options.statusDirElsewhere ? mkdtempSync(join(infra.dir, `status-${size}-`)) : dir;
  const metricsPort = ports.take();
  const extraArgs = [...(options.statusDirElsewhere ? ["--status-dir", statusDir] : []), "--metrics-address", `127.0.0.1:${metricsPort}`, ...options.runArgs];
  log(`fleet: ${label}: cold start`);
  const tSpawn = performance.now();
  const tunnelctl = startTunnelctl(`tunnelctl (${size})`, dir, { cpuProfDir: options.cpuProfDir, built: options.built, extraArgs, root: options.root, nodeArgs: options.nodeArgs });
  const result: OneResult = { p50: NaN, p99: NaN, rssReady: NaN };
  try {
    // "controller started" is logged after the first scan of DIR; tunnels connect meanwhile.
    let startedMs = NaN;
    tunnelctl.waitLine("controller started", 600_000).then(
      () => (startedMs = performance.now() - tSpawn),
      () => undefined,
    );
    await waitAllReady(statusDir, tunnels, READY_TIMEOUT_MS, tunnelctl, log);
    const readyMs = performance.now() - tSpawn;
    const coldCpu = cpuSeconds(tunnelctl.pid) ?? NaN;
    await sleep(1000);
    const rssReady = rssBytes(tunnelctl.pid) ?? NaN;
    result.rssReady = rssReady;
    // What the fleet costs while nothing happens: keepalives, status refreshes, resyncs.
    const idle0 = cpuSeconds(tunnelctl.pid) ?? NaN;
    await sleep(options.idleWindowMs);
    const idlePercent = (((cpuSeconds(tunnelctl.pid) ?? NaN) - idle0) / (options.idleWindowMs / 1000)) * 100;
    report.add("scale", `idle CPU over ${options.idleWindowMs / 1000} s, all Ready`, label, "% of a core", [idlePercent]);
    log(`  idle CPU ${idlePercent.toFixed(1)} % of a core`);
    log(`  controller started after ${startedMs.toFixed(0)} ms, all Ready after ${readyMs.toFixed(0)} ms, RSS ${(rssReady / MiB).toFixed(1)} MiB`);
    // What a Prometheus scrape of this fleet costs: time to answer and size of the text.
    const scrape = await measureScrapes(metricsPort, SCRAPES);
    report.add("scale", `/metrics scrape (${SCRAPES} sequential, all Ready)`, label, "ms", scrape.ms);
    report.add("scale", "/metrics response size", label, "KiB", [scrape.bytes / 1024]);
    report.add("scale", "/metrics series", label, "series", [scrape.series]);
    log(`  /metrics: ${(scrape.bytes / 1024).toFixed(0)} KiB, ${scrape.series} series, p50 ${percentile(scrape.ms, 50).toFixed(1)} ms`);
    report.add("scale", "spawn → 'controller started'", label, "ms", [startedMs]);
    report.add("scale", "cold start: spawn → every status Ready", label, "ms", [readyMs]);
    report.add("scale", "CPU for the cold start", label, "CPU s", [coldCpu]);
    report.add("scale", "RSS, all Ready", label, "MiB", [rssReady / MiB]);
    if (size > 1) report.add("scale", "RSS per tunnel above baseline (session + forwards)", label, "KiB", [(rssReady - options.baselineRss) / size / 1024]);

    if (options.edits > 0) {
      const latencies = await runEdits(dir, tunnels[0]!, options.edits, ports, tunnelctl, log);
      // An edit that never became accepting counts as the timeout: a lower bound, and a miss.
      const samples = [...latencies.ok, ...Array.from({ length: latencies.failed }, () => EDIT_TIMEOUT_MS)];
      report.add("reconcile", "edit (rename) → new local port accepting", label, "ms", samples);
      if (latencies.failed > 0) {
        report.note(`reconcile: ${label}: ${latencies.failed} of ${options.edits} edits not accepting within ${EDIT_TIMEOUT_MS} ms (counted as ${EDIT_TIMEOUT_MS} ms; last: ${latencies.lastError})`);
      }
      result.p50 = percentile(samples, 50);
      result.p99 = percentile(samples, 99);
      log(`  ${options.edits} edits: p50 ${result.p50.toFixed(1)} ms, p99 ${result.p99.toFixed(1)} ms, ${latencies.failed} failed`);
    }

    if (options.scale) {
      const coldLimit = 10_000;
      report.check(`cold start ${label} → all Ready`, readyMs / 1000, `≤ ${coldLimit / 1000} s`, "s", readyMs <= coldLimit);
      report.check(`RSS with ${size} tunnels × ${options.forwards} forwards`, rssReady / MiB, "≤ 1024 MiB", "MiB", rssReady <= 1024 * MiB);
      // Convergence of a bulk change: BULK_ADD more local forwards on BULK_TUNNELS manifests.
      const bulk = tunnels.slice(0, BULK_TUNNELS);
      const t0 = performance.now();
      for (const t of bulk) {
        t.local.push(...Array.from({ length: BULK_ADD }, () => ({ localPort: ports.take(), remotePort: infra.targetPort })));
        const tmp = join(dir, `.${t.file}.tmp`);
        writeFileSync(tmp, tunnelManifest(t.name, t.server, t.local, t.remote));
        renameSync(tmp, join(dir, t.file));
      }
      await waitAllReady(statusDir, bulk, READY_TIMEOUT_MS, tunnelctl, log);
      const bulkMs = performance.now() - t0;
      log(`  bulk edit: +${BULK_ADD * bulk.length} local forwards on ${bulk.length} manifests Ready after ${bulkMs.toFixed(0)} ms`);
      report.add("scale", `bulk edit: +${BULK_ADD} local forwards on ${bulk.length} manifests (renames) → those Ready`, label, "ms", [bulkMs]);
    }
  } finally {
    const stopMs = await tunnelctl.stop("SIGTERM", STOP_GRACE_MS);
    report.add("scale", "shutdown: SIGTERM → exit", label, "ms", [stopMs]);
    if (stopMs > 5000) {
      report.note(`scale: ${label}: shutdown took ${stopMs} ms (SPEC §5: within 5 s)${stopMs >= STOP_GRACE_MS ? "; killed with SIGKILL" : ""}`);
    }
    log(`  stopped in ${stopMs} ms`);
    rmSync(dir, { recursive: true, force: true });
    if (statusDir !== dir) rmSync(statusDir, { recursive: true, force: true });
  }
  return result;
}

async function runEdits(
  dir: string,
  subject: TunnelDef,
  edits: number,
  ports: PortPool,
  tunnelctl: Child,
  log: (line: string) => void,
): Promise<{ ok: number[]; failed: number; lastError: string }> {
  const ok: number[] = [];
  let failed = 0;
  let lastError = "";
  for (let i = 0; i < edits; i++) {
    if (tunnelctl.proc.exitCode !== null) throw new Error(`tunnelctl exited during the edits:\n${tunnelctl.tail().slice(-3000)}`);
    const probe = ports.take();
    const local = [...subject.local, { localPort: probe, remotePort: subject.local[0]?.remotePort ?? 1 }];
    const tmp = join(dir, `.${subject.file}.tmp`);
    writeFileSync(tmp, tunnelManifest(subject.name, subject.server, local, subject.remote));
    const t0 = performance.now();
    renameSync(tmp, join(dir, subject.file));
    let accepted = false;
    while (performance.now() - t0 < EDIT_TIMEOUT_MS) {
      if (await tryConnect(probe)) {
        accepted = true;
        break;
      }
      await sleep(1);
    }
    const ms = performance.now() - t0;
    if (!accepted) {
      failed++;
      lastError = `port ${probe} not accepting after ${EDIT_TIMEOUT_MS} ms`;
    } else {
      try {
        await echoOnce(probe, 5_000); // the new forward really carries data
        ok.push(ms);
      } catch (err) {
        failed++;
        lastError = `port ${probe} accepted but did not echo: ${(err as Error).message}`;
      }
    }
    if ((i + 1) % 50 === 0) log(`  edit ${i + 1}/${edits}`);
    await sleep(EDIT_SPACING_MS);
  }
  return { ok, failed, lastError };
}

const SCRAPES = 10;

/** `count` scrapes of /metrics one after another: each one's time, and the last one's size. */
async function measureScrapes(port: number, count: number): Promise<{ ms: number[]; bytes: number; series: number }> {
  const ms: number[] = [];
  let text = "";
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    text = await res.text();
    ms.push(performance.now() - t0);
  }
  const series = text.split("\n").filter((line) => line !== "" && !line.startsWith("#")).length;
  return { ms, bytes: Buffer.byteLength(text), series };
}
