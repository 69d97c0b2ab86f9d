import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  computeConnectedCondition,
  computePhase,
  type ForwardHealth,
  type PhaseInput,
  type SessionHealth,
} from "../../src/reconcile/phase.ts";
import type { Phase } from "../../src/reconcile/types.ts";

const up: SessionHealth = { state: "Connected", lastError: "" };
const connecting: SessionHealth = { state: "Connecting", lastError: "" };
const closed: SessionHealth = { state: "Closed", lastError: "" };
const authFailed = { lastError: "All configured authentication methods failed", lastErrorReason: "AuthFailed" };

const active: ForwardHealth = { id: "local/127.0.0.1:8080", state: "Active", message: "" };
const portInUse: ForwardHealth = {
  id: "local/127.0.0.1:8080",
  state: "Failed",
  reason: "PortInUse",
  message: "Cannot bind 127.0.0.1:8080: address in use",
};
const conflict: ForwardHealth = {
  id: "local/0.0.0.0:5432",
  state: "Conflict",
  reason: "Conflict",
  message: "claimed by tunnel db (db.yaml)",
};
const pending: ForwardHealth = { id: "remote/127.0.0.1:0", state: "Pending", message: "" };
const draining: ForwardHealth = { id: "local/127.0.0.1:9999", state: "Draining", message: "2 connections open" };

function input(overrides: Partial<PhaseInput>): PhaseInput {
  return { invalid: false, suspended: false, session: up, forwards: [], ...overrides };
}

// The decision table of phase.ts, one row (or more) per line.
const table: Array<{ row: number; name: string; input: PhaseInput; phase: Phase; status: "True" | "False"; reason: string; message?: string }> = [
  { row: 1, name: "invalid wins over everything", input: input({ invalid: true, suspended: true, forwards: [active] }), phase: "Invalid", status: "False", reason: "ManifestInvalid" },
  { row: 1, name: "invalid, never ran", input: input({ invalid: true, session: closed }), phase: "Invalid", status: "False", reason: "ManifestInvalid" },
  { row: 2, name: "suspended", input: input({ suspended: true, session: closed }), phase: "Suspended", status: "False", reason: "Suspended" },
  {
    row: 2.5,
    name: "connected, but the latest spec's session change failed: degraded, not ready",
    input: input({ forwards: [active], notApplied: { reason: "AuthFailed", message: "refused" } }),
    phase: "Degraded",
    status: "False",
    reason: "SpecNotApplied",
    message: "the latest spec is not applied: AuthFailed: refused",
  },
  { row: 2.5, name: "suspension wins over a failed change", input: input({ suspended: true, notApplied: { reason: "AuthFailed", message: "x" } }), phase: "Suspended", status: "False", reason: "Suspended" },
  { row: 3, name: "connected, all forwards active", input: input({ forwards: [active, { ...active, id: "remote/127.0.0.1:9000" }] }), phase: "Ready", status: "True", reason: "AllForwardsActive", message: "" },
  { row: 3, name: "connected, no forwards", input: input({}), phase: "Ready", status: "True", reason: "AllForwardsActive" },
  { row: 3, name: "draining forwards don't count", input: input({ forwards: [active, draining] }), phase: "Ready", status: "True", reason: "AllForwardsActive" },
  {
    row: 4,
    name: "a failed forward degrades, the message names it",
    input: input({ forwards: [portInUse, { ...active, id: "local/127.0.0.1:8081" }] }),
    phase: "Degraded",
    status: "False",
    reason: "ForwardFailed",
    message: "local 127.0.0.1:8080: PortInUse: Cannot bind 127.0.0.1:8080: address in use",
  },
  {
    row: 4,
    name: "failed beats conflict; every problem is listed in order",
    input: input({ forwards: [conflict, portInUse, pending] }),
    phase: "Degraded",
    status: "False",
    reason: "ForwardFailed",
    message:
      "local 0.0.0.0:5432: Conflict: claimed by tunnel db (db.yaml); " +
      "local 127.0.0.1:8080: PortInUse: Cannot bind 127.0.0.1:8080: address in use; remote 127.0.0.1:0: Pending",
  },
  { row: 5, name: "a conflicting forward degrades", input: input({ forwards: [active, conflict] }), phase: "Degraded", status: "False", reason: "ForwardConflict" },
  { row: 6, name: "a forward still opening", input: input({ forwards: [active, pending] }), phase: "Pending", status: "False", reason: "ForwardPending", message: "remote 127.0.0.1:0: Pending" },
  { row: 7, name: "first connect", input: input({ session: connecting, forwards: [pending] }), phase: "Pending", status: "False", reason: "Connecting" },
  { row: 8, name: "not started yet", input: input({ session: closed }), phase: "Pending", status: "False", reason: "NotConnected" },
  { row: 9, name: "backoff after auth failure", input: input({ session: { state: "Backoff", ...authFailed } }), phase: "Failed", status: "False", reason: "AuthFailed", message: authFailed.lastError },
  { row: 9, name: "reconnecting after a failure stays Failed", input: input({ session: { state: "Connecting", ...authFailed } }), phase: "Failed", status: "False", reason: "AuthFailed" },
  { row: 9, name: "closed after a failure", input: input({ session: { state: "Closed", lastError: "socket hang up" } }), phase: "Failed", status: "False", reason: "SessionFailed", message: "socket hang up" },
  { row: 9, name: "backoff without a recorded reason", input: input({ session: { state: "Backoff", lastError: "" } }), phase: "Failed", status: "False", reason: "SessionFailed" },
];

describe("computePhase decision table", () => {
  for (const { row, name, input: phaseInput, phase, status, reason, message } of table) {
    test(`row ${row}: ${name} → ${phase}`, () => {
      const result = computePhase(phaseInput);
      assert.equal(result.phase, phase);
      assert.equal(result.ready.type, "Ready");
      assert.equal(result.ready.status, status);
      assert.equal(result.ready.reason, reason);
      if (message !== undefined) assert.equal(result.ready.message, message);
      assert.match(result.ready.reason, /^[A-Z][A-Za-z]*$/, "reason is one CamelCase word");
    });
  }

  test("every phase is reachable", () => {
    const phases = new Set(table.map((row) => computePhase(row.input).phase));
    assert.deepEqual([...phases].sort(), ["Degraded", "Failed", "Invalid", "Pending", "Ready", "Suspended"]);
  });
});

describe("computeConnectedCondition", () => {
  const cases: Array<{ name: string; session: SessionHealth; suspended: boolean; want: [string, string, string] }> = [
    { name: "connected", session: up, suspended: false, want: ["True", "Connected", ""] },
    { name: "connected while suspend is being applied", session: up, suspended: true, want: ["True", "Connected", ""] },
    { name: "suspended", session: closed, suspended: true, want: ["False", "Suspended", "spec.suspend is true"] },
    { name: "connecting", session: connecting, suspended: false, want: ["False", "Connecting", ""] },
    { name: "not started", session: closed, suspended: false, want: ["False", "NotConnected", ""] },
    { name: "failed", session: { state: "Backoff", ...authFailed }, suspended: false, want: ["False", "AuthFailed", authFailed.lastError] },
    { name: "failed without reason", session: { state: "Backoff", lastError: "boom" }, suspended: false, want: ["False", "SessionFailed", "boom"] },
  ];
  for (const { name, session, suspended, want } of cases) {
    test(name, () => {
      const condition = computeConnectedCondition(session, suspended);
      assert.equal(condition.type, "Connected");
      assert.deepEqual([condition.status, condition.reason, condition.message], want);
    });
  }
});
