// `tunnelctl demo`: a working setup with nothing else installed. An embedded SSH server and an
// echo service on loopback, a demo directory with a manifest that tunnels to them, and the
// controller on that directory; the status table is reprinted whenever it changes.
import os from "node:os";
import path from "node:path";
import { startController } from "../controller/controller.ts";
import type { Controller } from "../controller/types.ts";
import { startEchoService, type EchoService } from "../demo/echo-service.ts";
import { startEmbeddedServer, type EmbeddedServer } from "../demo/embedded-server.ts";
import { generateDemoKeys } from "../demo/keys.ts";
import { EXIT_INVALID, type CliOutput } from "./exit-codes.ts";
import { freeLoopbackPort, writeDemoFiles } from "./demo-files.ts";
import { renderForwards, renderTunnels } from "./get-format.ts";
import { watchTable } from "./table-watch.ts";
import { createLogger, flushLogger } from "./logger.ts";
import { displayPathOf } from "./manifest-files.ts";
import { handleSignals } from "./shutdown.ts";

export const DEMO_BANNER = "hello from the demo service";
// Short, so that connection counters move in the table while someone plays with it.
const DEMO_STATUS_INTERVAL_MS = 2_000;

export interface DemoOptions {
  dir: string;
}

export async function runDemo(options: DemoOptions, output: CliOutput): Promise<number> {
  const logger = createLogger({ level: "warn" });
  const dir = path.resolve(options.dir);
  let echo: EchoService | undefined;
  let server: EmbeddedServer | undefined;
  let controller: Controller | undefined;
  let stopTable = (): void => undefined;
  const closeAll = async (): Promise<void> => {
    stopTable();
    await controller?.stop();
    await Promise.all([server?.close(), echo?.close()]);
  };
  const signals = handleSignals({ logger, output, stop: closeAll, onHangup: () => controller?.resync() });

  try {
    const keys = generateDemoKeys();
    echo = await startEchoService({ banner: DEMO_BANNER });
    server = await startEmbeddedServer({
      hostKey: keys.host.privateKey,
      authorizedKeys: [keys.client.publicKey],
      onError: (err) => logger.debug({ err }, "demo SSH server"),
    });
    const localPort = await freeLoopbackPort();
    const manifest = await writeDemoFiles({
      dir,
      clientPrivateKey: keys.client.privateKey,
      sshPort: server.port,
      hostKeyFingerprint: server.hostKeyFingerprint,
      localPort,
      echoPort: echo.port,
    });
    controller = await startController({ dir, statusIntervalMs: DEMO_STATUS_INTERVAL_MS, logger, homeDir: os.homedir() });
    const banner = instructions({ sshPort: server.port, fingerprint: server.hostKeyFingerprint, echoPort: echo.port, localPort, manifest });
    const terminal = process.stdout.isTTY === true;
    if (!terminal) output.out(banner);
    stopTable = watchTable({
      root: dir,
      output,
      render: (docs) =>
        docs.length === 0 ? "(no status yet)\n" : `${renderTunnels(docs, { now: Date.now(), age: false })}\n${renderForwards(docs, { compact: true })}`,
      ...(terminal ? { terminal: { header: `${banner}\n`, width: () => process.stdout.columns || 80 } } : {}),
      fitPlain: true,
    });
  } catch (err) {
    signals.dispose();
    logger.error({ err }, "demo failed to start");
    output.err(`tunnelctl demo: cannot start: ${err instanceof Error ? err.message : String(err)}\n`);
    await closeAll().catch(() => undefined);
    flushLogger();
    return EXIT_INVALID;
  }
  return signals.done;
}

export interface Endpoints {
  sshPort: number;
  fingerprint: string;
  echoPort: number;
  localPort: number;
  manifest: string;
}

/** The demo's banner: every line fits 80 columns (a terminal's default width). */
export function instructions(at: Endpoints): string {
  const manifest = displayPathOf(at.manifest);
  return `tunnelctl demo: an SSH server, a service and a tunnel between them, on loopback
  SSH server    127.0.0.1:${at.sshPort} (embedded), host key pinned in the manifest:
                ${at.fingerprint}
  echo service  127.0.0.1:${at.echoPort} (greets, then echoes what you type)
  try: nc 127.0.0.1 ${at.localPort}   (the local forward, through SSH to the service;
       the remote forward's port, chosen by the server, is in the table below)
  edit ${manifest} — add a forward, change a port — and watch the table
  status files: tunnelctl get ${displayPathOf(path.dirname(at.manifest))} (-o wide | yaml | json)
  Ctrl-C to stop
`;
}

