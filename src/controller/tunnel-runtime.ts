// The live side of one tunnel: its SSH connection, its forwards (a ForwardSet whose local
// listeners outlive connections), and what went wrong with each, with per-item backoff. The
// reconciler asks it to observe and to apply the actions of plan(); it never decides itself.
import type { Logger } from "pino";
import type { LocalForwardSpec, RemoteForwardSpec, TunnelSpec } from "../manifest/types.ts";
import { Backoff } from "../reconcile/backoff.ts";
import { localForwardId, remoteForwardId, sessionKey } from "../reconcile/forward-id.ts";
import { configHash } from "../status/config-hash.ts";
import type { Action, ForwardId, ObservedTunnel, SessionState } from "../reconcile/types.ts";
import type { SshConnection } from "../ssh/connection.ts";
import type { Dialer } from "../ssh/dial/dialer.ts";
import { routeOf, type HopInfo } from "../ssh/dial/route.ts";
import { ForwardRefusedError, TunnelError, messageOf, reasonOf } from "../ssh/errors.ts";
import { ForwardSet, type RemoteForwardInfo } from "../ssh/forward-set.ts";
import { bindAddressNote } from "../ssh/remote-forward.ts";
import { dynamicForwardWarning } from "../manifest/semantic.ts";
import { autotuneDisabledReason } from "../ssh/window/autotune.ts";
import type { LocalForwardObservation, RemoteForwardObservation, SessionObservation } from "../status/types.ts";

interface Failure {
  reason: string;
  message: string;
  backoff: Backoff;
  nextAttempt: number;
}

/** A session that stayed up this long counts as a success: the reconnect backoff starts over. */
const STABLE_SESSION_MS = 10_000;

/** How long an old session may keep draining connections after a session-level change. */
const OLD_SESSION_DRAIN_MS = 60_000;

export class TunnelRuntime {
  readonly name: string;
  readonly forwards: ForwardSet;
  private readonly log: Logger;
  private readonly dialer: Dialer;
  private readonly random: () => number;
  private readonly onChange: () => void;
  private connection: SshConnection | undefined;
  private connectionKey: string | undefined;
  private state: SessionState = "Closed";
  private everConnected = false;
  private reconnects = 0;
  private lastError = "";
  private lastErrorReason: string | undefined;
  private serverVersion = "";
  private hostKeyFingerprint = "";
  private via: HopInfo[] = [];
  private connectedSince: string | undefined;
  private sessionBackoff: Backoff;
  private nextSessionAttempt = 0;
  private readonly failures = new Map<ForwardId, Failure>();
  /** Remote forwards bound on a connection that died: a refusal now most likely means the old server-side session still holds the port. */
  private readonly heldRemotes = new Set<ForwardId>();
  private readonly boundPorts = new Map<ForwardId, number>();
  /** The spec generation apply() last saw: a new one is retried at once, whatever the backoff. */
  private attemptedGeneration: string | undefined;
  /** The generation whose session parameters the current connection was opened with. */
  private connectionGeneration: string | undefined;
  /** Why the latest session-level change could not be applied (the old session keeps running). */
  private syncFailure: { reason: string; message: string } | undefined;

  constructor(
    name: string,
    options: {
      log: Logger;
      dialer: Dialer;
      random: () => number;
      /** Something changed that needs a reconcile (the session was lost). */
      onChange: () => void;
      /** Something changed that the status must show now, with nothing to reconcile (a drain ended). */
      onStatusChange?: () => void;
    },
  ) {
    this.name = name;
    this.log = options.log;
    this.dialer = options.dialer;
    this.random = options.random;
    this.onChange = options.onChange;
    this.sessionBackoff = new Backoff({ min: 1000, max: 60_000 });
    this.forwards = new ForwardSet({
      onOpenFailed: (kind, id, err) => this.log.debug({ forward: id, kind, err: { message: err.message } }, "forwarded connection failed"),
      ...(options.onStatusChange ? { onDrained: options.onStatusChange } : {}),
    });
  }

  get connected(): boolean {
    return this.connection !== undefined && !this.connection.closed;
  }

