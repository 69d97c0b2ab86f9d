import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Backoff, backoffDelay } from "../../src/reconcile/backoff.ts";
import { prng as seededRandom } from "../helpers/prng.ts";

const constant = (value: number) => () => value;
const min = 1000;
const max = 60000;

describe("backoffDelay (equal jitter)", () => {
  // step = min(max, min·2^attempt); delay = clamp(step/2 + r·step/2, min, max)
  const cases: Array<{ attempt: number; random: number; want: number }> = [
    { attempt: 0, random: 0, want: 1000 }, // 500 raised to the floor
    { attempt: 0, random: 0.999, want: 1000 },
    { attempt: 1, random: 0, want: 1000 },
    { attempt: 1, random: 0.5, want: 1500 },
    { attempt: 2, random: 0, want: 2000 },
    { attempt: 2, random: 0.5, want: 3000 },
    { attempt: 3, random: 0.25, want: 5000 },
    { attempt: 5, random: 0, want: 16000 },
    { attempt: 6, random: 0, want: 30000 }, // step capped at 60000
    { attempt: 6, random: 0.5, want: 45000 },
    { attempt: 40, random: 0.9999999, want: 60000 },
    { attempt: 5000, random: 0.5, want: 45000 }, // 2^5000 is Infinity: still capped, never NaN
  ];
  for (const { attempt, random, want } of cases) {
    test(`attempt ${attempt}, random ${random} → ${want} ms`, () => {
      assert.equal(backoffDelay(attempt, min, max, constant(random)), want);
    });
  }

  test("stays within [min, max] for every attempt (seeded)", () => {
    const random = seededRandom(42);
    for (let attempt = 0; attempt < 40; attempt += 1) {
      for (let sample = 0; sample < 200; sample += 1) {
        const delay = backoffDelay(attempt, min, max, random);
        assert.ok(delay >= min && delay <= max, `attempt ${attempt}: ${delay} outside [${min}, ${max}]`);
      }
    }
  });

  test("grows: each attempt's floor is at least the previous attempt's floor, doubling until the cap", () => {
    const floors = Array.from({ length: 10 }, (_, attempt) => backoffDelay(attempt, min, max, constant(0)));
    assert.deepEqual(floors, [1000, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000]);
    const ceilings = Array.from({ length: 10 }, (_, attempt) => backoffDelay(attempt, min, max, constant(0.99999999)));
    assert.deepEqual(ceilings, [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000, 60000]);
  });

  test("spreads retries at the cap (no lockstep), within [max/2, max]", () => {
    const random = seededRandom(7);
    const delays = Array.from({ length: 100 }, () => backoffDelay(30, min, max, random));
    assert.ok(new Set(delays).size > 50, "delays are spread");
    assert.ok(delays.every((delay) => delay >= max / 2 && delay <= max));
  });

  test("the same seed gives the same delays", () => {
    const first = seededRandom(1);
    const second = seededRandom(1);
    for (let attempt = 0; attempt < 10; attempt += 1) {
      assert.equal(backoffDelay(attempt, min, max, first), backoffDelay(attempt, min, max, second));
    }
  });

  test("min = max gives a fixed delay; min = 0 gives 0", () => {
    assert.equal(backoffDelay(7, 500, 500, constant(0.3)), 500);
    assert.equal(backoffDelay(7, 0, 0, constant(0.3)), 0);
    assert.equal(backoffDelay(2000, 0, 10, constant(0.3)), 0);
  });

  const invalid: Array<{ name: string; attempt: number; min: number; max: number; message: RegExp }> = [
    { name: "negative attempt", attempt: -1, min, max, message: /attempt -1/ },
    { name: "fractional attempt", attempt: 1.5, min, max, message: /attempt 1\.5/ },
    { name: "max below min", attempt: 0, min: 10, max: 5, message: /min 10 and max 5/ },
    { name: "negative min", attempt: 0, min: -1, max: 5, message: /min -1/ },
    { name: "NaN min", attempt: 0, min: Number.NaN, max: 5, message: /min NaN/ },
  ];
  for (const { name, attempt, min: low, max: high, message } of invalid) {
    test(`rejects ${name}`, () => {
      assert.throws(() => backoffDelay(attempt, low, high, constant(0)), (error: unknown) => {
        assert.ok(error instanceof RangeError);
        assert.match(error.message, message);
        return true;
      });
    });
  }
});

describe("Backoff", () => {
  test("counts attempts, grows, caps, and resets", () => {
    const backoff = new Backoff({ min: 100, max: 1000 });
    const floor = constant(0);
    assert.equal(backoff.attempt, 0);
    const delays = Array.from({ length: 7 }, () => backoff.next(floor));
    assert.deepEqual(delays, [100, 100, 200, 400, 500, 500, 500]);
    assert.equal(backoff.attempt, 7);
    backoff.reset();
    assert.equal(backoff.attempt, 0);
    assert.equal(backoff.next(floor), 100);
  });

  test("with seeded randomness every delay stays in bounds", () => {
    const backoff = new Backoff({ min: 250, max: 8000 });
    const random = seededRandom(2025);
    for (let index = 0; index < 100; index += 1) {
      const delay = backoff.next(random);
      assert.ok(delay >= 250 && delay <= 8000, `${delay}`);
    }
  });

  test("rejects max below min", () => {
    assert.throws(() => new Backoff({ min: 10, max: 1 }), RangeError);
  });
});
