// A server that accepts and then drops every session (sshd's UnusedConnectionTimeout closes a
// connection with no channel open): a session that did not last must not reset the backoff, or
// the server would be hammered every minDelay.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { manifest, startRun, waitForStatus, type RunningController } from "../helpers/controller.ts";
import { waitFor } from "../helpers/net.ts";
import { destroySshd, freePort, sshdAvailable, startSshd, type Sshd } from "../helpers/sshd.ts";

const haveSshd = sshdAvailable();

describe("flapping server", { skip: !haveSshd }, () => {
  let sshd: Sshd;
  let dir: string;
  let ctl: RunningController | undefined;

  before(async () => {
    sshd = await startSshd({ config: ["UnusedConnectionTimeout 1s"] });
    dir = mkdtempSync(join(tmpdir(), "tunnelctl-flap-"));
  });
  after(async () => {
    await ctl?.stop("SIGKILL");
    await destroySshd(sshd);
    rmSync(dir, { recursive: true, force: true });
  });

  it("sessions dropped right after connecting back off further each time", async () => {
    const file = join(dir, "flap.yaml");
    writeFileSync(file, manifest(sshd, "flap", { local: [{ localPort: await freePort(), remotePort: 9 }] }, { reconnect: "{minDelay: 200ms, maxDelay: 10s}" }));
    const run = startRun(dir);
    ctl = run;
    await waitForStatus(`${file}.status`, (d) => d[0]!.status.session.reconnects >= 1, "a first reconnect", run, 20_000);
    const delays = (): number[] =>
      run
        .output()
        .split("\n")
        .filter((line) => line.includes('"session lost; reconnecting"'))
        .map((line) => (JSON.parse(line) as { retryInMs: number }).retryInMs);
    await waitFor(() => delays().length >= 3, "three dropped sessions", 30_000);
    const [first, second, third] = delays() as [number, number, number];
    // Equal jitter: each step's delay lies in [step/2, step] and steps double, so delays never shrink.
    assert.ok(second >= first && third >= second, `delays ${first}, ${second}, ${third} ms do not grow`);
    assert.ok(third >= 2 * 200, `third delay ${third} ms: the backoff was reset by sessions that did not last`);
  });
});