  /** Nothing open: the runtime can be dropped. */
  get idle(): boolean {
    return !this.connection && this.forwards.getLocal().length === 0 && this.forwards.getRemote().length === 0;
  }

  /** What is open right now, for plan(). Listeners that died are dropped first (drift repair). */
  async observe(): Promise<ObservedTunnel> {
    for (const local of this.forwards.getLocal()) {
      if (!this.forwards.localListening(local)) {
        this.log.warn({ forward: localForwardId(local) }, "listener is gone; reopening");
        await this.forwards.deleteLocal(local).catch(() => undefined);
      }
    }
    return {
      sessionKey: this.connection ? this.connectionKey : undefined,
      sessionState: this.connection ? this.state : this.state === "Backoff" ? "Backoff" : "Closed",
      local: this.forwards.getLocal(),
      remote: this.forwards.getRemote(),
    };
  }

  /**
   * Apply plan() actions. Returns when to look again (a backoff falling due), if ever. A spec of a
   * generation not seen before is tried at once: a fix must not wait for a retry scheduled for
   * the broken version (the backoff starts over from minDelay).
   */
  async apply(actions: Action[], spec: TunnelSpec | undefined, now: () => number, generation?: string): Promise<number | undefined> {
    if (spec) this.sessionBackoff = backoffFor(spec, this.sessionBackoff);
    // Not a session-level setting: a new maxWindow applies to the next connections on this session.
    if (spec) this.connection?.setMaxWindow(spec.transport?.maxWindow);
    if (spec && generation !== undefined && generation !== this.attemptedGeneration) {
      if (this.attemptedGeneration !== undefined) this.retryNow();
      this.attemptedGeneration = generation;
    }
    let requeueAt: number | undefined;
    const later = (at: number): void => {
      requeueAt = requeueAt === undefined ? at : Math.min(requeueAt, at);
    };
    const desiredIds = new Set<ForwardId>([
      ...(spec?.forwards.local ?? []).map(localForwardId),
      ...(spec?.forwards.remote ?? []).map(remoteForwardId),
    ]);
    for (const id of this.failures.keys()) if (!desiredIds.has(id)) this.failures.delete(id);
    // A port we no longer want is no longer "ours": if it comes back and is refused, say so plainly.
    for (const id of this.heldRemotes) if (!desiredIds.has(id)) this.heldRemotes.delete(id);

    for (const action of actions) {
      switch (action.type) {
        case "open-session":
        case "replace-session": {
          if (!spec) break;
          if (now() < this.nextSessionAttempt) {
            later(this.nextSessionAttempt);
            break;
          }
          const ok = await this.openSession(spec, action.type === "replace-session", now);
          if (!ok) later(this.nextSessionAttempt);
          break;
        }
        case "close-session":
          await this.closeSession();
          break;
        case "open-local":
        case "update-local":
          if (!this.connected && action.type === "open-local") break; // bound once the session is up
          await this.attempt(localForwardId(action.forward), now, later, () => this.forwards.setLocal(action.forward));
          break;
        case "close-local":
          this.failures.delete(localForwardId(action.forward));
          await this.forwards.deleteLocal(action.forward).catch(() => undefined);
          break;
        case "open-remote":
        case "update-remote": {
          if (!this.connected) break;
          const id = remoteForwardId(action.forward);
          await this.attempt(id, now, later, async () => {
            try {
              const port = await this.forwards.setRemote(action.forward);
              this.boundPorts.set(id, port);
              this.heldRemotes.delete(id);
            } catch (err) {
              if (err instanceof ForwardRefusedError && this.heldRemotes.has(id)) {
                throw new ForwardRefusedError(err.bindAddress, err.port, { cause: err, reason: "RemotePortBusy" });
              }
              throw err;
            }
          });
          break;
        }
        case "close-remote": {
          const id = remoteForwardId(action.forward);
          this.failures.delete(id);
          this.boundPorts.delete(id);
          await this.forwards.deleteRemote(action.forward).catch(() => undefined);
          break;
        }
      }
    }
    return requeueAt === undefined ? undefined : Math.max(0, requeueAt - now());
  }

