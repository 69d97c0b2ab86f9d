// DesiredState resolves only what a change can affect (the names a changed file carries, the
// files that carry them, the local ports they bind and the tunnels on those ports). Checked here
// against the reference — resolving every file again, as the first version did — over seeded
// random edit sequences: same records, same duplicate errors, same names reported as changed.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { DesiredState, type FileRecord, type NameRecord } from "../../src/controller/desired-state.ts";
import { checkConflicts, type LocalForwardSpec, type Tunnel } from "../../src/manifest/index.ts";
import { prng } from "../helpers/prng.ts";

const SEED = Number(process.env.DESIRED_SEED ?? 20261124);
const NAMES = ["a", "b", "c", "d", "e"];
const PORTS = [7001, 7002, 7003, 7004];
const BINDS = ["127.0.0.1", "0.0.0.0", "127.0.0.2", "localhost"];
const FILES = ["f0.yaml", "f1.yaml", "f2.yaml", "f3.yaml", "sub/f4.yaml"];

type Holds = (snapshot: Map<string, NameRecord>) => (name: string, forward: LocalForwardSpec) => boolean;

/** Reference: resolve every file again (the algorithm before the incremental one). */
function resolveAll(
  files: FileRecord[],
  previous: Map<string, NameRecord>,
  display: (f: string) => string,
  holdsLocal: (name: string, forward: LocalForwardSpec) => boolean,
): { next: Map<string, NameRecord>; changed: Set<string>; changedAnyOwner: Set<string>; duplicateErrors: Map<Tunnel, string> } {
  const owner = (t: Tunnel): boolean => {
    const p = previous.get(t.name);
    return p !== undefined && p.file === t.file && p.index === t.index;
  };
  const valid = files.flatMap((f) => f.documents.flatMap((d) => (d.tunnel ? [d.tunnel] : [])));
  const { duplicates } = checkConflicts(valid, display, { isRunning: owner });
  const duplicateErrors = new Map<Tunnel, string>(duplicates.map((d) => [d.tunnel, d.error.toString()]));
  const next = new Map<string, NameRecord>();
  for (const record of files) {
    if (record.fileErrors.length > 0) continue;
    for (const doc of record.documents) {
      if (doc.tunnel && !duplicateErrors.has(doc.tunnel)) {
        next.set(doc.tunnel.name, { name: doc.tunnel.name, file: record.file, index: doc.index, running: doc.tunnel, errors: [], conflicts: new Map() });
      }
    }
  }
  for (const record of files) {
    for (const doc of record.documents) {
      const broken = record.fileErrors.length > 0;
      if ((doc.tunnel && !broken) || doc.name === undefined || next.has(doc.name)) continue;
      const prev = previous.get(doc.name);
      const running = prev && prev.file === record.file ? prev.running : undefined;
      next.set(doc.name, { name: doc.name, file: record.file, index: doc.index, running, errors: [...record.fileErrors, ...doc.errors.map(String)], conflicts: new Map() });
    }
    const allErrors = [...record.fileErrors, ...record.documents.flatMap((d) => d.errors.map(String))];
    if (allErrors.length > 0) {
      for (const prev of previous.values()) {
        if (prev.file === record.file && !next.has(prev.name)) next.set(prev.name, { ...prev, errors: allErrors, conflicts: new Map() });
      }
    }
  }
  const running = [...next.values()].flatMap((r) => (r.running ? [r.running] : []));
  const { conflicts } = checkConflicts(running, display, { holdsLocal: (t, forward) => holdsLocal(t.name, forward) });
  for (const c of conflicts) next.get(c.tunnel.name)?.conflicts.set(c.forwardIndex, c.error.toString());
  const changed = new Set<string>();
  for (const [name, record] of next) if (!same(previous.get(name), record)) changed.add(name);
  for (const name of previous.keys()) if (!next.has(name)) changed.add(name);
  const changedAnyOwner = new Set([...changed].filter((name) => !same(previous.get(name), next.get(name), true)));
  return { next, changed, changedAnyOwner, duplicateErrors };
}

/**
 * Where a forward overlaps several granted ones (0.0.0.0:p against 127.0.0.1:p and 127.0.0.2:p),
 * the message names the first granted, and which is first depends on who held a port when: the
 * full resolve could rename the owner on an unrelated edit, the incremental one keeps it. With
 * `anyOwner`, such messages compare equal.
 */
const ownerless = (message: string): string => message.replace(/ conflicts with .* of tunnel ".*" \(.*\), which keeps it$/, " conflicts with (an owner), which keeps it");

