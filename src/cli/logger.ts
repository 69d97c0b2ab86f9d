// The one root logger of a CLI process: JSON lines on stdout (pino), human-readable when stdout
// is a terminal. pino's stdout destination is asynchronous and loses lines when the process
// exits (DEPENDENCY-NOTES), so every exit path calls flushLogger() first.
import { pino, type DestinationStream, type Logger } from "pino";
import pretty from "pino-pretty";
import type { LogLevel } from "./options.ts";

export interface LoggerOptions {
  level: LogLevel;
  /** Pretty, synchronous output; default: when stdout is a TTY. */
  pretty?: boolean;
}

let flushDestination: (() => void) | undefined;

export function createLogger(options: LoggerOptions): Logger {
  const human = options.pretty ?? process.stdout.isTTY === true;
  if (human) {
    // Synchronous: nothing to flush, and lines interleave correctly with the demo's table.
    const stream: DestinationStream = pretty({ sync: true, destination: 1, colorize: true, translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname" });
    flushDestination = undefined;
    return pino({ level: options.level }, stream);
  }
  const destination = pino.destination({ dest: 1, sync: false });
  flushDestination = () => destination.flushSync();
  return pino({ level: options.level }, destination);
}

/** Write out every buffered log line. Safe to call more than once, or with no logger. */
export function flushLogger(): void {
  try {
    flushDestination?.();
  } catch {
    // Nothing buffered yet ("not ready") or stdout already closed: nothing more can be written.
  }
}
