// `tunnelctl diff` (issue 19): per tunnel, what `run` would do — against another manifest tree
// (base vs head, for CI), and against the running state a real controller's status files record.
// It never connects: the sshd sees no new connection while diff runs.
import assert from "node:assert/strict";
import { cpSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { manifest, phaseIs, waitForStatus } from "../helpers/controller.ts";
import { describeRun, runCli } from "../helpers/cli.ts";
import { startEchoServer, type TestServer } from "../helpers/net.ts";
import { TestScope } from "../helpers/scope.ts";
import { freePort, sshdAvailable, type Sshd } from "../helpers/sshd.ts";

const haveSshd = sshdAvailable();
const connections = (sshd: Sshd): number => sshd.logs().split("\n").filter((l) => l.includes("Connection from")).length;

describe("diff", { skip: !haveSshd }, () => {
  let sshd: Sshd;
  let target: TestServer;
  const scope = new TestScope("tunnelctl-diff-");
  before(async () => {
    sshd = await scope.sshd();
    target = await startEchoServer();
    scope.defer(() => target.close());
  });
  after(() => scope.dispose());

  it("--against: create, update (session replaced, forward changed), delete; exit 1; json; no change exits 0", async () => {
    const root = scope.tempDir();
    const [base, head] = [join(root, "base"), join(root, "head")];
    mkdirSync(base);
    mkdirSync(head);
    const [p1, p2, p3] = [await freePort(), await freePort(), await freePort()];
    writeFileSync(join(base, "a.yaml"), manifest(sshd, "same", { local: [{ localPort: p1, remotePort: 80 }] }));
    writeFileSync(join(base, "b.yaml"), manifest(sshd, "changed", { local: [{ localPort: p2, remotePort: 80 }] }));
    writeFileSync(join(base, "c.yaml"), manifest(sshd, "gone", {}));
    cpSync(join(base, "a.yaml"), join(head, "a.yaml"));
    writeFileSync(
      join(head, "b.yaml"),
      manifest(sshd, "changed", { local: [{ localPort: p2, remotePort: 81 }], remote: [{ remotePort: 9000, localPort: 3000 }] }).replace(`username: ${sshd.username}`, "username: other"),
    );
    writeFileSync(join(head, "d.yaml"), manifest(sshd, "fresh", { local: [{ localPort: p3, remotePort: 22 }] }));

    const result = await runCli(["diff", "head", "--against", "base"], { cwd: root });
    assert.equal(result.code, 1, describeRun(result));
    assert.equal(
      result.stdout,
      [
        "~ changed (head/b.yaml): update",
        "    ~ replace session: now other@127.0.0.1:" + sshd.port + " (session settings changed; local listeners stay bound)",
        `    ~ update local 127.0.0.1:${p2} → 127.0.0.1:81 (connectTimeout 30000ms)`,
        "    + open remote 127.0.0.1:9000 (on the server) → 127.0.0.1:3000",
        "+ fresh (head/d.yaml): create",
        `    + open session ${sshd.username}@127.0.0.1:${sshd.port}`,
        `    + open local 127.0.0.1:${p3} → 127.0.0.1:22 (connectTimeout 30000ms)`,
        "- gone (base/c.yaml): delete",
        "    - close session",
        "3 tunnels to change: 1 to create, 1 to update, 1 to delete; 1 unchanged",
        "",
      ].join("\n"),
    );
    const json = await runCli(["diff", "head", "--against", "base", "-o", "json"], { cwd: root });
    assert.equal(json.code, 1);
    const parsed = JSON.parse(json.stdout) as { changes: Array<{ name: string; change: string; actions: Array<{ type: string }> }>; summary: Record<string, number> };
    assert.deepEqual(parsed.summary, { create: 1, update: 1, delete: 1, unchanged: 1 });
    assert.deepEqual(parsed.changes.find((c) => c.name === "changed")?.actions.map((a) => a.type), ["replace-session", "update-local", "open-remote"]);

    const same = await runCli(["diff", "base", "--against", "base"], { cwd: root });
    assert.equal(same.code, 0, describeRun(same));
    assert.equal(same.stdout, "No changes (3 tunnels unchanged)\n");
  });

  it("an invalid manifest is an error (exit 2) with file:line:column", async () => {
    const root = scope.tempDir();
    mkdirSync(join(root, "head"));
    writeFileSync(join(root, "head", "x.yaml"), manifest(sshd, "x", {}).replace("kind: Tunnel", "kind: Tunel"));
    const result = await runCli(["diff", "head", "--against", "head"], { cwd: root });
    assert.equal(result.code, 2, describeRun(result));
    assert.match(result.stdout, /^head\/x\.yaml:2:7: kind: must be "Tunnel" \(got "Tunel"; did you mean "Tunnel"\?\)$/m);
    assert.match(result.stderr, /nothing compared/);
  });

  it("against a running controller's status files: unchanged, then the changes an edit would make; never connects", async () => {
    const root = scope.tempDir();
    const live = join(root, "live");
    const pr = join(root, "pr");
    mkdirSync(live);
    const [p1, p2] = [await freePort(), await freePort()];
    const text = manifest(sshd, "svc", { local: [{ localPort: p1, remotePort: target.port }] });
    writeFileSync(join(live, "svc.yaml"), text);
    const ctl = scope.run(live);
    await waitForStatus(join(live, "svc.yaml.status"), phaseIs("Ready"), "Ready", ctl);
    mkdirSync(pr);
    writeFileSync(join(pr, "svc.yaml"), text);
    const before = connections(sshd);

    const unchanged = await runCli(["diff", "pr", "--status-dir", "live"], { cwd: root });
    assert.equal(unchanged.code, 0, describeRun(unchanged));
    assert.equal(unchanged.stdout, "No changes (1 tunnel unchanged)\n");

    writeFileSync(join(pr, "svc.yaml"), manifest(sshd, "svc", { local: [{ localPort: p1, remotePort: target.port }, { localPort: p2, remotePort: target.port }] }, { keepalive: "{interval: 5s, countMax: 3}" }));
    const changed = await runCli(["diff", "pr", "--status-dir", "live"], { cwd: root });
    assert.equal(changed.code, 1, describeRun(changed));
    assert.match(changed.stdout, /^~ svc \(pr\/svc\.yaml\): update$/m);
    assert.match(changed.stdout, /^ {4}~ replace session: now /m);
    assert.match(changed.stdout, new RegExp(`^ {4}\\+ open local 127\\.0\\.0\\.1:${p2} → `, "m"));
    assert.doesNotMatch(changed.stdout, new RegExp(`local 127\\.0\\.0\\.1:${p1}`), "the unchanged forward is not touched");
    assert.equal(connections(sshd), before, "diff made no SSH connection");
    assert.equal(await ctl.stop(), 0);
  });
});
