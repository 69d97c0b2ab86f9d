// `tunnelctl run`, as a real process against the embedded SSH server: it converges, logs JSON
// lines, survives SIGHUP, and on SIGTERM stops cleanly with its last log line flushed.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { writeDemoFiles, freeLoopbackPort } from "../../src/cli/demo-files.ts";
import { startEchoService, type EchoService } from "../../src/demo/echo-service.ts";
import { startEmbeddedServer, type EmbeddedServer } from "../../src/demo/embedded-server.ts";
import { generateDemoKeys } from "../../src/demo/keys.ts";
import { parseStatusDocs } from "../../src/status/index.ts";
import { describeRun, runCli, spawnCli, type CliProcess } from "../helpers/cli.ts";
import { waitFor } from "../helpers/net.ts";

/** The JSON log lines of a run so far (stdout is not a TTY here: plain pino JSON). */
function logLines(run: CliProcess): Array<Record<string, unknown>> {
  return run.stdout
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

function phaseIn(statusFile: string): string | undefined {
  if (!existsSync(statusFile)) return undefined;
  return parseStatusDocs(readFileSync(statusFile, "utf8"))[0]?.status.phase;
}

describe("run", { timeout: 60_000 }, () => {
  let root: string;
  let dir: string;
  // Undefined if before() failed half-way: after() must still close what it did start.
  let echo: EchoService | undefined;
  let server: EmbeddedServer | undefined;
  const running: CliProcess[] = [];

  before(async () => {
    root = mkdtempSync(path.join(tmpdir(), "tunnelctl-run-"));
    dir = path.join(root, "manifests");
    const keys = generateDemoKeys();
    echo = await startEchoService({ banner: "hello" });
    server = await startEmbeddedServer({ hostKey: keys.host.privateKey, authorizedKeys: [keys.client.publicKey] });
    // The demo's manifest (labels app=tunnelctl-demo) serves as any manifest would.
    await writeDemoFiles({
      dir,
      clientPrivateKey: keys.client.privateKey,
      sshPort: server.port,
      hostKeyFingerprint: server.hostKeyFingerprint,
      localPort: await freeLoopbackPort(),
      echoPort: echo.port,
    });
  });
  after(async () => {
    for (const run of running) if (run.child.exitCode === null) run.child.kill("SIGKILL");
    await Promise.all([server?.close(), echo?.close()]);
    if (root) rmSync(root, { recursive: true, force: true });
  });

  const startRun = (args: string[]): CliProcess => {
    const run = spawnCli(["run", dir, ...args]);
    running.push(run);
    return run;
  };

  it("converges, logs JSON, resyncs on SIGHUP and stops cleanly on SIGTERM", async () => {
    const statusDir = path.join(root, "status");
    const metricsPort = await freeLoopbackPort();
    const run = startRun(["--status-dir", statusDir, "--selector", "app=tunnelctl-demo", "--resync", "1m", "--metrics-address", `127.0.0.1:${metricsPort}`]);
    const statusFile = path.join(statusDir, "demo.yaml.status");
    await waitFor(() => phaseIn(statusFile) === "Ready", `Ready in ${statusFile}\n${run.stdout}${run.stderr}`, 20_000);
    assert.equal(existsSync(path.join(dir, "demo.yaml.status")), false, "--status-dir: nothing beside the manifest");
    assert.ok(logLines(run).some((line) => line["msg"] === "serving /metrics, /healthz and /readyz" && line["address"] === `127.0.0.1:${metricsPort}`));
    assert.equal((await fetch(`http://127.0.0.1:${metricsPort}/healthz`)).status, 200);

    run.child.kill("SIGHUP");
    await waitFor(() => logLines(run).some((line) => line["msg"] === "resync requested"), "the SIGHUP log line");
    assert.equal(run.child.exitCode, null, "SIGHUP does not stop tunnelctl");

    run.child.kill("SIGTERM");
    const result = await run.exited;
    assert.equal(result.code, 0, describeRun(result));
    const lines = logLines(run);
    assert.ok(lines.some((line) => line["msg"] === "starting"));
    assert.equal(lines.at(-1)?.["msg"], "stopped", "the last line is flushed before exit");
  });

  it("a selector that matches nothing manages nothing", async () => {
    const run = startRun(["--selector", "app=other", "--log-level", "debug"]);
    await waitFor(() => logLines(run).some((line) => line["msg"] === "watching"), `the first scan\n${run.stdout}${run.stderr}`, 20_000);
    run.child.kill("SIGINT");
    const result = await run.exited;
    assert.equal(result.code, 0, describeRun(result));
    assert.equal(existsSync(path.join(dir, "demo.yaml.status")), false);
  });

  it("SIGTERM still stops cleanly when whoever read stdout has gone (EPIPE)", async () => {
    const empty = mkdtempSync(path.join(root, "empty-"));
    const run = spawnCli(["run", empty, "--log-level", "debug"]);
    running.push(run);
    await waitFor(() => run.stdout.includes("controller started"), "controller started");
    // The log reader dies: the shutdown's log lines meet EPIPE.
    await new Promise((resolve) => run.child.stdout!.once("close", resolve).destroy());
    run.child.kill("SIGTERM");
    await waitFor(() => run.child.exitCode !== null || run.child.signalCode !== null, "exit after SIGTERM (the 5 s deadline included)", 15_000);
    const result = await run.exited;
    assert.equal(result.code, 0, describeRun(result));
  });

  for (const [args, message] of [
    [["--selector", "app"], /"app" is not key=value/],
    [["--selector", "app=a,app=b"], /label app is given twice/],
    [["--resync", "soon"], /invalid duration "soon"/],
    [["--status-interval", "0"], /"0" has no unit: write e.g. 0s/],
    [["--resync", "5"], /option '--resync <duration>' argument '5' is invalid. "5" has no unit: write e.g. 5s, 5m or 5ms/],
    [["--resync", "500ms"], /'--resync <duration>' argument '500ms' is invalid. "500ms" is too short: at least 1s/],
    [["--status-interval", "10ms"], /'--status-interval <duration>' argument '10ms' is invalid. "10ms" is too short: at least 100ms/],
    [["--log-level", "loud"], /expected one of fatal, error, warn, info, debug, trace, silent/],
    [["--metrics-address", "9464"], /expected host:port/],
  ] as const) {
    it(`${args.join(" ")} is a usage error (exit 2)`, async () => {
      const result = await runCli(["run", "manifests", ...args]);
      assert.equal(result.code, 2, describeRun(result));
      assert.match(result.stderr, message);
    });
  }
});
