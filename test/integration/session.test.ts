// Session API against a real OpenSSH sshd: data integrity, concurrency, live changes, errors.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:net";
import { after, before, describe, it } from "node:test";
import {
  ForwardRefusedError,
  PortInUseError,
  connect,
  type ConnectOptions,
  type Session,
} from "../../src/index.ts";
import { randomPool } from "../../src/ssh/ssh2.ts";
import {
  openLive,
  probe,
  randomPayload,
  roundTrip,
  sha256,
  startBlackhole,
  startEchoServer,
  startTaggedEchoServer,
  tagOf,
  waitFor,
  type TestServer,
} from "../helpers/net.ts";
import { destroySshd, freePort, sshdAvailable, startSshd, type Sshd } from "../helpers/sshd.ts";

const haveSshd = sshdAvailable();

function optionsFor(sshd: Sshd, extra: Partial<ConnectOptions> = {}): ConnectOptions {
  return {
    username: sshd.username,
    port: sshd.port,
    auth: { privateKeyFile: sshd.clientKeyFile },
    hostKey: { knownHostsFile: sshd.knownHostsFile },
    ...extra,
  };
}

describe("Session API against OpenSSH", { skip: !haveSshd }, () => {
  let sshd: Sshd;
  let echo: TestServer;
  const sessions: Session[] = [];
  const servers: TestServer[] = [];

  before(async () => {
    sshd = await startSshd();
    echo = await startEchoServer();
  });

  after(async () => {
    await Promise.all(sessions.map((s) => s.close()));
    await Promise.all(servers.map((s) => s.close()));
    await echo.close();
    await destroySshd(sshd);
  });

  async function open(extra: Partial<ConnectOptions> = {}): Promise<Session> {
    const session = await connect("127.0.0.1", optionsFor(sshd, extra));
    sessions.push(session);
    return session;
  }

  it("carries 8 MiB both ways through a local and a remote forward, intact", async () => {
    const localPort = await freePort();
    const session = await open({
      portForwardLocal: [{ localPort, remoteHost: "127.0.0.1", remotePort: echo.port }],
      portForwardRemote: [{ remotePort: 0, localHost: "127.0.0.1", localPort: echo.port }],
    });
    const payload = randomPayload(8 * 1024 * 1024);
    const viaLocal = await roundTrip(localPort, payload);
    assert.equal(viaLocal.length, payload.length);
    assert.equal(sha256(viaLocal), sha256(payload));

    const remote = session.getPortForwardingRemote();
    assert.equal(remote.length, 1);
    const boundPort = remote[0]!.remotePort;
    assert.ok(boundPort > 0, "server chose a port");
    const viaRemote = await roundTrip(boundPort, payload);
    assert.equal(sha256(viaRemote), sha256(payload));

    const stats = session.stats();
    await waitFor(() => session.stats().local[0]!.activeConnections === 0, "local connection closed");
    assert.equal(session.stats().local[0]!.bytesIn, payload.length);
    assert.equal(session.stats().local[0]!.bytesOut, payload.length);
    assert.equal(stats.local[0]!.totalConnections, 1);
    await session.close();
  });

  it("pads every packet it sends from the buffered random pool", async () => {
    const localPort = await freePort();
    await open({ portForwardLocal: [{ localPort, remoteHost: "127.0.0.1", remotePort: echo.port }] });
    const before = randomPool();
    assert.equal(before.active, true, "ssh2 was loaded through src/ssh/ssh2.ts");
    const payload = randomPayload(4 * 1024 * 1024);
    const back = await roundTrip(localPort, payload);
    assert.equal(sha256(back), sha256(payload));
    // 4 MiB sent to sshd is at least 128 CHANNEL_DATA packets (sshd takes at most 32 KiB each).
    const drawn = randomPool().pooled - before.pooled;
    assert.ok(drawn >= 128, `${drawn} packets padded from the pool`);
  });

  it("serves 200 simultaneous connections through one forward, all intact", async () => {
    const localPort = await freePort();
    const session = await open({ portForwardLocal: [{ localPort, remoteHost: "127.0.0.1", remotePort: echo.port }] });
    const payloads = Array.from({ length: 200 }, () => randomPayload(64 * 1024));
    const results = await Promise.all(payloads.map((p) => roundTrip(localPort, p)));
    results.forEach((r, i) => assert.equal(sha256(r), sha256(payloads[i]!), `connection ${i}`));
    await waitFor(() => session.stats().local[0]!.activeConnections === 0, "all connections closed");
    assert.equal(session.stats().local[0]!.totalConnections, 200);
    await session.close();
  });

  it("adds, changes in place and deletes forwards on a live session without disturbing others", async () => {
    const [a, b, b2, c, r, r2] = await Promise.all(["A", "B", "B2", "C", "R", "R2"].map((t) => startTaggedEchoServer(t)));
    servers.push(a!, b!, b2!, c!, r!, r2!);
    const [portA, portB, portC] = [await freePort(), await freePort(), await freePort()];
    const session = await open({
      portForwardLocal: [
        { localPort: portA, remoteHost: "127.0.0.1", remotePort: a!.port },
        { localPort: portB, remoteHost: "127.0.0.1", remotePort: b!.port },
      ],
    });
    const untouched = await openLive(portA);
    const throughB = await openLive(portB);
    await untouched.ping("a1");
    await throughB.ping("b1");
    assert.ok(throughB.received.startsWith("B\n"));

    // Add.
    await session.setPortForwardingLocal({ localPort: portC, remoteHost: "127.0.0.1", remotePort: c!.port });
    assert.equal(await tagOf(portC), "C");
    await untouched.ping("a2");

    // Change B's target in place: new connections go to B2, the open one stays on B.
    await session.setPortForwardingLocal({ localPort: portB, remoteHost: "127.0.0.1", remotePort: b2!.port });
    assert.equal(await tagOf(portB), "B2");
    await throughB.ping("b2");
    await untouched.ping("a3");
    assert.equal(session.getPortForwardingLocal().find((f) => f.localPort === portB)?.remotePort, b2!.port);

    // Delete B: the port refuses at once, the open connection drains.
    await session.deletePortForwardingLocal({ localPort: portB });
    assert.equal(await probe(portB), "ECONNREFUSED");
    await throughB.ping("b3");
    await untouched.ping("a4");
    throughB.socket.end();
    await waitFor(() => throughB.closed, "drained connection closes when the client ends it");

    // Remote: add, change in place, delete while a connection through it lives.
    const remote = await session.setPortForwardingRemote({ remotePort: 0, localHost: "127.0.0.1", localPort: r!.port });
    const throughR = await openLive(remote.remotePort);
    await throughR.ping("r1");
    assert.ok(throughR.received.startsWith("R\n"));
    await session.setPortForwardingRemote({ remotePort: 0, localHost: "127.0.0.1", localPort: r2!.port });
    assert.equal(await tagOf(remote.remotePort), "R2");
    await throughR.ping("r2");
    await session.deletePortForwardingRemote({ remotePort: remote.remotePort });
    assert.equal(await probe(remote.remotePort), "ECONNREFUSED");
    await throughR.ping("r3");
    await untouched.ping("a5");
    assert.equal(untouched.closed, false);
    throughR.socket.end();
    untouched.socket.end();
    await session.close();
  });

  it("reports a busy local port as PortInUseError and leaves the session alone", async () => {
    const busy: Server = createServer();
    const busyPort = await freePort();
    await new Promise<void>((resolve) => busy.listen(busyPort, "127.0.0.1", resolve));
    try {
      const okPort = await freePort();
      const session = await open({ portForwardLocal: [{ localPort: okPort, remoteHost: "127.0.0.1", remotePort: echo.port }] });
      const live = await openLive(okPort);
      await live.ping("before");
      await assert.rejects(
        session.setPortForwardingLocal({ localPort: busyPort, remoteHost: "127.0.0.1", remotePort: echo.port }),
        (err: unknown) => err instanceof PortInUseError && err.message.includes(`127.0.0.1:${busyPort}`),
      );
      await live.ping("after");
      assert.equal(session.closed, false);
      assert.deepEqual(
        session.getPortForwardingLocal().map((f) => f.localPort),
        [okPort],
      );
      live.socket.end();
      await session.close();
    } finally {
      await new Promise((r) => busy.close(r));
    }
  });

  it("honours connectTimeout against a target that never answers", async () => {
    const blackhole = await startBlackhole();
    try {
      const localPort = await freePort();
      const session = await open({
        portForwardLocal: [{ localPort, remoteHost: "127.0.0.1", remotePort: blackhole.port, connectTimeout: 400 }],
      });
      const started = Date.now();
      const live = await openLive(localPort);
      await waitFor(() => live.closed, "the client connection to be closed", 10_000);
      assert.ok(Date.now() - started >= 350, "not closed before the timeout");
      assert.equal(session.stats().local[0]!.failedConnections, 1);
      await session.close();
    } finally {
      blackhole.close();
    }
  });

  it("returns get… shapes, allocates port 0, and binds loopback by default", async () => {
    const localPort = await freePort();
    const session = await open();
    await session.setPortForwardingLocal({ localPort, remoteHost: "127.0.0.1", remotePort: echo.port });
    const remote = await session.setPortForwardingRemote({ remotePort: 0, localHost: "127.0.0.1", localPort: echo.port });
    assert.deepEqual(session.getPortForwardingLocal(), [
      { bindAddress: "127.0.0.1", localPort, remoteHost: "127.0.0.1", remotePort: echo.port, connectTimeout: 30000 },
    ]);
    assert.ok(remote.remotePort > 0);
    assert.deepEqual(session.getPortForwardingRemote(), [
      { bindAddress: "127.0.0.1", remotePort: remote.remotePort, localHost: "127.0.0.1", localPort: echo.port },
    ]);
    // Bound to 127.0.0.1 only: another loopback address of this host is refused.
    assert.equal(await probe(localPort, "127.0.0.1"), "accepted");
    assert.equal(await probe(localPort, "127.0.0.2"), "ECONNREFUSED");
    assert.equal(await probe(remote.remotePort, "127.0.0.2"), "ECONNREFUSED");
    await session.close();
    assert.equal(await probe(localPort), "ECONNREFUSED");
    assert.equal(await probe(remote.remotePort), "ECONNREFUSED");
  });
});

describe("Session API against an sshd that refuses remote forwarding", { skip: !haveSshd }, () => {
  let sshd: Sshd;
  before(async () => {
    sshd = await startSshd({ config: ["AllowTcpForwarding local"] });
  });
  after(() => destroySshd(sshd));

  it("rejects a remote forward with ForwardRefusedError and keeps the session", async () => {
    const session = await connect("127.0.0.1", optionsFor(sshd));
    try {
      const port = await freePort();
      await assert.rejects(
        session.setPortForwardingRemote({ remotePort: port, localHost: "127.0.0.1", localPort: 1 }),
        (err: unknown) => err instanceof ForwardRefusedError && err.reason === "ForwardRefused" && err.message.includes(`127.0.0.1:${port}`),
      );
      assert.equal(session.closed, false);
      assert.deepEqual(session.getPortForwardingRemote(), []);
    } finally {
      await session.close();
    }
  });
});
