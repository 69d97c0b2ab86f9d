// `npm run bench`: tunnelctl against OpenSSH and the loopback limit, on 127.0.0.1 only, with a
// private sshd it starts itself. Prints one table (median, p99, min, max per row) and the target
// checks; `--json` prints the same as JSON. Progress goes to stderr. Never fails on a missed
// target: the benchmark reports, tests enforce.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { ROOT } from "./lib/children.ts";
import { formatMarkdown, formatText } from "./lib/format.ts";
import { balancedRounds } from "./lib/order.ts";
import { machineInfo } from "./lib/proc.ts";
import { Report } from "./lib/report.ts";
import { startRig, type Rig } from "./lib/rig.ts";
import { MiB, formatSize, parseSize } from "./lib/stats.ts";
import { runBackpressure } from "./sections/backpressure.ts";
import { runConcurrency } from "./sections/concurrency.ts";
import { runFleet } from "./sections/fleet.ts";
import { runSocks } from "./sections/socks.ts";
import { runSetup } from "./sections/setup.ts";
import { runThroughput } from "./sections/throughput.ts";
import { runWan } from "./sections/wan.ts";

const SECTIONS = ["throughput", "setup", "concurrency", "backpressure", "wan", "socks", "reconcile", "scale"] as const;
type Section = (typeof SECTIONS)[number];

const HELP = `Usage: npm run bench -- [options]

  --quick                 about a minute: smaller sizes, fewer rounds, fleets of 1 and 100
  --sections LIST         comma-separated: ${SECTIONS.join(",")} (default: all)
  --size SIZE             throughput transfer per direction (default 1GiB; quick 128MiB)
  --rounds N              throughput rounds (default 5; quick 2); concurrency runs min(N, 3)
  --connections N         sequential connections for setup latency (default 500; quick 100)
  --setup-warmup N        then N more per Node contender and measure again, warm (default 1000; quick 300; 0: skip)
  --concurrent N          concurrent connections (default 200; quick 50)
  --concurrent-size SIZE  echoed per concurrent connection (default 1MiB)
  --bp-size SIZE          offered to a target that never reads (default 512MiB; quick 64MiB)
  --wan-rtts LIST         round trips for the wan section, ms (default 0,20,50,100)
  --wan-seconds S         each wan transfer runs this long, ramp-up included (default 3; quick 2)
  --wan-rounds N          wan rounds (default 3, so that the median is one; quick 1)
  --wan-stall DURATION_S  seconds the wan stalled readers stop (default 10; quick 3)
  --edits N               manifest edits per fleet size (default 200; quick 30)
  --fleet-sizes LIST      tunnels loaded during the edits (default 1,100,1000; quick 1,100)
  --scale-tunnels N       tunnels for the cold start / memory run (default 1000; quick 100)
  --forwards N            forwards per fleet tunnel (default 10)
  --remote-forwards N     of those, remote forwards (default 2)
  --servers N             embedded ssh2 servers for fleets above 1 tunnel (default 4)
  --contenders LIST        only these (ids: direct,relay,ssh-L,ssh-R,ssh-gcm-L,ssh-gcm-R,tunnelctl-L,tunnelctl-R)
  --fleet-status-dir      fleets run with --status-dir outside the watched directory
  --cpu-prof [DIR]        run tunnelctl under --cpu-prof; profiles in DIR (default bench/profiles)
  --tunnelctl-root DIR    run the tunnelctl of another checkout (same layout) to compare a change
  --run-arg ARG           pass ARG to "tunnelctl run" (repeatable; e.g. --run-arg=--resync=10m)
  --node-arg ARG          pass ARG to tunnelctl's node (repeatable; e.g. --node-arg=--prof)
  --built                 run bin/tunnelctl.js (needs npm run build) instead of src/ under tsx
  --json                  print JSON instead of the table (npm run -s bench -- --json: no npm banner)
  --json-file FILE        also write the JSON into FILE
  --results FILE          also write the table into FILE (Markdown; e.g. bench/RESULTS.md)
  -h, --help
`;

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    sections: { type: "string" },
    size: { type: "string" },
    rounds: { type: "string" },
    connections: { type: "string" },
    "setup-warmup": { type: "string" },
    concurrent: { type: "string" },
    "concurrent-size": { type: "string" },
    "bp-size": { type: "string" },
    edits: { type: "string" },
    "wan-rtts": { type: "string" },
    "wan-seconds": { type: "string" },
    "wan-rounds": { type: "string" },
    "wan-stall": { type: "string" },
    "fleet-sizes": { type: "string" },
    "scale-tunnels": { type: "string" },
    forwards: { type: "string" },
    "remote-forwards": { type: "string" },
    servers: { type: "string" },
    "fleet-status-dir": { type: "boolean", default: false },
    contenders: { type: "string" },
    "cpu-prof": { type: "string" },
    built: { type: "boolean", default: false },
    "tunnelctl-root": { type: "string" },
    "node-arg": { type: "string", multiple: true },
    "run-arg": { type: "string", multiple: true },
    json: { type: "boolean", default: false },
    results: { type: "string" },
    "json-file": { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  },
  allowPositionals: false,
  strict: true,
});

