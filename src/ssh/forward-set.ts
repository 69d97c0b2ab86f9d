// The forwards of one tunnel, independent of any one SSH connection: local listeners stay bound
// while the connection under them is replaced (make-before-break) or re-established; remote
// forwards are requested on whichever connection is attached.
import type { LocalForwardSpec, RemoteForwardSpec } from "../manifest/types.ts";
import { localForwardId, remoteForwardId } from "../reconcile/forward-id.ts";
import type { SshConnection } from "./connection.ts";
import { CancelRefusedError, ConnectionError, ForwardNotFoundError, RequestTimeoutError, TunnelError, messageOf } from "./errors.ts";
import { LocalForward, type ChannelOpener } from "./local-forward.ts";
import { RemoteForward } from "./remote-forward.ts";
import { parseAllowPattern } from "../manifest/allow-pattern.ts";
import type { ForwardCounters } from "./stats.ts";

export interface LocalForwardInfo extends LocalForwardSpec, ForwardCounters {
  /** The addresses really listened on: both loopbacks for "localhost". */
  listenAddresses: string[];
  /** Dynamic forwards: SOCKS requests refused because `allow` does not list the destination. */
  refusedConnections?: number;
}
export interface RemoteForwardInfo extends RemoteForwardSpec, ForwardCounters {
  boundPort: number;
}

export interface ForwardSetEvents {
  /** A connection through a forward failed to open (counted; the forward itself stays up). */
  onOpenFailed?: (kind: "local" | "remote", id: string, err: Error) => void;
  /** A deleted forward's last connection closed: it is no longer Draining (a state change). */
  onDrained?: () => void;
}

export class ForwardSet {
  private readonly locals = new Map<string, LocalForward>();
  private readonly remotes = new Map<string, RemoteForward>();
  /** Deleted remote forwards whose connections still drain. */
  private readonly drainingRemotes = new Set<RemoteForward>();
  private readonly drainingLocals = new Set<LocalForward>();
  /**
   * Deleted remote forwards that the server did not let go of (it refused the cancel, or did not
   * answer it): it still listens on the attached connection. Their connections are refused; set
   * again, one is taken back as it is, with no new tcpip-forward.
   */
  private readonly heldRemotes = new Map<string, { forward: RemoteForward; error: TunnelError }>();
  private connection: SshConnection | undefined;
  private readonly events: ForwardSetEvents;

  constructor(events: ForwardSetEvents = {}) {
    this.events = events;
  }

  get attached(): SshConnection | undefined {
    return this.connection;
  }

  // ---- local ----

  /** Open a local forward, or change the target of an existing one in place. */
  async setLocal(spec: LocalForwardSpec): Promise<void> {
    const id = localForwardId(spec);
    const target = {
      remoteHost: spec.remoteHost,
      remotePort: spec.remotePort,
      connectTimeout: spec.connectTimeout,
      socks: spec.socks === undefined ? undefined : { allow: spec.socks.allow?.map(parseAllowPattern) },
      remotePath: spec.remotePath,
      mode: spec.mode,
    };
    const existing = this.locals.get(id);
    if (existing) {
      existing.update(target);
      return;
    }
    const events = { onOpenFailed: (err: Error) => this.events.onOpenFailed?.("local", id, err) };
    const forward =
      spec.localPath !== undefined
        ? await LocalForward.listenPath(spec.localPath, target, this.opener(), events)
        : await LocalForward.listen(spec.bindAddress, spec.localPort, target, this.opener(), events);
    // Two concurrent sets for one identity: the second bind fails with EADDRINUSE before here.
    this.locals.set(id, forward);
  }

  /** Stop accepting at once; open connections drain. Resolves when the port is free. */
  async deleteLocal(spec: Pick<LocalForwardSpec, "bindAddress" | "localPort"> & { localPath?: string | undefined; socks?: unknown }): Promise<void> {
    const forward = this.locals.get(localForwardId(spec));
    if (!forward) throw new ForwardNotFoundError("local", spec.bindAddress, spec.localPort);
    this.locals.delete(localForwardId(spec));
    if (forward.connectionCount > 0) {
      this.drainingLocals.add(forward);
      forward.onIdle = () => {
        if (this.drainingLocals.delete(forward)) this.events.onDrained?.();
      };
    }
    await forward.close();
  }

