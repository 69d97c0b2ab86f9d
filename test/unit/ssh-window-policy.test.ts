import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { kernelSocketAllowance } from "../../src/ssh/window/autotune.ts";
import { BASE_WINDOW, decideWindow, REFILL_STEP, SOCKET_BUFFER_ALLOWANCE, topUp, WindowBudget, type WindowState } from "../../src/ssh/window/policy.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const state = (s: Partial<WindowState>): WindowState => ({
  periodWindow: s.opened ?? s.target ?? BASE_WINDOW,
  target: BASE_WINDOW,
  opened: s.target ?? BASE_WINDOW,
  arrived: 0,
  allowance: SOCKET_BUFFER_ALLOWANCE,
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
  const table: Array<{ name: string; s: WindowState; target: number; opened: number; adjust: number; restart: boolean }> = [
    { name: "a full window, mid-measurement: nothing to do", s: state({ elapsedMs: 10 }), target: 2 * MiB, opened: 2 * MiB, adjust: 0, restart: false },
    { name: "LAN, at the base window, half used: ssh2 tops it up itself", s: state({ remaining: 1 * MiB, rttMs: 0.3, elapsedMs: 0.1 }), target: 2 * MiB, opened: 2 * MiB, adjust: 0, restart: false },
    {
      name: "long link, at the base window, a step used: topped up at once (ssh2 would wait for half)",
      s: state({ remaining: 2 * MiB - REFILL_STEP, elapsedMs: 10 }),
      target: 2 * MiB,
      opened: 2 * MiB,
      adjust: REFILL_STEP,
      restart: false,
    },
    { name: "long link but maxWindow 2MiB (OpenSSH's behaviour): ssh2's top-up only", s: state({ remaining: 1.25 * MiB, elapsedMs: 10, max: 2 * MiB }), target: 2 * MiB, opened: 2 * MiB, adjust: 0, restart: false },
    {
      name: "50 ms link, the reader took 1.5 MiB in a round trip (the window was the limit): the target doubles, the window opens by the packet",
      s: state({ remaining: 1 * MiB, consumed: 1.5 * MiB, elapsedMs: 50, arrived: 32 * KiB }),
      target: 4 * MiB,
      opened: 2 * MiB + 32 * KiB,
      adjust: 1 * MiB + 32 * KiB,
      restart: true,
    },
    {
      name: "a round trip passed with less than half a window taken: the link or the sender was the limit",
      s: state({ remaining: 1.5 * MiB, consumed: 0.9 * MiB, elapsedMs: 55 }),
      target: 2 * MiB,
      opened: 2 * MiB,
      adjust: 0.5 * MiB,
      restart: true,
    },
    {
      name: "a long idle spell counts as its rate per round trip, not its total",
      s: state({ remaining: 1 * MiB, consumed: 1.5 * MiB, elapsedMs: 500 }),
      target: 2 * MiB,
      opened: 2 * MiB,
      adjust: 1 * MiB,
      restart: true,
    },
    {
      name: "the first few MiB of a channel never grow it (the kernel's socket buffers hide a stalled reader)",
      s: state({ remaining: 1 * MiB, consumed: 2 * MiB, elapsedMs: 50, delivered: 4 * MiB, arrived: 32 * KiB }),
      target: 2 * MiB,
      opened: 2 * MiB,
      adjust: 1 * MiB,
      restart: true,
    },
    {
      name: "the allowance is the caller's (a host with bigger socket buffers): 8 MiB delivered is not enough under a 10 MiB one",
      s: state({ remaining: 1 * MiB, consumed: 2 * MiB, elapsedMs: 50, delivered: 8 * MiB, allowance: 10 * MiB }),
      target: 2 * MiB,
      opened: 2 * MiB,
      adjust: 1 * MiB,
      restart: true,
    },
    { name: "grown window, a step used: topped up", s: state({ target: 8 * MiB, remaining: 8 * MiB - REFILL_STEP, elapsedMs: 10 }), target: 8 * MiB, opened: 8 * MiB, adjust: REFILL_STEP, restart: false },
    { name: "grown window, less than a step used: no adjust", s: state({ target: 8 * MiB, remaining: 8 * MiB - REFILL_STEP + 1, elapsedMs: 10 }), target: 8 * MiB, opened: 8 * MiB, adjust: 0, restart: false },
    {
      name: "what the reader still holds counts against the window: never advertise more than is open",
      s: state({ target: 8 * MiB, remaining: 3 * MiB, buffered: 2 * MiB, elapsedMs: 10 }),
      target: 8 * MiB,
      opened: 8 * MiB,
      adjust: 3 * MiB,
      restart: false,
    },
    {
      name: "a grown target opens as data arrives: each byte taken opens one more (no jump for sshd to read ahead into)",
      s: state({ target: 16 * MiB, opened: 4 * MiB, remaining: 3 * MiB, arrived: 32 * KiB, elapsedMs: 10 }),
      target: 16 * MiB,
      opened: 4 * MiB + 32 * KiB,
      adjust: 1 * MiB + 32 * KiB,
      restart: false,
    },
    {
      name: "the window never opens past the target",
      s: state({ target: 4 * MiB, opened: 4 * MiB - 16 * KiB, remaining: 4 * MiB - 16 * KiB, arrived: 32 * KiB, elapsedMs: 10 }),
      target: 4 * MiB,
      opened: 4 * MiB,
      adjust: 0,
      restart: false,
    },
    {
      name: "never past the per-channel cap",
      s: state({ target: 16 * MiB, remaining: 1 * MiB, consumed: 15 * MiB, elapsedMs: 50, arrived: 32 * KiB }),
      target: 16 * MiB,
      opened: 16 * MiB,
      adjust: 15 * MiB,
      restart: true,
    },
    {
      name: "LAN (RTT 0.2 ms): a bigger window cannot pay, it stays at the base",
      s: state({ remaining: 1 * MiB, consumed: 1.5 * MiB, elapsedMs: 0.2, rttMs: 0.2, arrived: 32 * KiB }),
      target: 2 * MiB,
      opened: 2 * MiB,
      adjust: 0,
      restart: true,
    },
    { name: "RTT unknown: no growth, no measurement", s: state({ remaining: 1 * MiB, consumed: 1.5 * MiB, elapsedMs: 50, rttMs: undefined }), target: 2 * MiB, opened: 2 * MiB, adjust: 0, restart: false },
    {
      name: "50 ms link: growth goes on to the cap (512 MiB/s × 50 ms = 25 MiB > 16)",
      s: state({ target: 8 * MiB, remaining: 6 * MiB, consumed: 6 * MiB, elapsedMs: 50 }),
      target: 16 * MiB,
      opened: 8 * MiB,
      adjust: 2 * MiB,
      restart: true,
    },
    {
      name: "20 ms link: 10 MiB is all a window can use (512 MiB/s × 20 ms)",
      s: state({ target: 8 * MiB, remaining: 6 * MiB, consumed: 6 * MiB, rttMs: 20, elapsedMs: 20 }),
      target: 10 * MiB,
      opened: 8 * MiB,
      adjust: 2 * MiB,
      restart: true,
    },
    {
      name: "the target doubles what is open, not itself: a window still opening does not run the target ahead",
      s: state({ target: 16 * MiB, opened: 4 * MiB, periodWindow: 4 * MiB, remaining: 2 * MiB, consumed: 3 * MiB, elapsedMs: 50, max: 64 * MiB }),
      target: 16 * MiB,
      opened: 4 * MiB,
      adjust: 2 * MiB,
      restart: true,
    },
    {
      name: "5 ms (metro, or a loopback round trip on a busy event loop): 2.5 MiB is not worth growing for",
      s: state({ remaining: 1 * MiB, consumed: 1.5 * MiB, rttMs: 5, elapsedMs: 5 }),
      target: 2 * MiB,
      opened: 2 * MiB,
      adjust: 0,
      restart: true,
    },
    {
      name: "the budget is spent: no growth, a grown window is still topped up",
      s: state({ target: 4 * MiB, remaining: 1 * MiB, consumed: 3 * MiB, budgetLeft: 0, elapsedMs: 50 }),
      target: 4 * MiB,
      opened: 4 * MiB,
      adjust: 3 * MiB,
      restart: true,
    },
    {
      name: "little budget left: grows only by that much",
      s: state({ target: 4 * MiB, remaining: 1 * MiB, consumed: 3 * MiB, budgetLeft: 1 * MiB, elapsedMs: 50 }),
      target: 5 * MiB,
      opened: 4 * MiB,
      adjust: 3 * MiB,
      restart: true,
    },
    { name: "maxWindow 2MiB (OpenSSH's behaviour): never grows", s: state({ remaining: 1 * MiB, consumed: 1.5 * MiB, elapsedMs: 50, max: 2 * MiB }), target: 2 * MiB, opened: 2 * MiB, adjust: 0, restart: true },
  ];
  for (const row of table) {
    it(row.name, () => {
      const { target, opened, adjust, restart } = decideWindow(row.s);
      assert.deepEqual({ target, opened, adjust, restart }, { target: row.target, opened: row.opened, adjust: row.adjust, restart: row.restart });
    });
  }

  it("each measurement is judged against what was open when it began (what opens during it reaches the link a round trip later)", () => {
    // The target grows 2 → 4 MiB; the next measurement's window is the 2 MiB open now.
    const grown = decideWindow(state({ remaining: 1 * MiB, consumed: 1.5 * MiB, elapsedMs: 50 }));
    assert.deepEqual([grown.target, grown.opened, grown.periodWindow], [4 * MiB, 2 * MiB, 2 * MiB]);
    // Meanwhile arrivals opened it to 4 MiB; the reader took 1.5 MiB, more than half of 2: the target doubles again.
    const again = decideWindow(state({ target: 4 * MiB, opened: 4 * MiB, periodWindow: grown.periodWindow, remaining: 3 * MiB, consumed: 1.5 * MiB, elapsedMs: 50 }));
    assert.deepEqual([again.target, again.periodWindow], [8 * MiB, 4 * MiB]);
    // Measured against a 4 MiB window, 1.5 MiB is not enough: the target stays.
    const stays = decideWindow(state({ target: 8 * MiB, opened: 8 * MiB, periodWindow: 4 * MiB, remaining: 7 * MiB, consumed: 1.5 * MiB, elapsedMs: 50 }));
    assert.deepEqual([stays.target, stays.periodWindow], [8 * MiB, 8 * MiB]);
    // Mid-measurement nothing changes.
    assert.equal(decideWindow(state({ target: 8 * MiB, opened: 8 * MiB, periodWindow: 4 * MiB, elapsedMs: 10 })).periodWindow, 4 * MiB);
  });

  it("topUp: nothing at the base window off a long link; an open one back to full once a step is used, counting what is buffered", () => {
    assert.equal(topUp(BASE_WINDOW, 0, 0), 0);
    assert.equal(topUp(8 * MiB, 8 * MiB - REFILL_STEP + 1, 0), 0);
    assert.equal(topUp(8 * MiB, 8 * MiB - REFILL_STEP, 0), REFILL_STEP);
    assert.equal(topUp(8 * MiB, 1 * MiB, 1 * MiB), 6 * MiB);
    assert.equal(topUp(8 * MiB, 0, 8 * MiB), 0);
    assert.equal(topUp(BASE_WINDOW, 1 * MiB, 0, true), 1 * MiB);
  });

  it("a fake clock and a 50 ms link: a fast reader opens 2 → 16 MiB in a few round trips, 32 KiB at a time, never promising more than is open", () => {
    // The peer sends, each round trip, all the window it knew of when the round trip began (what we
    // grant during one reaches it for the next), in 32 KiB packets spread over the round trip; the
    // reader takes everything at once. The channel has already delivered past the allowance.
    const PACKET = 32 * KiB;
    const rtt = 50;
    const budget = new WindowBudget(256 * MiB);
    let target = BASE_WINDOW;
    let opened = BASE_WINDOW;
    let periodWindow = BASE_WINDOW;
    let granted = BASE_WINDOW; // all the window ever granted
    let received = 0;
    let since = 0;
    let takenAtStart = 0;
    const openedByRound: number[] = [];
    for (let round = 0; round < 8; round++) {
      const sendable = granted - received; // what the peer may send in this round trip
      const packets = Math.floor(sendable / PACKET);
      for (let i = 0; i < packets; i++) {
        const now = round * rtt + ((i + 1) * rtt) / (packets + 1);
        received += PACKET;
        const d = decideWindow({
          target,
          opened,
          arrived: PACKET,
          remaining: granted - received,
          buffered: 0,
          consumed: received - takenAtStart,
          periodWindow,
          elapsedMs: now - since,
          delivered: 8 * MiB + received,
          rttMs: rtt,
          budgetLeft: budget.left,
          max: 16 * MiB,
          allowance: SOCKET_BUFFER_ALLOWANCE,
        });
        assert.ok(d.opened - opened <= PACKET, `the window opened by ${d.opened - opened} bytes at once`);
        assert.ok(d.opened <= d.target && d.target <= 16 * MiB);
        budget.take(d.target - target);
        target = d.target;
        opened = d.opened;
        periodWindow = d.periodWindow;
        if (d.restart) {
          since = now;
          takenAtStart = received;
        }
        granted += d.adjust;
        assert.ok(granted - received <= opened, "never promise more than is open");
      }
      openedByRound.push(opened);
    }
    assert.equal(opened, 16 * MiB, `opened per round trip: ${openedByRound.map((x) => x / MiB).join(", ")} MiB`);
    assert.ok(openedByRound.indexOf(16 * MiB) <= 5, `16 MiB reached late: ${openedByRound.map((x) => x / MiB).join(", ")} MiB`);
    assert.equal(budget.left, 256 * MiB - 14 * MiB);
    // A stalled reader is never asked with what it did not take (the caller counts only bytes taken
    // without backpressure): nothing consumed in a round trip, nothing grown.
    assert.equal(decideWindow(state({ remaining: 0, consumed: 0, elapsedMs: 50 })).target, BASE_WINDOW);
  });

  it("kernelSocketAllowance: tcp_wmem's maximum plus tcp_rmem's default plus 512 KiB; the fallback when /proc cannot be read", () => {
    const files: Record<string, string> = { "/proc/sys/net/ipv4/tcp_wmem": "4096\t16384\t4194304\n", "/proc/sys/net/ipv4/tcp_rmem": "4096\t131072\t33554432\n" };
    assert.equal(kernelSocketAllowance((path) => files[path]!), 4 * MiB + 128 * KiB + 512 * KiB);
    assert.equal(
      kernelSocketAllowance(() => {
        throw new Error("ENOENT");
      }),
      SOCKET_BUFFER_ALLOWANCE,
    );
    assert.equal(kernelSocketAllowance(() => "garbage"), SOCKET_BUFFER_ALLOWANCE);
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
