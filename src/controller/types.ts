// The controller's public face: what `tunnelctl run` (and the demo) start and stop.
import type { Logger } from "pino";
import type { Condition, Phase } from "../reconcile/types.ts";
import type { TunnelObservation } from "../status/types.ts";

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
  /** Called after every reconcile (for /metrics): how it ended and how long it took. */
  onReconcile?: ((result: ReconcileResult, seconds: number) => void) | undefined;
}

export type ReconcileResult = "success" | "error" | "requeue";

/**
 * One tunnel as it is right now: the observation its status file is built from, with the phase
 * and Ready condition the same pure functions derive. Status files, /metrics and /readyz all
 * read this; none keeps books of its own.
 */
export interface TunnelSnapshot {
  name: string;
  /** The manifest, relative to the watched directory. */
  manifest: string;
  phase: Phase;
  ready: Condition;
  observation: TunnelObservation;
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
  /** Every managed tunnel, observed now (counters live). */
  snapshot(): TunnelSnapshot[];
  /** Errors in each manifest file's last load, by display path (files without errors: 0). */
  manifestErrors(): Map<string, number>;
  /** Reconciles queued or running. */
  queueDepth(): number;
  /** The first scan of DIR has been loaded and queued. */
  readonly loaded: boolean;
  /** The loop is alive: started, not stopping, the watcher running. */
  alive(): boolean;
}