  findLocal(bindAddress: string | undefined, localPort: number): LocalForwardSpec[] {
    return this.getLocal().filter((f) => f.localPort === localPort && (bindAddress === undefined || f.bindAddress === bindAddress));
  }

  getLocal(): LocalForwardSpec[] {
    return [...this.locals.values()].map(localSpecOf);
  }

  localInfo(): LocalForwardInfo[] {
    return [...this.locals.values()].map(localInfoOf);
  }

  /** Is the listener of this local forward still bound? (drift check) */
  localListening(spec: Pick<LocalForwardSpec, "bindAddress" | "localPort">): boolean {
    return this.locals.get(localForwardId(spec))?.isListening ?? false;
  }

  // ---- remote ----

  /** Ask the server for a remote forward, or change the target of an existing one in place. */
  async setRemote(spec: RemoteForwardSpec): Promise<number> {
    const id = remoteForwardId(spec);
    const target = { localHost: spec.localHost, localPort: spec.localPort, localPath: spec.localPath };
    const existing = this.remotes.get(id);
    if (existing) {
      existing.update(target);
      return existing.boundPort;
    }
    const held = this.heldRemotes.get(id)?.forward;
    if (held) {
      // The server still listens for us: route its connections again.
      this.heldRemotes.delete(id);
      this.drainingRemotes.delete(held);
      held.onIdle = undefined;
      held.update(target);
      this.remotes.set(id, held);
      return held.boundPort;
    }
    const connection = this.connection;
    if (!connection) throw new ConnectionError("NotConnected", "No SSH connection to request the remote forward on");
    const boundPort = await requestRemote(connection, spec);
    const forward = new RemoteForward(spec.bindAddress, spec.remotePort, boundPort, target, spec.remotePath);
    forward.onOpenFailed = (err) => this.events.onOpenFailed?.("remote", id, err);
    this.remotes.set(id, forward);
    return boundPort;
  }

  /**
   * Release on the server (waits for its reply); open connections drain. New connections are
   * refused at once. If the server refuses the cancel (CancelRefused) or does not answer it
   * (RequestTimeout), the forward is kept as held by the server (heldRemoteInfo) and the error
   * is thrown; deleting it again asks the server again.
   */
  async deleteRemote(spec: Pick<RemoteForwardSpec, "bindAddress" | "remotePort"> & { remotePath?: string | undefined }): Promise<void> {
    const id = remoteForwardId(spec);
    const forward = this.remotes.get(id) ?? this.heldRemotes.get(id)?.forward;
    if (!forward) throw new ForwardNotFoundError("remote", spec.bindAddress, spec.remotePort);
    this.remotes.delete(id);
    this.heldRemotes.delete(id);
    this.drain(forward);
    const connection = this.connection;
    try {
      if (connection) await cancelRemote(connection, forward);
    } catch (err) {
      const stillHeld = err instanceof CancelRefusedError || err instanceof RequestTimeoutError;
      if (stillHeld && connection && connection === this.connection && !connection.closed && !this.remotes.has(id)) {
        this.heldRemotes.set(id, { forward, error: err });
      }
      throw err;
    }
  }

  getRemote(): RemoteForwardSpec[] {
    return [...this.remotes.values()].map(remoteSpecOf);
  }

  remoteInfo(): RemoteForwardInfo[] {
    return [...this.remotes.values()].map(remoteInfoOf);
  }

  /** The counters of every forward, draining ones included, as numbers (see ForwardStats.appendSignature). */
  appendCountersSignature(out: number[]): void {
    for (const f of this.locals.values()) f.stats.appendSignature(out);
    for (const f of this.remotes.values()) f.stats.appendSignature(out);
    for (const f of this.drainingLocals) f.stats.appendSignature(out);
    for (const f of this.drainingRemotes) f.stats.appendSignature(out);
    out.push(this.locals.size, this.remotes.size, this.drainingLocals.size, this.drainingRemotes.size);
  }

