import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BASE_WINDOW, decideWindow, WindowBudget, type WindowState } from "../../src/ssh/window/policy.ts";

const MiB = 1024 * 1024;
const state = (s: Partial<WindowState>): WindowState => ({ target: BASE_WINDOW, remaining: BASE_WINDOW, sinceGrowthMs: 0, rttMs: 50, budgetLeft: 256 * MiB, max: 16 * MiB, ...s });

describe("decideWindow", () => {
  const table: Array<{ name: string; s: WindowState; target: number; adjust: number }> = [
    { name: "a full window: nothing to do", s: state({}), target: 2 * MiB, adjust: 0 },
    { name: "at the base window, half used: ssh2 tops it up itself", s: state({ remaining: 1 * MiB }), target: 2 * MiB, adjust: 0 },
    { name: "50 ms link, the peer nearly ran dry within a round trip: double and top up", s: state({ remaining: 100 * 1024, sinceGrowthMs: 40 }), target: 4 * MiB, adjust: 4 * MiB - 100 * 1024 },
    { name: "grown window, ¾ full: topped up early", s: state({ target: 8 * MiB, remaining: 5 * MiB }), target: 8 * MiB, adjust: 3 * MiB },
    { name: "grown window, more than ¾ full: no adjust", s: state({ target: 8 * MiB, remaining: 7 * MiB }), target: 8 * MiB, adjust: 0 },
    { name: "never past the per-channel cap", s: state({ target: 16 * MiB, remaining: 1 * MiB, sinceGrowthMs: 10 }), target: 16 * MiB, adjust: 15 * MiB },
    { name: "LAN (RTT 0.2 ms): a bigger window cannot pay, it stays at the base", s: state({ remaining: 10 * 1024, rttMs: 0.2 }), target: 2 * MiB, adjust: 0 },
    { name: "RTT unknown: no growth", s: state({ remaining: 10 * 1024, rttMs: undefined }), target: 2 * MiB, adjust: 0 },
    { name: "ran dry slowly (after several round trips): the reader, not the window, was the limit", s: state({ remaining: 10 * 1024, sinceGrowthMs: 500 }), target: 2 * MiB, adjust: 0 },
    { name: "20 ms link: growth stops where 2 × 1 GiB/s × RTT is reached (40 MiB > cap 16)", s: state({ target: 8 * MiB, remaining: 512 * 1024, rttMs: 20, sinceGrowthMs: 20 }), target: 16 * MiB, adjust: 16 * MiB - 512 * 1024 },
    { name: "5 ms link: 10 MiB is all a window can use", s: state({ target: 8 * MiB, remaining: 512 * 1024, rttMs: 5, sinceGrowthMs: 5 }), target: 10 * MiB, adjust: 10 * MiB - 512 * 1024 },
    { name: "the budget is spent: no growth, a grown window is still topped up", s: state({ target: 4 * MiB, remaining: 100 * 1024, budgetLeft: 0, sinceGrowthMs: 10 }), target: 4 * MiB, adjust: 4 * MiB - 100 * 1024 },
    { name: "little budget left: grows only by that much", s: state({ target: 4 * MiB, remaining: 100 * 1024, budgetLeft: 1 * MiB, sinceGrowthMs: 10 }), target: 5 * MiB, adjust: 5 * MiB - 100 * 1024 },
  ];
  for (const row of table) {
    it(row.name, () => assert.deepEqual(decideWindow(row.s), { target: row.target, adjust: row.adjust }));
  }

  it("a fake clock: a fast reader on a 50 ms link grows 2 → 16 MiB in three round trips, a stalled one never grows", () => {
    let target = BASE_WINDOW;
    const budget = new WindowBudget(256 * MiB);
    for (let rtt = 0; rtt < 3; rtt++) {
      // Each round trip the peer sends a whole window; it arrives before our top-up reaches it.
      const d = decideWindow(state({ target, remaining: 0, sinceGrowthMs: 50, budgetLeft: budget.left }));
      budget.take(d.target - target);
      target = d.target;
    }
    assert.equal(target, 16 * MiB);
    assert.equal(budget.left, 256 * MiB - 14 * MiB);
    budget.release(target - BASE_WINDOW);
    assert.equal(budget.left, 256 * MiB);
    // A stalled reader is never asked (the caller asks only when the reader took the data).
  });
});
