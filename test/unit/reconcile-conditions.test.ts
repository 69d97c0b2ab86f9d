import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { findCondition, removeCondition, setCondition } from "../../src/reconcile/conditions.ts";
import type { Condition } from "../../src/reconcile/types.ts";

const t0 = "2025-01-01T00:00:00.000Z";
const t1 = "2025-01-01T00:05:00.000Z";

const connected: Condition = { type: "Connected", status: "True", reason: "Connected", message: "", lastTransitionTime: t0 };
const ready: Condition = { type: "Ready", status: "True", reason: "AllForwardsActive", message: "", lastTransitionTime: t0 };

describe("setCondition", () => {
  const cases: Array<{ name: string; before: Condition[]; next: Omit<Condition, "lastTransitionTime">; want: Condition[] }> = [
    {
      name: "same status, same reason: nothing moves",
      before: [connected, ready],
      next: { type: "Ready", status: "True", reason: "AllForwardsActive", message: "" },
      want: [connected, ready],
    },
    {
      name: "new type: appended with now",
      before: [connected],
      next: { type: "Ready", status: "False", reason: "ForwardFailed", message: "x" },
      want: [connected, { type: "Ready", status: "False", reason: "ForwardFailed", message: "x", lastTransitionTime: t1 }],
    },
    {
      name: "status flips: lastTransitionTime moves",
      before: [connected, ready],
      next: { type: "Connected", status: "False", reason: "KeepaliveTimeout", message: "no answer to 3 keepalives" },
      want: [
        { type: "Connected", status: "False", reason: "KeepaliveTimeout", message: "no answer to 3 keepalives", lastTransitionTime: t1 },
        ready,
      ],
    },
    {
      name: "reason and message change, status does not: lastTransitionTime stays",
      before: [{ ...ready, status: "False", reason: "ForwardPending", message: "a" }],
      next: { type: "Ready", status: "False", reason: "ForwardFailed", message: "b" },
      want: [{ type: "Ready", status: "False", reason: "ForwardFailed", message: "b", lastTransitionTime: t0 }],
    },
    {
      name: "Unknown → True is a flip",
      before: [{ ...ready, status: "Unknown", reason: "Starting" }],
      next: { type: "Ready", status: "True", reason: "AllForwardsActive", message: "" },
      want: [{ ...ready, lastTransitionTime: t1 }],
    },
    {
      name: "empty list",
      before: [],
      next: { type: "Connected", status: "True", reason: "Connected", message: "" },
      want: [{ ...connected, lastTransitionTime: t1 }],
    },
  ];
  for (const { name, before, next, want } of cases) {
    test(name, () => {
      const snapshot = structuredClone(before);
      const after = setCondition(before, next, t1);
      assert.deepEqual(after, want);
      assert.notEqual(after, before, "returns a new array");
      assert.deepEqual(before, snapshot, "leaves the input alone");
    });
  }
});

describe("findCondition / removeCondition", () => {
  test("finds by type", () => {
    assert.equal(findCondition([connected, ready], "Ready"), ready);
    assert.equal(findCondition([connected], "Ready"), undefined);
  });
  test("removes by type, returning a new array", () => {
    const before = [connected, ready];
    assert.deepEqual(removeCondition(before, "Connected"), [ready]);
    assert.deepEqual(removeCondition(before, "Conflict"), before);
    assert.equal(before.length, 2);
  });
});
