// `run --metrics-address` (issue 19): /metrics through prom-client checked by promtool, counters
// read live at scrape time, series created and removed with their forwards, /readyz and /healthz
// from the same snapshot, and a bad address refused before any session is opened.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { manifest, phaseIs, waitForStatus } from "../helpers/controller.ts";
import { randomPayload, roundTrip, sha256, startEchoServer, waitFor, type TestServer } from "../helpers/net.ts";
import { TestScope } from "../helpers/scope.ts";
import { freePort, sshdAvailable, type Sshd } from "../helpers/sshd.ts";
import { runCli } from "../helpers/cli.ts";

const PROMTOOL = "/usr/bin/promtool";
const haveSshd = sshdAvailable();

function promtoolAvailable(): boolean {
  if (existsSync(PROMTOOL)) return true;
  if (process.env.CI === "true") throw new Error(`promtool not found at ${PROMTOOL}: CI must install prometheus`);
  process.stderr.write(`\n*** SKIPPING the promtool check: no ${PROMTOOL} (apt-get install prometheus) ***\n\n`);
  return false;
}

/** The value of one series in a text exposition, or undefined when the series is absent. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && line !== name && !line.startsWith(`${name} `)) continue;
    const open = line.indexOf("{");
    const close = line.lastIndexOf("}");
    const body = open >= 0 ? line.slice(open + 1, close) : "";
    const have = Object.fromEntries([...body.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(line.slice((close >= 0 ? close : name.length) + 1).trim());
  }
  return undefined;
}

describe("metrics, health and readiness", { skip: !haveSshd }, () => {
  let sshd: Sshd;
  let target: TestServer;
  const scope = new TestScope("tunnelctl-metrics-");
  const havePromtool = promtoolAvailable();

  before(async () => {
    sshd = await scope.sshd();
    target = await startEchoServer();
    scope.defer(() => target.close());
  });
  after(() => scope.dispose());

  it("serves /metrics (promtool-clean), live counters, /readyz and /healthz; series follow the forwards", async () => {
    const dir = scope.tempDir();
    const file = join(dir, "m.yaml");
    const [port, port2, remotePort, metricsPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const forwards = { local: [{ localPort: port, remotePort: target.port }, { localPort: port2, remotePort: target.port }], remote: [{ remotePort, localPort: target.port }] };
    writeFileSync(file, manifest(sshd, "web", forwards));
    // Counters in status files refresh every 10 s here: a scrape must not wait for that.
    const ctl = scope.run(dir, ["--metrics-address", `127.0.0.1:${metricsPort}`, "--status-interval", "10s"]);
    const base = `http://127.0.0.1:${metricsPort}`;
    await waitForStatus(`${file}.status`, phaseIs("Ready"), "Ready", ctl);
    const ready: string = await waitFor(async () => {
      const res = await fetch(`${base}/readyz`);
      return res.status === 200 ? res.text() : undefined;
    }, "/readyz 200") as string;
    assert.match(ready, /^\[\+\]initial-load ok$/m);
    assert.match(ready, /^\[\+\]tunnel\/web ok$/m);
    assert.match(ready, /^readyz check passed$/m);
    const health = await fetch(`${base}/healthz`);
    assert.equal(health.status, 200);
    assert.equal((await fetch(`${base}/nope`)).status, 404);

    const payload = randomPayload(1024 * 1024);
    const echoed = await roundTrip(port, payload);
    assert.equal(sha256(echoed), sha256(payload));
    const res = await fetch(`${base}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const fwd = { tunnel: "web", forward: `local/127.0.0.1:${port}` };
    assert.ok((sample(text, "tunnelctl_forward_bytes_total", { ...fwd, direction: "in" }) ?? 0) >= payload.length, "bytes in, live");
    assert.ok((sample(text, "tunnelctl_forward_bytes_total", { ...fwd, direction: "out" }) ?? 0) >= payload.length, "bytes out, live");
    assert.equal(sample(text, "tunnelctl_forward_connections_total", fwd), 1);
    assert.equal(sample(text, "tunnelctl_forward_active", fwd), 1);
    assert.equal(sample(text, "tunnelctl_forward_active", { tunnel: "web", forward: `remote/127.0.0.1:${remotePort}` }), 1);
    assert.equal(sample(text, "tunnelctl_tunnel_phase", { tunnel: "web", phase: "Ready" }), 1);
    assert.equal(sample(text, "tunnelctl_tunnel_phase", { tunnel: "web", phase: "Failed" }), 0);
    assert.equal(sample(text, "tunnelctl_session_up", { tunnel: "web" }), 1);
    assert.equal(sample(text, "tunnelctl_session_reconnects_total", { tunnel: "web" }), 0);
    assert.ok((sample(text, "tunnelctl_session_connected_since_seconds", { tunnel: "web" }) ?? 0) > 1.7e9);
    assert.equal(sample(text, "tunnelctl_build_info", { version: "0.1.0", ssh2: "1.17.0" }), 1);
    assert.ok((sample(text, "tunnelctl_reconcile_total", { result: "success" }) ?? 0) >= 1);
    assert.equal(sample(text, "tunnelctl_reconcile_total", { result: "error" }), 0);
    assert.equal(sample(text, "tunnelctl_manifest_errors", { file: "m.yaml" }), 0);
    assert.ok(sample(text, "tunnelctl_workqueue_depth", {}) !== undefined);
    assert.ok(sample(text, "process_cpu_seconds_total", {}) !== undefined, "prom-client's process metrics");
    assert.equal(sample(text, "nodejs_active_handles_total", {}), undefined, "a gauge named like a counter is left out");
    assert.doesNotMatch(text, /BEGIN|PRIVATE|ssh-ed25519|SHA256:/, "no key material");

    if (havePromtool) {
      const lint = spawnSync(PROMTOOL, ["check", "metrics"], { input: text, encoding: "utf8" });
      assert.equal(lint.status, 0, `promtool: ${lint.stdout}${lint.stderr}`);
      assert.equal(`${lint.stdout}${lint.stderr}`.trim(), "", "promtool has no complaint");
    }

    // A removed forward's series go with it; a broken file counts its errors; a failing tunnel
    // makes /readyz 503 and names it.
    writeFileSync(file, manifest(sshd, "web", { ...forwards, local: [forwards.local[0]!] }));
    writeFileSync(join(dir, "bad.yaml"), manifest(sshd, "bad", {}).replace("kind: Tunnel", "kind: Tunel"));
    writeFileSync(join(dir, "fail.yaml"), manifest(sshd, "fail", {}).replace(`username: ${sshd.username}`, "username: no-such-user"));
    const after: string = await waitFor(async () => {
      const t = await (await fetch(`${base}/metrics`)).text();
      const gone = sample(t, "tunnelctl_forward_active", { tunnel: "web", forward: `local/127.0.0.1:${port2}` }) === undefined;
      return gone && sample(t, "tunnelctl_tunnel_phase", { tunnel: "fail", phase: "Failed" }) === 1 ? t : undefined;
    }, "the removed forward's series gone, the failing tunnel Failed", 15_000) as string;
    assert.doesNotMatch(after, new RegExp(`forward="local/127\\.0\\.0\\.1:${port2}"`));
    assert.ok((sample(after, "tunnelctl_manifest_errors", { file: "bad.yaml" }) ?? 0) >= 1);
    const notReady = await fetch(`${base}/readyz`);
    assert.equal(notReady.status, 503);
    const body = await notReady.text();
    assert.match(body, /^\[-\]tunnel\/fail: Failed: AuthFailed: /m);
    assert.match(body, /^\[\+\]tunnel\/web ok$/m);
    assert.match(body, /^readyz check failed$/m);
    assert.equal(await ctl.stop(), 0);
  });

  it("an address in use is refused with exit 1 before any session is opened", async () => {
    const dir = scope.tempDir();
    writeFileSync(join(dir, "m.yaml"), manifest(sshd, "never", {}));
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve));
    const { port } = busy.address() as { port: number };
    const connectionsBefore = sshd.logs().split("\n").filter((l) => l.includes("Connection from")).length;
    const result = await runCli(["run", dir, "--metrics-address", `127.0.0.1:${port}`]);
    busy.close();
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, new RegExp(`Cannot serve metrics on 127\\.0\\.0\\.1:${port}: address in use`));
    assert.equal(existsSync(join(dir, "m.yaml.status")), false, "no controller ran");
    assert.equal(sshd.logs().split("\n").filter((l) => l.includes("Connection from")).length, connectionsBefore, "no SSH connection was made");
  });
});
