// Fault matrix, session side (issue 4 items 1, 2, 3 and 9): the real `tunnelctl run` process
// against a real OpenSSH sshd that gets killed, frozen (SIGSTOP) and restarted. Every test waits
// on conditions with deadlines; none sleeps.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { connect, createServer, type Server } from "node:net";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { manifest, phaseIs, waitForStatus, type RunningController, type StatusDoc } from "../helpers/controller.ts";
import { openLive, probe, randomPayload, roundTrip, sha256, startEchoServer, waitFor, type TestServer } from "../helpers/net.ts";
import { TestScope } from "../helpers/scope.ts";
import { allDescendants, destroySshd, freePort, sshdAvailable, startSshd, type Sshd } from "../helpers/sshd.ts";

const haveSshd = sshdAvailable();

/** The one tunnel of a status file. */
const st = (docs: StatusDoc[]): StatusDoc["status"] => docs[0]!.status;
const condition = (docs: StatusDoc[], type: string) => st(docs).conditions.find((c) => c.type === type);

/** Send `payload` through `port`, half-close, and check that exactly the same bytes come back. */
async function assertFlows(port: number, what: string, size = 256 * 1024): Promise<void> {
  const payload = randomPayload(size);
  const echoed = await roundTrip(port, payload);
  assert.equal(echoed.length, payload.length, `${what}: ${echoed.length} of ${payload.length} bytes came back`);
  assert.equal(sha256(echoed), sha256(payload), `${what}: bytes differ`);
}

/** A client connection that sends `payload` and half-closes as soon as it is accepted. */
interface Exchange {
  /** Resolves once the TCP connection is accepted; rejects with the error code (ECONNREFUSED, ...). */
  connected: Promise<number>;
  /** Resolves with every byte received once the connection is closed, and when that was. */
  finished: Promise<{ data: Buffer; closedAt: number }>;
  readonly closed: boolean;
}

function startExchange(port: number, payload: Buffer): Exchange {
  const sock = connect({ host: "127.0.0.1", port, noDelay: true });
  const chunks: Buffer[] = [];
  let closed = false;
  const connected = new Promise<number>((resolve, reject) => {
    sock.once("connect", () => {
      sock.end(payload);
      resolve(Date.now());
    });
    sock.once("error", (err: NodeJS.ErrnoException) => reject(new Error(err.code ?? err.message)));
  });
  connected.catch(() => undefined);
  const finished = new Promise<{ data: Buffer; closedAt: number }>((resolve) => {
    sock.on("data", (c: Buffer) => chunks.push(c));
    sock.on("error", () => undefined);
    sock.once("close", () => {
      closed = true;
      resolve({ data: Buffer.concat(chunks), closedAt: Date.now() });
    });
  });
  return {
    connected,
    finished,
    get closed() {
      return closed;
    },
  };
}

/** `promise`, or a failure naming `what` after `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** The sshd processes serving our connections, and everything they forked. */
function sessionTree(sshd: Sshd): number[] {
  return sshd.sessionPids().flatMap((pid) => [pid, ...allDescendants(pid)]);
}

function signal(pids: number[], sig: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  }
}

/** The controller's JSON log lines with message `msg`. */
function logLines(ctl: RunningController, msg: string): Array<Record<string, unknown>> {
  return ctl
    .output()
    .split("\n")
    .flatMap((line) => {
      if (!line.startsWith("{")) return [];
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        return entry.msg === msg ? [entry] : [];
      } catch {
        return [];
      }
    });
}

