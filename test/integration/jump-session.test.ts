// Jump hosts (ProxyJump) through the Session API, against real OpenSSH sshds on loopback: hop A and
// hop B at LogLevel DEBUG1 (they log every direct-tcpip they open) in front of the target.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connect, type ConnectOptions, type JumpHostInput, type Session, type TunnelError } from "../../src/index.ts";
import { clientPidsOf, directTcpipTo, wrongKnownHosts } from "../helpers/jump.ts";
import { randomPayload, roundTrip, sha256, startEchoServer, waitFor, type TestServer } from "../helpers/net.ts";
import { TestScope } from "../helpers/scope.ts";
import { allDescendants, freePort, sshdAvailable, type Sshd } from "../helpers/sshd.ts";

const haveSshd = sshdAvailable();
const DEBUG = { config: ["LogLevel DEBUG1"] };

function hop(sshd: Sshd, extra: Partial<JumpHostInput> = {}): JumpHostInput {
  return { host: "127.0.0.1", port: sshd.port, auth: { privateKeyFile: sshd.clientKeyFile }, hostKey: { knownHostsFile: sshd.knownHostsFile }, ...extra };
}

function targetOptions(target: Sshd, jump: JumpHostInput[], extra: Partial<ConnectOptions> = {}): ConnectOptions {
  return {
    username: target.username,
    port: target.port,
    auth: { privateKeyFile: target.clientKeyFile },
    hostKey: { knownHostsFile: target.knownHostsFile },
    jump,
    ...extra,
  };
}