if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

const quick = values.quick;
const int = (text: string | undefined, fallback: number, name: string): number => {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) usage(`--${name} must be a whole number, not "${text}"`);
  return n;
};
function usage(message: string): never {
  process.stderr.write(`bench: ${message}\n\n${HELP}`);
  process.exit(2);
}
const size = (text: string | undefined, fallback: number, name: string): number => {
  try {
    return text === undefined ? fallback : parseSize(text);
  } catch (err) {
    usage(`--${name}: ${(err as Error).message}`);
  }
};

const sections = new Set<Section>();
for (const s of (values.sections ?? SECTIONS.join(",")).split(",").map((x) => x.trim()).filter(Boolean)) {
  if (!(SECTIONS as readonly string[]).includes(s)) usage(`unknown section "${s}"`);
  sections.add(s as Section);
}

const options = {
  size: size(values.size, quick ? 128 * MiB : 1024 * MiB, "size"),
  rounds: Math.max(1, int(values.rounds, quick ? 2 : 5, "rounds")),
  connections: Math.max(1, int(values.connections, quick ? 100 : 500, "connections")),
  setupWarmup: int(values["setup-warmup"], quick ? 300 : 1000, "setup-warmup"),
  concurrent: Math.max(1, int(values.concurrent, quick ? 50 : 200, "concurrent")),
  concurrentSize: size(values["concurrent-size"], MiB, "concurrent-size"),
  bpSize: size(values["bp-size"], quick ? 64 * MiB : 512 * MiB, "bp-size"),
  edits: int(values.edits, quick ? 30 : 200, "edits"),
  wanRtts: (values["wan-rtts"] ?? "0,20,50,100").split(",").map((x) => int(x.trim(), 0, "wan-rtts")),
  wanSeconds: Math.max(1, int(values["wan-seconds"], quick ? 2 : 3, "wan-seconds")),
  wanRounds: Math.max(1, int(values["wan-rounds"], quick ? 1 : 3, "wan-rounds")),
  wanStallS: int(values["wan-stall"], quick ? 3 : 10, "wan-stall"),
  fleetSizes: (values["fleet-sizes"] ?? (quick ? "1,100" : "1,100,1000")).split(",").map((x) => int(x.trim(), 1, "fleet-sizes")),
  scaleTunnels: Math.max(1, int(values["scale-tunnels"], quick ? 100 : 1000, "scale-tunnels")),
  forwards: Math.max(1, int(values.forwards, 10, "forwards")),
  remoteForwards: int(values["remote-forwards"], 2, "remote-forwards"),
  servers: Math.max(1, int(values.servers, 4, "servers")),
  cpuProfDir: values["cpu-prof"] === undefined ? undefined : resolve(values["cpu-prof"] || join(ROOT, "bench", "profiles")),
  built: values.built,
  root: values["tunnelctl-root"] === undefined ? undefined : resolve(values["tunnelctl-root"]),
  nodeArgs: values["node-arg"] ?? [],
  runArgs: values["run-arg"] ?? [],
};
if (options.remoteForwards > options.forwards) usage("--remote-forwards cannot exceed --forwards");
if (options.built && !existsSync(join(options.root ?? ROOT, "dist", "cli", "main.js"))) usage("--built needs dist/: run npm run build first");
if (options.cpuProfDir) mkdirSync(options.cpuProfDir, { recursive: true });

