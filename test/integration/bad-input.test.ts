// Bad input against the real `tunnelctl run` process (issue 4, "Bad input"): every malformed
// manifest of the corpus dropped into a watched directory is reported Invalid at its
// file:line:column; broken auth material (key permissions, unreadable key, wrong passphrase,
// missing agent socket) gives each tunnel its own reason. Through all of it the controller keeps
// running and a healthy tunnel keeps serving the connection it already had.
import assert from "node:assert/strict";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { manifest, phaseIs, readStatus, startRun, waitForStatus, type RunningController, type StatusDoc } from "../helpers/controller.ts";
import { openLive, startTaggedEchoServer, tagOf, waitFor, type LiveConnection, type TestServer } from "../helpers/net.ts";
import { destroySshd, freePort, sshdAvailable, startSshd, type Sshd } from "../helpers/sshd.ts";

const haveSshd = sshdAvailable();
const corpus = fileURLToPath(new URL("../fixtures/invalid", import.meta.url));

/** `LINE:COL substring` from the fixture's first-line comment or its NAME.expect sidecar. */
function expectationFor(file: string): { position: string; text: string } {
  const sidecar = file.replace(/\.yaml$/, ".expect");
  const spec = existsSync(sidecar)
    ? readFileSync(sidecar, "utf8").trim()
    : (/^# expect: (.*)$/.exec(readFileSync(file, "utf8").split("\n")[0] ?? "")?.[1] ?? "");
  const parsed = /^(\d+:\d+) (.+)$/.exec(spec);
  assert.ok(parsed?.[1] && parsed[2], `${basename(file)}: no expectation`);
  return { position: parsed[1], text: parsed[2] };
}

describe("bad input never stops the controller nor a healthy tunnel", { skip: !haveSshd }, () => {
  let sshd: Sshd;
  let target: TestServer;
  let dir: string;
  let ctl: RunningController;
  let healthyPort: number;
  let live: LiveConnection;
  let pings = 0;

  before(async () => {
    sshd = await startSshd();
    target = await startTaggedEchoServer("H");
    dir = mkdtempSync(join(tmpdir(), "tunnelctl-bad-input-"));
    healthyPort = await freePort();
    writeFileSync(join(dir, "healthy.yaml"), manifest(sshd, "healthy", { local: [{ localPort: healthyPort, remotePort: target.port }] }));
    // agent: true in the corpus must not reach a real agent of whoever runs the tests.
    ctl = startRun(dir, [], { SSH_AUTH_SOCK: "" });
    await waitForStatus(join(dir, "healthy.yaml.status"), phaseIs("Ready"), "healthy Ready", ctl);
    live = await openLive(healthyPort);
    await live.ping("first");
  });
  after(async () => {
    await ctl?.stop("SIGKILL");
    await target?.close();
    await destroySshd(sshd);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** The controller is alive, the old connection still echoes, a new one is served, status Ready. */
  async function healthyStillServes(): Promise<void> {
    assert.equal(ctl.proc.exitCode, null, `the controller exited:\n${ctl.output().slice(-3000)}`);
    await live.ping(`ping-${++pings}`);
    assert.equal(live.closed, false);
    assert.equal(await tagOf(healthyPort), "H");
    assert.equal(readStatus(join(dir, "healthy.yaml.status"))?.[0]?.status.phase, "Ready");
  }

  it("every malformed manifest of the corpus, dropped in at once: Invalid with file:line:column", async () => {
    const names = readdirSync(corpus).filter((n) => n.endsWith(".yaml")).sort();
    assert.ok(names.length >= 40, `only ${names.length} fixtures`);
    const expected = new Map(names.map((n) => [n, expectationFor(join(corpus, n))]));
    // The one the repository cannot hold: a 10 MiB file (renamed into place: complete when seen).
    const huge = "huge-10mib.yaml";
    const hugeText = `${manifest(sshd, "huge", {})}${"# padding to ten mebibytes\n".repeat(Math.ceil((10 * 1024 * 1024) / 27))}`;
    writeFileSync(join(dir, `.${huge}.tmp`), hugeText);
    expected.set(huge, { position: "1:1", text: "file is too large" });

    for (const name of names) copyFileSync(join(corpus, name), join(dir, name));
    renameSync(join(dir, `.${huge}.tmp`), join(dir, huge));

    const reported = (name: string): { docs: StatusDoc[] | undefined; line: string | undefined; doc: StatusDoc | undefined } => {
      const want = expected.get(name)!;
      const prefix = `${name}:${want.position}: `;
      const docs = readStatus(join(dir, `${name}.status`));
      for (const doc of docs ?? []) {
        const line = doc.status.errors.find((e) => e.startsWith(prefix) && e.includes(want.text));
        if (line) return { docs, line, doc };
      }
      return { docs, line: undefined, doc: undefined };
    };
    const all = [...expected.keys()];
    await waitFor(() => all.every((n) => reported(n).line !== undefined), "every file reported", 30_000).catch((err: Error) => {
      const missing = all.filter((n) => reported(n).line === undefined);
      const detail = missing
        .slice(0, 5)
        .map((n) => `${n}: want ${expected.get(n)!.position} ${expected.get(n)!.text}; status: ${JSON.stringify(reported(n).docs?.map((d) => d.status.errors))}`);
      throw new Error(`${err.message}: ${missing.length} not reported, e.g.\n${detail.join("\n")}\n${ctl.output().slice(-2000)}`);
    });
    for (const name of all) {
      const { doc } = reported(name);
      assert.equal(doc!.status.phase, "Invalid", name);
      const invalid = doc!.status.conditions.find((c) => c.type === "Invalid");
      assert.equal(invalid?.status, "True", name);
      assert.match(invalid!.message, new RegExp(`^${escape(name)}:\\d+:\\d+: `), name);
    }
    await healthyStillServes();

    // And away again: their status files go with them; the healthy tunnel never noticed.
    for (const name of all) unlinkSync(join(dir, name));
    await waitFor(() => all.every((n) => !existsSync(join(dir, `${n}.status`))), "status files of removed manifests gone", 30_000);
    await healthyStillServes();
  });

  it("a fix saved right after a bad edit is picked up at once, not at the next resync", async () => {
    // chokidar reports one 'change' per 50 ms per file and drops the rest. Two bad saves 60 ms
    // apart, then the fix 30 ms later: the fix is announced by nothing, and must still be read.
    const port = await freePort();
    const file = join(dir, "quick-fix.yaml");
    const good = manifest(sshd, "quick-fix", { local: [{ localPort: port, remotePort: target.port }] });
    writeFileSync(file, good);
    await waitForStatus(`${file}.status`, phaseIs("Ready"), "quick-fix Ready", ctl);
    const at = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
    for (let round = 1; round <= 4; round++) {
      writeFileSync(file, good.replace(`localPort: ${port}`, "localPort: 70000"));
      await at(60);
      writeFileSync(file, `${good}  : [unclosed ${round}\n`);
      await at(30);
      writeFileSync(file, good.replace("quick-fix\n", `quick-fix\n  labels: {round: "${round}"}\n`));
      // The resync is 10 minutes away: only the watcher path can make this in time.
      await waitForStatus(`${file}.status`, phaseIs("Ready"), `round ${round}: the fix is read`, ctl, 5_000);
    }
    unlinkSync(file);
    await healthyStillServes();
  });

  it("broken auth material: each tunnel says why, retries, and recovers once fixed", async () => {
    const keys = join(dir, "keys");
    mkdirSync(keys, { mode: 0o700 });
    // Group/other may read it: refused the way OpenSSH refuses it.
    const openKey = join(keys, "open_key");
    copyFileSync(sshd.clientKeyFile, openKey);
    chmodSync(openKey, 0o644);
    // Unreadable: root reads any file whatever its mode, so use something no one can read as a key.
    const unreadableKey = join(keys, "unreadable_key");
    if (process.getuid?.() === 0) mkdirSync(unreadableKey, { mode: 0o700 });
    else {
      copyFileSync(sshd.clientKeyFile, unreadableKey);
      chmodSync(unreadableKey, 0o000);
    }
    // A public key where the private one belongs: a common slip.
    const publicKey = join(keys, "public_key");
    copyFileSync(`${sshd.clientKeyFile}.pub`, publicKey);
    chmodSync(publicKey, 0o600);
    const encrypted = sshd.makeEncryptedKey("the-right-passphrase");
    const wrongPass = join(keys, "wrong_pass");
    writeFileSync(join(keys, "wrong_pass"), "not-the-passphrase\n", { mode: 0o600 });

    const cases = [
      { name: "key-perms", auth: { privateKeyFile: openKey }, reason: "KeyFileError", message: /accessible by others \(mode 644\)/ },
      { name: "key-unreadable", auth: { privateKeyFile: unreadableKey }, reason: "KeyFileError", message: /Cannot read private key .*unreadable_key: E(ISDIR|ACCES)/ },
      { name: "key-missing", auth: { privateKeyFile: join(keys, "no_such_key") }, reason: "KeyFileError", message: /no_such_key: ENOENT/ },
      { name: "key-public", auth: { privateKeyFile: publicKey }, reason: "KeyFileError", message: /public_key as a private key: it holds a public key/ },
      { name: "passphrase-wrong", auth: { privateKeyFile: encrypted, passphraseFile: wrongPass }, reason: "PassphraseWrong", message: /wrong passphrase/ },
      { name: "passphrase-env-unset", auth: { privateKeyFile: encrypted, passphraseEnv: "TUNNELCTL_TEST_UNSET_PASSPHRASE" }, reason: "SecretUnavailable", message: /TUNNELCTL_TEST_UNSET_PASSPHRASE is not set/ },
      { name: "agent-missing", auth: { agent: join(keys, "no-agent.sock") }, reason: "AgentUnavailable", message: /no-agent\.sock is not available/ },
    ];
    const ports = new Map<string, number>();
    for (const c of cases) {
      ports.set(c.name, await freePort());
      writeFileSync(join(dir, `${c.name}.yaml`), manifest(sshd, c.name, { local: [{ localPort: ports.get(c.name)!, remotePort: target.port }] }, { auth: c.auth }));
    }
    for (const c of cases) {
      const docs = await waitForStatus(
        join(dir, `${c.name}.yaml.status`),
        (d) => d[0]?.status.conditions.some((k) => k.type === "Connected" && k.reason === c.reason) ?? false,
        `${c.name}: ${c.reason}`,
        ctl,
      );
      const status = docs[0]!.status;
      assert.equal(status.phase, "Failed", c.name);
      assert.match(status.session.lastError, c.message, c.name);
      const ready = status.conditions.find((k) => k.type === "Ready")!;
      assert.equal(ready.reason, c.reason, `${c.name}: the Ready condition names the cause too`);
      assert.equal(status.forwards.local[0]!.state, "Pending", c.name);
    }
    assert.doesNotMatch(sshd.logs(), /Accepted publickey.*(open_key|unreadable)/);
    await healthyStillServes();

    // Fixed on disk, manifest untouched: the retry on the backoff picks it up.
    chmodSync(openKey, 0o600);
    await waitForStatus(join(dir, "key-perms.yaml.status"), phaseIs("Ready"), "key-perms Ready once chmod 600", ctl);
    assert.equal(await tagOf(ports.get("key-perms")!), "H");
    writeFileSync(wrongPass, "the-right-passphrase\n");
    await waitForStatus(join(dir, "passphrase-wrong.yaml.status"), phaseIs("Ready"), "passphrase-wrong Ready once the file is right", ctl);
    await healthyStillServes();
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}
