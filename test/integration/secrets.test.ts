// Nothing leaked (issue 4): with a passphrase-protected key (passphraseFile and passphraseEnv),
// a password file, a password env and failing variants of each in use, every line the controller
// logs at debug level and every status file it writes is searched for every secret.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { manifest, phaseIs, startRun, waitForStatus, type RunningController } from "../helpers/controller.ts";
import { startTaggedEchoServer, tagOf, type TestServer } from "../helpers/net.ts";
import { destroySshd, freePort, sshdAvailable, startSshd, type Sshd } from "../helpers/sshd.ts";

const haveSshd = sshdAvailable();

/** A secret nobody could find by accident: a prefix that says what it is, and 16 random bytes. */
const secret = (what: string): string => `${what}-${randomBytes(16).toString("hex")}`;

describe("secrets never reach a log line or a status file", { skip: !haveSshd }, () => {
  let sshd: Sshd;
  let target: TestServer;
  let dir: string;
  let ctl: RunningController | undefined;

  before(async () => {
    // Password auth offered, so that a configured password is really sent (and refused: the
    // test user has no usable password); the key then gets in.
    sshd = await startSshd({ config: ["PasswordAuthentication yes"] });
    target = await startTaggedEchoServer("T");
    dir = mkdtempSync(join(tmpdir(), "tunnelctl-secrets-"));
  });
  after(async () => {
    await ctl?.stop("SIGKILL");
    await target?.close();
    await destroySshd(sshd);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("passphrase file, passphrase env, password file and env, right and wrong: none of them in logs or status", async () => {
    const secrets = {
      passphraseFile: secret("passphrase-file"),
      passphraseEnv: secret("passphrase-env"),
      wrongPassphrase: secret("wrong-passphrase"),
      passwordFile: secret("password-file"),
      passwordEnv: secret("password-env"),
      inline: secret("inline-passphrase"),
    };
    const secretsDir = join(dir, ".secrets"); // a dot folder: not scanned for manifests
    const write = (name: string, text: string): string => {
      const file = join(secretsDir, name);
      writeFileSync(file, `${text}\n`, { mode: 0o600 });
      return file;
    };
    mkdirSync(secretsDir, { mode: 0o700 });
    const keyByFile = sshd.makeEncryptedKey(secrets.passphraseFile);
    const keyByEnv = sshd.makeEncryptedKey(secrets.passphraseEnv);
    // Key material is a secret too: a line from the middle of each private key.
    const keyLines = [keyByFile, keyByEnv, sshd.clientKeyFile].map((f) => readFileSync(f, "utf8").split("\n")[2]!);
    assert.ok(keyLines.every((l) => l.length > 40));

    const env = { TUNNELCTL_TEST_PASSPHRASE: secrets.passphraseEnv, TUNNELCTL_TEST_PASSWORD: secrets.passwordEnv };
    const tunnels = [
      { name: "passphrase-file", auth: { privateKeyFile: keyByFile, passphraseFile: write("pass", secrets.passphraseFile) }, expect: "Ready" },
      { name: "passphrase-env", auth: { privateKeyFile: keyByEnv, passphraseEnv: "TUNNELCTL_TEST_PASSPHRASE" }, expect: "Ready" },
      { name: "password-file-and-key", auth: { privateKeyFile: sshd.clientKeyFile, passwordFile: write("password", secrets.passwordFile) }, expect: "Ready" },
      { name: "passphrase-wrong", auth: { privateKeyFile: keyByFile, passphraseFile: write("wrong", secrets.wrongPassphrase) }, expect: "PassphraseWrong" },
      { name: "password-file-refused", auth: { passwordFile: join(secretsDir, "password") }, expect: "AuthFailed" },
      { name: "password-env-refused", auth: { passwordEnv: "TUNNELCTL_TEST_PASSWORD" }, expect: "AuthFailed" },
    ];
    const ports = new Map<string, number>();
    for (const t of tunnels) {
      ports.set(t.name, await freePort());
      writeFileSync(join(dir, `${t.name}.yaml`), manifest(sshd, t.name, { local: [{ localPort: ports.get(t.name)!, remotePort: target.port }] }, { auth: t.auth }));
    }
    // An inline secret is refused by the schema; the refusal must not quote it.
    writeFileSync(
      join(dir, "inline.yaml"),
      manifest(sshd, "inline", {}, { auth: { privateKeyFile: keyByFile, passphrase: secrets.inline } }),
    );

    ctl = startRun(dir, ["--log-level", "debug"], env);
    for (const t of tunnels) {
      const file = join(dir, `${t.name}.yaml.status`);
      if (t.expect === "Ready") {
        await waitForStatus(file, phaseIs("Ready"), `${t.name} Ready`, ctl);
        assert.equal(await tagOf(ports.get(t.name)!), "T");
      } else {
        await waitForStatus(file, (d) => d[0]?.status.conditions.some((c) => c.type === "Connected" && c.reason === t.expect) ?? false, `${t.name} ${t.expect}`, ctl);
      }
    }
    await waitForStatus(join(dir, "inline.yaml.status"), phaseIs("Invalid"), "inline Invalid", ctl);
    // The password was really offered and refused before the key got in.
    assert.match(sshd.logs(), /Failed password for/);
    // A few more retries of the failing ones, then a clean shutdown with its final status.
    await waitForStatus(
      join(dir, "password-file-refused.yaml.status"),
      (d) => d[0]?.status.session.lastError !== "",
      "a refused password retried",
      ctl,
    );
    assert.equal(await ctl.stop("SIGTERM"), 0);

    const logs = ctl.output();
    const lines = logs.split("\n").filter(Boolean);
    assert.ok(lines.length > 10, `only ${lines.length} log lines: is --log-level debug in effect?`);
    assert.ok(lines.some((l) => l.includes('"level":20')), "no debug lines");
    const statusFiles = readdirSync(dir).filter((n) => n.endsWith(".status"));
    assert.equal(statusFiles.length, tunnels.length + 1);
    const places = [
      { where: "controller output", text: logs },
      ...statusFiles.map((n) => ({ where: n, text: readFileSync(join(dir, n), "utf8") })),
    ];
    for (const [what, value] of [...Object.entries(secrets), ...keyLines.map((l, i) => [`private key ${i}`, l] as const)]) {
      for (const place of places) {
        const at = place.text.indexOf(value);
        assert.equal(at, -1, `${what} leaked into ${place.where}: …${place.text.slice(Math.max(0, at - 200), at + 100)}…`);
      }
    }
  });
});
