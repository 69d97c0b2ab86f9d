import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MAX_DURATION_MS, parseDuration } from "../../src/manifest/duration.ts";

describe("parseDuration", () => {
  const valid: Array<[number | string, number]> = [
    [0, 0],
    [30000, 30000],
    [MAX_DURATION_MS, MAX_DURATION_MS],
    ["0s", 0],
    ["500ms", 500],
    ["30s", 30_000],
    ["2m", 120_000],
    ["1h", 3_600_000],
    ["1.5s", 1500],
    ["0.25m", 15_000],
    ["1.0004s", 1000], // rounded to the nearest millisecond
    ["0.5ms", 1],
  ];
  for (const [input, ms] of valid) {
    it(`${JSON.stringify(input)} → ${ms} ms`, () => assert.equal(parseDuration(input), ms));
  }

  const invalid: Array<[number | string, RegExp]> = [
    [-1, /duration -1 must be a whole, non-negative number of milliseconds/],
    [1.5, /duration 1.5 must be a whole/],
    [Number.NaN, /duration NaN must be a whole/],
    [Number.POSITIVE_INFINITY, /duration Infinity must be a whole/],
    [MAX_DURATION_MS + 1, /duration 2147483648 is too long: at most 2147483647ms/],
    ["9000h", /duration "9000h" is too long/],
    ["", /invalid duration "": expected milliseconds or a number with a unit ms, s, m or h/],
    ["30", /invalid duration "30"/],
    ["30 s", /invalid duration "30 s"/],
    ["30sec", /invalid duration "30sec"/],
    ["-5s", /invalid duration "-5s"/],
    [".5s", /invalid duration ".5s"/],
    ["1d", /invalid duration "1d"/],
    ["1h30m", /invalid duration "1h30m"/],
    ["5S", /invalid duration "5S"/],
  ];
  for (const [input, message] of invalid) {
    it(`rejects ${typeof input === "string" ? JSON.stringify(input) : String(input)}`, () => {
      assert.throws(() => parseDuration(input), (error: unknown) => error instanceof RangeError && message.test(error.message));
    });
  }
});
