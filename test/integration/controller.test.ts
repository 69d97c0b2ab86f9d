// End to end: the real `tunnelctl run` process against a real sshd, driven by manifest files.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { manifest, phaseIs, waitForStatus, type RunningController } from "../helpers/controller.ts";
import { openLive, probe, startTaggedEchoServer, tagOf, waitFor, type LiveConnection, type TestServer } from "../helpers/net.ts";
import { TestScope } from "../helpers/scope.ts";
import { destroySshd, freePort, sshdAvailable, startSshd, type Sshd } from "../helpers/sshd.ts";

const haveSshd = sshdAvailable();

describe("tunnelctl run against OpenSSH", { skip: !haveSshd }, () => {
  let sshd: Sshd;
  let targets: Record<"A" | "B" | "C" | "S", TestServer>;
  const scope = new TestScope("tunnelctl-e2e-");
  const { tempDir, run } = scope;

  before(async () => {
    sshd = await startSshd();
    const [a, b, c, s] = await Promise.all(["A", "B", "C", "S"].map((t) => startTaggedEchoServer(t)));
    targets = { A: a!, B: b!, C: c!, S: s! };
  });
  after(async () => {
    await scope.dispose();
    await Promise.all(Object.values(targets).map((t) => t.close()));
    await destroySshd(sshd);
  });

  
  /** A steady tunnel with a live connection through it, that must survive everything. */
  async function steady(dir: string, ctl: RunningController, file = "steady.yaml"): Promise<{ port: number; live: LiveConnection }> {
    const port = await freePort();
    writeFileSync(join(dir, file), manifest(sshd, "steady", { local: [{ localPort: port, remotePort: targets.S.port }] }));
    await waitForStatus(join(dir, `${file}.status`), phaseIs("Ready"), "steady Ready", ctl);
    const live = await openLive(port);
    await live.ping("hello");
    assert.ok(live.received.startsWith("S\n"));
    return { port, live };
  }

  it("creates, changes in place, adds and deletes forwards from file edits; untouched connections keep flowing", async () => {
    const dir = tempDir();
    const ctl = run(dir);
    const keep = await steady(dir, ctl);
    const [p1, p2] = [await freePort(), await freePort()];
    const file = join(dir, "edit.yaml");
    const status = `${file}.status`;

    writeFileSync(file, manifest(sshd, "edit", { local: [{ localPort: p1, remotePort: targets.A.port }], remote: [{ remotePort: 0, localPort: targets.A.port }] }));
    const ready = await waitForStatus(status, phaseIs("Ready"), "edit Ready", ctl);
    assert.equal(await tagOf(p1), "A");
    const bound = ready[0]!.status.forwards.remote[0]!.boundPort!;
    assert.ok(bound > 0);
    assert.equal(await tagOf(bound), "A");
    const throughP1 = await openLive(p1);
    await throughP1.ping("x");

    // Change the target in place (listener kept: the open connection stays on A) and add p2.
    writeFileSync(file, manifest(sshd, "edit", { local: [{ localPort: p1, remotePort: targets.B.port }, { localPort: p2, remotePort: targets.C.port }], remote: [{ remotePort: 0, localPort: targets.A.port }] }));
    await waitForStatus(status, (d) => d[0]!.status.forwards.local.length === 2 && phaseIs("Ready")(d), "two forwards Ready", ctl);
    assert.equal(await tagOf(p1), "B");
    assert.equal(await tagOf(p2), "C");
    await throughP1.ping("still on A");
    assert.ok(throughP1.received.startsWith("A\n"));

    // Delete p1 and the remote forward: p1 refuses, its open connection drains, the server port is released.
    writeFileSync(file, manifest(sshd, "edit", { local: [{ localPort: p2, remotePort: targets.C.port }] }));
    // p1 is shown Draining while its open connection lives.
    const draining = await waitForStatus(
      status,
      (d) => d[0]!.status.forwards.remote.length === 0 && d[0]!.status.forwards.local.some((f) => f.localPort === p1 && f.state === "Draining"),
      "p1 Draining, remote deleted",
      ctl,
    );
    assert.equal(draining[0]!.status.forwards.local.find((f) => f.localPort === p1)!.activeConnections, 1);
    await waitFor(async () => (await probe(p1)) === "ECONNREFUSED", "p1 refuses");
    await waitFor(async () => (await probe(bound)) === "ECONNREFUSED", "remote port released");
    await throughP1.ping("draining");
    throughP1.socket.end();
    await waitForStatus(status, (d) => d[0]!.status.forwards.local.length === 1 && d[0]!.status.forwards.local[0]!.localPort === p2, "drained: p1 gone from status", ctl);

    await keep.live.ping("untouched");
    assert.equal(keep.live.closed, false);
    assert.equal(await ctl.stop("SIGTERM"), 0);
  });

  it("an invalid edit reports Invalid with line and column and keeps the last valid version serving", async () => {
    const dir = tempDir();
    const ctl = run(dir);
    const port = await freePort();
    const file = join(dir, "bad.yaml");
    const good = manifest(sshd, "bad", { local: [{ localPort: port, remotePort: targets.A.port }] });
    writeFileSync(file, good);
    await waitForStatus(`${file}.status`, phaseIs("Ready"), "Ready", ctl);
    const live = await openLive(port);
    await live.ping("before");

    writeFileSync(file, good.replace(`localPort: ${port}`, "localPort: 70000"));
    const docs = await waitForStatus(`${file}.status`, phaseIs("Invalid"), "Invalid", ctl);
    const errors = docs[0]!.status.errors;
    assert.ok(errors.some((e) => /^bad\.yaml:\d+:\d+: .*65535/.test(e)), errors.join("\n"));
    assert.equal(await tagOf(port), "A", "the last valid version keeps serving");
    await live.ping("after");

    // A YAML syntax error: same story.
    writeFileSync(file, good + "  : [unclosed\n");
    await waitForStatus(`${file}.status`, (d) => phaseIs("Invalid")(d) && d[0]!.status.errors.some((e) => /^bad\.yaml:\d+:\d+:/.test(e)), "syntax Invalid", ctl);
    assert.equal(await tagOf(port), "A");

    // Fixed: Ready again.
    writeFileSync(file, good);
    await waitForStatus(`${file}.status`, phaseIs("Ready"), "Ready again", ctl);
    await live.ping("fixed");
    assert.equal(await ctl.stop(), 0);
  });

  it("two files claiming one local port: the running one keeps it, the other reports Conflict", async () => {
    const dir = tempDir();
    const ctl = run(dir);
    const port = await freePort();
    const other = await freePort();
    writeFileSync(join(dir, "first.yaml"), manifest(sshd, "first", { local: [{ localPort: port, remotePort: targets.A.port }] }));
    await waitForStatus(join(dir, "first.yaml.status"), phaseIs("Ready"), "first Ready", ctl);
    writeFileSync(
      join(dir, "a-second.yaml"),
      manifest(sshd, "second", { local: [{ localPort: port, remotePort: targets.B.port, bindAddress: "0.0.0.0" }, { localPort: other, remotePort: targets.B.port }] }),
    );
    const docs = await waitForStatus(join(dir, "a-second.yaml.status"), (d) => d[0]?.status.forwards.local[0]?.state === "Conflict" && d[0]?.status.forwards.local[1]?.state === "Active", "second Conflict", ctl);
    assert.match(docs[0]!.status.forwards.local[0]!.message, /"first"/);
    assert.equal(docs[0]!.status.phase, "Degraded");
    assert.equal(await tagOf(port), "A");
    assert.equal(await tagOf(other), "B", "a healthy sibling is not held back");
    assert.equal(await ctl.stop(), 0);
  });

  it("manifest deleted: ports free, remote forward released, status file gone", async () => {
    const dir = tempDir();
    const ctl = run(dir);
    const port = await freePort();
    const file = join(dir, "gone.yaml");
    writeFileSync(file, manifest(sshd, "gone", { local: [{ localPort: port, remotePort: targets.A.port }], remote: [{ remotePort: 0, localPort: targets.A.port }] }));
    const docs = await waitForStatus(`${file}.status`, phaseIs("Ready"), "Ready", ctl);
    const bound = docs[0]!.status.forwards.remote[0]!.boundPort!;
    assert.equal(await tagOf(bound), "A");
    unlinkSync(file);
    await waitFor(() => !existsSync(`${file}.status`), "status file removed");
    await waitFor(async () => (await probe(port)) === "ECONNREFUSED", "local port free");
    await waitFor(async () => (await probe(bound)) === "ECONNREFUSED", "remote port released");
    assert.equal(await ctl.stop(), 0);
  });

  it("suspend closes the session and its ports; resuming brings them back", async () => {
    const dir = tempDir();
    const ctl = run(dir);
    const port = await freePort();
    const file = join(dir, "sus.yaml");
    const text = manifest(sshd, "sus", { local: [{ localPort: port, remotePort: targets.A.port }] });
    writeFileSync(file, text);
    await waitForStatus(`${file}.status`, phaseIs("Ready"), "Ready", ctl);
    writeFileSync(file, text.replace("  forwards:", "  suspend: true\n  forwards:"));
    await waitForStatus(`${file}.status`, phaseIs("Suspended"), "Suspended", ctl);
    await waitFor(async () => (await probe(port)) === "ECONNREFUSED", "port closed while suspended");
    writeFileSync(file, text);
    await waitForStatus(`${file}.status`, phaseIs("Ready"), "Ready again", ctl);
    assert.equal(await tagOf(port), "A");
    assert.equal(await ctl.stop(), 0);
  });

  it("a session-level change opens a new session with the local listener held throughout", async () => {
    const dir = tempDir();
    const ctl = run(dir);
    const port = await freePort();
    const file = join(dir, "mbb.yaml");
    const text = manifest(sshd, "mbb", { local: [{ localPort: port, remotePort: targets.A.port }] });
    writeFileSync(file, text);
    await waitForStatus(`${file}.status`, phaseIs("Ready"), "Ready", ctl);
    const live = await openLive(port);
    await live.ping("old session");
    // Probe continuously while the session is replaced: never refused.
    let refused = 0;
    let probing = true;
    const prober = (async () => {
      while (probing) if ((await probe(port)) !== "accepted") refused++;
    })();
    writeFileSync(file, text.replace("keepalive: {interval: 2s, countMax: 3}", "keepalive: {interval: 3s, countMax: 4}"));
    await waitForStatus(`${file}.status`, (d) => phaseIs("Ready")(d) && d[0]!.status.session.reconnects === 1, "new session", ctl);
    probing = false;
    await prober;
    assert.equal(refused, 0, "the listener refused connections during the session change");
    assert.equal(await tagOf(port), "A");
    await live.ping("drains on the old session");
    live.socket.end();
    assert.equal(await ctl.stop(), 0);
  });

  describe("file change styles", () => {
    const editOnce = async (
      setup: (dir: string) => { watch: string; write: (name: string, text: string) => void; commit?: () => void },
    ): Promise<void> => {
      const root = tempDir();
      const { watch, write } = setup(root);
      const [port, p2] = [await freePort(), await freePort()];
      const steadyPort = await freePort();
      const steadyText = manifest(sshd, "steady", { local: [{ localPort: steadyPort, remotePort: targets.S.port }] });
      write("steady.yaml", steadyText);
      write("edit.yaml", manifest(sshd, "edit", { local: [{ localPort: port, remotePort: targets.A.port }] }));
      const ctl = run(watch);
      await waitForStatus(join(watch, "edit.yaml.status"), phaseIs("Ready"), "edit Ready", ctl);
      await waitForStatus(join(watch, "steady.yaml.status"), phaseIs("Ready"), "steady Ready", ctl);
      const live = await openLive(steadyPort);
      await live.ping("before");
      write("steady.yaml", steadyText);
      write("edit.yaml", manifest(sshd, "edit", { local: [{ localPort: port, remotePort: targets.B.port }, { localPort: p2, remotePort: targets.C.port }] }));
      await waitFor(async () => (await probe(p2)) === "accepted", "the added forward accepts", 15_000).catch((err: Error) => {
        throw new Error(`${err.message}\n${ctl.output().slice(-3000)}`);
      });
      assert.equal(await tagOf(port), "B");
      assert.equal(await tagOf(p2), "C");
      await live.ping("after");
      assert.equal(live.closed, false, "the untouched connection was dropped");
      live.socket.end();
      assert.equal(await ctl.stop(), 0);
    };

    it("in-place write", () =>
      editOnce((dir) => ({ watch: dir, write: (name, text) => writeFileSync(join(dir, name), text) })));

    it("editor save: write a temp file, rename into place", () =>
      editOnce((dir) => ({
        watch: dir,
        write: (name, text) => {
          writeFileSync(join(dir, `.${name}.swp`), text);
          renameSync(join(dir, `.${name}.swp`), join(dir, name));
        },
      })));

    it("git checkout of another revision", () => {
      const git = (cwd: string, ...args: string[]): string =>
        execFileSync("git", ["-c", "user.email=t@example.invalid", "-c", "user.name=t", "-c", "init.defaultBranch=main", ...args], { cwd, encoding: "utf8" });
      return editOnce((root) => {
        const repo = join(root, "repo");
        const work = join(root, "work");
        mkdirSync(repo);
        git(repo, "init", "-q");
        const pending = new Map<string, string>();
        let first = true;
        return {
          watch: repo,
          write: (name, text) => {
            pending.set(name, text);
            if (pending.size < 2) return;
            if (first) {
              // The first revision is committed in the watched checkout itself.
              for (const [n, t] of pending) writeFileSync(join(repo, n), t);
              git(repo, "add", ".");
              git(repo, "commit", "-q", "-m", "rev1");
              first = false;
            } else {
              // The next revision is made elsewhere; the watched checkout only sees `git checkout`.
              git(root, "clone", "-q", repo, work);
              for (const [n, t] of pending) writeFileSync(join(work, n), t);
              git(work, "commit", "-q", "-am", "rev2");
              git(repo, "fetch", "-q", work, "main");
              git(repo, "checkout", "-q", "FETCH_HEAD");
            }
            pending.clear();
          },
        };
      });
    });

    it("Kubernetes ConfigMap volume update (..data symlink swap)", () => {
      let rev = 0;
      return editOnce((dir) => {
        const pending = new Map<string, string>();
        return {
          watch: dir,
          write: (name, text) => {
            pending.set(name, text);
            if (pending.size < 2) return;
            const revDir = `..2026_11_24_rev${++rev}`;
            mkdirSync(join(dir, revDir));
            for (const [n, t] of pending) writeFileSync(join(dir, revDir, n), t);
            symlinkSync(revDir, join(dir, "..data_tmp"));
            renameSync(join(dir, "..data_tmp"), join(dir, "..data"));
            for (const n of pending.keys()) if (!existsSync(join(dir, n))) symlinkSync(join("..data", n), join(dir, n));
            if (rev > 1) rmSync(join(dir, `..2026_11_24_rev${rev - 1}`), { recursive: true });
            pending.clear();
          },
        };
      });
    });

    it("git-sync: the watched directory is a symlink swapped to a new revision", () => {
      let rev = 0;
      return editOnce((root) => {
        const pending = new Map<string, string>();
        return {
          watch: join(root, "current"),
          write: (name, text) => {
            pending.set(name, text);
            if (pending.size < 2) return;
            const revDir = join(root, `rev${++rev}`);
            mkdirSync(revDir);
            for (const [n, t] of pending) writeFileSync(join(revDir, n), t);
            symlinkSync(revDir, join(root, "current.tmp"));
            renameSync(join(root, "current.tmp"), join(root, "current"));
            pending.clear();
          },
        };
      });
    });
  });

  it("the watched directory removed and recreated", async () => {
    const root = tempDir();
    const dir = join(root, "manifests");
    mkdirSync(dir);
    const ctl = run(dir);
    const port = await freePort();
    writeFileSync(join(dir, "t.yaml"), manifest(sshd, "t", { local: [{ localPort: port, remotePort: targets.A.port }] }));
    await waitForStatus(join(dir, "t.yaml.status"), phaseIs("Ready"), "Ready", ctl);
    rmSync(dir, { recursive: true });
    await waitFor(async () => (await probe(port)) === "ECONNREFUSED", "tunnel pruned with its directory");
    mkdirSync(dir);
    const p2 = await freePort();
    writeFileSync(join(dir, "t.yaml"), manifest(sshd, "t", { local: [{ localPort: p2, remotePort: targets.B.port }] }));
    await waitForStatus(join(dir, "t.yaml.status"), phaseIs("Ready"), "Ready in the recreated directory", ctl);
    assert.equal(await tagOf(p2), "B");
    assert.equal(await ctl.stop(), 0);
  });

  it("SIGTERM under load: exits 0, the remote port is bindable right after, final status written", async () => {
    const dir = tempDir();
    const ctl = run(dir);
    const [localPort, remotePort] = [await freePort(), await freePort()];
    const file = join(dir, "load.yaml");
    writeFileSync(file, manifest(sshd, "load", { local: [{ localPort, remotePort: targets.A.port }], remote: [{ remotePort, localPort: targets.A.port }] }));
    await waitForStatus(`${file}.status`, phaseIs("Ready"), "Ready", ctl);
    // 20 connections through each forward, each pushing data as fast as it is echoed back.
    const streams = await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const live = await openLive(i % 2 === 0 ? localPort : remotePort);
        const chunk = "x".repeat(16 * 1024) + "\n";
        const pump = (): void => {
          while (!live.closed && live.socket.write(chunk));
          if (!live.closed) live.socket.once("drain", pump);
        };
        pump();
        return live;
      }),
    );
    // A liveness wait, not a speed check: under a loaded suite 40 saturated streams can take a while to all get going.
    await waitFor(() => streams.every((s) => s.received.length > 64 * 1024), "data flowing through every connection", 30_000);
    assert.equal(await ctl.stop("SIGTERM"), 0, ctl.output().slice(-2000));
    // The server released the remote port: it can be bound again at once.
    const { createServer } = await import("node:net");
    const srv = createServer();
    await new Promise<void>((resolve, reject) => {
      srv.once("error", reject);
      srv.listen(remotePort, "127.0.0.1", () => resolve());
    });
    await new Promise((r) => srv.close(r));
    assert.equal(await probe(localPort), "ECONNREFUSED");
    const final = await waitForStatus(`${file}.status`, (d) => d[0]!.status.session.state === "Closed", "final status");
    assert.equal(final[0]!.status.session.state, "Closed");
    for (const s of streams) s.socket.destroy();
  });

  it("SIGTERM: releases remote forwards, closes ports, writes final status, exits 0", async () => {
    const dir = tempDir();
    const ctl = run(dir);
    const port = await freePort();
    const file = join(dir, "term.yaml");
    writeFileSync(file, manifest(sshd, "term", { local: [{ localPort: port, remotePort: targets.A.port }], remote: [{ remotePort: 0, localPort: targets.A.port }] }));
    const docs = await waitForStatus(`${file}.status`, phaseIs("Ready"), "Ready", ctl);
    const bound = docs[0]!.status.forwards.remote[0]!.boundPort!;
    const live = await openLive(port);
    await live.ping("open during shutdown");
    assert.equal(await ctl.stop("SIGTERM"), 0);
    assert.equal(await probe(port), "ECONNREFUSED");
    assert.equal(await probe(bound), "ECONNREFUSED");
    const final = await waitForStatus(`${file}.status`, (d) => d[0]!.status.session.state === "Closed", "final status");
    assert.equal(final[0]!.status.session.state, "Closed");
  });
});
