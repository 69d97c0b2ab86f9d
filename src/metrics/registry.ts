// The Prometheus registry (prom-client): process metrics, build info, and the controller's own
// series, read from one snapshot per scrape. Counters are the live ones (not the status file's
// refresh), and series exist exactly while their tunnel or forward does: each scrape lists what
// the snapshot holds, so a deleted or renamed forward leaves no stale series behind.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type Metric } from "prom-client";
import type { Controller, ReconcileResult, TunnelSnapshot } from "../controller/types.ts";
import { localForwardId, remoteForwardId } from "../reconcile/forward-id.ts";
import type { Phase } from "../reconcile/types.ts";
import { SSH2_VERSION, TUNNELCTL_VERSION } from "../version.ts";
import { windowBudgetUsage } from "../ssh/window/autotune.ts";

const PHASES: readonly Phase[] = ["Pending", "Ready", "Degraded", "Failed", "Invalid", "Suspended", "Stopped"];

/**
 * prom-client 15's default gauges whose names end in `_total`: promtool rejects a gauge named like
 * a counter, and their un-suffixed twins (nodejs_active_handles, ...) say the same by type.
 */
const NONCONFORMING_DEFAULTS = ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"];

interface Sample {
  labels: Record<string, string>;
  value: number;
}

interface ForwardSample {
  labels: { tunnel: string; forward: string };
  active: boolean;
  open: number;
  total: number;
  failed: number;
  bytesIn: number;
  bytesOut: number;
  window: number;
}

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

  // The per-tunnel and per-forward families are built straight from the snapshot (a prom-client
  // collector object: the registry formats them). Setting 70,000 series one by one on Gauges and
  // Counters hashed every label set and took ~230 ms for 1,000 tunnels × 10 forwards.
  const family = (name: string, help: string, type: "gauge" | "counter", samples: () => Sample[]): void => {
    const metric = { name, help, type, aggregator: "sum", get: async () => ({ name, help, type, aggregator: "sum", values: samples() }), reset: () => undefined };
    registry.registerMetric(metric as unknown as Metric<string>);
  };
  const perTunnel = (value: (t: TunnelSnapshot) => number): (() => Sample[]) => () => current.map((t) => ({ labels: { tunnel: t.name }, value: value(t) }));
  family("tunnelctl_tunnel_phase", "The tunnel's phase: 1 for the current one, 0 for the others", "gauge", () =>
    current.flatMap((t) => PHASES.map((phase) => ({ labels: { tunnel: t.name, phase }, value: t.phase === phase ? 1 : 0 }))),
  );
  family("tunnelctl_session_up", "1 while the tunnel's SSH session is connected", "gauge", perTunnel((t) => (t.observation.session.state === "Connected" ? 1 : 0)));
  family("tunnelctl_session_reconnects_total", "Sessions opened again after one was lost or replaced", "counter", perTunnel((t) => t.observation.session.reconnects));
  family("tunnelctl_session_connected_since_seconds", "When the current session connected (Unix time); 0 while not connected", "gauge", perTunnel((t) => {
    const since = t.observation.session.connectedSince;
    return since === undefined ? 0 : Date.parse(since) / 1000;
  }));
  family("tunnelctl_session_rtt_seconds", "The session's round-trip time (smallest recent keepalive round trip); absent until measured", "gauge", () =>
    current.flatMap((t) => (t.observation.session.rttMs === undefined ? [] : [{ labels: { tunnel: t.name }, value: t.observation.session.rttMs / 1000 }])),
  );

  // Built once per scrape (every per-forward family reads it), not once per family.
  let currentForwards: ForwardSample[] = [];
  const forwardsOf = (snapshot: readonly TunnelSnapshot[]): ForwardSample[] =>
    snapshot.flatMap((t) => [
      ...t.observation.local.map((f) => ({ labels: { tunnel: t.name, forward: localForwardId(f) }, active: f.state === "Active", open: f.activeConnections, total: f.totalConnections, failed: f.failedConnections, bytesIn: f.bytesIn, bytesOut: f.bytesOut, window: f.receiveWindow ?? 0 })),
      ...t.observation.remote.map((f) => ({ labels: { tunnel: t.name, forward: remoteForwardId(f) }, active: f.state === "Active", open: f.activeConnections, total: f.totalConnections, failed: 0, bytesIn: f.bytesIn, bytesOut: f.bytesOut, window: f.receiveWindow ?? 0 })),
    ]);
  const perForward = (value: (f: ForwardSample) => number): (() => Sample[]) => () => currentForwards.map((f) => ({ labels: f.labels, value: value(f) }));
  family("tunnelctl_forward_active", "1 while the forward is Active (listening, or bound by the server)", "gauge", perForward((f) => (f.active ? 1 : 0)));
  family("tunnelctl_forward_connections", "Connections open through the forward now", "gauge", perForward((f) => f.open));
  family("tunnelctl_forward_connections_total", "Connections accepted by the forward", "counter", perForward((f) => f.total));
  family("tunnelctl_forward_failed_connections_total", "Connections through a local forward whose far end could not be opened (refused, timeout, no session)", "counter", perForward((f) => f.failed));
  family("tunnelctl_forward_bytes_total", "Bytes through the forward: in = from the connecting client toward the target, out = back", "counter", () =>
    currentForwards.flatMap((f) => [
      { labels: { ...f.labels, direction: "in" }, value: f.bytesIn },
      { labels: { ...f.labels, direction: "out" }, value: f.bytesOut },
    ]),
  );

  family("tunnelctl_forward_receive_window_bytes", "The largest receive window among the forward's open connections (0 when none is open)", "gauge", perForward((f) => f.window));
  new Gauge({
    name: "tunnelctl_window_budget_bytes",
    help: "The process-wide budget for receive-window growth above 2 MiB per connection (--window-budget): total, and used by open connections now",
    labelNames: ["kind"],
    registers,
    collect() {
      const usage = windowBudgetUsage();
      this.set({ kind: "total" }, usage.total);
      this.set({ kind: "used" }, usage.used);
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
      currentForwards = forwardsOf(current);
      try {
        return await registry.metrics();
      } finally {
        current = [];
        currentForwards = [];
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