const log = (line: string): void => void process.stderr.write(`${line}\n`);

const ssh2Version = (JSON.parse(readFileSync(join(ROOT, "node_modules", "ssh2", "package.json"), "utf8")) as { version: string }).version;
const machine = machineInfo(ssh2Version);
const report = new Report();
if (options.runArgs.length) report.note(`tunnelctl run with extra arguments: ${options.runArgs.join(" ")}`);
if (options.nodeArgs.length) report.note(`tunnelctl's node with extra options: ${options.nodeArgs.join(" ")}`);
if (options.root) report.note(`tunnelctl run from another checkout: ${options.root}`);
const startedAt = new Date();
const t0 = performance.now();
const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`;

log(`tunnelctl bench: sections ${[...sections].join(", ")}${quick ? " (quick)" : ""}`);
if (!existsSync(join(ROOT, "node_modules", "ssh2", "lib", "protocol", "crypto", "build", "Release", "sshcrypto.node"))) {
  report.note("ssh2's native binding (sshcrypto.node) is missing: tunnelctl runs on the slower JavaScript crypto paths");
}

let rig: Rig | undefined;
try {
  if (sections.has("throughput") || sections.has("setup") || sections.has("concurrency") || sections.has("backpressure") || sections.has("wan")) {
    log("starting the rig: sshd, targets, relay, ssh -L/-R (default, aes128-gcm), tunnelctl run");
    rig = await startRig({ cpuProfDir: options.cpuProfDir, built: options.built, root: options.root, nodeArgs: options.nodeArgs, runArgs: options.runArgs });
    if (values.contenders) {
      const wanted = new Set(values.contenders.split(",").map((x) => x.trim()));
      for (const id of wanted) if (!rig.contenders.some((c) => c.id === id)) usage(`unknown contender "${id}"`);
      rig.contenders = rig.contenders.filter((c) => wanted.has(c.id));
    }
    log(`  ciphers: OpenSSH default ${rig.ciphers.openSshDefault}, tunnelctl (ssh2 default) ${rig.ciphers.tunnelctl}`);
    report.note(`ciphers negotiated: OpenSSH default ${rig.ciphers.openSshDefault}; tunnelctl (ssh2 defaults) ${rig.ciphers.tunnelctl}`);
    if (sections.has("throughput")) {
      log(`throughput: ${formatSize(options.size)} each way, ${options.rounds} rounds`);
      await runThroughput(rig, report, { size: options.size, rounds: options.rounds, log });
    }
    if (sections.has("setup")) {
      log(`setup: ${options.connections} sequential connect + 1-byte echo per contender`);
      await runSetup(rig, report, { connections: options.connections, rounds: Math.min(balancedRounds(rig.contenders.length, 5), options.connections), warmup: options.setupWarmup, log });
    }
    if (sections.has("concurrency")) {
      const rounds = Math.min(options.rounds, 3);
      log(`concurrency: ${options.concurrent} × ${formatSize(options.concurrentSize)}, ${rounds} rounds`);
      await runConcurrency(rig, report, { connections: options.concurrent, size: options.concurrentSize, rounds, log });
    }
    if (sections.has("backpressure")) {
      log(`backpressure: ${formatSize(options.bpSize)} offered to a target that never reads`);
      await runBackpressure(rig, report, { size: options.bpSize, stallMs: quick ? 1500 : 3000, log });
    }
    if (sections.has("wan")) {
      log(`wan: a delay relay between the SSH clients and sshd at ${options.wanRtts.join(", ")} ms round trip; ${options.wanRounds} rounds`);
      const budget = 256 * MiB;
      report.note(`wan: tunnelctl run --window-budget ${formatSize(budget)}, transport.maxWindow at its default (16MiB); each transfer runs ${options.wanSeconds} s from its connect (ramp-up included)`);
      await runWan(rig.sshd, rig.targetPort, rig.ciphers.openSshDefault, report, {
        rtts: options.wanRtts,
        seconds: options.wanSeconds,
        rounds: options.wanRounds,
        stallMs: options.wanStallS * 1000,
        budget,
        tunnelctl: { cpuProfDir: options.cpuProfDir, built: options.built, root: options.root, nodeArgs: options.nodeArgs, extraArgs: options.runArgs },
        log,
      });
    }
    const stopMs = await rig.tunnelctl.stop("SIGTERM", 10_000);
    log(`  tunnelctl (rig) stopped in ${stopMs} ms`);
    await rig.close();
    rig = undefined;
  }
  if (sections.has("socks")) {
    log("socks: SOCKS5 through tunnelctl's dynamic forward and ssh -D");
    await runSocks(report, { connections: quick ? 100 : 500, rounds: quick ? 2 : 4, size: quick ? 64 * 1024 * 1024 : 256 * 1024 * 1024, log });
  }
  if (sections.has("reconcile") || sections.has("scale")) {
    await runFleet(report, {
      sizes: sections.has("reconcile") ? options.fleetSizes : [],
      scaleTunnels: sections.has("scale") ? options.scaleTunnels : undefined,
      edits: options.edits,
      forwards: options.forwards,
      remoteForwards: options.remoteForwards,
      servers: options.servers,
      cpuProfDir: options.cpuProfDir,
      built: options.built,
      statusDirElsewhere: values["fleet-status-dir"],
      root: options.root,
      nodeArgs: options.nodeArgs,
      runArgs: options.runArgs,
      idleWindowMs: quick ? 3000 : 10_000,
      cpuPerGiB: report.rows.filter((r) => r.metric === "forwarder CPU per GiB" && r.contender.startsWith("tunnelctl")),
      log,
    });
  }
} catch (err) {
  log(`bench failed: ${(err as Error).stack ?? String(err)}`);
  process.exitCode = 1;
} finally {
  await rig?.close();
}

const durationS = (performance.now() - t0) / 1000;
const json = `${JSON.stringify({ startedAt: startedAt.toISOString(), durationS, command, machine, options, rows: report.rows, checks: report.checks, notes: report.notes }, null, 2)}\n`;
if (values["json-file"]) writeFileSync(resolve(values["json-file"]), json);
if (values.json) {
  process.stdout.write(json);
} else {
  process.stdout.write(formatText(report, machine, `tunnelctl bench — ${command} — ${durationS.toFixed(0)} s`));
}
if (values.results) {
  const file = resolve(values.results);
  const generated = formatMarkdown(report, machine, command, startedAt.toISOString(), durationS);
  writeFileSync(file, mergeResults(existsSync(file) ? readFileSync(file, "utf8") : "", generated));
  log(`wrote ${file}`);
}

/** Replace the generated part of RESULTS.md, keeping whatever was written by hand around it. */
function mergeResults(existing: string, generated: string): string {
  const begin = "<!-- bench:begin (generated by npm run bench -- --results; edit outside these markers) -->";
  const end = "<!-- bench:end -->";
  const block = `${begin}\n${generated}\n${end}`;
  const i = existing.indexOf(begin.slice(0, 16));
  const j = existing.indexOf(end);
  if (i < 0 || j < 0) return `${block}\n${existing}`;
  return `${existing.slice(0, i)}${block}${existing.slice(j + end.length)}`;
}