  /** Forget every pending backoff: the next apply() tries the session and each failed forward now (SIGHUP, a new generation). */
  retryNow(): void {
    this.sessionBackoff.reset();
    this.nextSessionAttempt = 0;
    for (const failure of this.failures.values()) {
      failure.backoff.reset();
      failure.nextAttempt = 0;
    }
  }

  /** Something waits for a backoff slot (the session or a forward). */
  get backingOff(): boolean {
    return this.nextSessionAttempt > 0 || this.failures.size > 0;
  }

  /**
   * Whether the session runs the session parameters of `spec` (host, user, auth, ...): undefined
   * when it does (or nothing runs), else the generation that does run and why the change failed.
   */
  sessionLag(spec: TunnelSpec): { generation: string; failure?: { reason: string; message: string } } | undefined {
    if (!this.connected || this.connectionKey === sessionKey(spec) || spec.suspend) return undefined;
    // Not failed (yet): the new session is being opened; only the generation says so.
    return { generation: this.connectionGeneration ?? "", ...(this.syncFailure ? { failure: this.syncFailure } : {}) };
  }

  /** Close everything: release remote forwards on the server, close listeners and the session. */
  async shutdown(): Promise<void> {
    await this.closeSession();
    this.state = "Closed";
  }

  session(): SessionObservation {
    const observation: SessionObservation = {
      state: this.state,
      serverVersion: this.serverVersion,
      hostKeyFingerprint: this.hostKeyFingerprint,
      reconnects: this.reconnects,
      lastError: this.lastError,
    };
    if (this.connectedSince && this.state === "Connected") observation.connectedSince = this.connectedSince;
    if (this.connection && this.connectionKey !== undefined) observation.configHash = configHash(this.connectionKey);
    if (this.lastErrorReason) observation.lastErrorReason = this.lastErrorReason;
    const rtt = this.state === "Connected" ? this.connection?.rttMs : undefined;
    if (rtt !== undefined) observation.rttMs = Math.round(rtt * 10) / 10;
    const autotuneOff = autotuneDisabledReason();
    if (autotuneOff !== undefined) observation.windowAutotuneOff = autotuneOff;
    if (this.via.length > 0) observation.via = this.via;
    return observation;
  }

  /** Per-forward observations for the desired forwards (conflicts are the caller's). */
  localObservations(desired: LocalForwardSpec[], conflicts: Map<number, string>): LocalForwardObservation[] {
    const live = new Map(this.forwards.localInfo().map((f) => [localForwardId(f), f]));
    const wanted = new Set(desired.map(localForwardId));
    // Deleted forwards whose open connections still drain are shown until the last one ends.
    const draining: LocalForwardObservation[] = this.forwards
      .drainingInfo()
      .local.filter((f) => !wanted.has(localForwardId(f)))
      .map((f) => ({ ...f, state: "Draining", message: drainingMessage(f.activeConnections) }));
    return [...desired.map((spec, index): LocalForwardObservation => {
      const id = localForwardId(spec);
      const info = live.get(id);
      const counters = {
        activeConnections: info?.activeConnections ?? 0,
        totalConnections: info?.totalConnections ?? 0,
        failedConnections: info?.failedConnections ?? 0,
        bytesIn: info?.bytesIn ?? 0,
        bytesOut: info?.bytesOut ?? 0,
        receiveWindow: info?.receiveWindow ?? 0,
        ...(spec.socks !== undefined ? { refusedConnections: info?.refusedConnections ?? 0 } : {}),
      };
      const conflict = conflicts.get(index);
      if (conflict) return { ...spec, ...counters, state: "Conflict", reason: "Conflict", message: conflict };
      const failure = this.failures.get(id);
      if (failure) return { ...spec, ...counters, state: "Failed", reason: failure.reason, message: failure.message };
      if (info && this.connected) return { ...spec, ...counters, listenAddresses: info.listenAddresses, state: "Active", message: dynamicForwardWarning(spec) ?? "" };
      if (info) return { ...spec, ...counters, state: "Pending", reason: "SessionDown", message: "listening; new connections wait for the session" };
      return { ...spec, ...counters, state: "Pending", message: this.connected ? "" : "waiting for the session" };
    }), ...draining];
  }

