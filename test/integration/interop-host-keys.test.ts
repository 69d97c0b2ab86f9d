// A server with ed25519, ecdsa and rsa host keys, and a known_hosts that lists only one of them
// (a very common known_hosts): the client must offer that key's algorithms first, as OpenSSH's
// ssh does, and connect.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connect } from "../../src/index.ts";
import { serverAvailable, sessionOptions, startTestServer, type ServerKind, type TestSshServer } from "../helpers/ssh-server.ts";

for (const kind of ["openssh", "dropbear", "asyncssh"] as const satisfies readonly ServerKind[]) {
  describe(`host key algorithm order against ${kind} with three host keys`, { skip: !serverAvailable(kind) }, () => {
    let server: TestSshServer;
    before(async () => {
      server = await startTestServer(kind, { hostKeyTypes: ["ed25519", "ecdsa", "rsa"] });
    });
    after(() => server.kill());

    for (const type of ["ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"]) {
      it(`connects with a known_hosts that has only its ${type} key, and checks that key`, async () => {
        const knownHostsFile = join(server.dir, `known_hosts_${type}`);
        writeFileSync(knownHostsFile, `${server.knownHostsLines[type]}\n`);
        const session = await connect("127.0.0.1", sessionOptions(server, { hostKey: { knownHostsFile, policy: "strict" } }));
        try {
          assert.equal(session.hostKeyFingerprint, server.hostKeyFingerprints[type]);
        } finally {
          await session.close();
        }
      });
    }

    it("connects with a pinned ecdsa fingerprint when known_hosts has that key", async () => {
      const knownHostsFile = join(server.dir, "known_hosts_pin");
      writeFileSync(knownHostsFile, `${server.knownHostsLines["ecdsa-sha2-nistp256"]}\n`);
      const pin = server.hostKeyFingerprints["ecdsa-sha2-nistp256"]!;
      const session = await connect("127.0.0.1", sessionOptions(server, { hostKey: { knownHostsFile, fingerprints: [pin] } }));
      try {
        assert.equal(session.hostKeyFingerprint, pin);
      } finally {
        await session.close();
      }
    });
  });
}
