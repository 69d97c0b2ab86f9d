// Drift repair: a listener that dies under the controller is reopened on resync (SIGHUP or the
// --resync timer). No outside process can close our listening socket, so this test runs the
// controller in-process and closes the listener itself, the one fault sshd cannot inject.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import pino from "pino";
import { startController } from "../../src/controller/controller.ts";
import type { Controller } from "../../src/controller/types.ts";
import { manifest, phaseIs, waitForStatus } from "../helpers/controller.ts";
import { probe, startTaggedEchoServer, tagOf, waitFor, type TestServer } from "../helpers/net.ts";
import { destroySshd, freePort, sshdAvailable, startSshd, type Sshd } from "../helpers/sshd.ts";

const haveSshd = sshdAvailable();

describe("drift repair", { skip: !haveSshd }, () => {
  let sshd: Sshd;
  let target: TestServer;
  let dir: string;
  let controller: Controller | undefined;
  const listening: Server[] = [];
  const originalListen = Server.prototype.listen;

  before(async () => {
    sshd = await startSshd();
    target = await startTaggedEchoServer("A");
    dir = mkdtempSync(join(tmpdir(), "tunnelctl-drift-"));
    // Record every server that starts listening, so the test can pull one out from under us.
    Server.prototype.listen = function (this: Server, ...args: unknown[]) {
      listening.push(this);
      return (originalListen as (...a: unknown[]) => Server).apply(this, args);
    } as typeof Server.prototype.listen;
  });
  after(async () => {
    Server.prototype.listen = originalListen;
    await controller?.stop();
    await target.close();
    await destroySshd(sshd);
    rmSync(dir, { recursive: true, force: true });
  });

  it("a listener that died is reopened on resync", async () => {
    const port = await freePort();
    const file = join(dir, "drift.yaml");
    writeFileSync(file, manifest(sshd, "drift", { local: [{ localPort: port, remotePort: target.port }] }));
    controller = await startController({ dir, logger: pino({ level: "silent" }), resyncMs: 600_000, statusIntervalMs: 200 });
    await waitForStatus(`${file}.status`, phaseIs("Ready"), "Ready");
    assert.equal(await tagOf(port), "A");

    const server = listening.find((s) => {
      const address = s.address();
      return typeof address === "object" && address?.port === port;
    });
    assert.ok(server, "the forward's listener was recorded");
    server.close();
    await waitFor(async () => (await probe(port)) === "ECONNREFUSED", "the listener is gone");

    controller.resync(); // what SIGHUP does
    await waitFor(async () => (await probe(port)) === "accepted", "the listener is back after resync");
    assert.equal(await tagOf(port), "A");
    await waitForStatus(`${file}.status`, phaseIs("Ready"), "Ready after repair");
  });
});
