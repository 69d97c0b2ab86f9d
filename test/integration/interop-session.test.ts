// The Session API against every SSH server we test with: OpenSSH, dropbear, asyncssh and the
// embedded ssh2 server of the demo. A known server bug is asserted as what the product reports
// (dropbear 2022.83 refuses every cancel-tcpip-forward), never skipped.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { CancelRefusedError, ForwardRefusedError, HostKeyError, connect, type ConnectOptions, type Session } from "../../src/index.ts";
import { probe, randomPayload, roundTrip, sha256, startEchoServer, waitFor, type TestServer } from "../helpers/net.ts";
import { SERVER_KINDS, serverAvailable, sessionOptions, startTestServer, type TestSshServer } from "../helpers/ssh-server.ts";
import { freePort } from "../helpers/sshd.ts";

/** dropbear 2022.83 refuses every cancel-tcpip-forward (fixed upstream in 2026). */
const CANCEL_REFUSED: Record<string, boolean> = { openssh: false, dropbear: true, asyncssh: false, embedded: false };
/**
 * dropbear (without -a) listens on "localhost" whatever address is asked, and confirms a remote
 * forward when either of 127.0.0.1 and ::1 binds: 127.0.0.1:P busy still gets a forward on [::1]:P.
 */
const BINDS_EITHER_LOOPBACK: Record<string, boolean> = { openssh: false, dropbear: true, asyncssh: false, embedded: false };

/** Connect, send, and say what came of it: the bytes back, or how the connection ended without any. */
async function exchange(port: number, payload: Buffer, host = "127.0.0.1"): Promise<"intact" | "refused"> {
  try {
    const back = await roundTrip(port, payload, host);
    if (back.length === 0) return "refused";
    return sha256(back) === sha256(payload) ? "intact" : "refused";
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ECONNRESET" || code === "EPIPE") return "refused";
    throw err;
  }
}

