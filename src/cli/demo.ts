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
import { createLogger, flushLogger } from "./logger.ts";
import { displayPathOf } from "./manifest-files.ts";
import { handleSignals } from "./shutdown.ts";
import { readStatusTree } from "./status-files.ts";

export const DEMO_BANNER = "hello from the demo service";
const TABLE_REFRESH_MS = 1_000;
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
    output.out(instructions({ sshPort: server.port, fingerprint: server.hostKeyFingerprint, echoPort: echo.port, localPort, manifest }));
    stopTable = watchTable(dir, output);
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

interface Endpoints {
  sshPort: number;
  fingerprint: string;
  echoPort: number;
  localPort: number;
  manifest: string;
}

function instructions(at: Endpoints): string {
  const manifest = displayPathOf(at.manifest);
  return `tunnelctl demo: an SSH server, a service and a tunnel between them, all on 127.0.0.1

  SSH server     127.0.0.1:${at.sshPort} (embedded; host key ${at.fingerprint})
  echo service   127.0.0.1:${at.echoPort} (says "${DEMO_BANNER}", then echoes what you type)
  manifest       ${manifest}

  try: nc 127.0.0.1 ${at.localPort}   (or telnet)
       — the local forward: through the SSH session to the echo service.
       The remote forward's port (chosen by the server) is in the table below; nc to it too.
  edit ${manifest} — add a forward, change a port — and watch the table
  status files: tunnelctl get ${displayPathOf(path.dirname(at.manifest))} (-o wide | yaml | json)
  Ctrl-C to stop

`;
}

/** Re-reads the status files every second and prints the table when it differs from the last one. */
function watchTable(dir: string, output: CliOutput): () => void {
  let last = "";
  let busy = false;
  const refresh = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    try {
      const snapshot = await readStatusTree(dir);
      const body =
        snapshot.docs.length === 0
          ? "(no status yet)\n"
          : `${renderTunnels(snapshot.docs, { now: Date.now(), age: false })}\n${renderForwards(snapshot.docs)}`;
      const text = [body, ...snapshot.problems.map((problem) => `! ${problem}\n`)].join("");
      if (text !== last) {
        last = text;
        output.out(`--- ${new Date().toLocaleTimeString()} ---\n${text}\n`);
      }
    } catch {
      // The directory is being edited or was removed: keep the last table, try again.
    } finally {
      busy = false;
    }
  };
  void refresh();
  const timer = setInterval(() => void refresh(), TABLE_REFRESH_MS);
  return () => clearInterval(timer);
}
