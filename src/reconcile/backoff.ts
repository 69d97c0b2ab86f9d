// Exponential backoff with "equal jitter" (the Deno std retry model: a pure formula that takes
// its random source). Equal jitter keeps half of the exponential step fixed and randomises the
// other half: delays still grow on every attempt (a failing server is not hammered), while
// tunnels that failed together spread out instead of retrying in lockstep — also at the cap,
// where the delay lies in [max/2, max]. Full jitter would allow near-zero delays, which a
// server dropping bursts of handshakes (sshd MaxStartups) punishes.
//
//   step(attempt) = min(max, min · 2^attempt)
//   delay         = clamp(step/2 + random() · step/2, min, max)
//
// attempt 0 therefore waits exactly `min` (the jittered half would fall below the floor).

/**
 * Delay in ms before retry number `attempt` (0-based), within [min, max].
 * `random` returns a number in [0, 1), like Math.random; pass a seeded one in tests.
 */
export function backoffDelay(attempt: number, min: number, max: number, random: () => number): number {
  if (!Number.isInteger(attempt) || attempt < 0) {
    throw new RangeError(`Cannot compute backoff for attempt ${attempt}: expected an integer >= 0`);
  }
  if (!(min >= 0) || !(max >= min)) {
    throw new RangeError(`Cannot compute backoff between min ${min} and max ${max}: expected 0 <= min <= max`);
  }
  // 2 ** large is Infinity, capped at max; min 0 is special-cased because 0 · Infinity is NaN.
  const step = min === 0 ? 0 : Math.min(max, min * 2 ** attempt);
  const jittered = step / 2 + random() * (step / 2);
  return Math.min(max, Math.max(min, Math.round(jittered)));
}

/** Attempt counter around backoffDelay: `next()` after each failure, `reset()` after success. */
export class Backoff {
  readonly min: number;
  readonly max: number;
  #attempt = 0;

  constructor(options: { min: number; max: number }) {
    if (!(options.min >= 0) || !(options.max >= options.min)) {
      throw new RangeError(
        `Cannot create backoff between min ${options.min} and max ${options.max}: expected 0 <= min <= max`,
      );
    }
    this.min = options.min;
    this.max = options.max;
  }

  /** Failures since the last reset (the attempt number the next delay is computed for). */
  get attempt(): number {
    return this.#attempt;
  }

  /** The delay to wait before the next retry; advances the attempt counter. */
  next(random: () => number): number {
    const delay = backoffDelay(this.#attempt, this.min, this.max, random);
    this.#attempt += 1;
    return delay;
  }

  reset(): void {
    this.#attempt = 0;
  }
}
