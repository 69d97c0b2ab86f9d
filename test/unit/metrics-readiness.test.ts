import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { TunnelSnapshot } from "../../src/controller/types.ts";
import { liveness, readiness } from "../../src/metrics/readiness.ts";
import type { Phase } from "../../src/reconcile/types.ts";
import { observation } from "../helpers/status-fixtures.ts";

function tunnel(name: string, phase: Phase, reason = "", message = ""): TunnelSnapshot {
  return {
    name,
    manifest: `${name}.yaml`,
    phase,
    ready: { type: "Ready", status: phase === "Ready" ? "True" : "False", reason, message, lastTransitionTime: "" },
    observation: observation({ name }),
  };
}

describe("readiness", () => {
  const table: Array<{ name: string; loaded: boolean; tunnels: TunnelSnapshot[]; ok: boolean; lines: string[] }> = [
    { name: "loaded, nothing to run: ready", loaded: true, tunnels: [], ok: true, lines: ["[+]initial-load ok", "readyz check passed"] },
    { name: "not loaded yet: not ready", loaded: false, tunnels: [], ok: false, lines: ["[-]initial-load: the manifest directory is still being read", "readyz check failed"] },
    {
      name: "every tunnel Ready, in name order",
      loaded: true,
      tunnels: [tunnel("web", "Ready"), tunnel("db", "Ready")],
      ok: true,
      lines: ["[+]initial-load ok", "[+]tunnel/db ok", "[+]tunnel/web ok", "readyz check passed"],
    },
    {
      name: "a failing tunnel is named with its reason; invalid and suspended ones are not counted",
      loaded: true,
      tunnels: [tunnel("db", "Failed", "AuthFailed", "Authentication to 10.0.0.1:22 as x\nrefused"), tunnel("old", "Invalid"), tunnel("nap", "Suspended"), tunnel("web", "Pending", "Connecting")],
      ok: false,
      lines: [
        "[+]initial-load ok",
        "[-]tunnel/db: Failed: AuthFailed: Authentication to 10.0.0.1:22 as x refused",
        "[+]tunnel/nap not checked: Suspended",
        "[+]tunnel/old not checked: Invalid",
        "[-]tunnel/web: Pending: Connecting",
        "readyz check failed",
      ],
    },
  ];
  for (const row of table) {
    it(row.name, () => {
      const verdict = readiness(row.loaded, row.tunnels);
      assert.equal(verdict.ok, row.ok);
      assert.equal(verdict.body, `${row.lines.join("\n")}\n`);
    });
  }

  it("liveness says which check failed", () => {
    assert.deepEqual(liveness(true), { ok: true, body: "[+]loop ok\n[+]watcher ok\nhealthz check passed\n" });
    assert.equal(liveness(false).ok, false);
    assert.match(liveness(false).body, /^\[-\]watcher: not running/m);
  });
});
