// Parsers for option values. Each throws commander's InvalidArgumentError with a message that
// names the bad value, so a typo is a usage error (exit 2), never a silently different setting.
import { InvalidArgumentError } from "commander";
import { formatDuration, parseDuration } from "../manifest/index.ts";
import { parseSize } from "../manifest/size.ts";

// Label keys and values exactly as schemas/tunnel.schema.json allows them (Kubernetes-style).
const LABEL_KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

/** `k=v[,k=v]` → labels that must all match. Repeating the option adds to the previous value. */
export function parseSelector(text: string, previous: Record<string, string> = {}): Record<string, string> {
  const selector = { ...previous };
  for (const term of text.split(",")) {
    if (term === "") throw new InvalidArgumentError(`empty term in "${text}" (expected key=value[,key=value])`);
    const equals = term.indexOf("=");
    if (equals < 0) throw new InvalidArgumentError(`"${term}" is not key=value (expected e.g. env=prod,team=db)`);
    const key = term.slice(0, equals);
    const value = term.slice(equals + 1);
    if (key.length > 128 || !LABEL_KEY.test(key)) throw new InvalidArgumentError(`"${key}" is not a valid label key`);
    if (value.length > 63 || !LABEL_VALUE.test(value)) throw new InvalidArgumentError(`"${value}" is not a valid label value for ${key}`);
    if (key in selector && selector[key] !== value) {
      throw new InvalidArgumentError(`label ${key} is given twice (${selector[key]} and ${value}): no tunnel can match both`);
    }
    selector[key] = value;
  }
  return selector;
}

/**
 * A duration option ("30s", "500ms", "2m") → ms, at least `floorMs`. A bare number is refused:
 * `--resync 5` meant 5 ms and spun the controller, where the operator surely meant 5 s.
 */
export function durationOption(floorMs: number): (text: string) => number {
  return (text) => {
    if (/^[0-9]+(\.[0-9]+)?$/.test(text)) {
      throw new InvalidArgumentError(`${JSON.stringify(text)} has no unit: write e.g. ${text}s, ${text}m or ${text}ms`);
    }
    let ms: number;
    try {
      ms = parseDuration(text);
    } catch (err) {
      throw new InvalidArgumentError(err instanceof Error ? err.message : String(err));
    }
    if (ms < floorMs) throw new InvalidArgumentError(`${JSON.stringify(text)} is too short: at least ${formatDuration(floorMs)}`);
    return ms;
  };
}

/** A size from 0 to 64 GiB (--window-budget): bytes, or a number with KiB, MiB or GiB. */
export function parseWindowBudget(text: string): number {
  try {
    return parseSize(/^[0-9]+$/.test(text) ? Number(text) : text, 0, 64 * 1024 ** 3);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/** A whole number from 1 to 1000 (--handshakes-per-server). */
export function parseHandshakeLimit(text: string): number {
  const n = /^[0-9]+$/.test(text) ? Number(text) : NaN;
  if (!(n >= 1 && n <= 1000)) throw new InvalidArgumentError(`${JSON.stringify(text)} is not a whole number from 1 to 1000`);
  return n;
}

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function parseLogLevel(text: string): LogLevel {
  const level = LOG_LEVELS.find((candidate) => candidate === text);
  if (level === undefined) throw new InvalidArgumentError(`expected one of ${LOG_LEVELS.join(", ")}`);
  return level;
}

export const OUTPUT_FORMATS = ["table", "wide", "yaml", "json"] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export function parseOutputFormat(text: string): OutputFormat {
  const format = OUTPUT_FORMATS.find((candidate) => candidate === text);
  if (format === undefined) throw new InvalidArgumentError(`expected one of wide, yaml, json`);
  return format;
}

/** host:port for --metrics-address: the syntax here; whether it can be bound, when it is. */
export function parseListenAddress(text: string): string {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):([0-9]{1,5})$/.exec(text);
  if (match === null || Number(match[2]) > 65535) {
    throw new InvalidArgumentError(`expected host:port, e.g. 127.0.0.1:9464`);
  }
  return text;
}
