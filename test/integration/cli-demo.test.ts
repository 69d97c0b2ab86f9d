// `tunnelctl demo`, run as a real process: the tunnel it sets up carries the echo service's
// banner through both forwards, its status file says Ready, and Ctrl-C (SIGINT) stops it cleanly.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { parseStatusDocs, type TunnelStatusDoc } from "../../src/status/index.ts";
import { describeRun, runCli, spawnCli, type CliProcess } from "../helpers/cli.ts";
import { probe, waitFor } from "../helpers/net.ts";

const BANNER = "hello from the demo service";

/** The first line a connection to the port receives; rejects if there is none. */
function firstLine(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port });
    let received = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      received += chunk;
      const end = received.indexOf("\n");
      if (end >= 0) {
        socket.destroy();
        resolve(received.slice(0, end));
      }
    });
    socket.on("error", reject);
    socket.on("close", () => reject(new Error(`connection to ${port} closed after ${JSON.stringify(received)}`)));
  });
}

/** waitFor, and on timeout the demo's output in the error. */
async function waitForDemo<T>(demo: CliProcess, predicate: () => T | Promise<T>, what: string): Promise<NonNullable<T>> {
  try {
    return (await waitFor(predicate, what, 20_000)) as NonNullable<T>;
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- stdout ---\n${demo.stdout}--- stderr ---\n${demo.stderr}`, { cause: err });
  }
}

function readStatus(dir: string): TunnelStatusDoc | undefined {
  return parseStatusDocs(readFileSync(path.join(dir, "demo.yaml.status"), "utf8"))[0];
}

describe("demo", { timeout: 60_000 }, () => {
  const dir = path.join(mkdtempSync(path.join(tmpdir(), "tunnelctl-demo-")), "demo");
  const running: CliProcess[] = [];
  after(() => {
    for (const demo of running) if (demo.child.exitCode === null) demo.child.kill("SIGKILL");
    rmSync(path.dirname(dir), { recursive: true, force: true });
  });

  const startDemo = (): CliProcess => {
    const demo = spawnCli(["demo", "--dir", dir]);
    running.push(demo);
    return demo;
  };

  /** Waits until the demo's tunnel works end to end and reports Ready; returns its local port. */
  const waitUntilWorking = async (demo: CliProcess): Promise<number> => {
    const port = await waitForDemo(demo, () => /try: nc 127\.0\.0\.1 (\d+)/.exec(demo.stdout)?.[1], "the instructions");
    assert.equal(await waitForDemo(demo, () => firstLine(Number(port)), "the banner through the local forward"), BANNER);
    const status = await waitForDemo(demo, () => (readStatus(dir)?.status.phase === "Ready" ? readStatus(dir) : undefined), "phase: Ready");
    const boundPort = status.status.forwards.remote[0]?.boundPort;
    assert.ok(boundPort, "the remote forward reports the port the server chose");
    assert.equal(await firstLine(boundPort), BANNER, "the banner through the remote forward");
    return Number(port);
  };

  const interrupt = async (demo: CliProcess): Promise<void> => {
    demo.child.kill("SIGINT");
    const result = await demo.exited;
    assert.equal(result.code, 0, describeRun(result));
  };

  it("sets up a working tunnel on loopback and stops on Ctrl-C", async () => {
    const demo = startDemo();
    const port = await waitUntilWorking(demo);

    assert.equal(statSync(path.join(dir, "client_ed25519")).mode & 0o777, 0o600);
    const manifest = readFileSync(path.join(dir, "demo.yaml"), "utf8");
    assert.match(manifest, /privateKeyFile: \.\/client_ed25519/);
    assert.match(manifest, /policy: strict/);
    assert.match(demo.stdout, /edit .*demo\.yaml — add a forward, change a port — and watch the table/);
    assert.match(demo.stdout, /Ctrl-C to stop/);
    await waitForDemo(demo, () => /^demo +Ready +Connected +2\/2 active/m.test(demo.stdout), "the table to show Ready");
    const validated = await runCli(["validate", path.join(dir, "demo.yaml")]);
    assert.equal(validated.code, 0, describeRun(validated));

    await interrupt(demo);
    assert.notEqual(await probe(port), "accepted", "the local forward is closed after the demo stops");
  });

  it("reuses an existing demo directory, with a fresh manifest", async () => {
    const before = readFileSync(path.join(dir, "demo.yaml"), "utf8");
    const demo = startDemo();
    await waitUntilWorking(demo);
    assert.notEqual(readFileSync(path.join(dir, "demo.yaml"), "utf8"), before, "new ports and host key");
    await interrupt(demo);
  });
});
