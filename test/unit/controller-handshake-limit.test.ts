// The adaptive handshake limit (AIMD with a learnt ceiling), as a table of steps.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  afterHandshakeLost,
  afterHandshakeSuccess,
  initialHandshakeLimit,
  type HandshakeLimitOptions,
  type HandshakeLimitState,
} from "../../src/controller/handshake-limit.ts";

const OPTIONS: HandshakeLimitOptions = { max: 8, min: 1, probeAfter: 4 };

type Step = { ok: true } | { lost: { underWay: number; epoch?: number } };
const ok: Step = { ok: true };
const lost = (underWay: number, epoch?: number): Step => ({ lost: epoch === undefined ? { underWay } : { underWay, epoch } });
const oks = (n: number): Step[] => Array.from({ length: n }, () => ok);

function play(steps: Step[], start: HandshakeLimitState = initialHandshakeLimit(OPTIONS)): HandshakeLimitState {
  let state = start;
  for (const step of steps) {
    state =
      "ok" in step
        ? afterHandshakeSuccess(state, OPTIONS)
        : afterHandshakeLost(state, { underWay: step.lost.underWay, startedInEpoch: step.lost.epoch ?? state.epoch }, OPTIONS);
  }
  return state;
}

describe("handshake limit", () => {
  const cases: Array<{ name: string; steps: Step[]; limit: number; ceiling: number }> = [
    { name: "nothing happened: the configured limit", steps: [], limit: 8, ceiling: 8 },
    { name: "successes at the limit never exceed it", steps: oks(50), limit: 8, ceiling: 8 },
    { name: "a loss at 6 under way (dropbear's cap is 5): halved, ceiling one below the cap", steps: [lost(6)], limit: 4, ceiling: 4 },
    {
      name: "the rest of the same burst (7th, 8th, started before the decrease) does not halve again",
      steps: [lost(6), lost(7, 0), lost(8, 0)],
      limit: 4,
      ceiling: 4,
    },
    { name: "a loss at 8 under way: halved to 4, ceiling 6", steps: [lost(8)], limit: 4, ceiling: 6 },
    { name: "grows back by one per round of successes, up to the ceiling", steps: [lost(8), ...oks(4)], limit: 5, ceiling: 6 },
    { name: "...and stays there", steps: [lost(8), ...oks(4), ...oks(5), ...oks(3)], limit: 6, ceiling: 6 },
    { name: "a long run of successes at the ceiling probes one higher", steps: [lost(6), ...oks(4)], limit: 5, ceiling: 5 },
    { name: "a lone loss (nothing else under way) halves but learns no ceiling", steps: [lost(1)], limit: 4, ceiling: 8 },
    { name: "a later burst halves again", steps: [lost(6), lost(4)], limit: 2, ceiling: 2 },
    { name: "never below min", steps: [lost(2), lost(2), lost(2), lost(2), lost(2)], limit: 1, ceiling: 1 },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const state = play(c.steps);
      assert.equal(state.limit, c.limit, "limit");
      assert.equal(state.ceiling, c.ceiling, "ceiling");
    });
  }
});

describe("HandshakeLimiter adapts per server", () => {
  test("a burst where the server drops the 6th to 8th: the limit falls to 4 for that server only, and later bursts stay under it", async () => {
    const { HandshakeLimiter } = await import("../../src/controller/handshake-limiter.ts");
    const { ConnectionError } = await import("../../src/ssh/errors.ts");
    const limiter = new HandshakeLimiter(8);
    let underWay = 0;
    let peak = 0;
    const release: Array<() => void> = [];
    const attempt = (server: string) =>
      limiter.run(server, async () => {
        underWay++;
        peak = Math.max(peak, underWay);
        const position = underWay;
        await new Promise<void>((resolve) => release.push(resolve));
        underWay--;
        if (server === "dropbear" && position > 5) throw new ConnectionError("ConnectionLost", "Connection to dropbear:22 closed before the handshake");
      });
    // Let every task that can start start, then answer all of them at once: one burst at a time.
    const pump = async (all: Promise<unknown>[]): Promise<void> => {
      let done = false;
      void Promise.allSettled(all).then(() => (done = true));
      while (!done) {
        await new Promise((r) => setImmediate(r));
        for (const r of release.splice(0)) r();
      }
    };
    const burst = Array.from({ length: 8 }, () => attempt("dropbear").catch(() => "lost"));
    await pump(burst);
    const outcomes = await Promise.all(burst);
    assert.equal(outcomes.filter((o) => o === "lost").length, 3);
    assert.equal(limiter.limitFor("dropbear"), 4);
    assert.equal(limiter.limitFor("openssh"), 8);
    peak = 0;
    const next = Array.from({ length: 20 }, () => attempt("dropbear"));
    await pump(next);
    await Promise.all(next);
    assert.ok(peak <= 4, `peak ${peak}`);
    assert.equal(limiter.limitFor("dropbear"), 4);
  });
});