  /** Deleted remote forwards the server still listens on (a refused or unanswered cancel). */
  heldRemoteInfo(): Array<RemoteForwardInfo & { reason: string; message: string }> {
    return [...this.heldRemotes.values()].map(({ forward: f, error }) => ({
      ...remoteInfoOf(f),
      reason: error.reason,
      message: error.message,
    }));
  }

  /** Deleted forwards whose open connections still drain (status state Draining). */
  drainingInfo(): { local: LocalForwardInfo[]; remote: RemoteForwardInfo[] } {
    return {
      local: [...this.drainingLocals].map(localInfoOf),
      remote: [...this.drainingRemotes].filter((f) => !this.isHeld(f)).map(remoteInfoOf),
    };
  }

  // ---- connection ----

  /**
   * Put the forwards on `connection`. Local forwards switch at once (waiting connections go
   * through). Remote forwards held on a previous connection are released there first (a server
   * will not bind one port twice) and requested again here; those the server refuses are dropped
   * and returned, so the caller can report and retry them.
   */
  async attach(connection: SshConnection): Promise<Map<string, TunnelError>> {
    const previous = this.connection;
    this.connection = connection;
    connection.onTcpConnection((info, accept, reject) => this.dispatch(connection, info.destIP, info.destPort, accept, reject));
    connection.onUnixConnection((path, accept, reject) => {
      const match = [...this.remotes.values()].find((f) => f.remotePath === path);
      if (match) match.handle(connection, accept, reject);
      else reject();
    });
    const opener = this.opener();
    for (const local of this.locals.values()) local.setOpener(opener);

    const failures = new Map<string, TunnelError>();
    const moving = [...this.remotes.entries()];
    // Held forwards stay with the previous connection, which is closed once it has drained.
    this.heldRemotes.clear();
    if (previous && !previous.closed) {
      await Promise.all(moving.map(([, f]) => cancelRemote(previous, f).catch(() => undefined)));
    }
    // Requests go out in parallel: sshd answers each after its own delayed-ACK round trip.
    await Promise.all(
      moving.map(async ([id, old]) => {
        this.remotes.delete(id);
        this.drain(old);
        try {
          const boundPort = await requestRemote(connection, old);
          const forward = new RemoteForward(old.bindAddress, old.remotePort, boundPort, old.target, old.remotePath);
          forward.onOpenFailed = (err) => this.events.onOpenFailed?.("remote", id, err);
          this.remotes.set(id, forward);
        } catch (err) {
          failures.set(id, err instanceof TunnelError ? err : new TunnelError("Unknown", messageOf(err)));
        }
      }),
    );
    return failures;
  }

  /**
   * The connection is gone. Local listeners stay bound and hold new connections; remote forwards
   * died with the connection on the server and are forgotten (returned, to be requested again).
   */
  detach(): RemoteForwardSpec[] {
    const lost = this.getRemote();
    this.connection = undefined;
    for (const local of this.locals.values()) local.setOpener(undefined);
    for (const remote of this.remotes.values()) remote.destroy();
    this.remotes.clear();
    this.heldRemotes.clear(); // released with the connection
    return lost;
  }

  /** Close every listener; release remote forwards on the server; end every connection. */
  async close(): Promise<void> {
    const connection = this.connection;
    await Promise.all([
      ...[...this.locals.values()].map((f) => f.destroy()),
      ...[...this.remotes.values(), ...[...this.heldRemotes.values()].map((h) => h.forward)].map((f) =>
        connection && !connection.closed ? cancelRemote(connection, f).catch(() => undefined) : undefined,
      ),
    ]);
    this.heldRemotes.clear();
    for (const f of this.remotes.values()) f.destroy();
    for (const f of this.drainingRemotes) f.destroy();
    await Promise.all([...this.drainingLocals].map((f) => f.destroy()));
    this.drainingLocals.clear();
    this.locals.clear();
    this.remotes.clear();
    this.drainingRemotes.clear();
    this.connection = undefined;
  }

