// The Prometheus registry (prom-client): process metrics, build info, and the controller's own
// series, read from one snapshot per scrape. Counters are the live ones (not the status file's
// refresh), and series exist exactly while their tunnel or forward does: every collect() starts
// from reset(), so a deleted or renamed forward leaves no stale series behind.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Controller, ReconcileResult, TunnelSnapshot } from "../controller/types.ts";
import { localForwardId, remoteForwardId } from "../reconcile/forward-id.ts";
import type { Phase } from "../reconcile/types.ts";
import { SSH2_VERSION, TUNNELCTL_VERSION } from "../version.ts";

const PHASES: readonly Phase[] = ["Pending", "Ready", "Degraded", "Failed", "Invalid", "Suspended", "Stopped"];

/**
 * prom-client 15's default gauges whose names end in `_total`: promtool rejects a gauge named like
 * a counter, and their un-suffixed twins (nodejs_active_handles, ...) say the same by type.
 */
const NONCONFORMING_DEFAULTS = ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"];

export interface ControllerMetrics {
  readonly registry: Registry;
  /** The text exposition of one scrape. */
  scrape(): Promise<string>;
  /** Hook for ControllerOptions.onReconcile. */
  observeReconcile(result: ReconcileResult, seconds: number): void;
  /** The controller to read from (set once it exists). */
  attach(controller: Controller): void;
}

export function createMetrics(): ControllerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  for (const name of NONCONFORMING_DEFAULTS) registry.removeSingleMetric(name);

  let controller: Controller | undefined;
  /** The snapshot of the scrape in progress: every family reads the same one. */
  let current: TunnelSnapshot[] = [];
  const registers = [registry];

  const buildInfo = new Gauge({ name: "tunnelctl_build_info", help: "tunnelctl build: version, Node.js and ssh2 versions (always 1)", labelNames: ["version", "node", "ssh2"], registers });
  buildInfo.set({ version: TUNNELCTL_VERSION, node: process.version, ssh2: SSH2_VERSION }, 1);

  new Gauge({
    name: "tunnelctl_tunnel_phase",
    help: "The tunnel's phase: 1 for the current one, 0 for the others",
    labelNames: ["tunnel", "phase"],
    registers,
    collect() {
      this.reset();
      for (const t of current) for (const phase of PHASES) this.set({ tunnel: t.name, phase }, t.phase === phase ? 1 : 0);
    },
  });
  new Gauge({
    name: "tunnelctl_session_up",
    help: "1 while the tunnel's SSH session is connected",
    labelNames: ["tunnel"],
    registers,
    collect() {
      this.reset();
      for (const t of current) this.set({ tunnel: t.name }, t.observation.session.state === "Connected" ? 1 : 0);
    },
  });
  new Counter({
    name: "tunnelctl_session_reconnects_total",
    help: "Sessions opened again after one was lost or replaced",
    labelNames: ["tunnel"],
    registers,
    collect() {
      this.reset();
      for (const t of current) this.inc({ tunnel: t.name }, t.observation.session.reconnects);
    },
  });
  new Gauge({
    name: "tunnelctl_session_connected_since_seconds",
    help: "When the current session connected (Unix time); 0 while not connected",
    labelNames: ["tunnel"],
    registers,
    collect() {
      this.reset();
      for (const t of current) {
        const since = t.observation.session.connectedSince;
        this.set({ tunnel: t.name }, since === undefined ? 0 : Date.parse(since) / 1000);
      }
    },
  });

  const forwards = function* (): Generator<{ labels: { tunnel: string; forward: string }; active: boolean; open: number; total: number; failed: number; bytesIn: number; bytesOut: number }> {
    for (const t of current) {
      for (const f of t.observation.local) {
        yield { labels: { tunnel: t.name, forward: localForwardId(f) }, active: f.state === "Active", open: f.activeConnections, total: f.totalConnections, failed: f.failedConnections, bytesIn: f.bytesIn, bytesOut: f.bytesOut };
      }
      for (const f of t.observation.remote) {
        yield { labels: { tunnel: t.name, forward: remoteForwardId(f) }, active: f.state === "Active", open: f.activeConnections, total: f.totalConnections, failed: 0, bytesIn: f.bytesIn, bytesOut: f.bytesOut };
      }
    }
  };
  const forwardLabels = ["tunnel", "forward"];
  new Gauge({
    name: "tunnelctl_forward_active",
    help: "1 while the forward is Active (listening, or bound by the server)",
    labelNames: forwardLabels,
    registers,
    collect() {
      this.reset();
      for (const f of forwards()) this.set(f.labels, f.active ? 1 : 0);
    },
  });
  new Gauge({
    name: "tunnelctl_forward_connections",
    help: "Connections open through the forward now",
    labelNames: forwardLabels,
    registers,
    collect() {
      this.reset();
      for (const f of forwards()) this.set(f.labels, f.open);
    },
  });
  new Counter({
    name: "tunnelctl_forward_connections_total",
    help: "Connections accepted by the forward",
    labelNames: forwardLabels,
    registers,
    collect() {
      this.reset();
      for (const f of forwards()) this.inc(f.labels, f.total);
    },
  });
  new Counter({
    name: "tunnelctl_forward_failed_connections_total",
    help: "Connections through a local forward whose far end could not be opened (refused, timeout, no session)",
    labelNames: forwardLabels,
    registers,
    collect() {
      this.reset();
      for (const f of forwards()) this.inc(f.labels, f.failed);
    },
  });
  new Counter({
    name: "tunnelctl_forward_bytes_total",
    help: "Bytes through the forward: in = from the connecting client toward the target, out = back",
    labelNames: [...forwardLabels, "direction"],
    registers,
    collect() {
      this.reset();
      for (const f of forwards()) {
        this.inc({ ...f.labels, direction: "in" }, f.bytesIn);
        this.inc({ ...f.labels, direction: "out" }, f.bytesOut);
      }
    },
  });

  const reconciles = new Counter({ name: "tunnelctl_reconcile_total", help: "Reconciles of a tunnel, by how they ended", labelNames: ["result"], registers });
  for (const result of ["success", "error", "requeue"]) reconciles.inc({ result }, 0);
  const durations = new Histogram({
    name: "tunnelctl_reconcile_duration_seconds",
    help: "Time one reconcile took (an SSH handshake included when it opened a session)",
    buckets: [0.001, 0.005, 0.025, 0.1, 0.5, 2.5, 10, 30],
    registers,
  });
  new Gauge({
    name: "tunnelctl_workqueue_depth",
    help: "Tunnels queued or being reconciled",
    registers,
    collect() {
      this.set(controller?.queueDepth() ?? 0);
    },
  });
  new Gauge({
    name: "tunnelctl_manifest_errors",
    help: "Errors in the manifest file's last load",
    labelNames: ["file"],
    registers,
    collect() {
      this.reset();
      for (const [file, count] of controller?.manifestErrors() ?? []) this.set({ file }, count);
    },
  });

  return {
    registry,
    async scrape() {
      current = controller?.snapshot() ?? [];
      try {
        return await registry.metrics();
      } finally {
        current = [];
      }
    },
    observeReconcile(result, seconds) {
      reconciles.inc({ result });
      durations.observe(seconds);
    },
    attach(c) {
      controller = c;
    },
  };
}
