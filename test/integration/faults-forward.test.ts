// Fault matrix, forward and connect side (issue 4, items 4–8): the real `tunnelctl run` process
// against real sshd processes. Each fault must show in status as a transition with a reason; a
// healthy sibling is never held back; retries follow the backoff, never a tight loop.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { manifest, phaseIs, readStatus, waitForStatus, type StatusDoc } from "../helpers/controller.ts";
import { openLive, probe, startBlackhole, startTaggedEchoServer, tagOf, waitFor, type TestServer } from "../helpers/net.ts";
import { DEFAULT_HANDSHAKES_PER_SERVER } from "../../src/controller/handshake-limiter.ts";
import { TestScope } from "../helpers/scope.ts";
import { destroySshd, freePort, sshdAvailable, startSshd, type Sshd } from "../helpers/sshd.ts";

const haveSshd = sshdAvailable();

/** The manifests' reconnect settings (helpers/controller.ts default): 200 ms, doubling, capped at 2 s. */
const MIN_DELAY = 200;
const MAX_DELAY = 2000;

/**
 * The most connection attempts the backoff allows within `elapsedMs` of the first one. Retry k
 * (0-based) waits at least max(min, step/2) with step = min(max, min·2^k) (equal jitter, see
 * reconcile/backoff.ts): 200, 200, 400, 800, 1000, 1000, … ms. Attempts take time of their own,
 * so this bound is generous; a tight loop exceeds it by orders of magnitude.
 */
function maxAttemptsWithin(elapsedMs: number): number {
  let attempts = 1;
  let at = 0;
  for (let k = 0; ; k++) {
    const step = Math.min(MAX_DELAY, MIN_DELAY * 2 ** k);
    at += Math.max(MIN_DELAY, step / 2);
    if (at > elapsedMs) return attempts;
    attempts++;
  }
}

/** TCP connections sshd accepted (LogLevel VERBOSE logs each one). */
const connectionsIn = (sshd: Sshd): number => sshd.logs().split("\n").filter((l) => l.includes("Connection from 127.0.0.1")).length;

