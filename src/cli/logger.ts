// The one root logger of a CLI process: JSON lines on stdout (pino), human-readable when stdout
// is a terminal. pino's asynchronous stdout destination loses lines when the process exits
// (DEPENDENCY-NOTES); ours is synchronous, and every exit path still calls flushLogger().
import { pino, type DestinationStream, type Logger } from "pino";
import pretty from "pino-pretty";
import type { LogLevel } from "./options.ts";

export interface LoggerOptions {
  level: LogLevel;
  /** Pretty, synchronous output; default: when stdout is a TTY. */
  pretty?: boolean;
}

let flushDestination: (() => void) | undefined;

/**
 * `err` in log lines: a real Error with its type, message and stack (pino's serializer); the
 * `{ message }` summaries the controller logs (never a whole error object that might carry a
 * secret) as just that message, not as `type: "Object"` with an empty stack.
 */
export function serializeErr(err: unknown): unknown {
  if (err instanceof Error) return pino.stdSerializers.err(err);
  if (err !== null && typeof err === "object" && "message" in err && typeof err.message === "string") {
    const { message } = err;
    const reason = "reason" in err && typeof err.reason === "string" ? err.reason : undefined;
    return reason === undefined ? { message } : { message, reason };
  }
  return err;
}

const serializers = { err: serializeErr };

export function createLogger(options: LoggerOptions): Logger {
  const human = options.pretty ?? process.stdout.isTTY === true;
  if (human) {
    // Synchronous: nothing to flush, and lines interleave correctly with the demo's table.
    const stream: DestinationStream = pretty({ sync: true, destination: 1, colorize: true, translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname" });
    flushDestination = undefined;
    return pino({ level: options.level, serializers }, stream);
  }
  // Synchronous writes: no line is lost on exit, and a closed stdout (EPIPE) is one 'error'
  // event, not the endless retry loop sonic-boom's flushSync() falls into on EPIPE. Our log
  // volume is a few lines per change, so the cost does not show.
  const destination = pino.destination({ dest: 1, sync: true });
  // A reader that went away must not take the tunnels down with it: stop logging instead.
  destination.on("error", () => undefined);
  flushDestination = () => destination.flushSync();
  return pino({ level: options.level, serializers }, destination);
}

/** Write out every buffered log line. Safe to call more than once, or with no logger. */
export function flushLogger(): void {
  try {
    flushDestination?.();
  } catch {
    // Nothing buffered yet ("not ready") or stdout already closed: nothing more can be written.
  }
}
