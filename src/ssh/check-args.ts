// Library arguments checked before anything is opened: the same typed errors (reason
// InvalidArgument) as every other failure, naming the field and the value, never a raw RangeError
// from node:net or ssh2 half-way through a call.
import { MAX_DURATION_MS } from "../manifest/duration.ts";
import { InvalidArgumentError } from "./errors.ts";

export function checkPort(field: string, value: unknown, { allowZero = false } = {}): void {
  const min = allowZero ? 0 : 1;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > 65535) {
    throw new InvalidArgumentError(field, `must be a whole number from ${min} to 65535 (got ${show(value)})`);
  }
}

export function checkHost(field: string, value: unknown): void {
  if (typeof value !== "string" || value.trim() === "") {
    throw new InvalidArgumentError(field, `must be a host name or address (got ${show(value)})`);
  }
}

export function checkOptionalHost(field: string, value: unknown): void {
  if (value !== undefined) checkHost(field, value);
}

export function checkSocketPath(field: string, value: unknown, { absolute = false } = {}): void {
  if (typeof value !== "string" || value === "" || value.includes("\0")) throw new InvalidArgumentError(field, `must be a socket path (got ${show(value)})`);
  if (absolute && !value.startsWith("/")) throw new InvalidArgumentError(field, `must be an absolute path (got ${show(value)})`);
}

export function checkOptionalMs(field: string, value: unknown): void {
  if (value === undefined) return;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > MAX_DURATION_MS) {
    throw new InvalidArgumentError(field, `must be a whole number of milliseconds from 0 to ${MAX_DURATION_MS} (got ${show(value)})`);
  }
}

/** A receive window: whole bytes, at least 32 KiB (one packet) and below 4 GiB (SSH's uint32). */
export function checkOptionalWindow(field: string, value: unknown): void {
  if (value === undefined) return;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 32 * 1024 || value > 0xffff_ffff) {
    throw new InvalidArgumentError(field, `must be a whole number of bytes from 32768 to 4294967295 (got ${show(value)})`);
  }
}

function show(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (value === null || typeof value !== "object") return String(value);
  return Array.isArray(value) ? "a list" : "an object";
}
