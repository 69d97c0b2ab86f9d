// The controller against every SSH server: a manifest edit that removes a remote forward and puts
// it back, and a cold start of many tunnels against dropbear (5 unauthenticated connections per
// client address; it drops the rest).
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DEFAULT_HANDSHAKES_PER_SERVER } from "../../src/controller/handshake-limiter.ts";
import { manifest, phaseIs, readStatus, waitForStatus, type StatusDoc } from "../helpers/controller.ts";
import { probe, randomPayload, roundTrip, sha256, startEchoServer, waitFor, type TestServer } from "../helpers/net.ts";
import { TestScope } from "../helpers/scope.ts";
import { SERVER_KINDS, countInLogs, serverAvailable, startTestServer, type TestSshServer } from "../helpers/ssh-server.ts";
import { freePort } from "../helpers/sshd.ts";

async function intact(port: number): Promise<boolean> {
  const payload = randomPayload(64 * 1024);
  return sha256(await roundTrip(port, payload)) === sha256(payload);
}

for (const kind of SERVER_KINDS) {
  describe(`tunnelctl run against ${kind}`, { skip: !serverAvailable(kind) }, () => {
    let server: TestSshServer;
    let echo: TestServer;
    const scope = new TestScope(`tunnelctl-${kind}-run-`);
    before(async () => {
      server = await startTestServer(kind);
      echo = await startEchoServer();
    });
    after(async () => {
      await scope.dispose();
      await echo.close();
      await server.kill();
    });

    it("removes a remote forward from the manifest and puts it back, on one session", async () => {
      const dir = scope.tempDir();
      const ctl = scope.run(dir);
      const [localPort, remotePort] = [await freePort(), await freePort()];
      const file = join(dir, "edit.yaml");
      const status = `${file}.status`;
      const local = [{ localPort, remotePort: echo.port }];
      const withRemote = manifest(server, "edit", { local, remote: [{ remotePort, localPort: echo.port }] });
      writeFileSync(file, withRemote);
      await waitForStatus(status, phaseIs("Ready"), "Ready with the remote forward", ctl);
      assert.ok(await intact(remotePort));

      writeFileSync(file, manifest(server, "edit", { local }));
      if (kind === "dropbear") {
        // dropbear refuses the cancel: the forward is reported as still held by the server.
        const docs = await waitForStatus(status, (d) => d[0]!.status.forwards.remote.some((f) => f.reason === "CancelRefused"), "CancelRefused", ctl);
        const held = docs[0]!.status.forwards.remote[0]!;
        assert.equal(held.state, "Failed");
        assert.equal(held.remotePort, remotePort);
        assert.match(held.message, new RegExp(`127\\.0\\.0\\.1:${remotePort}`));
        assert.equal(docs[0]!.status.phase, "Degraded");
      } else {
        await waitForStatus(status, (d) => d[0]!.status.forwards.remote.length === 0 && phaseIs("Ready")(d), "remote forward gone", ctl);
        await waitFor(async () => (await probe(remotePort)) === "ECONNREFUSED", "the server to stop listening");
      }
      assert.ok(await intact(localPort), "the local forward kept working");

      writeFileSync(file, withRemote);
      const back = await waitForStatus(
        status,
        (d) => phaseIs("Ready")(d) && d[0]!.status.forwards.remote.length === 1 && d[0]!.status.forwards.remote[0]!.state === "Active",
        "the remote forward Active again",
        ctl,
      );
      assert.equal(back[0]!.status.session.reconnects, 0, "the same session throughout");
      assert.ok(await intact(remotePort));
      assert.equal(await ctl.stop(), 0);
    });
  });
}