for (const kind of SERVER_KINDS) {
  describe(`Session API against ${kind}`, { skip: !serverAvailable(kind) }, () => {
    let server: TestSshServer;
    let echo: TestServer;
    const sessions: Session[] = [];
    before(async () => {
      server = await startTestServer(kind);
      echo = await startEchoServer();
    });
    after(async () => {
      await Promise.all(sessions.map((s) => s.close()));
      await echo.close();
      await server.kill();
    });
    const open = async (extra: Partial<ConnectOptions> = {}): Promise<Session> => {
      const session = await connect("127.0.0.1", sessionOptions(server, extra));
      sessions.push(session);
      return session;
    };

    it("carries 64 MiB each way through a local and a port-0 remote forward, intact", async () => {
      const localPort = await freePort();
      const session = await open({
        portForwardLocal: [{ localPort, remoteHost: "127.0.0.1", remotePort: echo.port }],
        portForwardRemote: [{ remotePort: 0, localHost: "127.0.0.1", localPort: echo.port }],
      });
      const payload = randomPayload(64 * 1024 * 1024);
      const viaLocal = await roundTrip(localPort, payload);
      assert.equal(sha256(viaLocal), sha256(payload));
      const [remote] = session.getPortForwardingRemote();
      assert.ok(remote && remote.remotePort > 0, "the server chose a port");
      const viaRemote = await roundTrip(remote.remotePort, payload);
      assert.equal(sha256(viaRemote), sha256(payload));
      await session.close();
    });

    it("serves 50 concurrent connections through one local forward, all intact", async () => {
      const localPort = await freePort();
      const session = await open({ portForwardLocal: [{ localPort, remoteHost: "127.0.0.1", remotePort: echo.port }] });
      const payloads = Array.from({ length: 50 }, () => randomPayload(64 * 1024));
      const results = await Promise.all(payloads.map((p) => roundTrip(localPort, p)));
      results.forEach((r, i) => assert.equal(sha256(r), sha256(payloads[i]!), `connection ${i}`));
      await waitFor(() => session.stats().local[0]!.activeConnections === 0, "all connections closed");
      assert.equal(session.stats().local[0]!.totalConnections, 50);
      await session.close();
    });

    it("sets, gets and deletes local and remote forwards (bind variants)", async () => {
      const session = await open();
      const [l1, l2, r1] = [await freePort(), await freePort("127.0.0.2"), await freePort()];
      await session.setPortForwardingLocal({ localPort: l1, remoteHost: "127.0.0.1", remotePort: echo.port });
      await session.setPortForwardingLocal({ bindAddress: "127.0.0.2", localPort: l2, remoteHost: "localhost", remotePort: echo.port });
      await session.setPortForwardingRemote({ bindAddress: "127.0.0.1", remotePort: r1, localHost: "127.0.0.1", localPort: echo.port });
      assert.deepEqual(
        session.getPortForwardingLocal().map((f) => `${f.bindAddress}:${f.localPort}`),
        [`127.0.0.1:${l1}`, `127.0.0.2:${l2}`],
      );
      assert.deepEqual(session.getPortForwardingRemote(), [{ bindAddress: "127.0.0.1", remotePort: r1, localHost: "127.0.0.1", localPort: echo.port }]);
      assert.equal(await probe(l1, "127.0.0.2"), "ECONNREFUSED", "bound to 127.0.0.1 only");
      const small = randomPayload(4096);
      for (const [port, host] of [[l1, "127.0.0.1"], [l2, "127.0.0.2"], [r1, "127.0.0.1"]] as const) {
        assert.equal(sha256(await roundTrip(port, small, host)), sha256(small), `${host}:${port}`);
      }
      await session.deletePortForwardingLocal({ localPort: l1 });
      await session.deletePortForwardingLocal({ bindAddress: "127.0.0.2", localPort: l2 });
      assert.equal(await probe(l1), "ECONNREFUSED");
      assert.equal(await probe(l2, "127.0.0.2"), "ECONNREFUSED");
      assert.deepEqual(session.getPortForwardingLocal(), []);
      await session.close();
    });

    it(
      CANCEL_REFUSED[kind]
        ? "deletes a remote forward: the server refuses the cancel → CancelRefusedError, the forward listed as HeldByServer, its connections refused, set takes it back"
        : "deletes a remote forward: the port refuses connections at once",
      async () => {
        const session = await open();
        const port = await freePort();
        await session.setPortForwardingRemote({ remotePort: port, localHost: "127.0.0.1", localPort: echo.port });
        const small = randomPayload(4096);
        assert.equal(sha256(await roundTrip(port, small)), sha256(small));
        if (!CANCEL_REFUSED[kind]) {
          await session.deletePortForwardingRemote({ remotePort: port });
          assert.equal(await probe(port), "ECONNREFUSED");
          assert.deepEqual(session.getPortForwardingRemote(), []);
          await session.close();
          return;
        }
        await assert.rejects(session.deletePortForwardingRemote({ remotePort: port }), (err: unknown) => {
          assert.ok(err instanceof CancelRefusedError, String(err));
          assert.equal(err.reason, "CancelRefused");
          assert.ok(err.message.includes(`127.0.0.1:${port}`), err.message);
          return true;
        });
        assert.deepEqual(session.getPortForwardingRemote(), [
          { bindAddress: "127.0.0.1", remotePort: port, localHost: "127.0.0.1", localPort: echo.port, state: "HeldByServer" },
        ]);
        // The server still accepts; tunnelctl refuses the channel, so nothing comes back (dropbear resets).
        assert.equal(await exchange(port, small), "refused");
        // Set again: taken back without a new tcpip-forward (the server would refuse one: it holds the port).
        await session.setPortForwardingRemote({ remotePort: port, localHost: "127.0.0.1", localPort: echo.port });
        assert.deepEqual(session.getPortForwardingRemote(), [{ bindAddress: "127.0.0.1", remotePort: port, localHost: "127.0.0.1", localPort: echo.port }]);
        assert.equal(sha256(await roundTrip(port, small)), sha256(small));
        await session.close();
      },
    );

    it(
      BINDS_EITHER_LOOPBACK[kind]
        ? "a remote forward on a busy 127.0.0.1 port is confirmed: the server listens on [::1] only"
        : "reports a remote forward on a port the server cannot bind as ForwardRefusedError",
      async () => {
        const busy: Server = createServer();
        const busyPort = await freePort();
        await new Promise<void>((resolve) => busy.listen(busyPort, "127.0.0.1", resolve));
        try {
          const session = await open();
          if (BINDS_EITHER_LOOPBACK[kind]) {
            await session.setPortForwardingRemote({ remotePort: busyPort, localHost: "127.0.0.1", localPort: echo.port });
            assert.equal(await exchange(busyPort, randomPayload(1024), "::1"), "intact");
            await session.close();
            return;
          }
          await assert.rejects(
            session.setPortForwardingRemote({ remotePort: busyPort, localHost: "127.0.0.1", localPort: echo.port }),
            (err: unknown) => err instanceof ForwardRefusedError && err.reason === "ForwardRefused" && err.message.includes(`127.0.0.1:${busyPort}`),
          );
          assert.equal(session.closed, false);
          assert.deepEqual(session.getPortForwardingRemote(), []);
          await session.close();
        } finally {
          await new Promise((r) => busy.close(r));
        }
      },
    );

    for (const type of ["ed25519", "ecdsa", "rsa", "encrypted"] as const) {
      it(`authenticates with a${type === "encrypted" ? "n encrypted ed25519" : ` ${type}`} client key`, async () => {
        const key = server.clientKeys[type];
        const auth: ConnectOptions["auth"] = { privateKeyFile: key.file };
        if (key.passphrase) {
          const passphraseFile = join(server.dir, "passphrase");
          writeFileSync(passphraseFile, key.passphrase, { mode: 0o600 });
          auth.passphraseFile = passphraseFile;
        }
        const localPort = await freePort();
        const session = await open({ auth, portForwardLocal: [{ localPort, remoteHost: "127.0.0.1", remotePort: echo.port }] });
        const small = randomPayload(1024);
        assert.equal(sha256(await roundTrip(localPort, small)), sha256(small));
        await session.close();
      });
    }

    it("host keys: unknown under strict, mismatch, accept-new records it", async () => {
      const fingerprint = server.hostKeyFingerprints["ssh-ed25519"]!;
      const empty = join(server.dir, "known_hosts_empty");
      writeFileSync(empty, "");
      await assert.rejects(open({ hostKey: { knownHostsFile: empty } }), (err: unknown) => {
        assert.ok(err instanceof HostKeyError && err.reason === "HostKeyUnknown", String(err));
        assert.ok(err.message.includes(fingerprint), err.message);
        return true;
      });
      const other = join(server.dir, "other_host");
      execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", other]);
      const wrong = join(server.dir, "known_hosts_wrong");
      writeFileSync(wrong, `[127.0.0.1]:${server.port} ${readFileSync(`${other}.pub`, "utf8").split(" ").slice(0, 2).join(" ")}\n`);
      await assert.rejects(open({ hostKey: { knownHostsFile: wrong } }), (err: unknown) => err instanceof HostKeyError && err.reason === "HostKeyMismatch");
      const learnt = join(server.dir, "known_hosts_learnt");
      const session = await open({ hostKey: { knownHostsFile: learnt, policy: "accept-new" } });
      assert.equal(session.hostKeyFingerprint, fingerprint);
      await session.close();
      assert.ok(readFileSync(learnt, "utf8").includes(server.knownHostsLines["ssh-ed25519"]!));
      const again = await open({ hostKey: { knownHostsFile: learnt } });
      await again.close();
    });
  });
}
