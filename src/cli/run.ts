// `tunnelctl run [DIR]`: start the controller on DIR and keep it converging until SIGINT/SIGTERM.
import { stat } from "node:fs/promises";
import os from "node:os";
import { startController } from "../controller/controller.ts";
import type { Controller } from "../controller/types.ts";
import { EXIT_INVALID, type CliOutput } from "./exit-codes.ts";
import { createLogger, flushLogger } from "./logger.ts";
import type { LogLevel } from "./options.ts";
import { handleSignals } from "./shutdown.ts";
import { startMetricsServer, type MetricsServer } from "../metrics/http.ts";
import { createMetrics } from "../metrics/registry.ts";

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
  const logger = createLogger({ level: options.logLevel });
  const { dir, statusDir, selector, resyncMs, statusIntervalMs, metricsAddress, handshakesPerServer } = options;
  logger.info({ dir, statusDir, selector, resyncMs, statusIntervalMs, metricsAddress, handshakesPerServer }, "starting");

  let controller: Controller | undefined;
  // The endpoint is bound before any session is opened: a busy or wrong address is exit 1 at once.
  const metrics = metricsAddress !== undefined ? createMetrics() : undefined;
  let server: MetricsServer | undefined;
  if (metrics !== undefined && metricsAddress !== undefined) {
    try {
      server = await startMetricsServer(metricsAddress, { metrics, controller: () => controller });
    } catch (err) {
      output.err(`tunnelctl run: ${err instanceof Error ? err.message : String(err)}\n`);
      flushLogger();
      return EXIT_INVALID;
    }
    logger.info({ address: server.address }, "serving /metrics, /healthz and /readyz");
  }
  // Not an error (a volume may be mounted later), but a typo should not look like "no tunnels".
  if (!(await isDirectory(dir))) logger.warn({ dir }, "the manifest directory does not exist (yet): waiting for it");

  const starting = startController({
    dir,
    statusDir,
    selector,
    resyncMs,
    statusIntervalMs,
    handshakesPerServer,
    logger,
    homeDir: os.homedir(),
    onReconcile: metrics?.observeReconcile,
  });
  const signals = handleSignals({
    logger,
    output,
    stop: async () => {
      await (await starting).stop();
      await server?.close();
    },
    onHangup: () => controller?.resync(),
  });

  try {
    controller = await starting;
    metrics?.attach(controller);
  } catch (err) {
    await server?.close();
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