describe("tunnelctl run against a server that answers UNIMPLEMENTED to keepalive and no-more-sessions (asyncssh)", { skip: !serverAvailable("asyncssh") }, () => {
  const scope = new TestScope("tunnelctl-unimplemented-run-");
  let server: TestSshServer;
  let echo: TestServer;
  before(async () => {
    server = await startTestServer("asyncssh", { asyncsshUnimplementedGlobals: true });
    echo = await startEchoServer();
  });
  after(async () => {
    await scope.dispose();
    await echo.close();
    await server.kill();
  });

  it("is Connected only while connected: Ready at once, and still the same session after 10 keepalive rounds", async () => {
    const dir = scope.tempDir();
    const ctl = scope.run(dir);
    const [localPort, remotePort] = [await freePort(), await freePort()];
    const file = join(dir, "quiet.yaml");
    writeFileSync(
      file,
      manifest(server, "quiet", { local: [{ localPort, remotePort: echo.port }], remote: [{ remotePort, localPort: echo.port }] }, { keepalive: "{interval: 300ms, countMax: 3}" }),
    );
    await waitForStatus(`${file}.status`, phaseIs("Ready"), "Ready", ctl);
    const before = countInLogs(server, "unimplemented keepalive@openssh.com");
    await waitFor(() => countInLogs(server, "unimplemented keepalive@openssh.com") >= before + 10, "10 keepalive rounds", 15_000);
    const docs = readStatus(`${file}.status`)!;
    assert.equal(docs[0]!.status.session.state, "Connected");
    assert.equal(docs[0]!.status.session.reconnects, 0);
    assert.equal(docs[0]!.status.session.lastError, "");
    assert.ok(await intact(localPort));
    assert.ok(await intact(remotePort));
    assert.equal(await ctl.stop(), 0);
  });
});

// dropbear lets 5 unauthenticated connections per client address in and drops the rest. The
// first burst (8 handshakes) loses 3; the limit then falls to 4 and learns that 6 at once is too
// many (it keeps one below dropbear's cap): every later handshake gets in.
const DROPBEAR_CAP = 5;
for (const count of [20, 50]) {
  describe(`a cold start of ${count} tunnels against dropbear`, { skip: !serverAvailable("dropbear") }, () => {
    const scope = new TestScope("tunnelctl-dropbear-storm-");
    let server: TestSshServer;
    let echo: TestServer;
    before(async () => {
      server = await startTestServer("dropbear");
      echo = await startEchoServer();
    });
    after(async () => {
      await scope.dispose();
      await echo.close();
      await server.kill();
    });

    it(`brings all ${count} Ready; only the first burst loses handshakes (at most ${DEFAULT_HANDSHAKES_PER_SERVER - DROPBEAR_CAP})`, async () => {
      const dir = scope.tempDir();
      const ports = new Set<number>();
      while (ports.size < count) ports.add(await freePort());
      const portList = [...ports];
      // Two multi-document files: each load wants its sessions in the same instant.
      const files = ["storm-a.yaml", "storm-b.yaml"];
      const half = count / 2;
      files.forEach((file, f) => {
        const docs = portList
          .slice(f * half, f * half + half)
          .map((port, i) => manifest(server, `db-${String(f * half + i).padStart(2, "0")}`, { local: [{ localPort: port, remotePort: echo.port }] }));
        writeFileSync(join(dir, file), docs.join("---\n"));
      });
      const statuses = (): StatusDoc[] => files.flatMap((file) => readStatus(join(dir, `${file}.status`)) ?? []);
      const ctl = scope.run(dir);
      await waitFor(() => statuses().length === count && statuses().every((d) => d.status.phase === "Ready"), `all ${count} tunnels Ready`, 60_000);
      for (const port of [portList[0]!, portList[count - 1]!]) assert.ok(await intact(port));
      const dropped = (ctl.output().match(/"msg":"connect failed"/g) ?? []).length;
      process.stdout.write(`# dropbear cold start of ${count}: ${dropped} handshakes dropped and retried\n`);
      assert.ok(dropped <= DEFAULT_HANDSHAKES_PER_SERVER - DROPBEAR_CAP, `${dropped} handshakes dropped:\n${ctl.output().match(/.*connect failed.*/g)?.join("\n")}`);
      assert.equal(await ctl.stop(), 0);
    });
  });
}