  /** Connections open through all forwards, live and draining. */
  get connectionCount(): number {
    let n = 0;
    for (const f of this.locals.values()) n += f.connectionCount;
    for (const f of this.remotes.values()) n += f.connectionCount;
    for (const f of this.drainingRemotes) n += f.connectionCount;
    for (const f of this.drainingLocals) n += f.connectionCount;
    return n;
  }

  private isHeld(forward: RemoteForward): boolean {
    for (const held of this.heldRemotes.values()) if (held.forward === forward) return true;
    return false;
  }

  private drain(forward: RemoteForward): void {
    if (forward.connectionCount === 0) return;
    this.drainingRemotes.add(forward);
    forward.onIdle = () => {
      if (this.drainingRemotes.delete(forward)) this.events.onDrained?.();
    };
  }

  private opener(): ChannelOpener | undefined {
    const connection = this.connection;
    if (!connection) return undefined;
    return (srcAddr, srcPort, dstHost, dstPort, dstPath) =>
      dstPath !== undefined ? connection.openStreamLocal(dstPath) : connection.openChannel(srcAddr, srcPort, dstHost, dstPort);
  }

  private dispatch(
    connection: SshConnection,
    destIP: string,
    destPort: number,
    accept: Parameters<RemoteForward["handle"]>[1],
    reject: Parameters<RemoteForward["handle"]>[2],
  ): void {
    let match: RemoteForward | undefined;
    for (const f of this.remotes.values()) {
      if (f.boundPort !== destPort) continue;
      if (f.bindAddress === destIP) {
        match = f;
        break;
      }
      match ??= f; // sshd may report the address differently (localhost vs 127.0.0.1)
    }
    if (!match) {
      reject();
      return;
    }
    match.handle(connection, accept, reject);
  }
}

function localSpecOf(f: LocalForward): LocalForwardSpec {
  const spec: LocalForwardSpec = {
    bindAddress: f.bindAddress,
    localPort: f.localPort,
    remoteHost: f.target.remoteHost,
    remotePort: f.target.remotePort,
    connectTimeout: f.target.connectTimeout,
  };
  const socks = f.target.socks;
  if (socks !== undefined) spec.socks = socks.allow === undefined ? {} : { allow: socks.allow.map((p) => p.text) };
  if (f.localPath !== undefined) {
    spec.localPath = f.localPath;
    spec.mode = f.target.mode ?? 0o600;
  }
  if (f.target.remotePath !== undefined) spec.remotePath = f.target.remotePath;
  return spec;
}

function remoteInfoOf(f: RemoteForward): RemoteForwardInfo {
  return { ...remoteSpecOf(f), boundPort: f.boundPort, ...f.stats.snapshot() };
}

function localInfoOf(f: LocalForward): LocalForwardInfo {
  const info: LocalForwardInfo = { ...localSpecOf(f), ...f.stats.snapshot(), listenAddresses: f.boundAddresses };
  if (f.target.socks !== undefined) info.refusedConnections = f.stats.refusedDestinations;
  return info;
}

function remoteSpecOf(f: RemoteForward): RemoteForwardSpec {
  const spec: RemoteForwardSpec = { bindAddress: f.bindAddress, remotePort: f.remotePort, localHost: f.target.localHost, localPort: f.target.localPort };
  if (f.remotePath !== undefined) spec.remotePath = f.remotePath;
  if (f.target.localPath !== undefined) spec.localPath = f.target.localPath;
  return spec;
}

/** Ask the server to listen: on a port (tcpip-forward; resolves the port bound) or a unix socket (0). */
async function requestRemote(connection: SshConnection, f: { bindAddress: string; remotePort: number; remotePath?: string | undefined }): Promise<number> {
  if (f.remotePath === undefined) return connection.requestRemoteForward(f.bindAddress, f.remotePort);
  await connection.requestStreamLocalForward(f.remotePath);
  return 0;
}

function cancelRemote(connection: SshConnection, f: RemoteForward): Promise<void> {
  return f.remotePath !== undefined ? connection.cancelStreamLocalForward(f.remotePath) : connection.cancelRemoteForward(f.bindAddress, f.boundPort);
}