  remoteObservations(desired: RemoteForwardSpec[]): RemoteForwardObservation[] {
    const live = new Map(this.forwards.remoteInfo().map((f) => [remoteForwardId(f), f]));
    const wanted = new Set(desired.map(remoteForwardId));
    const draining: RemoteForwardObservation[] = this.forwards
      .drainingInfo()
      .remote.filter((f) => !wanted.has(remoteForwardId(f)))
      .map((f) => ({ ...remoteObservationOf(f), state: "Draining", message: drainingMessage(f.activeConnections) }));
    // Removed, but the server refused (or did not answer) the cancel: it still listens.
    const held: RemoteForwardObservation[] = this.forwards
      .heldRemoteInfo()
      .filter((f) => !wanted.has(remoteForwardId(f)))
      .map((f) => ({
        ...remoteObservationOf(f),
        state: "Failed",
        reason: f.reason,
        message: `${f.message}; removed from the manifest: its connections are refused, and the server frees the port when the session is replaced (or the forward is taken back if put back)`,
      }));
    return [...desired.map((spec): RemoteForwardObservation => {
      const id = remoteForwardId(spec);
      const info = live.get(id);
      const counters = {
        activeConnections: info?.activeConnections ?? 0,
        totalConnections: info?.totalConnections ?? 0,
        bytesIn: info?.bytesIn ?? 0,
        bytesOut: info?.bytesOut ?? 0,
        receiveWindow: info?.receiveWindow ?? 0,
      };
      const base = info ? { ...spec, boundPort: info.boundPort, ...counters } : { ...spec, ...counters };
      const failure = this.failures.get(id);
      if (failure) return { ...base, state: "Failed", reason: failure.reason, message: failure.message };
      if (info) return { ...base, state: "Active", message: bindAddressNote(spec.bindAddress) };
      return { ...base, state: "Pending", message: this.connected ? "" : "waiting for the session" };
    }), ...draining, ...held];
  }

  private async attempt(id: ForwardId, now: () => number, later: (at: number) => void, fn: () => Promise<void>): Promise<void> {
    const failure = this.failures.get(id);
    if (failure && now() < failure.nextAttempt) {
      later(failure.nextAttempt);
      return;
    }
    try {
      await fn();
      if (failure) this.log.info({ forward: id }, "forward recovered");
      this.failures.delete(id);
    } catch (err) {
      const backoff = failure?.backoff ?? new Backoff({ min: this.sessionBackoff.min, max: this.sessionBackoff.max });
      const next = now() + backoff.next(this.random);
      const reason = reasonOf(err);
      if (!failure || failure.reason !== reason) this.log.warn({ forward: id, reason, err: { message: messageOf(err) } }, "forward failed");
      else this.log.debug({ forward: id, reason, attempt: backoff.attempt, retryInMs: next - now() }, "forward retry failed");
      this.failures.set(id, { reason, message: messageOf(err), backoff, nextAttempt: next });
      later(next);
    }
  }

  private async openSession(spec: TunnelSpec, replace: boolean, now: () => number): Promise<boolean> {
    const key = sessionKey(spec);
    if (!replace || !this.connection) this.state = "Connecting";
    const server = `${spec.host}:${spec.port}`;
    let connection: SshConnection;
    let via: HopInfo[];
    try {
      // Direct or through jump hosts; handshakes are limited per server in there.
      ({ connection, via } = await this.dialer.dial(routeOf(spec)));
    } catch (err) {
      this.lastError = messageOf(err);
      this.lastErrorReason = reasonOf(err);
      this.nextSessionAttempt = now() + this.sessionBackoff.next(this.random);
      if (!this.connection) this.state = "Backoff";
      else this.syncFailure = { reason: this.lastErrorReason, message: this.lastError };
      this.log.warn({ reason: this.lastErrorReason, err: { message: this.lastError }, retryInMs: this.nextSessionAttempt - now() }, "connect failed");
      return false;
    }
    const old = this.connection;
    // Ports held by a session to another server (host, port or user changed) say nothing here.
    if (this.connectionKey !== undefined && this.connectionKey !== key) this.heldRemotes.clear();
    this.connection = connection;
    this.connectionKey = key;
    this.connectionGeneration = this.attemptedGeneration;
    this.syncFailure = undefined;
    this.state = "Connected";
    if (this.everConnected) this.reconnects++;
    this.everConnected = true;
    this.lastError = "";
    this.lastErrorReason = undefined;
    this.serverVersion = connection.serverVersion;
    this.hostKeyFingerprint = connection.hostKeyFingerprint;
    this.via = via;
    this.connectedSince = new Date().toISOString();
    this.nextSessionAttempt = 0;
    connection.once("close", (err?: TunnelError) => this.onConnectionClosed(connection, err));
    const failures = await this.forwards.attach(connection);
    for (const [id, err] of failures) {
      const backoff = new Backoff({ min: this.sessionBackoff.min, max: this.sessionBackoff.max });
      this.failures.set(id, { reason: err.reason, message: err.message, backoff, nextAttempt: now() + backoff.next(this.random) });
    }
    this.log.info({ server, serverVersion: connection.serverVersion, replaced: old !== undefined }, "session connected");
    if (old) this.retire(old);
    return true;
  }

