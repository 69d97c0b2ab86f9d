// Global requests against servers that answer them unlike OpenSSH: asyncssh made to answer
// SSH_MSG_UNIMPLEMENTED (RFC 4253 §11.4) to every global request but the forwarding ones, and
// dropbear with remote forwarding off (-k), which does not answer global requests at all.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ConnectionError, ForwardRefusedError, RequestTimeoutError, connect, type Session } from "../../src/index.ts";
import { SshConnection } from "../../src/ssh/connection.ts";
import { openLive, probe, randomPayload, roundTrip, sha256, startEchoServer, waitFor, type TestServer } from "../helpers/net.ts";
import { countInLogs, serverAvailable, sessionOptions, startTestServer, type TestSshServer } from "../helpers/ssh-server.ts";
import { freePort } from "../helpers/sshd.ts";

/** Fail with `what` instead of hanging the test when a promise never settles. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not settled within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** A bare SshConnection (no Session) to `server`, with a deadline long enough never to matter. */
function openConnection(server: TestSshServer): Promise<SshConnection> {
  return SshConnection.open({
    host: server.host,
    port: server.port,
    username: server.username,
    auth: { privateKeyFile: server.clientKeyFile },
    hostKey: { knownHostsFile: server.knownHostsFile },
    requestTimeout: 60_000,
  });
}

describe("a server that answers global requests with SSH_MSG_UNIMPLEMENTED (asyncssh)", { skip: !serverAvailable("asyncssh") }, () => {
  let server: TestSshServer;
  let echo: TestServer;
  const sessions: Session[] = [];
  before(async () => {
    server = await startTestServer("asyncssh", { asyncsshUnimplementedGlobals: true });
    echo = await startEchoServer();
  });
  after(async () => {
    await Promise.all(sessions.map((s) => s.close()));
    await echo.close();
    await server.kill();
  });

  it("settles the connection: UNIMPLEMENTED is an answer to no-more-sessions", async () => {
    const connection = await openConnection(server);
    try {
      await within(connection.settled, 5_000, "settled");
      assert.equal(connection.closed, false);
      await waitFor(() => countInLogs(server, "unimplemented no-more-sessions@openssh.com") >= 1, "the server's note that it answered UNIMPLEMENTED");
    } finally {
      await connection.close();
    }
  });

  it("opens, carries and closes a remote forward after an UNIMPLEMENTED answer", async () => {
    const session = await connect("127.0.0.1", sessionOptions(server, { requestTimeout: 60_000 }));
    sessions.push(session);
    const remote = await within(
      session.setPortForwardingRemote({ remotePort: 0, localHost: "127.0.0.1", localPort: echo.port }),
      5_000,
      "setPortForwardingRemote",
    );
    const payload = randomPayload(256 * 1024);
    assert.equal(sha256(await roundTrip(remote.remotePort, payload)), sha256(payload));
    await within(session.deletePortForwardingRemote({ remotePort: remote.remotePort }), 5_000, "deletePortForwardingRemote");
    assert.equal(await probe(remote.remotePort), "ECONNREFUSED");
    await session.close();
  });

  it("keeps an idle session alive: an UNIMPLEMENTED answer to a keepalive counts as an answer", async () => {
    const localPort = await freePort();
    const session = await connect(
      "127.0.0.1",
      sessionOptions(server, {
        keepalive: { interval: 300, countMax: 3 },
        portForwardLocal: [{ localPort, remoteHost: "127.0.0.1", remotePort: echo.port }],
      }),
    );
    sessions.push(session);
    const before = countInLogs(server, "unimplemented keepalive@openssh.com");
    // Ten keepalive rounds: without an answer that counts, the fourth would have closed it.
    await waitFor(() => countInLogs(server, "unimplemented keepalive@openssh.com") >= before + 10, "10 keepalives answered UNIMPLEMENTED", 15_000);
    assert.equal(session.closed, false);
    const live = await openLive(localPort);
    await live.ping("still here");
    live.socket.end();
    await session.close();
  });
});

