// Host key policies and auth failures against a real OpenSSH sshd.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { AuthError, HostKeyError, connect, type ConnectOptions } from "../../src/index.ts";
import { destroySshd, sshdAvailable, startSshd, type Sshd } from "../helpers/sshd.ts";

const haveSshd = sshdAvailable();

describe("host keys and auth against OpenSSH", { skip: !haveSshd }, () => {
  let sshd: Sshd;
  let n = 0;
  before(async () => {
    sshd = await startSshd();
  });
  after(() => destroySshd(sshd));

  const file = (name: string): string => join(sshd.dir, `${name}-${++n}`);
  const base = (hostKey: ConnectOptions["hostKey"], auth: ConnectOptions["auth"] = { privateKeyFile: sshd.clientKeyFile }): ConnectOptions => ({
    username: sshd.username,
    port: sshd.port,
    auth,
    ...(hostKey ? { hostKey } : {}),
  });
  const otherHostKeyLine = (): string => {
    const f = file("other_host");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", f]);
    return readFileSync(`${f}.pub`, "utf8").split(" ").slice(0, 2).join(" ");
  };

  it("strict: refuses an unknown host with HostKeyUnknown and the presented fingerprint", async () => {
    const knownHostsFile = file("known_hosts_empty");
    writeFileSync(knownHostsFile, "");
    await assert.rejects(connect("127.0.0.1", base({ knownHostsFile })), (err: unknown) => {
      assert.ok(err instanceof HostKeyError, String(err));
      assert.equal(err.reason, "HostKeyUnknown");
      assert.ok(err.message.includes(sshd.hostKeyFingerprint), err.message);
      assert.match(err.message, /is not in .*known_hosts_empty[^ ]* \(policy strict\)/);
      assert.match(err.message, /pin it in hostKey\.fingerprints, add the host's key to .*known_hosts_empty[^ ]*, or set hostKey\.policy: accept-new/);
      return true;
    });
  });

  it("strict: a known_hosts file that does not exist is named as missing, with the fix", async () => {
    const knownHostsFile = file("no_such_known_hosts");
    await assert.rejects(connect("127.0.0.1", base({ knownHostsFile })), (err: unknown) => {
      assert.ok(err instanceof HostKeyError, String(err));
      assert.equal(err.reason, "HostKeyUnknown");
      assert.match(err.message, /no_such_known_hosts[^ ]* does not exist \(policy strict\)/);
      assert.match(err.message, /set hostKey\.policy: accept-new/);
      return true;
    });
  });

  it("accept-new: accepts an unknown host, records it, and then strict accepts it", async () => {
    const knownHostsFile = file("known_hosts_new");
    const session = await connect("127.0.0.1", base({ knownHostsFile, policy: "accept-new" }));
    assert.equal(session.hostKeyFingerprint, sshd.hostKeyFingerprint);
    assert.match(session.serverVersion, /^SSH-2\.0-OpenSSH_/);
    await session.close();
    const recorded = readFileSync(knownHostsFile, "utf8");
    assert.ok(recorded.includes(`[127.0.0.1]:${sshd.port} ${sshd.hostPublicKey}`), recorded);
    const again = await connect("127.0.0.1", base({ knownHostsFile, policy: "strict" }));
    await again.close();
  });

  it("refuses a changed host key under strict and accept-new (HostKeyMismatch)", async () => {
    const knownHostsFile = file("known_hosts_mismatch");
    writeFileSync(knownHostsFile, `[127.0.0.1]:${sshd.port} ${otherHostKeyLine()}\n`);
    for (const policy of ["strict", "accept-new"] as const) {
      await assert.rejects(connect("127.0.0.1", base({ knownHostsFile, policy })), (err: unknown) => {
        assert.ok(err instanceof HostKeyError, String(err));
        assert.equal(err.reason, "HostKeyMismatch");
        assert.ok(err.message.includes(sshd.hostKeyFingerprint));
        return true;
      });
    }
    // accept-new must not have learnt the new key.
    assert.ok(!readFileSync(knownHostsFile, "utf8").includes(sshd.hostPublicKey));
  });

  it("accepts hashed known_hosts entries", async () => {
    const knownHostsFile = file("known_hosts_hashed");
    copyFileSync(sshd.knownHostsFile, knownHostsFile);
    execFileSync("ssh-keygen", ["-H", "-f", knownHostsFile], { stdio: "ignore" });
    assert.ok(readFileSync(knownHostsFile, "utf8").startsWith("|1|"));
    const session = await connect("127.0.0.1", base({ knownHostsFile }));
    await session.close();
  });

  it("pinned fingerprint: the right pin connects, a wrong pin is a mismatch", async () => {
    const knownHostsFile = file("known_hosts_none");
    const session = await connect("127.0.0.1", base({ knownHostsFile, fingerprints: [sshd.hostKeyFingerprint] }));
    await session.close();
    await assert.rejects(
      connect("127.0.0.1", base({ knownHostsFile, fingerprints: ["SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] })),
      (err: unknown) => err instanceof HostKeyError && err.reason === "HostKeyMismatch",
    );
  });

  it("an unauthorised key is AuthError", async () => {
    const key = file("stranger");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key]);
    await assert.rejects(
      connect("127.0.0.1", base({ knownHostsFile: sshd.knownHostsFile }, { privateKeyFile: key })),
      (err: unknown) => err instanceof AuthError && err.reason === "AuthFailed",
    );
  });

  it("passphrase keys: right passphrase connects; wrong one is AuthError without the secret", async () => {
    const secret = "correct horse battery staple";
    const wrong = "Tr0ub4dor&3-wrong";
    const key = sshd.makeEncryptedKey(secret);
    const passFile = file("pass");
    writeFileSync(passFile, `${secret}\n`, { mode: 0o600 });
    const session = await connect("127.0.0.1", base({ knownHostsFile: sshd.knownHostsFile }, { privateKeyFile: key, passphraseFile: passFile }));
    await session.close();

    process.env.TUNNELCTL_TEST_WRONG_PASS = wrong;
    await assert.rejects(
      connect("127.0.0.1", base({ knownHostsFile: sshd.knownHostsFile }, { privateKeyFile: key, passphraseEnv: "TUNNELCTL_TEST_WRONG_PASS" })),
      (err: unknown) => {
        assert.ok(err instanceof AuthError, String(err));
        assert.equal(err.reason, "PassphraseWrong");
        assert.ok(!err.message.includes(wrong) && !err.message.includes(secret), err.message);
        assert.ok(!JSON.stringify(err, Object.getOwnPropertyNames(err)).includes(wrong));
        return true;
      },
    );
    delete process.env.TUNNELCTL_TEST_WRONG_PASS;
  });

  it("a refused password is AuthError without the password", async () => {
    const password = "hunter2-do-not-print";
    const pwFile = file("pw");
    writeFileSync(pwFile, password, { mode: 0o600 });
    await assert.rejects(connect("127.0.0.1", base({ knownHostsFile: sshd.knownHostsFile }, { passwordFile: pwFile })), (err: unknown) => {
      assert.ok(err instanceof AuthError, String(err));
      assert.ok(!err.message.includes(password));
      return true;
    });
  });

  it("a key readable by others is refused before connecting (KeyFileError)", async () => {
    const key = file("open_key");
    copyFileSync(sshd.clientKeyFile, key);
    chmodSync(key, 0o644);
    await assert.rejects(
      connect("127.0.0.1", base({ knownHostsFile: sshd.knownHostsFile }, { privateKeyFile: key })),
      (err: unknown) => err instanceof AuthError && err.reason === "KeyFileError" && err.message.includes("chmod 600"),
    );
  });
});
