import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BASE_WINDOW, decideWindow, topUp, WindowBudget, type WindowState } from "../../src/ssh/window/policy.ts";

const MiB = 1024 * 1024;
const state = (s: Partial<WindowState>): WindowState => ({
  periodWindow: s.target ?? BASE_WINDOW,
  target: BASE_WINDOW,
  remaining: BASE_WINDOW,
  buffered: 0,
  consumed: 0,
  elapsedMs: 0,
  delivered: 100 * MiB,
  rttMs: 50,
  budgetLeft: 256 * MiB,
  max: 16 * MiB,
  ...s,
});

describe("decideWindow", () => {
  const table: Array<{ name: string; s: WindowState; target: number; adjust: number; restart: boolean }> = [
    { name: "a full window, mid-measurement: nothing to do", s: state({ elapsedMs: 10 }), target: 2 * MiB, adjust: 0, restart: false },
    { name: "LAN, at the base window, half used: ssh2 tops it up itself", s: state({ remaining: 1 * MiB, rttMs: 0.3, elapsedMs: 0.1 }), target: 2 * MiB, adjust: 0, restart: false },
    { name: "long link, at the base window, under ¾: topped up early (ssh2 would wait for half)", s: state({ remaining: 1.25 * MiB, elapsedMs: 10 }), target: 2 * MiB, adjust: 0.75 * MiB, restart: false },
    { name: "long link but maxWindow 2MiB (OpenSSH's behaviour): ssh2's top-up only", s: state({ remaining: 1.25 * MiB, elapsedMs: 10, max: 2 * MiB }), target: 2 * MiB, adjust: 0, restart: false },
    {
      name: "50 ms link, the reader took 1.5 MiB in a round trip (the window was the limit): double and top up",
      s: state({ remaining: 1 * MiB, consumed: 1.5 * MiB, elapsedMs: 50 }),
      target: 4 * MiB,
      adjust: 3 * MiB,
      restart: true,
    },
    {
      name: "a round trip passed with less than half a window taken: the link or the sender was the limit",
      s: state({ remaining: 1.5 * MiB, consumed: 0.9 * MiB, elapsedMs: 55 }),
      target: 2 * MiB,
      adjust: 0,
      restart: true,
    },
    {
      name: "a long idle spell counts as its rate per round trip, not its total",
      s: state({ remaining: 1 * MiB, consumed: 1.5 * MiB, elapsedMs: 500 }),
      target: 2 * MiB,
      adjust: 1 * MiB,
      restart: true,
    },
    {
      name: "the first few MiB of a channel never grow it (the kernel's socket buffers hide a stalled reader)",
      s: state({ remaining: 1 * MiB, consumed: 2 * MiB, elapsedMs: 50, delivered: 4 * MiB }),
      target: 2 * MiB,
      adjust: 1 * MiB,
      restart: true,
    },
    { name: "grown window under ¾: topped up early", s: state({ target: 8 * MiB, remaining: 5 * MiB, elapsedMs: 10 }), target: 8 * MiB, adjust: 3 * MiB, restart: false },
    { name: "grown window above ¾: no adjust", s: state({ target: 8 * MiB, remaining: 7 * MiB, elapsedMs: 10 }), target: 8 * MiB, adjust: 0, restart: false },
    {
      name: "what the reader still holds counts against the window: never advertise more than target",
      s: state({ target: 8 * MiB, remaining: 3 * MiB, buffered: 2 * MiB, elapsedMs: 10 }),
      target: 8 * MiB,
      adjust: 3 * MiB,
      restart: false,
    },
    {
      name: "never past the per-channel cap",
      s: state({ target: 16 * MiB, remaining: 1 * MiB, consumed: 15 * MiB, elapsedMs: 50 }),
      target: 16 * MiB,
      adjust: 15 * MiB,
      restart: true,
    },
    {
      name: "LAN (RTT 0.2 ms): a bigger window cannot pay, it stays at the base",
      s: state({ remaining: 1 * MiB, consumed: 1.5 * MiB, elapsedMs: 0.2, rttMs: 0.2 }),
      target: 2 * MiB,
      adjust: 0,
      restart: true,
    },
    { name: "RTT unknown: no growth, no measurement", s: state({ remaining: 1 * MiB, consumed: 1.5 * MiB, elapsedMs: 50, rttMs: undefined }), target: 2 * MiB, adjust: 0, restart: false },
    {
      name: "50 ms link: growth goes on to the cap (512 MiB/s × 50 ms = 25 MiB > 16)",
      s: state({ target: 8 * MiB, remaining: 6 * MiB, consumed: 6 * MiB, elapsedMs: 50 }),
      target: 16 * MiB,
      adjust: 10 * MiB,
      restart: true,
    },
    {
      name: "20 ms link: 10 MiB is all a window can use (512 MiB/s × 20 ms)",
      s: state({ target: 8 * MiB, remaining: 6 * MiB, consumed: 6 * MiB, rttMs: 20, elapsedMs: 20 }),
      target: 10 * MiB,
      adjust: 4 * MiB,
      restart: true,
    },
    {
      name: "5 ms (metro, or a loopback round trip on a busy event loop): 2.5 MiB is not worth growing for",
      s: state({ remaining: 1 * MiB, consumed: 1.5 * MiB, rttMs: 5, elapsedMs: 5 }),
      target: 2 * MiB,
      adjust: 0,
      restart: true,
    },
    {
      name: "the budget is spent: no growth, a grown window is still topped up",
      s: state({ target: 4 * MiB, remaining: 1 * MiB, consumed: 3 * MiB, budgetLeft: 0, elapsedMs: 50 }),
      target: 4 * MiB,
      adjust: 3 * MiB,
      restart: true,
    },
    {
      name: "little budget left: grows only by that much",
      s: state({ target: 4 * MiB, remaining: 1 * MiB, consumed: 3 * MiB, budgetLeft: 1 * MiB, elapsedMs: 50 }),
      target: 5 * MiB,
      adjust: 4 * MiB,
      restart: true,
    },
    { name: "maxWindow 2MiB (OpenSSH's behaviour): never grows", s: state({ remaining: 1 * MiB, consumed: 1.5 * MiB, elapsedMs: 50, max: 2 * MiB }), target: 2 * MiB, adjust: 0, restart: true },
  ];
  for (const row of table) {
    it(row.name, () => {
      const { target, adjust, restart } = decideWindow(row.s);
      assert.deepEqual({ target, adjust, restart }, { target: row.target, adjust: row.adjust, restart: row.restart });
    });
  }

  it("the round trip after a growth is measured against the window before it (the growth reaches the link a round trip later)", () => {
    // Grown 2 → 4 MiB: the next measurement's window is still 2 MiB.
    const grown = decideWindow(state({ remaining: 1 * MiB, consumed: 1.5 * MiB, elapsedMs: 50 }));
    assert.deepEqual([grown.target, grown.periodWindow], [4 * MiB, 2 * MiB]);
    // In it the reader took 1.5 MiB: more than half of 2 MiB, so it doubles again (slow start).
    const again = decideWindow(state({ target: 4 * MiB, periodWindow: grown.periodWindow, remaining: 3 * MiB, consumed: 1.5 * MiB, elapsedMs: 50 }));
    assert.deepEqual([again.target, again.periodWindow], [8 * MiB, 4 * MiB]);
    // Measured against a 4 MiB window, 1.5 MiB is not enough: it stays, and the window in effect is 8 MiB.
    const stays = decideWindow(state({ target: 8 * MiB, periodWindow: 4 * MiB, remaining: 7 * MiB, consumed: 1.5 * MiB, elapsedMs: 50 }));
    assert.deepEqual([stays.target, stays.periodWindow], [8 * MiB, 8 * MiB]);
    // Mid-measurement nothing changes.
    assert.equal(decideWindow(state({ target: 8 * MiB, periodWindow: 4 * MiB, elapsedMs: 10 })).periodWindow, 4 * MiB);
  });

  it("topUp: nothing at the base window; a grown one back to target counting what is buffered", () => {
    assert.equal(topUp(BASE_WINDOW, 0, 0), 0);
    assert.equal(topUp(8 * MiB, 6 * MiB + 1, 0), 0);
    assert.equal(topUp(8 * MiB, 1 * MiB, 1 * MiB), 6 * MiB);
    assert.equal(topUp(8 * MiB, 0, 8 * MiB), 0);
  });

  it("a fake clock: a fast reader on a 50 ms link grows 2 → 16 MiB in three round trips, a stalled one never grows", () => {
    let target = BASE_WINDOW;
    const budget = new WindowBudget(256 * MiB);
    let delivered = 8 * MiB;
    for (let rtt = 0; rtt < 3; rtt++) {
      // Each round trip the reader takes what the window let the peer send: ¾ of it or more.
      const consumed = (target * 3) / 4;
      delivered += consumed;
      const d = decideWindow(state({ target, remaining: target / 4, consumed, elapsedMs: 50, delivered, budgetLeft: budget.left }));
      budget.take(d.target - target);
      target = d.target;
    }
    assert.equal(target, 16 * MiB);
    assert.equal(budget.left, 256 * MiB - 14 * MiB);
    budget.release(target - BASE_WINDOW);
    assert.equal(budget.left, 256 * MiB);
    // A stalled reader is never asked with what it did not take (the caller counts only bytes taken
    // without backpressure): nothing consumed in a round trip, nothing grown.
    assert.equal(decideWindow(state({ remaining: 0, consumed: 0, elapsedMs: 50 })).target, BASE_WINDOW);
  });

  it("WindowBudget.resize keeps what is granted", () => {
    const budget = new WindowBudget(10 * MiB);
    budget.take(4 * MiB);
    budget.resize(2 * MiB);
    assert.equal(budget.left, -2 * MiB);
    budget.release(4 * MiB);
    assert.equal(budget.left, 2 * MiB);
  });
});
