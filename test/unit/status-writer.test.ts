import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { buildTunnelStatus } from "../../src/status/build.ts";
import { serializeStatusDocs } from "../../src/status/serialize.ts";
import type { ForwardState } from "../../src/reconcile/types.ts";
import type { TunnelStatusDoc } from "../../src/status/types.ts";
import { StatusPathError, StatusWriteError, StatusWriter, statusPathFor } from "../../src/status/writer.ts";
import { T0, localObservation, observation } from "../helpers/status-fixtures.ts";

const interval = 10_000;

/** A one-tunnel status file; `state` is a state change, `totalConnections` a counter change. */
function docs(options: { state?: ForwardState; totalConnections?: number; name?: string } = {}): TunnelStatusDoc[] {
  const total = options.totalConnections ?? 0;
  const local = localObservation({ state: options.state ?? "Active", activeConnections: 0, totalConnections: total, bytesIn: total * 100, bytesOut: 0 });
  return [buildTunnelStatus(observation({ name: options.name ?? "db-bastion", local: [local], remote: [] }), undefined, T0)];
}

let root: string;
before(async () => {
  root = await mkdtemp(path.join(tmpdir(), "tunnelctl-status-writer-"));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A writer on a fake clock, and a fresh file path in a folder that does not exist yet. */
async function setup(name: string) {
  const clock = { now: 1_000_000 };
  const writer = new StatusWriter({ statusInterval: interval, now: () => clock.now });
  const filePath = path.join(root, name, "nested", "db.yaml.status");
  return { clock, writer, filePath };
}

async function inode(filePath: string): Promise<number> {
  return (await stat(filePath)).ino;
}

describe("StatusWriter", () => {
  test("first write creates the folders and the file", async () => {
    const { writer, filePath } = await setup("first");
    assert.equal(await writer.write(filePath, docs()), true);
    assert.equal(await readFile(filePath, "utf8"), serializeStatusDocs(docs()));
  });

  test("unchanged: no write (same inode, same mtime)", async () => {
    const { writer, filePath, clock } = await setup("unchanged");
    await writer.write(filePath, docs());
    const { ino, mtimeMs } = await stat(filePath);
    clock.now += 60_000;
    assert.equal(await writer.write(filePath, docs()), false);
    const after = await stat(filePath);
    assert.equal(after.ino, ino);
    assert.equal(after.mtimeMs, mtimeMs);
  });

  test("unchanged against the file on disk (a restart): no write", async () => {
    const { writer, filePath } = await setup("restart");
    await writer.write(filePath, docs());
    const ino = await inode(filePath);
    const restarted = new StatusWriter({ statusInterval: interval, now: () => 0 });
    assert.equal(await restarted.write(filePath, docs()), false);
    assert.equal(await inode(filePath), ino);
  });

  test("a file on disk that differs is overwritten at once, even if only counters differ", async () => {
    const { writer, filePath } = await setup("stale-disk");
    await writer.write(filePath, docs());
    const restarted = new StatusWriter({ statusInterval: interval, now: () => 0 });
    assert.equal(await restarted.write(filePath, docs({ totalConnections: 5 })), true);
    assert.equal(await readFile(filePath, "utf8"), serializeStatusDocs(docs({ totalConnections: 5 })));
  });

  test("a state change is written at once, whatever the interval", async () => {
    const { writer, filePath, clock } = await setup("state");
    await writer.write(filePath, docs());
    const ino = await inode(filePath);
    clock.now += 1;
    assert.equal(await writer.write(filePath, docs({ state: "Failed" })), true);
    assert.notEqual(await inode(filePath), ino, "replaced atomically (rename of a new file)");
    assert.match(await readFile(filePath, "utf8"), /state: Failed/);
  });

  test("a counter-only change waits for the interval, then flushDue writes it", async () => {
    const { writer, filePath, clock } = await setup("counters");
    await writer.write(filePath, docs());
    const original = await readFile(filePath, "utf8");
    assert.equal(writer.nextDueIn(filePath), undefined, "nothing deferred yet");

    clock.now += 3_000;
    assert.equal(await writer.write(filePath, docs({ totalConnections: 7 })), false);
    assert.equal(await readFile(filePath, "utf8"), original);
    assert.equal(writer.nextDueIn(filePath), 7_000);
    assert.equal(writer.nextDueIn(), 7_000);

    clock.now += 6_999;
    assert.deepEqual(await writer.flushDue(), [], "not due yet");
    assert.equal(writer.nextDueIn(filePath), 1);

    clock.now += 1;
    assert.equal(writer.nextDueIn(filePath), 0);
    assert.deepEqual(await writer.flushDue(), [filePath]);
    assert.equal(await readFile(filePath, "utf8"), serializeStatusDocs(docs({ totalConnections: 7 })));
    assert.equal(writer.nextDueIn(filePath), undefined);
    assert.equal(writer.nextDueIn(), undefined);
  });

  test("a counter-only change after the interval is written at once", async () => {
    const { writer, filePath, clock } = await setup("counters-late");
    await writer.write(filePath, docs());
    clock.now += interval;
    assert.equal(await writer.write(filePath, docs({ totalConnections: 1 })), true);
    clock.now += 1;
    assert.equal(await writer.write(filePath, docs({ totalConnections: 2 })), false, "the next one waits again");
  });

  test("a state change carries deferred counters with it and clears the deferral", async () => {
    const { writer, filePath, clock } = await setup("counters-then-state");
    await writer.write(filePath, docs());
    clock.now += 1;
    assert.equal(await writer.write(filePath, docs({ totalConnections: 3 })), false);
    assert.equal(await writer.write(filePath, docs({ totalConnections: 3, state: "Failed" })), true);
    assert.equal(writer.nextDueIn(filePath), undefined);
    assert.equal(await readFile(filePath, "utf8"), serializeStatusDocs(docs({ totalConnections: 3, state: "Failed" })));
  });

  test("counters going back to what the file holds clear the deferral", async () => {
    const { writer, filePath, clock } = await setup("counters-back");
    await writer.write(filePath, docs());
    clock.now += 1;
    await writer.write(filePath, docs({ totalConnections: 3 }));
    assert.equal(await writer.write(filePath, docs()), false);
    assert.equal(writer.nextDueIn(filePath), undefined);
  });

  test("flush forces a counter-only change (shutdown), and still skips an unchanged file", async () => {
    const { writer, filePath, clock } = await setup("flush");
    await writer.write(filePath, docs());
    clock.now += 1;
    assert.equal(await writer.flush(filePath, docs({ totalConnections: 9 })), true);
    assert.equal(await readFile(filePath, "utf8"), serializeStatusDocs(docs({ totalConnections: 9 })));
    const ino = await inode(filePath);
    assert.equal(await writer.flush(filePath, docs({ totalConnections: 9 })), false);
    assert.equal(await inode(filePath), ino);
  });

  test("nextDueIn() without a path gives the soonest file", async () => {
    const { writer, filePath, clock } = await setup("soonest");
    const other = path.join(path.dirname(filePath), "other.yaml.status");
    await writer.write(filePath, docs());
    clock.now += 2_000;
    await writer.write(other, docs());
    clock.now += 1_000;
    await writer.write(other, docs({ totalConnections: 1 }));
    assert.equal(writer.nextDueIn(), 9_000);
    await writer.write(filePath, docs({ totalConnections: 1 }));
    assert.equal(writer.nextDueIn(), 7_000);
    assert.equal(writer.nextDueIn(other), 9_000);
  });

  test("remove deletes the file and forgets it; a missing file is fine", async () => {
    const { writer, filePath } = await setup("remove");
    await writer.write(filePath, docs());
    await writer.remove(filePath);
    await assert.rejects(stat(filePath), { code: "ENOENT" });
    await writer.remove(filePath);
    assert.equal(await writer.write(filePath, docs()), true, "written again after remove");
  });

  test("concurrent writes to one file apply in call order", async () => {
    const { writer, filePath } = await setup("concurrent");
    const results = await Promise.all([
      writer.write(filePath, docs({ state: "Pending" })),
      writer.write(filePath, docs({ state: "Active" })),
      writer.write(filePath, docs({ state: "Failed" })),
    ]);
    assert.deepEqual(results, [true, true, true]);
    assert.equal(await readFile(filePath, "utf8"), serializeStatusDocs(docs({ state: "Failed" })));
  });

  test("several documents in one file, in order", async () => {
    const { writer, filePath } = await setup("multi");
    const all = [...docs({ name: "web" }), ...docs({ name: "db" })];
    await writer.write(filePath, all);
    const text = await readFile(filePath, "utf8");
    assert.ok(text.indexOf("name: web") < text.indexOf("---") && text.indexOf("---") < text.indexOf("name: db"));
  });

  test("a write that cannot happen rejects with StatusWriteError naming the path", async () => {
    const { writer } = await setup("failure");
    const blocker = path.join(root, "failure-blocker");
    await writeFile(blocker, "a file, not a folder");
    const filePath = path.join(blocker, "db.yaml.status");
    await assert.rejects(writer.write(filePath, docs()), (error: unknown) => {
      assert.ok(error instanceof StatusWriteError);
      assert.equal(error.name, "StatusWriteError");
      assert.equal(error.path, filePath);
      assert.match(error.message, /Cannot write status file .*failure-blocker\/db\.yaml\.status/);
      assert.ok(error.cause instanceof Error);
      return true;
    });
    // The queue for that path is not stuck after a failure.
    await assert.rejects(writer.write(filePath, docs()), StatusWriteError);
  });

  test("rejects a negative interval", () => {
    assert.throws(() => new StatusWriter({ statusInterval: -1, now: () => 0 }), RangeError);
  });
});

describe("statusPathFor", () => {
  const cases: Array<{ name: string; file: string; options: { watchDir: string; statusDir?: string }; want: string }> = [
    { name: "beside the manifest", file: "/etc/tunnels/db.yaml", options: { watchDir: "/etc/tunnels" }, want: "/etc/tunnels/db.yaml.status" },
    {
      name: "under --status-dir",
      file: "/etc/tunnels/db.yaml",
      options: { watchDir: "/etc/tunnels", statusDir: "/var/lib/tunnelctl" },
      want: "/var/lib/tunnelctl/db.yaml.status",
    },
    {
      name: "under --status-dir, same relative path",
      file: "/etc/tunnels/prod/eu/db.yml",
      options: { watchDir: "/etc/tunnels/", statusDir: "/var/lib/tunnelctl" },
      want: "/var/lib/tunnelctl/prod/eu/db.yml.status",
    },
    {
      name: "relative watch dir",
      file: path.resolve("manifests/a.yaml"),
      options: { watchDir: "manifests", statusDir: "/tmp/status" },
      want: "/tmp/status/a.yaml.status",
    },
  ];
  for (const { name, file, options, want } of cases) {
    test(name, () => assert.equal(statusPathFor(file, options), want));
  }

  test("a manifest outside the watched folder is an error", () => {
    assert.throws(
      () => statusPathFor("/elsewhere/db.yaml", { watchDir: "/etc/tunnels", statusDir: "/var/lib/tunnelctl" }),
      (error: unknown) => error instanceof StatusPathError && /not inside \/etc\/tunnels/.test(error.message),
    );
  });
});