function same(a: NameRecord | undefined, b: NameRecord | undefined, anyOwner = false): boolean {
  if (!a || !b) return a === b;
  const conflicts = (r: NameRecord): string => JSON.stringify([...r.conflicts].map(([i, m]) => [i, anyOwner ? ownerless(m) : m]).sort());
  return (
    a.file === b.file &&
    a.index === b.index &&
    a.running?.generation === b.running?.generation &&
    a.running?.file === b.running?.file &&
    a.errors.join("\n") === b.errors.join("\n") &&
    conflicts(a) === conflicts(b)
  );
}

function doc(random: () => number, pick: <T>(xs: readonly T[]) => T): string {
  const name = pick(NAMES);
  const forwards = Array.from({ length: Math.floor(random() * 3) }, () => `      - {bindAddress: ${pick(BINDS)}, localPort: ${pick(PORTS)}, remoteHost: db, remotePort: 5432}`);
  const kind = random();
  const metadata = kind < 0.05 ? "metadata: {}" : `metadata:\n  name: ${name}`;
  const port = kind > 0.05 && kind < 0.15 ? "not-a-port" : "22";
  const suspend = random() < 0.1 ? "\n  suspend: true" : "";
  return [
    "apiVersion: tunnelctl/v1",
    "kind: Tunnel",
    metadata,
    "spec:",
    "  host: bastion.example",
    `  port: ${port}`,
    "  username: deploy",
    "  auth: {privateKeyFile: /keys/id_ed25519}" + suspend,
    "  forwards:",
    forwards.length > 0 ? `    local:\n${forwards.join("\n")}` : "    local: []",
  ].join("\n");
}

/** Random file contents: 0–3 documents, sometimes a broken YAML stream or an empty file. */
function content(random: () => number, pick: <T>(xs: readonly T[]) => T): string {
  const r = random();
  if (r < 0.05) return "";
  if (r < 0.1) return "apiVersion: [unclosed\n";
  const docs = Array.from({ length: 1 + Math.floor(random() * 3) }, () => doc(random, pick));
  return `${docs.join("\n---\n")}\n`;
}

