import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { balancedRounds, roundOrder, williamsRounds, williamsRow } from "../../bench/lib/order.ts";

/** How often each ordered pair (a right before b) is adjacent over one whole design. */
function adjacency(n: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let round = 0; round < williamsRounds(n); round++) {
    const row = williamsRow(n, round);
    for (let j = 1; j < row.length; j++) {
      const key = `${row[j - 1]}→${row[j]}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  return counts;
}

describe("bench round order (Williams design)", () => {
  test("the first rows for 8 contenders", () => {
    assert.deepEqual(williamsRow(8, 0), [0, 1, 7, 2, 6, 3, 5, 4]);
    assert.deepEqual(williamsRow(8, 1), [1, 2, 0, 3, 7, 4, 6, 5]);
    assert.deepEqual(williamsRow(8, 7), [7, 0, 6, 1, 5, 2, 4, 3]);
  });

  for (let n = 1; n <= 11; n++) {
    const rounds = williamsRounds(n);
    const times = n % 2 === 0 ? 1 : 2;

    test(`${n} contenders: every round runs each once`, () => {
      for (let round = 0; round < rounds; round++) {
        assert.deepEqual([...williamsRow(n, round)].sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i), `round ${round}`);
      }
    });

    test(`${n} contenders: each runs right after each other one ${times}× over ${rounds} rounds`, () => {
      const counts = adjacency(n);
      for (let a = 0; a < n; a++) {
        for (let b = 0; b < n; b++) {
          if (a !== b) assert.equal(counts.get(`${a}→${b}`) ?? 0, times, `${a}→${b}`);
        }
      }
      assert.equal([...counts.values()].reduce((s, c) => s + c, 0), rounds * (n - 1), "no contender follows itself");
    });

    test(`${n} contenders: each runs in each position ${times}×`, () => {
      for (let position = 0; position < n; position++) {
        const seen = new Map<number, number>();
        for (let round = 0; round < rounds; round++) {
          const i = williamsRow(n, round)[position]!;
          seen.set(i, (seen.get(i) ?? 0) + 1);
        }
        for (let i = 0; i < n; i++) assert.equal(seen.get(i), times, `contender ${i} in position ${position}`);
      }
    });
  }

  test("a plain rotation, which the bench used before, is not balanced", () => {
    // Rotating one order keeps each contender behind the same neighbour: 8 of the 56 pairs, 7× each.
    const n = 8;
    const pairs = new Set<string>();
    for (let round = 0; round < n; round++) {
      const row = Array.from({ length: n }, (_, i) => (i + round) % n);
      for (let j = 1; j < n; j++) pairs.add(`${row[j - 1]}→${row[j]}`);
    }
    assert.equal(pairs.size, n);
    assert.equal(adjacency(n).size, n * (n - 1));
  });

  test("rounds past one design start it again", () => {
    assert.deepEqual(williamsRow(8, 8), williamsRow(8, 0));
    assert.deepEqual(williamsRow(3, 6), williamsRow(3, 0));
    assert.deepEqual(williamsRow(3, 3), [...williamsRow(3, 0)].reverse());
  });

  test("roundOrder maps the design onto the items", () => {
    assert.deepEqual(roundOrder(["a", "b", "c", "d"], 0), ["a", "b", "d", "c"]);
    assert.deepEqual(roundOrder(["a", "b", "c", "d"], 1), ["b", "c", "a", "d"]);
    assert.deepEqual(roundOrder([], 3), []);
  });

  test("balancedRounds runs whole designs and at least as many rounds as asked", () => {
    assert.equal(balancedRounds(8, 5), 8);
    assert.equal(balancedRounds(8, 9), 16);
    assert.equal(balancedRounds(2, 5), 6);
    assert.equal(balancedRounds(3, 5), 6);
    assert.equal(balancedRounds(1, 5), 6);
  });

  test("rejects a count or round that is not a whole number", () => {
    assert.throws(() => williamsRow(0, 0), RangeError);
    assert.throws(() => williamsRow(2.5, 0), RangeError);
    assert.throws(() => williamsRow(4, -1), RangeError);
  });
});
