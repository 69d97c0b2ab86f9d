// `bindAddress: localhost` listens on 127.0.0.1 and ::1, as `ssh -L localhost:…` does, and the
// status says so.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connect } from "../../src/index.ts";
import { manifest, phaseIs, waitForStatus } from "../helpers/controller.ts";
import { probe, randomPayload, roundTrip, sha256, startEchoServer, type TestServer } from "../helpers/net.ts";
import { TestScope } from "../helpers/scope.ts";
import { serverAvailable, sessionOptions, startTestServer, type TestSshServer } from "../helpers/ssh-server.ts";
import { freePort } from "../helpers/sshd.ts";

/** A port free on both loopbacks. */
async function freeDualPort(): Promise<number> {
  for (;;) {
    const port = await freePort();
    if ((await probe(port, "::1")) === "ECONNREFUSED") return port;
  }
}

async function intact(port: number, host: string): Promise<boolean> {
  const payload = randomPayload(64 * 1024);
  return sha256(await roundTrip(port, payload, host)) === sha256(payload);
}

describe("bindAddress: localhost", { skip: !serverAvailable("openssh") }, () => {
  let server: TestSshServer;
  let echo: TestServer;
  const scope = new TestScope("tunnelctl-localhost-");
  before(async () => {
    server = await startTestServer("openssh");
    echo = await startEchoServer();
  });
  after(async () => {
    await scope.dispose();
    await echo.close();
    await server.kill();
  });

  it("Session API: listens on 127.0.0.1 and ::1, both carry bytes, delete frees both", async () => {
    const session = await connect("127.0.0.1", sessionOptions(server));
    try {
      const port = await freeDualPort();
      await session.setPortForwardingLocal({ bindAddress: "localhost", localPort: port, remoteHost: "127.0.0.1", remotePort: echo.port });
      assert.ok(await intact(port, "127.0.0.1"));
      assert.ok(await intact(port, "::1"));
      assert.deepEqual(session.stats().local[0]!.listenAddresses, ["127.0.0.1", "::1"]);
      await session.deletePortForwardingLocal({ bindAddress: "localhost", localPort: port });
      assert.equal(await probe(port, "127.0.0.1"), "ECONNREFUSED");
      assert.equal(await probe(port, "::1"), "ECONNREFUSED");
    } finally {
      await session.close();
    }
  });

  it("controller: the status lists both addresses", async () => {
    const dir = scope.tempDir();
    const ctl = scope.run(dir);
    const port = await freeDualPort();
    const file = join(dir, "lh.yaml");
    writeFileSync(file, manifest(server, "lh", { local: [{ bindAddress: "localhost", localPort: port, remotePort: echo.port }] }));
    const docs = await waitForStatus(`${file}.status`, phaseIs("Ready"), "Ready", ctl);
    const local = docs[0]!.status.forwards.local[0]! as { listenAddresses?: string[]; bindAddress?: string };
    assert.deepEqual(local.listenAddresses, ["127.0.0.1", "::1"]);
    assert.ok(await intact(port, "::1"));
    assert.equal(await ctl.stop(), 0);
  });
});
