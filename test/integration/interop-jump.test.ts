// Jump hosts across the SSH servers we test with: each kind as the bastion in front of an OpenSSH
// target, and each kind as the target behind an OpenSSH bastion. Bytes hashed; the link to the
// bastion cut (a relay in between is closed: servers differ in what killing them does to the
// connections they serve) is reported as hop 1's.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { connect, type JumpHostInput, type Session, type TunnelError } from "../../src/index.ts";
import { startDelayRelay } from "../helpers/delay-relay.ts";
import { randomPayload, roundTrip, sha256, startEchoServer, type TestServer } from "../helpers/net.ts";
import { SERVER_KINDS, serverAvailable, sessionOptions, startTestServer, type TestSshServer } from "../helpers/ssh-server.ts";
import { freePort } from "../helpers/sshd.ts";

function asHop(server: TestSshServer): JumpHostInput {
  return { host: server.host, port: server.port, username: server.username, auth: { privateKeyFile: server.clientKeyFile }, hostKey: { knownHostsFile: server.knownHostsFile } };
}

async function assertCarries(session: Session, echo: TestServer, what: string): Promise<void> {
  const localPort = await freePort();
  await session.setPortForwardingLocal({ localPort, remoteHost: "127.0.0.1", remotePort: echo.port });
  const payload = randomPayload(512 * 1024);
  assert.equal(sha256(await roundTrip(localPort, payload)), sha256(payload), `${what}: bytes differ`);
}

for (const kind of SERVER_KINDS) {
  describe(`jump hosts with ${kind}`, { skip: !serverAvailable(kind) || !serverAvailable("openssh") }, () => {
    let echo: TestServer;
    const sessions: Session[] = [];
    const servers: TestSshServer[] = [];
    const start = async (k: typeof kind): Promise<TestSshServer> => {
      const server = await startTestServer(k);
      servers.push(server);
      return server;
    };
    before(async () => {
      echo = await startEchoServer();
    });
    after(async () => {
      await Promise.all(sessions.map((s) => s.close()));
      await echo.close();
      for (const server of servers) await server.kill();
    });

    it(`${kind} as the bastion: the target is reached through it; the bastion's link cut is hop 1's`, async () => {
      const [bastion, target] = [await start(kind), await start("openssh")];
      const link = await startDelayRelay(bastion.port, 0);
      const fingerprint = bastion.hostKeyFingerprints["ssh-ed25519"]!;
      // Reached through the relay's port: the key is pinned (known_hosts names the server's own port).
      const hop = { ...asHop(bastion), port: link.port, hostKey: { fingerprints: [fingerprint] } };
      const session = await connect(target.host, { ...sessionOptions(target), jump: [hop] });
      sessions.push(session);
      assert.deepEqual(session.via, [{ host: bastion.host, port: link.port, hostKeyFingerprint: fingerprint }]);
      await assertCarries(session, echo, `through a ${kind} bastion`);
      const closed = new Promise<TunnelError | undefined>((resolve) => session.once("close", resolve));
      await link.close();
      const err = await closed;
      assert.ok(err?.message.startsWith(`hop 1 (${bastion.host}:${link.port}): `), err?.message);
    });

    it(`${kind} as the target behind an OpenSSH bastion`, async () => {
      const [bastion, target] = [await start("openssh"), await start(kind)];
      const session = await connect(target.host, { ...sessionOptions(target), jump: [asHop(bastion)] });
      sessions.push(session);
      assert.equal(session.hostKeyFingerprint, target.hostKeyFingerprints["ssh-ed25519"]);
      await assertCarries(session, echo, `to a ${kind} target through a bastion`);
    });
  });
}