describe("jump hosts through the Session API", { skip: !haveSshd }, () => {
  const scope = new TestScope("tunnelctl-jump-");
  let hopA: Sshd;
  let hopB: Sshd;
  let target: Sshd;
  let echo: TestServer;
  const sessions: Session[] = [];

  before(async () => {
    [hopA, hopB, target] = await Promise.all([scope.sshd(DEBUG), scope.sshd(DEBUG), scope.sshd()]);
    echo = await startEchoServer();
    scope.defer(() => echo.close());
  });

  after(async () => {
    await Promise.all(sessions.map((s) => s.close()));
    await scope.dispose();
  });

  it("two hops: bytes pass intact, each hop opens a direct-tcpip to the next, the target's peer is hop B", async () => {
    const localPort = await freePort();
    const session = await connect(
      "127.0.0.1",
      targetOptions(target, [hop(hopA), hop(hopB)], { portForwardLocal: [{ localPort, remoteHost: "127.0.0.1", remotePort: echo.port }] }),
    );
    sessions.push(session);
    assert.deepEqual(session.via, [
      { host: "127.0.0.1", port: hopA.port, hostKeyFingerprint: hopA.hostKeyFingerprint },
      { host: "127.0.0.1", port: hopB.port, hostKeyFingerprint: hopB.hostKeyFingerprint },
    ]);
    assert.equal(session.hostKeyFingerprint, target.hostKeyFingerprint);

    const payload = randomPayload(1024 * 1024);
    const echoed = await roundTrip(localPort, payload);
    assert.equal(sha256(echoed), sha256(payload), "bytes through two hops differ");

    await waitFor(() => directTcpipTo(hopA, hopB.port) === 1, "hop A's log to record its direct-tcpip to hop B");
    await waitFor(() => directTcpipTo(hopB, target.port) === 1, "hop B's log to record its direct-tcpip to the target");
    assert.equal(directTcpipTo(hopA, target.port), 0, "hop A went straight to the target");
    // Who holds the target's one SSH connection: hop B's sshd, not this process, not hop A.
    const peers = clientPidsOf(target.port);
    assert.equal(peers.length, 1, `connections to the target: ${peers.join(", ")}`);
    assert.ok(allDescendants(hopB.pid()!).includes(peers[0]!), `the target's peer ${peers[0]} is not one of hop B's sshd processes`);
    assert.deepEqual(clientPidsOf(hopB.port).filter((pid) => pid === process.pid), [], "this process connected to hop B directly");
    assert.deepEqual(clientPidsOf(hopA.port), [process.pid]);
    await session.close();
    // The hop sessions were the session's own: they close with it.
    await waitFor(() => clientPidsOf(hopA.port).length === 0, "the hop A session to close with the session");
  });

  it("a host key mismatch on the middle hop is HostKeyMismatch naming hop 2", async () => {
    const badKnownHosts = join(scope.tempDir(), "known_hosts");
    writeFileSync(badKnownHosts, wrongKnownHosts(hopB, hopA));
    await assert.rejects(connect("127.0.0.1", targetOptions(target, [hop(hopA), hop(hopB, { hostKey: { knownHostsFile: badKnownHosts } })])), (err: TunnelError) => {
      assert.equal(err.reason, "HostKeyMismatch");
      assert.equal(err.name, "HostKeyError");
      assert.ok(err.message.startsWith(`hop 2 (127.0.0.1:${hopB.port}): HostKeyMismatch `), err.message);
      assert.ok(err.message.includes(hopB.hostKeyFingerprint), err.message);
      return true;
    });
    await waitFor(() => clientPidsOf(hopA.port).length === 0, "the hop 1 session of the failed attempt to close");
  });

  it("a key hop 1 does not accept is AuthFailed naming hop 1", async () => {
    await assert.rejects(connect("127.0.0.1", targetOptions(target, [hop(hopA, { auth: { privateKeyFile: hopB.clientKeyFile } }), hop(hopB)])), (err: TunnelError) => {
      assert.equal(err.reason, "AuthFailed");
      assert.ok(err.message.startsWith(`hop 1 (127.0.0.1:${hopA.port}): AuthFailed `), err.message);
      return true;
    });
  });

  it("a hop that cannot reach the next one names it", async () => {
    const nowhere = await freePort();
    await assert.rejects(connect("127.0.0.1", targetOptions(target, [hop(hopA), { ...hop(hopB), port: nowhere }])), (err: TunnelError) => {
      assert.equal(err.reason, "ConnectionRefused");
      assert.ok(err.message.startsWith(`hop 2 (127.0.0.1:${nowhere}): ConnectionRefused hop 1 (127.0.0.1:${hopA.port}) cannot reach it`), err.message);
      return true;
    });
  });

  it("accept-new on a hop records that hop's key in its own known_hosts", async () => {
    const learned = join(scope.tempDir(), "known_hosts");
    writeFileSync(learned, "");
    const session = await connect("127.0.0.1", targetOptions(target, [hop(hopA, { hostKey: { knownHostsFile: learned, policy: "accept-new" } })]));
    sessions.push(session);
    assert.equal(readFileSync(learned, "utf8"), `[127.0.0.1]:${hopA.port} ${hopA.hostPublicKey}\n`);
    await session.close();
  });

  /** Open a session through `jump` to `to`, kill `victim`, and return the error the session closed with. */
  async function lossWhenKilled(to: Sshd, jump: JumpHostInput[], victim: Sshd, extra: Partial<ConnectOptions> = {}): Promise<TunnelError | undefined> {
    const session = await connect("127.0.0.1", targetOptions(to, jump, extra));
    sessions.push(session);
    const closed = new Promise<TunnelError | undefined>((resolve) => session.once("close", resolve));
    await victim.kill();
    return closed;
  }

  it("a middle hop that dies ends the session with hop 2's error", async () => {
    const middle = await scope.sshd();
    const err = await lossWhenKilled(target, [hop(hopA), hop(middle)], middle);
    assert.ok(err?.message.startsWith(`hop 2 (127.0.0.1:${middle.port}): `), err?.message);
    await waitFor(() => clientPidsOf(hopA.port).length === 0, "hop 1's session to close once nothing rides it");
  });

  it("a target that dies behind a live hop ends the session at once (not after keepalives)", async () => {
    const doomed = await scope.sshd();
    const err = await lossWhenKilled(doomed, [hop(hopA)], doomed, { keepalive: { interval: 60_000, countMax: 3 } });
    assert.ok(!err?.message.startsWith("hop "), `the target's loss, not a hop's: ${err?.message}`);
    await waitFor(() => clientPidsOf(hopA.port).length === 0, "hop 1's session to close once nothing rides it");
  });

  it("a hop that dies ends the session with that hop's error", async () => {
    const hopC = await scope.sshd();
    const err = await lossWhenKilled(target, [hop(hopC), hop(hopB)], hopC);
    assert.ok(err, "the session closed without an error");
    assert.ok(err.message.startsWith(`hop 1 (127.0.0.1:${hopC.port}): `), err.message);
    assert.ok(["ConnectionLost", "KeepaliveTimeout"].includes(err.reason), err.reason);
  });
});