describe("fault matrix: forwards, auth, host keys, gateway ports, storms", { skip: !haveSshd }, () => {
  let sshd: Sshd;
  let targets: Record<"A" | "B", TestServer>;
  const scope = new TestScope("tunnelctl-faults-");
  const { tempDir, run, sshd: sshdFor } = scope;

  before(async () => {
    sshd = await startSshd();
    const [a, b] = await Promise.all([startTaggedEchoServer("A"), startTaggedEchoServer("B")]);
    targets = { A: a!, B: b! };
  });
  after(async () => {
    await scope.dispose();
    await Promise.all(Object.values(targets).map((t) => t.close()));
    await destroySshd(sshd);
  });

  
  it("4. a local port taken by another process: that forward Failed/PortInUse, siblings Active; Active once freed, without an edit", async () => {
    const dir = tempDir();
    const [busyPort, okPort] = [await freePort(), await freePort()];
    const squatter: Server = createServer((s) => s.destroy());
    await new Promise<void>((resolve) => squatter.listen(busyPort, "127.0.0.1", resolve));
    let squatting = true;
    scope.defer(() => squatting && new Promise((r) => squatter.close(r)));

    const file = join(dir, "busy.yaml");
    writeFileSync(file, manifest(sshd, "busy", { local: [{ localPort: busyPort, remotePort: targets.A.port }, { localPort: okPort, remotePort: targets.B.port }] }));
    const ctl = run(dir);
    const docs = await waitForStatus(
      `${file}.status`,
      (d) => d[0]?.status.forwards.local[0]?.state === "Failed" && d[0]?.status.forwards.local[1]?.state === "Active",
      "busy port Failed, sibling Active",
      ctl,
    );
    const [busy, ok] = docs[0]!.status.forwards.local;
    assert.equal(busy!.reason, "PortInUse");
    assert.match(busy!.message, new RegExp(`127\\.0\\.0\\.1:${busyPort}\\b.*in use`));
    assert.equal(ok!.state, "Active");
    assert.equal(docs[0]!.status.phase, "Degraded");
    const ready = docs[0]!.status.conditions.find((c) => c.type === "Ready");
    assert.equal(ready?.reason, "ForwardFailed");
    assert.match(ready!.message, new RegExp(`${busyPort}`));
    assert.equal(await tagOf(okPort), "B", "the healthy sibling serves");

    // The port is freed: the retry (on its backoff) takes it; nobody touched the manifest.
    await new Promise((r) => squatter.close(r));
    squatting = false;
    await waitForStatus(`${file}.status`, phaseIs("Ready"), "Ready once the port is free", ctl);
    assert.equal(await tagOf(busyPort), "A");
    assert.equal(await tagOf(okPort), "B");
    assert.equal(await ctl.stop(), 0);
  });

  it("5. auth refused, host key changed, unknown host: never connects, says why, retries on the backoff", async () => {
    const [refused, changed, unknown] = await Promise.all([sshdFor(), sshdFor(), sshdFor()]);
    const dir = tempDir();
    // A key this server never authorised.
    const strangerKey = join(dir, "stranger_ed25519");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", strangerKey], { stdio: "ignore" });
    // known_hosts naming another key for [127.0.0.1]:port: the host key "changed".
    const otherHost = join(dir, "other_host");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", otherHost], { stdio: "ignore" });
    const changedKnownHosts = join(dir, "known_hosts_changed");
    writeFileSync(changedKnownHosts, `[127.0.0.1]:${changed.port} ${readFileSync(`${otherHost}.pub`, "utf8").split(" ").slice(0, 2).join(" ")}\n`);
    const emptyKnownHosts = join(dir, "known_hosts_empty");
    writeFileSync(emptyKnownHosts, "");

    const cases = [
      { name: "refused", server: refused, reason: "AuthFailed", message: /refused/, auth: { privateKeyFile: strangerKey } },
      { name: "changed", server: changed, reason: "HostKeyMismatch", message: new RegExp(escape(changed.hostKeyFingerprint)), hostKey: { knownHostsFile: changedKnownHosts } },
      { name: "unknown", server: unknown, reason: "HostKeyUnknown", message: new RegExp(`${escape(unknown.hostKeyFingerprint)}`), hostKey: { knownHostsFile: emptyKnownHosts, policy: "strict" } },
    ];
    const ports = new Map<string, number>();
    for (const c of cases) {
      const port = await freePort();
      ports.set(c.name, port);
      writeFileSync(
        join(dir, `${c.name}.yaml`),
        manifest(c.server, c.name, { local: [{ localPort: port, remotePort: targets.A.port }] }, {
          ...(c.auth ? { auth: c.auth } : {}),
          ...(c.hostKey ? { hostKey: c.hostKey } : {}),
        }),
      );
    }
    const ctl = run(dir);

    // Watch every status file until each server has seen 4 attempts; a forward must never be Active.
    const everActive = new Set<string>();
    const firstAttempt = new Map<string, number>();
    await waitFor(
      () => {
        for (const c of cases) {
          if (!firstAttempt.has(c.name) && connectionsIn(c.server) > 0) firstAttempt.set(c.name, Date.now());
          const doc = readStatus(join(dir, `${c.name}.yaml.status`))?.[0];
          if (!doc) continue;
          if (doc.status.forwards.local.some((f) => f.state === "Active") || doc.status.session.state === "Connected") everActive.add(c.name);
        }
        return cases.every((c) => connectionsIn(c.server) >= 4);
      },
      "4 connection attempts on each server",
      20_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${cases.map((c) => `${c.name}: ${connectionsIn(c.server)}`).join(", ")}\n${ctl.output().slice(-3000)}`);
    });
    for (const c of cases) {
      const attempts = connectionsIn(c.server);
      // Polling sees the first attempt up to a few ms late: count the window generously.
      const elapsed = Date.now() - firstAttempt.get(c.name)! + 100;
      assert.ok(
        attempts <= maxAttemptsWithin(elapsed),
        `${c.name}: ${attempts} connection attempts in ${elapsed} ms; the backoff allows at most ${maxAttemptsWithin(elapsed)}`,
      );
      assert.doesNotMatch(c.server.logs(), /Accepted (publickey|password)/, `${c.name}: sshd accepted an authentication`);
    }

    for (const c of cases) {
      const docs = await waitForStatus(
        join(dir, `${c.name}.yaml.status`),
        (d) => d[0]?.status.conditions.some((k) => k.type === "Connected" && k.reason === c.reason) ?? false,
        `${c.name}: Connected condition says ${c.reason}`,
        ctl,
      );
      const status = docs[0]!.status;
      assert.equal(status.phase, "Failed", c.name);
      assert.match(status.session.state, /^(Backoff|Connecting)$/, c.name);
      assert.match(status.session.lastError, c.message, `${c.name}: ${status.session.lastError}`);
      const connected = status.conditions.find((k) => k.type === "Connected")!;
      assert.equal(connected.status, "False");
      assert.match(connected.message, c.message);
      assert.equal(status.session.reconnects, 0);
      assert.ok(status.forwards.local.every((f) => f.state !== "Active"), c.name);
      assert.equal(everActive.has(c.name), false, `${c.name} was Active at some point`);
      assert.equal(await probe(ports.get(c.name)!), "ECONNREFUSED", `${c.name}: its local port is not opened before the session is up`);
    }
    assert.equal(ctl.proc.exitCode, null, "the controller keeps running");
    assert.equal(await ctl.stop(), 0);
  });

  it("6. target unreachable behind a local forward: stays Active, failed opens counted, clients closed promptly", async () => {
    const dir = tempDir();
    const closedPort = await freePort(); // nothing listens there
    const blackhole = await startBlackhole();
    scope.defer(() => blackhole.close());
    const [refusedLocal, silentLocal] = [await freePort(), await freePort()];
    const file = join(dir, "unreach.yaml");
    writeFileSync(
      file,
      manifest(sshd, "unreach", {
        local: [
          { localPort: refusedLocal, remotePort: closedPort, connectTimeout: "20s" },
          { localPort: silentLocal, remotePort: blackhole.port, connectTimeout: "1s" },
        ],
      }),
    );
    const ctl = run(dir);
    await waitForStatus(`${file}.status`, phaseIs("Ready"), "Ready", ctl);

    // A refused target: each client is closed as soon as sshd says so, long before connectTimeout (20 s).
    for (let i = 1; i <= 3; i++) {
      const live = await openLive(refusedLocal);
      await waitFor(() => live.closed, `client ${i} closed after the target refused`, 5_000);
    }
    // A target that never answers: closed once connectTimeout (1 s) is over, not left hanging.
    const opened = Date.now();
    const silent = await openLive(silentLocal);
    await waitFor(() => silent.closed, "client closed at connectTimeout", 6_000);
    assert.ok(Date.now() - opened >= 900, "closed before connectTimeout");

    const docs = await waitForStatus(
      `${file}.status`,
      (d) => d[0]?.status.forwards.local[0]?.failedConnections === 3 && d[0]?.status.forwards.local[1]?.failedConnections === 1,
      "failed opens counted",
      ctl,
    );
    const status = docs[0]!.status;
    assert.equal(status.phase, "Ready", "a refused target is a connection failure, not a forward failure");
    for (const f of status.forwards.local) {
      assert.equal(f.state, "Active");
      assert.equal(f.activeConnections, 0);
    }
    assert.equal(status.forwards.local[0]!.totalConnections, 3);
    assert.equal(await ctl.stop(), 0);
  });

  it("7. GatewayPorts no and a 0.0.0.0 remote bind: status does not claim a bind it cannot know", async () => {
    // OpenSSH answers a tcpip-forward for 0.0.0.0 with success and, under GatewayPorts no, binds
    // loopback only; the protocol never tells the client. Status reports what was requested, the
    // port the server confirmed, and says that the server decides the address.
    const strict = await sshdFor({ config: ["GatewayPorts no"] });
    const dir = tempDir();
    const [noPort, yesPort] = [await freePort(), await freePort()];
    writeFileSync(join(dir, "gw-no.yaml"), manifest(strict, "gw-no", { remote: [{ bindAddress: "0.0.0.0", remotePort: noPort, localPort: targets.A.port }] }));
    // The control: the default test sshd has GatewayPorts clientspecified and binds what is asked.
    writeFileSync(
      join(dir, "gw-yes.yaml"),
      manifest(sshd, "gw-yes", {
        remote: [
          { bindAddress: "0.0.0.0", remotePort: yesPort, localPort: targets.B.port },
          { bindAddress: "127.0.0.1", remotePort: 0, localPort: targets.B.port },
        ],
      }),
    );
    const ctl = run(dir);
    const [no] = await waitForStatus(join(dir, "gw-no.yaml.status"), phaseIs("Ready"), "gw-no Ready", ctl);
    const [yes] = await waitForStatus(join(dir, "gw-yes.yaml.status"), phaseIs("Ready"), "gw-yes Ready", ctl);

    const noForward = no!.status.forwards.remote[0]!;
    assert.equal(noForward.state, "Active");
    assert.equal(noForward.boundPort, noPort);
    assert.match(noForward.message, /requested 0\.0\.0\.0; the server's GatewayPorts setting decides the address/);
    // The truth on this host: loopback only (127.0.0.2 is loopback too, but not 127.0.0.1).
    assert.equal(await tagOf(noPort, "127.0.0.1"), "A");
    assert.equal(await probe(noPort, "127.0.0.2"), "ECONNREFUSED");
    const external = externalAddress();
    if (external) assert.equal(await probe(noPort, external), "ECONNREFUSED");

    const [wildcard, loopback] = yes!.status.forwards.remote;
    assert.equal(wildcard!.boundPort, yesPort);
    assert.match(wildcard!.message, /GatewayPorts/, "the same words whatever the server did: the client cannot tell");
    assert.equal(await tagOf(yesPort, "127.0.0.2"), "B", "clientspecified: bound on every address");
    assert.equal(loopback!.message, "", "a loopback bind needs no note");
    assert.ok(loopback!.boundPort! > 0);
    assert.equal(await ctl.stop(), 0);
  });

  // sshd counts a connection as a startup until its post-authentication process runs, a little
  // after the client's 'ready'. 8b drops every connection that arrives while tunnelctl's limit is
  // reached in sshd's own count: it failed 4 runs in 15 at MaxStartups 9:100:9 while a handshake
  // slot was freed at 'ready', and 0 in 20 at 8:100:8 once it was held until the server answered.
  const limit = DEFAULT_HANDSHAKES_PER_SERVER;
  const storms = [
    { title: "8. connection storm: 50 tunnels to one stock sshd (MaxStartups 10:30:100) all Ready, no handshake refused", config: [] },
    {
      title: `8b. connection storm against MaxStartups ${limit}:100:${limit}: sshd never counts more startups than tunnelctl's ${limit} handshakes`,
      config: [`MaxStartups ${limit}:100:${limit}`],
    },
  ];
  for (const { title, config } of storms) it(title, async () => {
    const stock = await sshdFor({ stockLimits: true, config });
    const dir = tempDir();
    const count = 50;
    const names = Array.from({ length: count }, (_, i) => `storm-${String(i).padStart(2, "0")}`);
    // freePort() may hand out one port twice in 50 draws: a Conflict is not what this test is about.
    const ports = new Set<number>();
    while (ports.size < count) ports.add(await freePort());
    const portList = [...ports];
    // Two multi-document files: each load wants 25 sessions in the same instant (one file per
    // tunnel would spread the handshakes over the time it takes to load 50 files).
    const files = ["storm-a.yaml", "storm-b.yaml"];
    files.forEach((file, f) => {
      const docs = names.slice(f * 25, f * 25 + 25).map((name, i) => manifest(stock, name, { local: [{ localPort: portList[f * 25 + i]!, remotePort: targets.A.port }] }));
      writeFileSync(join(dir, file), docs.join("---\n"));
    });
    const statuses = (): StatusDoc[] => files.flatMap((file) => readStatus(join(dir, `${file}.status`)) ?? []);
    const ctl = run(dir);
    await waitFor(() => statuses().length === count && statuses().every((d) => d.status.phase === "Ready"), "all 50 tunnels Ready", 40_000).catch(
      (err: Error) => {
        const notReady = statuses().filter((d) => d.status.phase !== "Ready");
        throw new Error(`${err.message}: not Ready: ${notReady.map((d) => `${d.metadata.name} ${d.status.phase} ${d.status.session.lastError}`).join(", ")}\n${ctl.output().slice(-3000)}`);
      },
    );
    for (const doc of statuses()) {
      assert.equal(doc.status.session.reconnects, 0, `${doc.metadata.name} reconnected`);
      assert.equal(doc.status.session.lastError, "", doc.metadata.name);
    }
    assert.doesNotMatch(ctl.output(), /before the handshake|during authentication|connect failed/, "a handshake failed");
    // sshd's log reaches us through a pipe shared by all its processes, a little behind the status
    // files: wait for every connection's line before reading it for drops and counting.
    await waitFor(() => connectionsIn(stock) >= count, `${count} connections in sshd's log`, 5_000).catch(() => undefined);
    assert.doesNotMatch(stock.logs(), /MaxStartups|drop connection/i, "sshd throttled or dropped connections");
    assert.equal(connectionsIn(stock), count, "one connection per tunnel, no retries");
    assert.equal(await tagOf(portList[0]!), "A");
    assert.equal(await tagOf(portList[count - 1]!), "A");
    assert.equal(await ctl.stop(), 0);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

/** A non-loopback IPv4 address of this host, if it has one. */
function externalAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  }
  return undefined;
}
