// The order contenders run in, round by round, so that each one runs right after each other one
// equally often. What ran just before a contender changes what it measures: on this machine a
// connection through `ssh -L` took 0.31–0.34 ms (p50) right after 100 through the Node relay and
// 0.41–0.45 ms right after 100 through `ssh -R`, whose 43 ms stalls leave the CPUs idle
// (bench/RESULTS.md, session 7). Rotating one fixed order keeps every contender behind the same
// neighbour in every round, so that effect lands on some contenders and never on others.
//
// A Williams design (a Latin square balanced for first-order carry-over): for an even count n,
// n rounds in which every ordered pair of distinct contenders is adjacent exactly once; for an odd
// count, 2n rounds (the square and its mirror) in which every ordered pair is adjacent exactly
// twice. Every contender also runs in every position equally often. Rounds past the design
// start it again.

/** The indices 0..n-1 in the order round `round` runs them. */
export function williamsRow(n: number, round: number): number[] {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`williamsRow: n must be a positive integer, got ${n}`);
  if (!Number.isInteger(round) || round < 0) throw new RangeError(`williamsRow: round must be a non-negative integer, got ${round}`);
  // First row 0, 1, n-1, 2, n-2, 3, …: its successive differences (mod n) are all distinct.
  const first = Array.from({ length: n }, (_, j) => (j === 0 ? 0 : j % 2 === 1 ? (j + 1) / 2 : n - j / 2));
  const r = round % williamsRounds(n);
  const shift = r % n;
  const row = first.map((a) => (a + shift) % n);
  return r < n ? row : row.reverse();
}

/** How many rounds one full design takes: n for an even count, 2n for an odd one. */
export function williamsRounds(n: number): number {
  return n % 2 === 0 ? n : 2 * n;
}

/** `items` in the order round `round` runs them. */
export function roundOrder<T>(items: readonly T[], round: number): T[] {
  if (items.length === 0) return [];
  return williamsRow(items.length, round).map((i) => items[i]!);
}

/** The smallest number of rounds ≥ `atLeast` that runs whole designs for `n` contenders. */
export function balancedRounds(n: number, atLeast: number): number {
  const per = williamsRounds(Math.max(1, n));
  return per * Math.max(1, Math.ceil(atLeast / per));
}