describe("fault matrix: the session", { skip: !haveSshd }, () => {
  const scope = new TestScope("tunnelctl-faults-");
  const { tempDir, run } = scope;

  after(async () => {
    await scope.dispose();
  });

    async function newSshd(): Promise<Sshd> {
    const sshd = await startSshd();
    scope.defer(() => destroySshd(sshd));
    return sshd;
  }
  async function echoServer(): Promise<TestServer> {
    const echo = await startEchoServer();
    scope.defer(() => echo.close());
    return echo;
  }

  it("1. sshd killed and started again on its port: Backoff with the reason, growing retry delays, every forward restored", async () => {
    const sshd = await newSshd();
    const echo = await echoServer();
    const [localPort, remotePort] = [await freePort(), await freePort()];
    const dir = tempDir();
    const file = join(dir, "crash.yaml");
    const status = `${file}.status`;
    // A fixed remote port and one the server chooses (port 0): both must come back.
    const remote = [{ remotePort, localPort: echo.port }, { remotePort: 0, localPort: echo.port }];
    writeFileSync(file, manifest(sshd, "crash", { local: [{ localPort, remotePort: echo.port }], remote }));
    const ctl = run(dir);
    const ready = await waitForStatus(status, phaseIs("Ready"), "Ready", ctl);
    assert.equal(st(ready).session.reconnects, 0);
    const byRemotePort = (d: StatusDoc[], port: number) => st(d).forwards.remote.find((f) => f.remotePort === port)!;
    assert.equal(byRemotePort(ready, remotePort).boundPort, remotePort);
    await assertFlows(localPort, "local forward before the crash");
    await assertFlows(remotePort, "remote forward before the crash");
    await assertFlows(byRemotePort(ready, 0).boundPort!, "server-chosen remote port before the crash");
    // Connections open through both forwards when the server dies cannot survive it: they must be
    // closed, not left hanging (and not leak on our side).
    const liveLocal = await openLive(localPort);
    const liveRemote = await openLive(remotePort);
    await liveLocal.ping("local");
    await liveRemote.ping("remote");
    assert.equal(echo.sockets.size, 2);

    await sshd.kill();
    const killedAt = Date.now();
    await waitFor(() => liveLocal.closed && liveRemote.closed, "connections through the dead session closed", 5000);
    await waitFor(() => echo.sockets.size === 0, "our side of the remote-forwarded connection closed", 5000);
    const down = await waitForStatus(status, (d) => st(d).session.state === "Backoff" && st(d).session.lastError !== "", "session Backoff with a lastError", ctl);
    process.stderr.write(`# session Backoff in the status file ${Date.now() - killedAt} ms after sshd was killed\n`);
    assert.equal(st(down).phase, "Failed");
    const connected = condition(down, "Connected");
    assert.equal(connected?.status, "False");
    assert.ok(["ConnectionLost", "ConnectionRefused"].includes(connected?.reason ?? ""), `Connected reason: ${connected?.reason}`);
    assert.equal(connected?.message, st(down).session.lastError);
    assert.ok(connected!.lastTransitionTime > condition(ready, "Connected")!.lastTransitionTime, "Connected flipped to False at the loss");
    assert.equal(condition(down, "Ready")?.status, "False");
    // The local listener stays bound while the session is down; the remote forwards wait.
    assert.equal(st(down).forwards.local[0]!.state, "Pending");
    assert.equal(st(down).forwards.local[0]!.reason, "SessionDown");
    assert.deepEqual(st(down).forwards.remote.map((f) => f.state), ["Pending", "Pending"]);

    // Keep the server down for three failed attempts, so the delays between them can be read.
    await waitFor(() => logLines(ctl, "connect failed").length >= 3, "three failed reconnect attempts", 15_000);
    const refused = await waitForStatus(status, (d) => condition(d, "Connected")?.reason === "ConnectionRefused", "reason ConnectionRefused while sshd is down", ctl);
    assert.match(st(refused).session.lastError, /connection refused/);
    await sshd.start();

    const back = await waitForStatus(status, (d) => phaseIs("Ready")(d) && st(d).session.reconnects === 1, "Ready again with reconnects: 1", ctl);
    assert.equal(st(back).session.state, "Connected");
    assert.equal(st(back).session.lastError, "");
    assert.equal(condition(back, "Connected")?.reason, "Connected");
    assert.ok(condition(back, "Connected")!.lastTransitionTime > connected!.lastTransitionTime, "Connected flipped back to True");
    assert.equal(condition(back, "Ready")?.reason, "AllForwardsActive");
    assert.deepEqual(st(back).forwards.local.map((f) => f.state), ["Active"]);
    assert.deepEqual(st(back).forwards.remote.map((f) => f.state), ["Active", "Active"]);
    assert.equal(byRemotePort(back, remotePort).boundPort, remotePort);
    const chosen = byRemotePort(back, 0).boundPort!;
    assert.ok(chosen > 0, "the server chose a port again");
    await assertFlows(localPort, "local forward after the reconnect");
    await assertFlows(remotePort, "remote forward after the reconnect");
    await assertFlows(chosen, "server-chosen remote port after the reconnect");
    const settled = await waitForStatus(status, (d) => [...st(d).forwards.local, ...st(d).forwards.remote].every((f) => f.activeConnections === 0), "no connection counted active", ctl);
    assert.equal(st(settled).forwards.local[0]!.failedConnections, 0);

    // Exponential backoff with equal jitter (reconnect 200ms..2s): attempt n waits within
    // [200·2^n / 2, 200·2^n] capped at 2 s, so the delays never shrink below the step before.
    const delays = logLines(ctl, "connect failed").map((l) => l.retryInMs as number);
    assert.ok(delays.length >= 3, `delays: ${delays.join(", ")}`);
    for (const d of delays) assert.ok(d >= 190 && d <= 2000, `delay ${d} ms outside reconnect 200ms..2s (${delays.join(", ")})`);
    for (let i = 1; i < Math.min(delays.length, 3); i++) {
      assert.ok(delays[i]! >= delays[i - 1]! - 10, `delays grow: ${delays.join(", ")}`);
    }
    assert.ok(delays[2]! >= 400, `the third retry waits at least 400 ms: ${delays.join(", ")}`);
    assert.equal(await ctl.stop(), 0);
  });

  it("2. half-open peer (session sshd SIGSTOPped): keepalive notices, the session is replaced, Ready again", async () => {
    const sshd = await newSshd();
    const echo = await echoServer();
    const localPort = await freePort();
    const dir = tempDir();
    const file = join(dir, "frozen.yaml");
    const status = `${file}.status`;
    const keepalive = { interval: 500, countMax: 2 };
    writeFileSync(
      file,
      manifest(sshd, "frozen", { local: [{ localPort, remotePort: echo.port }] }, {
        keepalive: `{interval: ${keepalive.interval}ms, countMax: ${keepalive.countMax}}`,
        // A first retry of 1 s keeps the Backoff state in the status file long enough to be read.
        reconnect: "{minDelay: 1s, maxDelay: 2s}",
      }),
    );
    const ctl = run(dir);
    const ready = await waitForStatus(status, phaseIs("Ready"), "Ready", ctl);
    const live = await openLive(localPort);
    await live.ping("before");

    const frozen = sessionTree(sshd);
    assert.ok(frozen.length > 0, "the session has an sshd process");
    scope.defer(() => signal(frozen, "SIGKILL"));
    signal(frozen, "SIGSTOP");
    const stoppedAt = Date.now();
    // A connection made while the peer is frozen but not yet found out: its channel open goes
    // unanswered; it must be held and served on the new session, not failed with the old one.
    const payload = randomPayload(256 * 1024);
    const unlucky = startExchange(localPort, payload);
    await within(unlucky.connected, 5000, "a connection accepted while the peer is frozen");

    const lost = await waitForStatus(status, (d) => st(d).session.state !== "Connected" && st(d).session.lastError !== "", "the session noticed as lost", ctl);
    const detectedMs = Date.now() - stoppedAt;
    const connected = condition(lost, "Connected");
    assert.equal(connected?.status, "False");
    // A frozen peer sends nothing, not even a FIN: only keepalive can find it out.
    assert.equal(connected?.reason, "KeepaliveTimeout");
    assert.match(st(lost).session.lastError, /no keepalive reply/);
    assert.equal(st(lost).phase, "Failed");
    // ssh2 gives up on the (countMax + 1)th unanswered probe: between interval × countMax and
    // interval × (countMax + 1) after the freeze, plus the status write.
    const bound = keepalive.interval * (keepalive.countMax + 1) + 1500;
    assert.ok(detectedMs <= bound, `half-open peer detected after ${detectedMs} ms (bound ${bound} ms)`);
    const lostLine = logLines(ctl, "session lost; reconnecting").at(-1);
    assert.equal(lostLine?.reason, connected?.reason, "the log says why too");
    const loggedMs = (lostLine!.time as number) - stoppedAt;
    process.stderr.write(`# half-open peer: controller gave up on it ${loggedMs} ms after SIGSTOP, status file showed it after ${detectedMs} ms (keepalive ${keepalive.interval}ms × ${keepalive.countMax})\n`);

    const back = await waitForStatus(status, (d) => phaseIs("Ready")(d) && st(d).session.reconnects === 1, "Ready again with reconnects: 1", ctl);
    assert.notEqual(st(back).session.connectedSince, st(ready).session.connectedSince, "a new session");
    assert.ok(sshd.sessionPids().some((pid) => !frozen.includes(pid)), "a new server-side session serves us");
    await assertFlows(localPort, "local forward on the new session");
    const served = await within(unlucky.finished, 10_000, "the connection made during the freeze served and closed");
    assert.equal(sha256(served.data), sha256(payload), `connection made during the freeze: ${served.data.length} of ${payload.length} bytes came back intact`);
    // The connection that rode on the frozen session is closed, not left hanging.
    await waitFor(() => live.closed, "the connection on the frozen session closed", 5000);
    signal(frozen, "SIGKILL");
    assert.equal(await ctl.stop(), 0);
  });

  it("3. remote port still held by the frozen old session: RemotePortBusy, retried, Active once the server frees it", async () => {
    const sshd = await newSshd();
    const echo = await echoServer();
    const remotePort = await freePort();
    const dir = tempDir();
    const file = join(dir, "held.yaml");
    const status = `${file}.status`;
    writeFileSync(
      file,
      manifest(sshd, "held", { remote: [{ remotePort, localPort: echo.port }] }, {
        keepalive: "{interval: 500ms, countMax: 2}",
        reconnect: "{minDelay: 200ms, maxDelay: 1s}",
      }),
    );
    const ctl = run(dir);
    await waitForStatus(status, phaseIs("Ready"), "Ready", ctl);
    await assertFlows(remotePort, "remote forward before the freeze");

    const frozen = sessionTree(sshd);
    assert.ok(frozen.length > 0, "the session has an sshd process");
    scope.defer(() => signal(frozen, "SIGKILL"));
    signal(frozen, "SIGSTOP");

    const busy = await waitForStatus(
      status,
      (d) => st(d).session.state === "Connected" && st(d).session.reconnects === 1 && st(d).forwards.remote[0]?.reason === "RemotePortBusy",
      "reconnected, remote forward RemotePortBusy",
      ctl,
    );
    const forward = st(busy).forwards.remote[0]!;
    assert.equal(forward.state, "Failed");
    assert.match(forward.message, new RegExp(`127\\.0\\.0\\.1:${remotePort}`));
    assert.equal(st(busy).phase, "Degraded");
    assert.equal(condition(busy, "Ready")?.reason, "ForwardFailed");
    assert.match(condition(busy, "Ready")?.message ?? "", /RemotePortBusy/);

    // Not given up: the controller keeps asking while the old session holds the port.
    const retriesBefore = logLines(ctl, "forward retry failed").length;
    await waitFor(() => logLines(ctl, "forward retry failed").length >= retriesBefore + 3, "three more retries of the busy port", 10_000);
    assert.equal(st(await waitForStatus(status, () => true, "status", ctl)).forwards.remote[0]!.reason, "RemotePortBusy");

    // The old server-side session dies: the port frees and the forward comes back, no edit needed.
    signal(frozen, "SIGKILL");
    const killedAt = Date.now();
    const active = await waitForStatus(status, (d) => phaseIs("Ready")(d) && st(d).forwards.remote[0]?.state === "Active", "remote forward Active again", ctl);
    process.stderr.write(`# remote forward Active ${Date.now() - killedAt} ms after the old session died\n`);
    assert.equal(st(active).forwards.remote[0]!.boundPort, remotePort);
    assert.equal(st(active).session.reconnects, 1, "no further reconnect was needed");
    await assertFlows(remotePort, "remote port after the old session died");
    assert.equal(await ctl.stop(), 0);
  });

  it("3b. a remote forward dropped while its port was held, re-added later against a stranger's port: ForwardRefused, not RemotePortBusy", async () => {
    const sshd = await newSshd();
    const echo = await echoServer();
    const remotePort = await freePort();
    const dir = tempDir();
    const file = join(dir, "readd.yaml");
    const status = `${file}.status`;
    const write = (remote: Array<{ remotePort: number; localPort: number }>): void =>
      writeFileSync(file, manifest(sshd, "readd", { remote }, { keepalive: "{interval: 500ms, countMax: 2}", reconnect: "{minDelay: 200ms, maxDelay: 1s}" }));
    write([{ remotePort, localPort: echo.port }]);
    const ctl = run(dir);
    await waitForStatus(status, phaseIs("Ready"), "Ready", ctl);

    const frozen = sessionTree(sshd);
    scope.defer(() => signal(frozen, "SIGKILL"));
    signal(frozen, "SIGSTOP");
    await waitForStatus(status, (d) => st(d).forwards.remote[0]?.reason === "RemotePortBusy", "RemotePortBusy", ctl);
    write([]);
    await waitForStatus(status, (d) => phaseIs("Ready")(d) && st(d).forwards.remote.length === 0, "forward removed", ctl);
    signal(frozen, "SIGKILL");
    await waitFor(async () => (await probe(remotePort)) === "ECONNREFUSED", "the old session's listener gone");

    // Someone else takes the port on the server host; then the forward comes back into the manifest.
    const stranger = await new Promise<Server>((resolve, reject) => {
      const srv = createServer((s) => s.destroy());
      srv.once("error", reject);
      srv.listen(remotePort, "127.0.0.1", () => resolve(srv));
    });
    scope.defer(() => new Promise<void>((r) => stranger.close(() => r())));
    write([{ remotePort, localPort: echo.port }]);
    const refused = await waitForStatus(status, (d) => st(d).forwards.remote[0]?.state === "Failed", "re-added forward Failed", ctl);
    assert.equal(st(refused).forwards.remote[0]!.reason, "ForwardRefused", "the port was never ours on this session: not RemotePortBusy");

    // Retried until the port is free, then Active without an edit.
    await new Promise<void>((r) => stranger.close(() => r()));
    await waitForStatus(status, (d) => phaseIs("Ready")(d) && st(d).forwards.remote[0]?.state === "Active", "Active once the stranger is gone", ctl);
    await assertFlows(remotePort, "re-added remote forward");
    assert.equal(await ctl.stop(), 0);
  });

  it("9. local listener continuity: a connection made while the session is down is held and served once it is back", async () => {
    const sshd = await newSshd();
    const echo = await echoServer();
    const [patientPort, hastyPort] = [await freePort(), await freePort()];
    const dir = tempDir();
    const file = join(dir, "hold.yaml");
    const status = `${file}.status`;
    const hastyTimeout = 1000;
    writeFileSync(
      file,
      manifest(sshd, "hold", {
        local: [
          { localPort: patientPort, remotePort: echo.port, connectTimeout: "20s" },
          { localPort: hastyPort, remotePort: echo.port, connectTimeout: `${hastyTimeout}ms` },
        ],
      }),
    );
    const ctl = run(dir);
    await waitForStatus(status, phaseIs("Ready"), "Ready", ctl);
    await assertFlows(patientPort, "patient forward before the crash");

    await sshd.kill();
    // From the crash until Ready again, new connections keep being accepted: never ECONNREFUSED.
    const probes: string[] = [];
    let probing = true;
    scope.defer(() => (probing = false));
    const proberDeadline = Date.now() + 60_000;
    const prober = (async () => {
      while (probing && Date.now() < proberDeadline) {
        probes.push(await probe(patientPort));
        await new Promise((r) => setTimeout(r, 25));
      }
    })();
    const down = await waitForStatus(status, (d) => st(d).session.state === "Backoff", "session Backoff", ctl);
    for (const f of st(down).forwards.local) assert.deepEqual([f.state, f.reason], ["Pending", "SessionDown"]);
    assert.equal(await probe(patientPort), "accepted", "no ECONNREFUSED while the session is down");

    // A connection the session does not come back for within connectTimeout is closed, and counted.
    const hasty = startExchange(hastyPort, Buffer.from("never answered\n"));
    const hastyAt = await within(hasty.connected, 5000, "the hasty connection accepted");
    const hastyEnd = await within(hasty.finished, hastyTimeout + 5000, "the hasty connection closed after its connectTimeout");
    const heldFor = hastyEnd.closedAt - hastyAt;
    assert.equal(hastyEnd.data.length, 0, "nothing came back on the timed-out connection");
    assert.ok(heldFor >= hastyTimeout - 50 && heldFor < hastyTimeout + 2000, `held ${heldFor} ms against a ${hastyTimeout} ms connectTimeout`);
    const counted = await waitForStatus(status, (d) => (st(d).forwards.local[1]?.failedConnections ?? 0) >= 1, "the timed-out connection counted as failed", ctl);
    assert.equal(st(counted).session.state, "Backoff", "sshd is still down");

    // A connection with a generous connectTimeout is held: accepted, counted active, not closed.
    const payload = randomPayload(512 * 1024);
    const patient = startExchange(patientPort, payload);
    const patientAt = await within(patient.connected, 5000, "the patient connection accepted");
    await waitForStatus(status, (d) => (st(d).forwards.local[0]?.activeConnections ?? 0) >= 1, "the held connection counted as active", ctl);
    assert.equal(patient.closed, false, "the held connection is still open");

    await sshd.start();
    const served = await within(patient.finished, 20_000, "the held connection served and closed");
    assert.equal(sha256(served.data), sha256(payload), `held connection: ${served.data.length} of ${payload.length} bytes came back intact`);
    assert.ok(served.closedAt - patientAt < 20_000, "served within connectTimeout");
    const back = await waitForStatus(status, (d) => phaseIs("Ready")(d) && st(d).session.reconnects === 1, "Ready again with reconnects: 1", ctl);
    probing = false;
    await prober;
    assert.ok(probes.length > 20, `${probes.length} probes during the outage`);
    assert.deepEqual([...new Set(probes)], ["accepted"], "every connection attempt during the outage was accepted");
    assert.equal(st(back).forwards.local[0]!.failedConnections, 0, "neither the held connection nor the probes were counted as failed");
    assert.equal(await ctl.stop(), 0);
  });
});
