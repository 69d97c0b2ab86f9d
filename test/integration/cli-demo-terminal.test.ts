// `tunnelctl demo` in a real terminal: tmux at 80×24 runs it, and what a person sees is read with
// capture-pane. The table is redrawn in place under the banner (one line per tunnel, not a
// growing scroll), the "try: nc" line stays on screen, and no line is wider than 80 columns.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { waitFor } from "../helpers/net.ts";

const TMUX = "/usr/bin/tmux";
const MAIN = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));
const TSX = import.meta.resolve("tsx");

function tmuxAvailable(): boolean {
  if (existsSync(TMUX)) return true;
  if (process.env.CI === "true") throw new Error(`tmux not found at ${TMUX}: CI must install tmux`);
  process.stderr.write(`\n*** SKIPPING the demo terminal test: no ${TMUX} (apt-get install tmux) ***\n\n`);
  return false;
}

describe("demo in an 80×24 terminal", { skip: !tmuxAvailable(), timeout: 60_000 }, () => {
  const root = mkdtempSync(path.join(tmpdir(), "tunnelctl-demo-tty-"));
  const socket = `tunnelctl-test-${process.pid}`;
  const tmux = (...args: string[]): string => execFileSync(TMUX, ["-L", socket, ...args], { encoding: "utf8" });
  /** The screen, wrapped lines joined back (-J): a line longer than 80 shows as one long line. */
  const screen = (): string => tmux("capture-pane", "-p", "-J", "-t", "demo");
  after(() => {
    try {
      tmux("kill-server");
    } catch {
      // already gone
    }
    rmSync(root, { recursive: true, force: true });
  });

  it("shows the banner and one redrawn line per tunnel, every line within 80 columns", async () => {
    const command = [process.execPath, "--import", TSX, MAIN, "demo", "--dir", path.join(root, "demo")].map((a) => `'${a}'`).join(" ");
    tmux("new-session", "-d", "-s", "demo", "-x", "80", "-y", "24", "-c", root, command);
    let text = "";
    try {
      await waitFor(() => {
        text = screen();
        return /^demo +Ready +Connected +2\/2 active/m.test(text);
      }, "the table to show Ready", 30_000);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- screen ---\n${text}`);
    }
    assert.match(text, /^tunnelctl demo: /m, "the banner's first line is on screen");
    assert.match(text, /^ {2}try: nc 127\.0\.0\.1 \d+ /m, "the try line is on screen");
    assert.match(text, /^ {2}Ctrl-C to stop$/m);
    assert.equal(text.match(/^demo +(Pending|Ready|Degraded|Failed)/gm)?.length, 1, `one line for the one tunnel:\n${text}`);
    assert.equal(text.match(/^NAME +PHASE/gm)?.length, 1, `one table header (redrawn, not appended):\n${text}`);
    const wide = text.split("\n").filter((line) => [...line].length > 80);
    assert.deepEqual(wide, [], "lines wider than 80 columns");
    tmux("send-keys", "-t", "demo", "C-c");
    await waitFor(() => {
      try {
        tmux("has-session", "-t", "demo");
        return false;
      } catch {
        return true; // the demo exited and its window closed
      }
    }, "the demo to exit on Ctrl-C", 15_000);
  });
});
