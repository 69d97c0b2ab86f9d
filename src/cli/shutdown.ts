// Living until SIGINT/SIGTERM, then shutting down cleanly within a hard deadline (SPEC §5: 5 s).
// A second signal exits at once; SIGHUP asks for a resync. Logs are flushed on every way out.
import type { Logger } from "pino";
import { EXIT_INVALID, EXIT_OK, type CliOutput } from "./exit-codes.ts";
import { flushLogger } from "./logger.ts";

export const SHUTDOWN_DEADLINE_MS = 5_000;
// After a clean stop the process should end by itself; this long, at most.
const LINGER_MS = 1_000;
// A second signal sooner than this is the same Ctrl-C delivered twice, not a second request.
const DUPLICATE_SIGNAL_MS = 500;

export interface ShutdownOptions {
  logger: Logger;
  output: CliOutput;
  /** Everything a clean shutdown does (stop the controller, close servers). Called once. */
  stop: () => Promise<void>;
  /** SIGHUP. */
  onHangup?: () => void;
  deadlineMs?: number;
}

export interface SignalHandling {
  /** Resolves with the exit code once a signal has come and `stop` has finished (or failed). */
  done: Promise<number>;
  /** Give up waiting for a signal (startup failed): remove the handlers; `done` never resolves. */
  dispose(): void;
}

/** Installs the handlers at once, so a signal during startup is a clean shutdown too. */
export function handleSignals(options: ShutdownOptions): SignalHandling {
  const { logger, output } = options;
  const deadlineMs = options.deadlineMs ?? SHUTDOWN_DEADLINE_MS;
  // Signal handlers alone do not keep Node running; this does, until shutdown.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  let stopping = false;
  let stoppingSince = 0;
  let code = EXIT_INVALID; // what a forced exit reports, unless stop() finished

  const exitNow = (why: string): never => {
    output.err(`tunnelctl: ${why}\n`);
    flushLogger();
    process.exit(code);
  };
  const onHangup = (): void => {
    if (stopping) return;
    logger.info({ signal: "SIGHUP" }, "resync requested");
    options.onHangup?.();
  };
  let onSignal: (signal: NodeJS.Signals) => void = () => undefined;
  const dispose = (): void => {
    clearInterval(keepAlive);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    process.off("SIGHUP", onHangup);
  };

  const done = new Promise<number>((resolve) => {
    onSignal = (signal) => {
      if (stopping) {
        // One Ctrl-C can arrive twice: from the terminal and forwarded by a parent (npm start).
        if (Date.now() - stoppingSince < DUPLICATE_SIGNAL_MS) return;
        exitNow(`${signal} again: exiting now, without waiting for a clean shutdown`);
      }
      stopping = true;
      stoppingSince = Date.now();
      logger.info({ signal }, "shutting down");
      const deadline = setTimeout(() => exitNow(`shutdown did not finish within ${deadlineMs / 1000} s: exiting anyway`), deadlineMs);
      options
        .stop()
        .then(
          () => {
            code = EXIT_OK;
            logger.info("stopped");
          },
          (err: unknown) => logger.error({ err }, "shutdown failed"),
        )
        .finally(() => {
          clearTimeout(deadline);
          clearInterval(keepAlive);
          process.off("SIGHUP", onHangup);
          // SIGINT/SIGTERM stay handled: one more now still means "exit at once".
          setTimeout(() => exitNow("stopped, but an open handle keeps the process alive: exiting"), LINGER_MS).unref();
          flushLogger();
          resolve(code);
        });
    };
  });
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  // Without a handler SIGHUP kills the process: a closed terminal must not drop the tunnels.
  process.on("SIGHUP", onHangup);
  return { done, dispose };
}
