// bin/tunnelctl.js is a sh launcher that execs node with the V8 flags of src/cli/node-flags.ts.
// These tests run it the way npm installs it (a symlink in a bin folder, executed through its
// #! line) with a stand-in `node` first on PATH that reports what it was started with, and check
// that `npm start` passes the same flags (the benchmark imports NODE_FLAGS itself).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { promisify } from "node:util";
import { NODE_FLAGS } from "../../src/cli/node-flags.ts";
import { REPO_ROOT } from "../helpers/cli.ts";

const run = promisify(execFile);
const BIN = path.join(REPO_ROOT, "bin", "tunnelctl.js");

describe("bin/tunnelctl.js launcher", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "tunnelctl-launcher-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("execs node with NODE_FLAGS, the script and every argument unchanged", async () => {
    const fakeBin = path.join(dir, "fake-bin");
    const installed = path.join(dir, "installed");
    mkdirSync(fakeBin);
    mkdirSync(installed);
    // The stand-in node prints one argument per line, so spaces inside an argument show.
    const fakeNode = path.join(fakeBin, "node");
    writeFileSync(fakeNode, '#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n');
    chmodSync(fakeNode, 0o755);
    const link = path.join(installed, "tunnelctl");
    symlinkSync(BIN, link);

    const args = ["run", "dir with space", "--log-level", "debug", "$HOME", "*"];
    const { stdout } = await run(link, args, { env: { ...process.env, PATH: `${fakeBin}:${process.env.PATH ?? ""}` } });
    assert.deepEqual(stdout.split("\n").slice(0, -1), [...NODE_FLAGS, link, ...args]);
  });

  it("is valid JavaScript to node (the sh line is a string and a comment)", async () => {
    await run(process.execPath, ["--check", BIN]);
  });

  it("`npm start` passes the same flags", () => {
    const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> };
    const start = pkg.scripts["start"] ?? "";
    for (const flag of NODE_FLAGS) assert.ok(start.split(/\s+/).includes(flag), `package.json start script lacks ${flag}: ${start}`);
  });
});
