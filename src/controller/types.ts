// The controller's public face: what `tunnelctl run` (and the demo) start and stop.
import type { Logger } from "pino";

export interface ControllerOptions {
  /** The watched manifest directory (may be a symlink, may not exist yet). */
  dir: string;
  /** Write status files here (same relative paths) instead of beside the manifests. */
  statusDir?: string | undefined;
  /** Only manage tunnels whose labels include all of these. */
  selector?: Record<string, string> | undefined;
  /** Full resync interval, ms (default 30000). */
  resyncMs?: number | undefined;
  /** Counters in status files refresh at most this often, ms (default 10000). */
  statusIntervalMs?: number | undefined;
  /** Most SSH handshakes under way at once per server (default 8); lowered while a server drops them. */
  handshakesPerServer?: number | undefined;
  logger: Logger;
  /** `~` in manifests expands to this (default os.homedir()). */
  homeDir?: string | undefined;
}

export interface Controller {
  /** Resolves once the first scan of the directory has been loaded and queued. */
  readonly started: Promise<void>;
  /** Force a full resync (SIGHUP). */
  resync(): void;
  /** Release remote forwards, close sessions and listeners, write final status. */
  stop(): Promise<void>;
  /** Names of the tunnels currently known, with their phase (for the demo and tests). */
  phases(): Map<string, string>;
}