describe("a server that never answers a tcpip-forward (asyncssh told to ignore it)", { skip: !serverAvailable("asyncssh") }, () => {
  let server: TestSshServer;
  before(async () => {
    server = await startTestServer("asyncssh", { asyncsshIgnoreGlobals: ["tcpip-forward"] });
  });
  after(() => server.kill());

  it("gives the request a deadline: RequestTimeout naming the forward and the server", async () => {
    const session = await connect("127.0.0.1", sessionOptions(server, { requestTimeout: 500 }));
    try {
      const port = await freePort();
      await within(
        assert.rejects(session.setPortForwardingRemote({ remotePort: port, localHost: "127.0.0.1", localPort: 1 }), (err: unknown) => {
          assert.ok(err instanceof RequestTimeoutError, String(err));
          assert.equal(err.reason, "RequestTimeout");
          assert.match(err.message, new RegExp(`tcpip-forward for 127\\.0\\.0\\.1:${port}`));
          assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${server.port}`));
          return true;
        }),
        5_000,
        "setPortForwardingRemote",
      );
      assert.deepEqual(session.getPortForwardingRemote(), []);
      assert.equal(session.closed, false);
    } finally {
      await session.close();
    }
  });
});

describe("a server that answers a tcpip-forward after the deadline (asyncssh told to delay it)", { skip: !serverAvailable("asyncssh") }, () => {
  let server: TestSshServer;
  let echo: TestServer;
  before(async () => {
    server = await startTestServer("asyncssh", { asyncsshDelayFirstGlobals: ["tcpip-forward:1.5"] });
    echo = await startEchoServer();
  });
  after(async () => {
    await echo.close();
    await server.kill();
  });

  it("releases the late forward on the server, so that a retry gets the port", async () => {
    const session = await connect("127.0.0.1", sessionOptions(server, { requestTimeout: 300 }));
    try {
      const port = await freePort();
      const spec = { remotePort: port, localHost: "127.0.0.1", localPort: echo.port };
      await assert.rejects(session.setPortForwardingRemote(spec), (err: unknown) => err instanceof RequestTimeoutError);
      // The late confirmation binds the port on the server; tunnelctl cancels it at once.
      await waitFor(() => countInLogs(server, "global cancel-tcpip-forward") === 1, "the late forward cancelled", 5_000);
      await waitFor(async () => (await probe(port)) === "ECONNREFUSED", "the port free again", 5_000);
      await session.setPortForwardingRemote(spec);
      const payload = randomPayload(64 * 1024);
      assert.equal(sha256(await roundTrip(port, payload)), sha256(payload));
    } finally {
      await session.close();
    }
  });
});

describe("a connection that drops while requests are pending", { skip: !serverAvailable("asyncssh") }, () => {
  it("reports ConnectionLost for the pending tcpip-forward, and settled rejects: a closed connection is never taken for live", async () => {
    const server = await startTestServer("asyncssh", { asyncsshIgnoreGlobals: ["tcpip-forward", "no-more-sessions@openssh.com"] });
    try {
      const connection = await openConnection(server);
      const settled = connection.settled.then(
        () => "resolved",
        (err: unknown) => err,
      );
      const pending = connection.requestRemoteForward("127.0.0.1", await freePort()).then(
        () => "resolved",
        (err: unknown) => err,
      );
      await waitFor(() => countInLogs(server, "ignored tcpip-forward") === 1, "the server to have the request");
      await server.kill();
      const [settledOutcome, forwardOutcome] = await within(Promise.all([settled, pending]), 10_000, "both settle after the drop");
      assert.ok(settledOutcome instanceof ConnectionError && settledOutcome.reason === "ConnectionLost", String(settledOutcome));
      assert.ok(forwardOutcome instanceof ConnectionError, String(forwardOutcome));
      assert.ok(!(forwardOutcome instanceof ForwardRefusedError));
      assert.equal(forwardOutcome.reason, "ConnectionLost");
      assert.equal(connection.closed, true);
    } finally {
      await server.kill();
    }
  });
});