async function sequence(seed: number, steps: number, holds: Holds, anyOwner: boolean): Promise<void> {
  const random = prng(seed);
  const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const dir = mkdtempSync(join(tmpdir(), "tunnelctl-desired-"));
  try {
    let snapshot = new Map<string, NameRecord>();
    const holdsNow = (name: string, forward: LocalForwardSpec): boolean => holds(snapshot)(name, forward);
    const ds = new DesiredState({ dir, homeDir: "/home/u", holdsLocal: holdsNow });
    const display = (f: string): string => ds.display(f);
    for (let step = 0; step < steps; step++) {
      const at = `seed ${seed} step ${step}`;
      snapshot = new Map(ds.names);
      const batch = [...new Set(Array.from({ length: 1 + Math.floor(random() * 2) }, () => pick(FILES)))].map((f) => join(dir, f));
      for (const file of batch) {
        if (random() < 0.15) {
          try {
            unlinkSync(file);
          } catch {
            // not there: a no-op load
          }
        } else {
          mkdirSync(dirname(file), { recursive: true });
          writeFileSync(file, content(random, pick));
        }
      }
      // Half the loads as the resync does them (trusting an unchanged stat): a file written
      // just now is never trusted, so every change must still be seen.
      const result = await ds.loadFiles(batch, { trustStat: random() < 0.5 });
      const want = resolveAll([...ds.files.values()], snapshot, display, holdsNow);
      assert.deepEqual([...ds.names.keys()].sort(), [...want.next.keys()].sort(), `${at}: names`);
      for (const [name, record] of want.next) {
        const got = ds.names.get(name)!;
        assert.ok(same(got, record, anyOwner), `${at}: record of ${name}\n got ${show(got)}\nwant ${show(record)}`);
        assert.equal(got.running, record.running, `${at}: ${name} runs the same version`);
      }
      // Every real change is reported; at most the full resolve's (which adds renamed owners).
      for (const name of anyOwner ? want.changedAnyOwner : want.changed) assert.ok(result.names.has(name), `${at}: ${name} reported as changed`);
      for (const name of result.names) assert.ok(want.changed.has(name), `${at}: ${name} reported as changed but is not`);
      for (const name of result.names) {
        for (const r of [snapshot.get(name), want.next.get(name)]) if (r) assert.ok(result.files.has(r.file), `${at}: status of ${r.file} rewritten for ${name}`);
      }
      assert.deepEqual(
        [...ds.duplicateErrors].map(([t, e]) => `${t.file}#${t.index}: ${e}`).sort(),
        [...want.duplicateErrors].map(([t, e]) => `${t.file}#${t.index}: ${e}`).sort(),
        `${at}: duplicate errors`,
      );
      for (const file of ds.files.keys()) {
        const names = [...want.next.values()].filter((r) => r.file === file).sort((a, b) => a.index - b.index || (a.name < b.name ? -1 : 1)).map((r) => r.name);
        assert.deepEqual(ds.namesOf(file).map((r) => r.name), names, `${at}: names of ${file}`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function show(r: NameRecord | undefined): string {
  return JSON.stringify(r && { ...r, running: r.running?.generation, conflicts: [...r.conflicts] });
}

const neverHeld: Holds = () => () => false;
/** A forward is held when it was granted before this step: the running owner keeps its port. */
const grantedHeld: Holds = (snapshot) => (name, forward) => {
  const record = snapshot.get(name);
  const local = record?.running?.spec.forwards.local ?? [];
  return local.some((f, i) => !record!.conflicts.has(i) && f.bindAddress === forward.bindAddress && f.localPort === forward.localPort);
};

describe("DesiredState: incremental resolve equals resolving everything", () => {
  for (let k = 0; k < 4; k++) {
    // Claim order is file order only: the owner a message names must match exactly.
    it(`random edits, no listener held (seed ${SEED + k})`, async () => {
      await sequence(SEED + k, 250, neverHeld, false);
    });
    it(`random edits, granted listeners held (seed ${SEED + 100 + k})`, async () => {
      await sequence(SEED + 100 + k, 250, grantedHeld, true);
    });
  }
});

describe("DesiredState: a resync that trusts stat still sees changes", () => {
  it("a same-size rewrite right after a load is read again", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tunnelctl-desired-"));
    try {
      const file = join(dir, "t.yaml");
      const ds = new DesiredState({ dir, homeDir: "/home/u", holdsLocal: () => false });
      const text = (name: string): string =>
        `apiVersion: tunnelctl/v1\nkind: Tunnel\nmetadata:\n  name: ${name}\nspec:\n  host: bastion.example\n  username: deploy\n  auth: {privateKeyFile: /keys/id_ed25519}\n`;
      writeFileSync(file, text("aa"));
      await ds.loadFiles([file], { trustStat: true });
      assert.deepEqual([...ds.names.keys()], ["aa"]);
      writeFileSync(file, text("bb"));
      const result = await ds.loadFiles([file], { trustStat: true });
      assert.deepEqual([...result.names].sort(), ["aa", "bb"]);
      assert.deepEqual([...ds.names.keys()], ["bb"]);
      unlinkSync(file);
      await ds.loadFiles([file], { trustStat: true });
      assert.equal(ds.names.size, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("DesiredState: an emptied file is believed on a second look only", () => {
  it("one empty read, even a final one, never prunes; two reads 75 ms apart do; content in between resets", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tunnelctl-desired-"));
    try {
      const file = join(dir, "t.yaml");
      let clock = 1_000;
      const ds = new DesiredState({ dir, homeDir: "/home/u", holdsLocal: () => false, emptyConfirmMs: 75, now: () => clock });
      const text = `apiVersion: tunnelctl/v1\nkind: Tunnel\nmetadata:\n  name: t\nspec:\n  host: bastion.example\n  username: deploy\n  auth: {privateKeyFile: /keys/id_ed25519}\n`;
      writeFileSync(file, text);
      await ds.loadFiles([file]);
      // Truncated by the next in-place save: a final (non-deferred) read sees it empty.
      writeFileSync(file, "");
      assert.equal((await ds.loadFiles([file])).names.size, 0);
      assert.deepEqual(ds.takeUnconfirmedEmpty(), [file], "the caller is told to look again");
      assert.ok(ds.names.has("t"));
      // The save completes before the next look: the empty moment is forgotten.
      writeFileSync(file, text);
      clock += 100;
      await ds.loadFiles([file]);
      writeFileSync(file, "");
      clock += 10;
      await ds.loadFiles([file]);
      clock += 50;
      await ds.loadFiles([file]);
      assert.ok(ds.names.has("t"), "60 ms of emptiness is not enough");
      clock += 25;
      const result = await ds.loadFiles([file]);
      assert.deepEqual([...result.names], ["t"]);
      assert.equal(ds.names.has("t"), false, "empty for 75 ms: believed");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
