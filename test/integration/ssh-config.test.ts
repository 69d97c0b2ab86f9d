// spec.sshConfig against real OpenSSH sshds: a manifest that names only a Host alias reaches its
// server through the ProxyJump bastion the config describes; editing the config moves the tunnel
// to another server (make-before-break, listener held); `tunnelctl validate` resolves the config.
import assert from "node:assert/strict";
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { describeRun, runCli } from "../helpers/cli.ts";
import { waitForStatus, type StatusDoc } from "../helpers/controller.ts";
import { directTcpipTo, loginsOn } from "../helpers/jump.ts";
import { openLive, randomPayload, roundTrip, sha256, startEchoServer, waitFor } from "../helpers/net.ts";
import { TestScope } from "../helpers/scope.ts";
import { freePort, sshdAvailable, type Sshd } from "../helpers/sshd.ts";

const haveSshd = sshdAvailable();

type Status = StatusDoc["status"] & { session: StatusDoc["status"]["session"] & { via?: Array<{ host: string; port: number; hostKeyFingerprint: string }> } };
const st = (docs: StatusDoc[]): Status => docs[0]!.status as Status;

function hostBlock(alias: string, sshd: Sshd, extra: string[] = []): string {
  return [`Host ${alias}`, "  HostName 127.0.0.1", `  Port ${sshd.port}`, `  IdentityFile ${sshd.clientKeyFile}`, `  UserKnownHostsFile ${sshd.knownHostsFile}`, ...extra.map((l) => `  ${l}`), ""].join("\n");
}

function tunnelManifest(name: string, host: string, config: string, localPort: number, remotePort: number): string {
  return `apiVersion: tunnelctl/v1
kind: Tunnel
metadata:
  name: ${name}
spec:
  host: ${host}
  sshConfig: ${config}
  reconnect: {minDelay: 200ms, maxDelay: 2s}
  forwards:
    local:
      - {localPort: ${localPort}, remoteHost: 127.0.0.1, remotePort: ${remotePort}}
`;
}

describe("spec.sshConfig against OpenSSH", { skip: !haveSshd }, () => {
  const scope = new TestScope("tunnelctl-sshconfig-");

  after(async () => {
    await scope.dispose();
  });

  it("an alias with HostName/Port/IdentityFile/ProxyJump, User from an Include; a config edit moves the tunnel to another server", async () => {
    const [bastion, first, second] = await Promise.all([scope.sshd({ config: ["LogLevel DEBUG1"] }), scope.sshd(), scope.sshd()]);
    const echo = await startEchoServer();
    scope.defer(() => echo.close());
    const dir = scope.tempDir();
    const configDir = scope.tempDir();
    const config = join(configDir, "config");
    // The defaults live in an Include'd file (a glob), as in many real configs.
    mkdirSync(join(configDir, "conf.d"));
    writeFileSync(join(configDir, "conf.d", "90-defaults.conf"), ["Host *", `  User ${bastion.username}`, "  ServerAliveInterval 2", ""].join("\n"));
    const write = (db: Sshd, rename = false): void => {
      const text = [`Include ${configDir}/conf.d/*.conf`, hostBlock("bastion", bastion), hostBlock("db", db, ["ProxyJump bastion"])].join("\n");
      if (!rename) return writeFileSync(config, text);
      writeFileSync(`${config}.tmp`, text);
      renameSync(`${config}.tmp`, config);
    };
    write(first);
    const localPort = await freePort();
    const file = join(dir, "db.yaml");
    const status = `${file}.status`;
    writeFileSync(file, tunnelManifest("db", "db", config, localPort, echo.port));
    const ctl = scope.run(dir);

    const ready = await waitForStatus(status, (d) => st(d).phase === "Ready", "Ready through the bastion", ctl);
    assert.equal(st(ready).session.hostKeyFingerprint, first.hostKeyFingerprint);
    assert.deepEqual(st(ready).session.via, [{ host: "127.0.0.1", port: bastion.port, hostKeyFingerprint: bastion.hostKeyFingerprint }]);
    const payload = randomPayload(256 * 1024);
    assert.equal(sha256(await roundTrip(localPort, payload)), sha256(payload));
    await waitFor(() => directTcpipTo(bastion, first.port) === 1, "the bastion's direct-tcpip to the first server");
    const live = await openLive(localPort);
    await live.ping("before the config edit");

    // The operator points the alias at another server (saved the way editors do: a temp file
    // renamed over the config): the tunnel follows, make-before-break.
    write(second, true);
    const moved = await waitForStatus(status, (d) => st(d).session.hostKeyFingerprint === second.hostKeyFingerprint && st(d).phase === "Ready", "the tunnel on the second server", ctl);
    assert.notEqual(st(moved).observedGeneration, st(ready).observedGeneration, "a new generation: the resolved spec changed");
    assert.equal(loginsOn(second), 1);
    await waitFor(() => directTcpipTo(bastion, second.port) === 1, "the bastion's direct-tcpip to the second server");
    assert.equal(loginsOn(bastion), 1, "the bastion session was shared by the old and the new chain");
    await live.ping("after the config edit (the old session drains)");
    assert.equal(sha256(await roundTrip(localPort, payload)), sha256(payload));
    live.socket.destroy();
    await ctl.stop();
  });

  it("tunnelctl validate resolves the config: an alias typo and a ProxyCommand fail with file:line", async () => {
    const dir = scope.tempDir();
    const config = join(dir, "ssh_config");
    writeFileSync(config, "Host db\n  HostName db.internal\n  IdentityFile ~/.ssh/id_db\n\nHost legacy\n  ProxyCommand ssh -W %h:%p gateway\n");
    writeFileSync(join(dir, "typo.yaml"), tunnelManifest("typo", "dbb", "ssh_config", 15432, 5432));
    writeFileSync(join(dir, "legacy.yaml"), tunnelManifest("legacy", "legacy", "ssh_config", 15433, 5432));
    writeFileSync(join(dir, "good.yaml"), tunnelManifest("good", "db", "ssh_config", 15434, 5432));
    const bad = await runCli(["validate", "typo.yaml", "legacy.yaml"], { cwd: dir });
    assert.equal(bad.code, 1, describeRun(bad));
    assert.match(bad.stdout + bad.stderr, new RegExp(`typo\\.yaml:7:14: spec\\.sshConfig: ${config.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}: "dbb" is not a Host alias here and not a host name \\(its aliases: db, legacy\\)`));
    assert.match(bad.stdout + bad.stderr, /legacy\.yaml:7:14: spec\.sshConfig: .*ssh_config:6: ProxyCommand is not supported/);
    const good = await runCli(["validate", "good.yaml"], { cwd: dir });
    assert.equal(good.code, 0, describeRun(good));
  });
});
