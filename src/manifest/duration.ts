// Durations in manifests: a number of milliseconds, or a string with a unit ("500ms", "30s",
// "2m", "1.5h"). The grammar is the schema's `$defs/duration`; this turns either form into ms.

/** Largest delay Node's timers accept: a longer one fires after 1 ms instead (a silent hot loop). */
export const MAX_DURATION_MS = 2_147_483_647;

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
const DURATION_PATTERN = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)$/;

/**
 * Milliseconds for a duration: a non-negative integer (ms), or a string such as "30s".
 * Fractions are rounded to the nearest millisecond. Throws a RangeError naming the bad value.
 */
export function parseDuration(value: number | string): number {
  const ms = typeof value === "number" ? checkMilliseconds(value) : parseDurationString(value);
  if (ms > MAX_DURATION_MS) {
    throw new RangeError(
      `duration ${show(value)} is too long: at most ${MAX_DURATION_MS}ms (about 24.8 days)`,
    );
  }
  return ms;
}

function checkMilliseconds(value: number): number {
  if (!Number.isInteger(value) || value < 0) {
    throw new RangeError(`duration ${show(value)} must be a whole, non-negative number of milliseconds`);
  }
  return value;
}

function parseDurationString(text: string): number {
  const match = DURATION_PATTERN.exec(text);
  const amount = match?.[1];
  const unit = match?.[2] as keyof typeof UNIT_MS | undefined;
  if (amount === undefined || unit === undefined) {
    throw new RangeError(
      `invalid duration ${show(text)}: expected milliseconds or a number with a unit ms, s, m or h (e.g. "30s")`,
    );
  }
  return Math.round(Number(amount) * UNIT_MS[unit]);
}

/** 30000 → "30s", 900 → "900ms": a duration parseDuration reads back. */
export function formatDuration(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

function show(value: number | string): string {
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}
