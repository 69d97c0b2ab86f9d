// `tunnelctl run [DIR]`: start the controller on DIR and keep it converging until SIGINT/SIGTERM.
import { stat } from "node:fs/promises";
import os from "node:os";
import { startController } from "../controller/controller.ts";
import type { Controller } from "../controller/types.ts";
import { EXIT_INVALID, type CliOutput } from "./exit-codes.ts";
import { createLogger, flushLogger } from "./logger.ts";
import type { LogLevel } from "./options.ts";
import { handleSignals } from "./shutdown.ts";

export interface RunOptions {
  dir: string;
  statusDir?: string | undefined;
  selector?: Record<string, string> | undefined;
  resyncMs: number;
  statusIntervalMs: number;
  logLevel: LogLevel;
  metricsAddress?: string | undefined;
  /** Most SSH handshakes under way at once per server (default 8; lowered adaptively). */
  handshakesPerServer?: number | undefined;
}

export async function runRun(options: RunOptions, output: CliOutput): Promise<number> {
  if (options.metricsAddress !== undefined) {
    output.err(`tunnelctl: --metrics-address ${options.metricsAddress} is not implemented yet: no metrics endpoint is served\n`);
  }
  const logger = createLogger({ level: options.logLevel });
  const { dir, statusDir, selector, resyncMs, statusIntervalMs, handshakesPerServer } = options;
  logger.info({ dir, statusDir, selector, resyncMs, statusIntervalMs, handshakesPerServer }, "starting");
  // Not an error (a volume may be mounted later), but a typo should not look like "no tunnels".
  if (!(await isDirectory(dir))) logger.warn({ dir }, "the manifest directory does not exist (yet): waiting for it");

  const starting = startController({ dir, statusDir, selector, resyncMs, statusIntervalMs, handshakesPerServer, logger, homeDir: os.homedir() });
  let controller: Controller | undefined;
  const signals = handleSignals({
    logger,
    output,
    stop: async () => (await starting).stop(),
    onHangup: () => controller?.resync(),
  });

  try {
    controller = await starting;
  } catch (err) {
    signals.dispose();
    logger.fatal({ err }, "cannot start the controller");
    flushLogger();
    output.err(`tunnelctl run: cannot start: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT_INVALID;
  }
  controller.started.then(
    () => logger.info("watching"),
    (err: unknown) => logger.error({ err }, "first scan failed"),
  );
  return signals.done;
}

async function isDirectory(dir: string): Promise<boolean> {
  try {
    return (await stat(dir)).isDirectory();
  } catch {
    return false;
  }
}