  /** A replaced session drains its open connections, then closes. */
  private retire(old: SshConnection): void {
    old.removeAllListeners("close");
    if (old.openChannels === 0) {
      void old.close();
      return;
    }
    const timer = setTimeout(() => old.destroy(), OLD_SESSION_DRAIN_MS);
    timer.unref();
    old.once("idle", () => {
      clearTimeout(timer);
      void old.close();
    });
  }

  private onConnectionClosed(connection: SshConnection, err: TunnelError | undefined): void {
    if (connection !== this.connection) return;
    this.connection = undefined;
    const lost = this.forwards.detach();
    for (const f of lost) this.heldRemotes.add(remoteForwardId(f));
    this.state = "Backoff";
    this.lastError = err ? err.message : "connection closed by the server";
    this.lastErrorReason = err ? err.reason : "ConnectionLost";
    // Success clears the backoff only once it has lasted: a server that accepts and drops at
    // once must not be retried every minDelay.
    if (Date.now() - connection.connectedAt.getTime() >= STABLE_SESSION_MS) this.sessionBackoff.reset();
    this.nextSessionAttempt = Date.now() + this.sessionBackoff.next(this.random);
    this.log.warn({ reason: this.lastErrorReason, err: { message: this.lastError }, retryInMs: this.nextSessionAttempt - Date.now() }, "session lost; reconnecting");
    this.onChange();
  }

  private async closeSession(): Promise<void> {
    const connection = this.connection;
    this.connection = undefined;
    this.connectionKey = undefined;
    await this.forwards.close();
    this.failures.clear();
    this.boundPorts.clear();
    this.heldRemotes.clear();
    if (connection) {
      connection.removeAllListeners("close");
      await connection.close();
    }
    this.state = "Closed";
    this.connectedSince = undefined;
    this.syncFailure = undefined;
    // Closed on purpose (suspend, removal): the next session is a fresh start, not a reconnect.
    this.everConnected = false;
  }
}

function backoffFor(spec: TunnelSpec, current: Backoff): Backoff {
  const { minDelay, maxDelay } = spec.reconnect;
  if (current.min === minDelay && current.max === maxDelay) return current;
  return new Backoff({ min: minDelay, max: maxDelay });
}

/** The fields of a remote forward no longer desired (draining, or held by the server). */
function remoteObservationOf(f: RemoteForwardInfo): Omit<RemoteForwardObservation, "state" | "message"> {
  return {
    bindAddress: f.bindAddress,
    remotePort: f.remotePort,
    boundPort: f.boundPort,
    localHost: f.localHost,
    localPort: f.localPort,
    ...(f.remotePath !== undefined ? { remotePath: f.remotePath } : {}),
    ...(f.localPath !== undefined ? { localPath: f.localPath } : {}),
    activeConnections: f.activeConnections,
    totalConnections: f.totalConnections,
    bytesIn: f.bytesIn,
    bytesOut: f.bytesOut,
    receiveWindow: f.receiveWindow,
  };
}

function drainingMessage(connections: number): string {
  return `deleted; ${connections} open connection${connections === 1 ? "" : "s"} draining`;
}
