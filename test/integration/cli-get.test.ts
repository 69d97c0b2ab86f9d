// `tunnelctl get`, run as a real process on status files written with the status module's own
// builder and serializer: the table, its wide form, yaml and json, and the empty cases.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { buildTunnelStatus, parseStatusDocs, serializeStatusDocs, type TunnelObservation, type TunnelStatusDoc } from "../../src/status/index.ts";
import { describeRun, REPO_ROOT, runCli, spawnCli } from "../helpers/cli.ts";
import { waitFor } from "../helpers/net.ts";
import { localObservation, observation, remoteObservation, sessionObservation } from "../helpers/status-fixtures.ts";

const now = new Date();
const fiveMinutesAgo = new Date(now.getTime() - 5 * 60_000).toISOString();

function tunnel(name: string, manifest: string, overrides: Partial<TunnelObservation> = {}): TunnelObservation {
  return observation({
    name,
    manifest,
    session: sessionObservation({
      hostKeyFingerprint: "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s",
      connectedSince: fiveMinutesAgo,
      reconnects: 2,
    }),
    local: [localObservation({ localPort: 15432, remoteHost: "db.internal", remotePort: 5432, bytesIn: 2048 })],
    remote: [remoteObservation({ remotePort: 0, boundPort: 41234, localHost: "127.0.0.1", localPort: 3000 })],
    ...overrides,
  });
}

const build = (obs: TunnelObservation): TunnelStatusDoc => buildTunnelStatus(obs, undefined, now.toISOString());

const dbDocs = [
  build(tunnel("db", "db.yaml")),
  build(
    tunnel("cache", "db.yaml", {
      session: { state: "Backoff", serverVersion: "", hostKeyFingerprint: "", reconnects: 5, lastError: "Cannot connect to cache.internal:22: connection refused" },
      local: [],
      remote: [],
    }),
  ),
];
const webDocs = [
  build(
    tunnel("web", "team/web.yaml", {
      errors: ["team/web.yaml:7:9: spec.port: must be <= 65535 (got 70000)", "team/web.yaml:9:3: spec: unknown field \"hots\""],
    }),
  ),
];

