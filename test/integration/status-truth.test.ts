// Issue 16: a fix takes effect at once, and the status says whether the desired spec is what
// runs. The real `tunnelctl run` process against a real sshd; every wait has a deadline far below
// the backoff the tunnel is in, so passing proves the retry did not wait for its slot.
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { manifest, phaseIs, waitForStatus, type StatusDoc } from "../helpers/controller.ts";
import { openLive, probe, startEchoServer, startTaggedEchoServer, tagOf, type TestServer } from "../helpers/net.ts";
import { TestScope } from "../helpers/scope.ts";
import { freePort, sshdAvailable, type Sshd } from "../helpers/sshd.ts";

const haveSshd = sshdAvailable();
/** A backoff no test waits out: 30 s at the first retry. */
const LONG_BACKOFF = "{minDelay: 30s, maxDelay: 60s}";
/** Well below LONG_BACKOFF: reaching the state within this proves nothing waited for a slot. */
const FAST = 8000;

const st = (docs: StatusDoc[]): StatusDoc["status"] => docs[0]!.status;
const condition = (docs: StatusDoc[], type: string) => st(docs).conditions.find((c) => c.type === type);

describe("status truth: fixes apply at once, the status says what runs", { skip: !haveSshd }, () => {
  let sshd: Sshd;
  let target: TestServer;
  const scope = new TestScope("tunnelctl-truth-");

  before(async () => {
    sshd = await scope.sshd();
    target = await startTaggedEchoServer("T");
    scope.defer(() => target.close());
  });
  after(() => scope.dispose());

  it("a fixed manifest connects at once, whatever backoff the broken one was in", async () => {
    const dir = scope.tempDir();
    const file = join(dir, "t.yaml");
    const port = await freePort();
    const fwd = { local: [{ localPort: port, remotePort: target.port }] };
    const broken = manifest(sshd, "fixme", fwd, { reconnect: LONG_BACKOFF }).replace(`username: ${sshd.username}`, "username: no-such-user");
    writeFileSync(file, broken);
    const ctl = scope.run(dir);
    await waitForStatus(`${file}.status`, (d) => st(d).session.lastError.includes("refused") && st(d).phase === "Failed", "auth failure", ctl);
    writeFileSync(file, manifest(sshd, "fixme", fwd, { reconnect: LONG_BACKOFF }));
    const docs = await waitForStatus(`${file}.status`, phaseIs("Ready"), "Ready right after the fix", ctl, FAST);
    assert.equal(st(docs).session.reconnects, 0, "the first session after failures is not a reconnect");
    assert.equal(await tagOf(port), "T");
  });

  it("SIGHUP retries a tunnel in backoff now (a fix outside the manifest: a key file's mode)", async () => {
    const dir = scope.tempDir();
    const file = join(dir, "t.yaml");
    const key = join(dir, "key");
    writeFileSync(key, readFileSync(sshd.clientKeyFile));
    chmodSync(key, 0o644);
    writeFileSync(file, manifest(sshd, "hup", {}, { reconnect: LONG_BACKOFF, auth: { privateKeyFile: key } }));
    const ctl = scope.run(dir);
    await waitForStatus(`${file}.status`, (d) => condition(d, "Connected")?.reason === "KeyFileError", "KeyFileError", ctl);
    chmodSync(key, 0o600);
    ctl.proc.kill("SIGHUP");
    await waitForStatus(`${file}.status`, phaseIs("Ready"), "Ready right after SIGHUP", ctl, FAST);
  });

  it("a session-level change that fails leaves the old session running and says the spec is not applied", async () => {
    const dir = scope.tempDir();
    const file = join(dir, "t.yaml");
    const port = await freePort();
    const fwd = { local: [{ localPort: port, remotePort: target.port }] };
    writeFileSync(file, manifest(sshd, "sync", fwd, { reconnect: LONG_BACKOFF }));
    const ctl = scope.run(dir);
    const ready = await waitForStatus(`${file}.status`, phaseIs("Ready"), "Ready", ctl);
    const runningGeneration = st(ready).observedGeneration;

    writeFileSync(file, manifest(sshd, "sync", fwd, { reconnect: LONG_BACKOFF }).replace(`username: ${sshd.username}`, "username: no-such-user"));
    const lagging = await waitForStatus(`${file}.status`, (d) => condition(d, "Synced")?.status === "False", "Synced False", ctl);
    assert.equal(st(lagging).phase, "Degraded");
    assert.equal(st(lagging).observedGeneration, runningGeneration, "observedGeneration is the generation that runs");
    assert.equal(condition(lagging, "Synced")!.reason, "AuthFailed");
    assert.equal(condition(lagging, "Ready")!.status, "False");
    assert.equal(condition(lagging, "Ready")!.reason, "SpecNotApplied");
    assert.equal(st(lagging).session.state, "Connected");
    assert.equal(await tagOf(port), "T", "the old session still carries the forward");

    // Put it back: the spec in effect is the latest again.
    writeFileSync(file, manifest(sshd, "sync", fwd, { reconnect: LONG_BACKOFF }));
    const synced = await waitForStatus(`${file}.status`, (d) => condition(d, "Synced")?.status === "True" && st(d).phase === "Ready", "Synced True", ctl, FAST);
    assert.equal(st(synced).observedGeneration, runningGeneration);
    assert.equal(condition(synced, "Synced")!.reason, "Applied");
  });

  it("a suspended tunnel's forwards say so, and resuming is not a reconnect", async () => {
    const dir = scope.tempDir();
    const file = join(dir, "t.yaml");
    const port = await freePort();
    const fwd = { local: [{ localPort: port, remotePort: target.port }] };
    writeFileSync(file, manifest(sshd, "nap", fwd));
    const ctl = scope.run(dir);
    await waitForStatus(`${file}.status`, phaseIs("Ready"), "Ready", ctl);
    writeFileSync(file, manifest(sshd, "nap", fwd, { spec: "  suspend: true\n" }));
    // Written once when the edit is read (the listener still open: Active), then once closed.
    const suspended = await waitForStatus(`${file}.status`, (d) => st(d).phase === "Suspended" && st(d).forwards.local[0]?.state === "Pending", "Suspended", ctl);
    const forward = st(suspended).forwards.local[0]!;
    assert.equal(forward.reason, "Suspended");
    assert.match(forward.message, /suspend/);
    assert.doesNotMatch(forward.message, /waiting for the session/);
    assert.equal(await probe(port), "ECONNREFUSED");
    writeFileSync(file, manifest(sshd, "nap", fwd));
    const resumed = await waitForStatus(`${file}.status`, phaseIs("Ready"), "Ready again", ctl);
    assert.equal(st(resumed).session.reconnects, 0, "turning suspend off is not a reconnect");
  });

  it("a running controller confirms every status document; a clean shutdown's final status says Stopped", async () => {
    const dir = scope.tempDir();
    const file = join(dir, "t.yaml");
    writeFileSync(file, manifest(sshd, "beat", {}));
    const ctl = scope.run(dir); // --status-interval 300ms: confirmed every 900ms
    const first = await waitForStatus(`${file}.status`, phaseIs("Ready"), "Ready", ctl);
    assert.equal(st(first).confirmInterval, "900ms");
    const firstAt = Date.parse(st(first).confirmedAt!);
    await waitForStatus(`${file}.status`, (d) => Date.parse(st(d).confirmedAt!) > firstAt && st(d).phase === "Ready", "confirmedAt refreshed", ctl);
    assert.equal(await ctl.stop("SIGTERM"), 0);
    const final = (await waitForStatus(`${file}.status`, phaseIs("Stopped"), "Stopped", ctl))[0]!.status;
    assert.equal(final.conditions.find((c) => c.type === "Ready")?.reason, "ControllerStopped");
    assert.equal(final.conditions.find((c) => c.type === "Connected")?.reason, "ControllerStopped");
    assert.equal(final.session.state, "Closed");
  });

  it("a git-sync swap to a byte-identical revision rewrites every status file of the new tree", async () => {
    const root = scope.tempDir();
    const text = manifest(sshd, "synced", {});
    mkdirSync(join(root, "rev1"));
    writeFileSync(join(root, "rev1", "a.yaml"), text);
    symlinkSync(join(root, "rev1"), join(root, "current"));
    const ctl = scope.run(join(root, "current"));
    await waitForStatus(join(root, "current", "a.yaml.status"), phaseIs("Ready"), "Ready in rev1", ctl);
    mkdirSync(join(root, "rev2"));
    writeFileSync(join(root, "rev2", "a.yaml"), text);
    symlinkSync(join(root, "rev2"), join(root, "current.tmp"));
    renameSync(join(root, "current.tmp"), join(root, "current"));
    rmSync(join(root, "rev1"), { recursive: true });
    await waitForStatus(join(root, "current", "a.yaml.status"), phaseIs("Ready"), "status rewritten in rev2", ctl, FAST);
  });

  it("a YAML error in one document keeps the file's other running tunnels listed, with the error", async () => {
    const dir = scope.tempDir();
    const file = join(dir, "two.yaml");
    const first = manifest(sshd, "first", {});
    const second = manifest(sshd, "second", {});
    writeFileSync(file, `${first}---\n${second}`);
    const ctl = scope.run(dir);
    await waitForStatus(`${file}.status`, (d) => d.length === 2 && phaseIs("Ready")(d), "both Ready", ctl);
    // An unclosed quote in the first document: the parser swallows the second one too.
    writeFileSync(file, `${first.replace("name: first", 'name: "first')}---\n${second}`);
    const docs = await waitForStatus(`${file}.status`, (d) => d.some((x) => x.status.phase === "Invalid"), "Invalid", ctl);
    assert.deepEqual(docs.map((d) => d.metadata.name).sort(), ["first", "second"]);
    for (const d of docs) {
      assert.equal(d.status.phase, "Invalid", d.metadata.name);
      assert.ok(d.status.errors.length > 0, d.metadata.name);
      assert.equal(d.status.session.state, "Connected", `${d.metadata.name} keeps running`);
    }
  });

  it("the end of a removed forward's draining is written at once, not at the next counter refresh", async () => {
    const dir = scope.tempDir();
    const file = join(dir, "t.yaml");
    const port = await freePort();
    const echo = await startEchoServer();
    scope.defer(() => echo.close());
    writeFileSync(file, manifest(sshd, "drain", { local: [{ localPort: port, remotePort: echo.port }] }));
    const ctl = scope.run(dir, ["--status-interval", "10s"]);
    await waitForStatus(`${file}.status`, phaseIs("Ready"), "Ready", ctl);
    const live = await openLive(port);
    await live.ping("hello");
    writeFileSync(file, manifest(sshd, "drain", {}));
    await waitForStatus(`${file}.status`, (d) => st(d).forwards.local[0]?.state === "Draining", "Draining", ctl);
    live.socket.end();
    await waitForStatus(`${file}.status`, (d) => st(d).forwards.local.length === 0, "drain end written", ctl, 2500);
  });
});