describe("get", () => {
  let dir: string;

  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), "tunnelctl-get-"));
    mkdirSync(path.join(dir, "manifests/team"), { recursive: true });
    mkdirSync(path.join(dir, "manifests/.old"), { recursive: true });
    mkdirSync(path.join(dir, "empty"));
    mkdirSync(path.join(dir, "status/team"), { recursive: true });
    writeFileSync(path.join(dir, "manifests/db.yaml.status"), serializeStatusDocs(dbDocs));
    writeFileSync(path.join(dir, "manifests/team/web.yaml.status"), serializeStatusDocs(webDocs));
    // Dot folders are not read (a ConfigMap's ..data, editor and VCS folders).
    writeFileSync(path.join(dir, "manifests/.old/ghost.yaml.status"), serializeStatusDocs([build(tunnel("ghost", "ghost.yaml"))]));
    // --status-dir: the same relative paths under another directory.
    writeFileSync(path.join(dir, "status/team/web.yaml.status"), serializeStatusDocs(webDocs));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("prints a table: one row per tunnel, files in path order, documents in file order", async () => {
    const result = await runCli(["get", "manifests"], { cwd: dir });
    assert.equal(result.code, 0, describeRun(result));
    const lines = result.stdout.trimEnd().split("\n");
    assert.equal(lines.length, 4, describeRun(result));
    assert.match(lines[0] ?? "", /^NAME +PHASE +SESSION +FORWARDS +AGE +MESSAGE$/);
    assert.match(lines[1] ?? "", /^db +Ready +Connected +2\/2 active +5m$/);
    assert.match(lines[2] ?? "", /^cache +Failed +Backoff +- +- +Cannot connect to cache\.internal:22: connection refused$/);
    assert.match(lines[3] ?? "", /^web +Invalid +Connected +2\/2 active +5m +team\/web\.yaml:7:9: spec\.port: must be <= 65535 \(got 70000\) \(and 1 more\)$/);
    assert.doesNotMatch(result.stdout, /ghost/);
    assert.equal(result.stderr, "");
  });

  it("reads ./manifests by default", async () => {
    const result = await runCli(["get"], { cwd: dir });
    assert.equal(result.code, 0, describeRun(result));
    assert.match(result.stdout, /^db /m);
  });

  it("-o wide adds reconnects, server, the jump hosts and manifest, and a row per forward", async () => {
    const result = await runCli(["get", "manifests", "-o", "wide"], { cwd: dir });
    assert.equal(result.code, 0, describeRun(result));
    const [tunnels = "", forwards = ""] = result.stdout.split("\n\n");
    assert.match(tunnels, /^NAME +PHASE +SESSION +FORWARDS +AGE +RECONNECTS +SERVER +VIA +MANIFEST +MESSAGE$/m);
    assert.match(tunnels, /^db +Ready +Connected +2\/2 active +5m +2 +SSH-2\.0-OpenSSH_9\.2p1 +- +db\.yaml$/m);
    assert.match(tunnels, /^cache +Failed +Backoff +- +- +5 +- +- +db\.yaml +Cannot connect/m);
    assert.match(forwards, /^TUNNEL +KIND +LISTEN +TARGET +STATE +CONNS +IN +OUT +MESSAGE$/m);
    assert.match(forwards, /^db +local +127\.0\.0\.1:15432 +db\.internal:5432 \(from server\) +Active +2\/41 +2\.0KiB +456B$/m);
    assert.match(forwards, /^db +remote +server 127\.0\.0\.1:41234 \(port 0: chosen by server\) +127\.0\.0\.1:3000 +Active +0\/3 +0B +0B$/m);
  });

  it("-o yaml prints the status documents", async () => {
    const result = await runCli(["get", "manifests", "-o", "yaml"], { cwd: dir });
    assert.equal(result.code, 0, describeRun(result));
    assert.deepEqual(parseStatusDocs(result.stdout), [...dbDocs, ...webDocs]);
  });

  it("-o json prints the status documents as a JSON array", async () => {
    const result = await runCli(["get", "manifests", "--output", "json"], { cwd: dir });
    assert.equal(result.code, 0, describeRun(result));
    assert.deepEqual(JSON.parse(result.stdout), JSON.parse(JSON.stringify([...dbDocs, ...webDocs])));
  });

  it("--status-dir reads the status files from there", async () => {
    const result = await runCli(["get", "manifests", "--status-dir", "status"], { cwd: dir });
    assert.equal(result.code, 0, describeRun(result));
    assert.match(result.stdout, /^web +Invalid/m);
    assert.doesNotMatch(result.stdout, /^db /m);
  });

  it("no status files: a friendly message, exit 0", async () => {
    const result = await runCli(["get", "empty"], { cwd: dir });
    assert.equal(result.code, 0, describeRun(result));
    assert.equal(result.stdout, "No tunnels found under empty\n");
    const json = await runCli(["get", "empty", "-o", "json"], { cwd: dir });
    assert.equal(json.stdout, "[]\n");
  });

  it("manifests but no status files: says no controller has written status, and what runs one", async () => {
    mkdirSync(path.join(dir, "unwatched"));
    writeFileSync(path.join(dir, "unwatched/a.yaml"), "apiVersion: tunnelctl/v1\n");
    const result = await runCli(["get", "unwatched"], { cwd: dir });
    assert.equal(result.code, 0, describeRun(result));
    assert.equal(
      result.stdout,
      "No status files under unwatched: no controller has written status for the 1 manifest in unwatched.\nStart one with: tunnelctl run unwatched\n",
    );
  });

  it("a status no controller confirms any more is Unknown, with its age; a clean stop says Stopped", async () => {
    mkdirSync(path.join(dir, "stale"));
    const confirmed = (minutesAgo: number) => ({ at: new Date(now.getTime() - minutesAgo * 60_000).toISOString(), interval: "30s" });
    writeFileSync(
      path.join(dir, "stale/a.yaml.status"),
      serializeStatusDocs([
        build(tunnel("live", "a.yaml", { confirmed: confirmed(0.5) })),
        build(tunnel("gone", "a.yaml", { confirmed: confirmed(10) })),
        build(tunnel("halted", "a.yaml", { confirmed: confirmed(10), stopped: true })),
      ]),
    );
    const result = await runCli(["get", "stale"], { cwd: dir });
    assert.equal(result.code, 0, describeRun(result));
    assert.match(result.stdout, /^live +Ready /m);
    assert.match(result.stdout, /^gone +Unknown .*status not confirmed for 10m \(it last said Ready\): is the controller running\?$/m);
    assert.match(result.stdout, /^halted +Stopped .*tunnelctl stopped/m);
  });

  it("-w shows the table again when a status file changes, until SIGINT", async () => {
    mkdirSync(path.join(dir, "watched"));
    const file = path.join(dir, "watched/w.yaml.status");
    writeFileSync(file, serializeStatusDocs([build(tunnel("w", "w.yaml"))]));
    const watching = spawnCli(["get", "watched", "-w"], { cwd: dir });
    await waitFor(() => /^w +Ready /m.test(watching.stdout), "the first table");
    writeFileSync(
      file,
      serializeStatusDocs([
        build(tunnel("w", "w.yaml", { session: sessionObservation({ state: "Backoff", lastError: "Cannot connect to x:22: connection refused", lastErrorReason: "ConnectionRefused" }) })),
      ]),
    );
    await waitFor(() => /^w +Failed +Backoff .*connection refused$/m.test(watching.stdout), `the table again after the change:\n${watching.stdout}`);
    assert.equal(watching.stdout.match(/^NAME +PHASE/gm)?.length, 2, "two tables: the first and the changed one");
    watching.child.kill("SIGINT");
    const result = await watching.exited;
    assert.equal(result.code, 0, describeRun(result));
  });

  it("version and --version print package.json's version", async () => {
    const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { version: string };
    assert.equal((await runCli(["--version"])).stdout, `${pkg.version}\n`);
    const long = await runCli(["version"]);
    assert.equal(long.code, 0);
    assert.match(long.stdout, new RegExp(`^tunnelctl ${pkg.version.replace(/\./g, "\\.")} \\(Node\\.js v\\d+\\.\\d+\\.\\d+, ssh2 \\d+\\.\\d+\\.\\d+\\)\n$`));
  });

  it("a session change that could not be applied shows as Degraded with the Synced reason", async () => {
    mkdirSync(path.join(dir, "lagging"));
    writeFileSync(
      path.join(dir, "lagging/l.yaml.status"),
      serializeStatusDocs([build(tunnel("lag", "l.yaml", { notApplied: { generation: "0badc0de", reason: "AuthFailed", message: "Authentication to db:22 as x refused by the server" } }))]),
    );
    const result = await runCli(["get", "lagging"], { cwd: dir });
    assert.equal(result.code, 0, describeRun(result));
    assert.match(result.stdout, /^lag +Degraded +Connected .*AuthFailed: generation 0badc0de is not applied \(the previous session keeps running\): Authentication to db:22 as x refused by the server$/m);
  });

  it("a directory that does not exist: exit 1 with a message", async () => {
    const result = await runCli(["get", "nowhere"], { cwd: dir });
    assert.equal(result.code, 1, describeRun(result));
    assert.equal(result.stderr, "tunnelctl get: cannot read nowhere: no such file or directory\n");
  });

  it("a status file that is not one: reported, the others still shown, exit 1", async () => {
    const broken = mkdtempSync(path.join(dir, "broken-"));
    writeFileSync(path.join(broken, "a.yaml.status"), serializeStatusDocs(dbDocs));
    writeFileSync(path.join(broken, "b.yaml.status"), "kind: Something\n");
    const result = await runCli(["get", broken]);
    assert.equal(result.code, 1, describeRun(result));
    assert.match(result.stdout, /^db +Ready/m);
    assert.match(result.stderr, /b\.yaml\.status document 1: expected apiVersion tunnelctl\/v1, kind TunnelStatus/);
  });

  it("an unknown output format is a usage error (exit 2)", async () => {
    const result = await runCli(["get", "manifests", "-o", "xml"], { cwd: dir });
    assert.equal(result.code, 2, describeRun(result));
    assert.match(result.stderr, /argument 'xml' is invalid\. expected one of wide, yaml, json/);
  });
});
