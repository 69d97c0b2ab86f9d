// A local forward (ssh -L): a listener that sends each accepted connection through an SSH
// channel. The listener outlives SSH connections: while no connection is attached, accepted
// sockets wait (up to connectTimeout) and are served once one is attached again.
import { chmod, lstat, unlink } from "node:fs/promises";
import { connect as netConnect, createServer, type Server, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { BindError, ConnectTimeoutError, PortInUseError, TunnelError, formatHostPort, messageOf } from "./errors.ts";
import { splice } from "./splice.ts";
import { allowedBy, type AllowPattern } from "../manifest/allow-pattern.ts";
import { parseSocks, replyFor, REP, type ReplyCode } from "./socks/protocol.ts";
import { ForwardStats } from "./stats.ts";

/**
 * The addresses a local listener binds for `bindAddress`. "localhost" is both loopbacks, as
 * `ssh -L localhost:…` binds them (getaddrinfo gives both); anything else is itself.
 */
export function listenAddresses(bindAddress: string): string[] {
  return bindAddress.toLowerCase() === "localhost" ? ["127.0.0.1", "::1"] : [bindAddress];
}

export interface LocalForwardTarget {
  remoteHost: string;
  remotePort: number;
  connectTimeout: number;
  /**
   * A dynamic forward (ssh -D): each connection names its destination in a SOCKS handshake, and
   * `allow` (when given) limits where it may go. remoteHost/remotePort are then unused.
   */
  socks?: { allow?: readonly AllowPattern[] | undefined } | undefined;
  /** Open the server's unix socket at this path (direct-streamlocal) instead of remoteHost:remotePort. */
  remotePath?: string | undefined;
  /** The listening socket file's mode (path listeners only). */
  mode?: number | undefined;
}

/** Opens the remote end of one forwarded connection (a direct-tcpip channel). */
export type ChannelOpener = (srcAddr: string, srcPort: number, dstHost: string, dstPort: number, dstPath?: string) => Promise<Duplex>;

export interface LocalForwardEvents {
  /** A forwarded connection could not be opened (target refused, timeout, no session). */
  onOpenFailed?: (err: Error) => void;
}

/** The connectTimeout of one accepted connection: it runs from accept, held time included. */
interface Deadline {
  timer: NodeJS.Timeout;
  expired: boolean;
}

interface Waiting {
  socket: Socket;
  deadline: Deadline;
  /** A SOCKS connection's destination and protocol version, once its request has been read. */
  socks?: { host: string; port: number; version: 4 | 5 };
}

/** A SOCKS client has this long to send its request (a stalled or silent client is cut off). */
const SOCKS_HANDSHAKE_MS = 10_000;

export class LocalForward {
  readonly bindAddress: string;
  readonly localPort: number;
  target: LocalForwardTarget;
  readonly stats = new ForwardStats();
  private readonly servers: Server[] = [];
  /** Set when listening on a unix socket instead of bindAddress:localPort. */
  localPath: string | undefined;
  /** The addresses really listened on (see listenAddresses). */
  boundAddresses: string[] = [];
  private opener: ChannelOpener | undefined;
  private readonly waiting = new Set<Waiting>();
  private readonly sockets = new Set<Socket>();
  /** Called when the last connection through this forward closes (drain finished). */
  onIdle: (() => void) | undefined;
  private listening = false;
  private readonly events: LocalForwardEvents;

  private constructor(bindAddress: string, localPort: number, target: LocalForwardTarget, opener: ChannelOpener | undefined, events: LocalForwardEvents) {
    this.bindAddress = bindAddress;
    this.localPort = localPort;
    this.target = target;
    this.opener = opener;
    this.events = events;
  }

  private createServer(): Server {
    // allowHalfOpen: a client's EOF must not end our side before the reply arrives.
    // noDelay: set on accept by libuv (no 43 ms Nagle stall on small replies).
    return createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.accept(socket));
  }

  /**
   * Bind the listener; resolves once it accepts connections. Throws PortInUseError / BindError.
   * "localhost" binds 127.0.0.1 and ::1; like ssh, it is enough that one of them binds (a host
   * without IPv6, say): boundAddresses says which did.
   */
  /**
   * Listen on the unix socket `path` (mode target.mode, default 0600). A socket file already there
   * is replaced only if nothing answers on it (a leftover of a crash); anything else is in the way.
   * The file is removed when the listener closes (Node unlinks what it bound).
   */
  static async listenPath(path: string, target: LocalForwardTarget, opener: ChannelOpener | undefined, events: LocalForwardEvents = {}): Promise<LocalForward> {
    await clearStaleSocket(path);
    const forward = new LocalForward("", 0, target, opener, events);
    forward.localPath = path;
    const server = forward.createServer();
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        if (err.code === "EADDRINUSE") reject(new BindError(`unix:${path}`, 0, "in use", { cause: err }));
        else reject(new BindError(`unix:${path}`, 0, err.code === "EACCES" ? "permission denied" : (err.code ?? err.message), { cause: err }));
      };
      server.once("error", onError);
      // Created without access for group and others, then given its mode: never briefly open.
      const umask = process.umask(0o177);
      try {
        server.listen({ path }, () => {
          server.off("error", onError);
          server.on("error", () => undefined);
          chmod(path, target.mode ?? 0o600).then(() => resolve(), reject);
        });
      } finally {
        process.umask(umask);
      }
    });
    forward.servers.push(server);
    forward.boundAddresses = [];
    forward.listening = true;
    return forward;
  }

  static async listen(
    bindAddress: string,
    localPort: number,
    target: LocalForwardTarget,
    opener: ChannelOpener | undefined,
    events: LocalForwardEvents = {},
  ): Promise<LocalForward> {
    const forward = new LocalForward(bindAddress, localPort, target, opener, events);
    const results = await Promise.allSettled(listenAddresses(bindAddress).map((address) => forward.bind(address, localPort)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (forward.servers.length === 0 && failed) throw failed.reason;
    forward.listening = true;
    return forward;
  }

  private bind(address: string, localPort: number): Promise<void> {
    const server = this.createServer();
    return new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        const shown = this.bindAddress;
        if (err.code === "EADDRINUSE") reject(new PortInUseError(shown, localPort, { cause: err }));
        else if (err.code === "EACCES") reject(new BindError(shown, localPort, "permission denied", { cause: err }));
        else if (err.code === "EADDRNOTAVAIL") reject(new BindError(shown, localPort, "address not available on this host", { cause: err }));
        else reject(new BindError(shown, localPort, err.code ?? err.message, { cause: err }));
      };
      server.once("error", onError);
      server.listen({ host: address, port: localPort }, () => {
        server.off("error", onError);
        server.on("error", () => undefined);
        this.servers.push(server);
        this.boundAddresses = listenAddresses(this.bindAddress).filter((a) => a === address || this.boundAddresses.includes(a));
        resolve();
      });
    });
  }

  get isListening(): boolean {
    return this.listening && this.servers.length > 0 && this.servers.every((s) => s.listening);
  }

  get connectionCount(): number {
    return this.sockets.size;
  }

  /** Attach (or, with undefined, detach) the SSH side. Waiting connections go through at once, within what is left of their connectTimeout. */
  setOpener(opener: ChannelOpener | undefined): void {
    this.opener = opener;
    if (!opener) return;
    for (const w of [...this.waiting]) {
      this.waiting.delete(w);
      this.open(w);
    }
  }

  /** Change the target in place: new connections use it, open ones are left alone. */
  update(target: LocalForwardTarget): void {
    if (this.localPath !== undefined && target.mode !== this.target.mode) void chmod(this.localPath, target.mode ?? 0o600).catch(() => undefined);
    this.target = target;
  }

  /** Stop accepting at once (the port is free again when this resolves); open connections drain. */
  async close(): Promise<void> {
    if (!this.listening) return;
    this.listening = false;
    for (const w of this.waiting) {
      clearTimeout(w.deadline.timer);
      w.socket.destroy();
    }
    this.waiting.clear();
    // server.close()'s callback waits for every connection to end; the port itself is released
    // when libuv closes the handle, which happens before the next turn of the loop.
    for (const server of this.servers) server.close();
    await new Promise<void>((resolve) => setImmediate(resolve));
  }

  /** Close the listener and every connection through it. */
  async destroy(): Promise<void> {
    const closing = this.close();
    for (const s of this.sockets) s.destroy();
    await closing;
  }

  private accept(socket: Socket): void {
    // Read at once but stay paused: the client's first bytes are in hand when the channel opens
    // and go out in the same turn (with pauseOnConnect they waited one more turn of the event
    // loop: 0.52 → 0.51 ms per connection in the setup bench). One read (≤ 64 KiB) is buffered
    // at most, then the kernel's window holds the client back.
    socket.pause();
    this.sockets.add(socket);
    this.stats.track(socket);
    socket.once("close", () => {
      this.sockets.delete(socket);
      if (this.sockets.size === 0) this.onIdle?.();
      this.stats.untrack(socket);
    });
    socket.on("error", () => undefined);
    // One deadline from accept to an open channel: time held waiting for a session counts.
    const { remoteHost, remotePort, remotePath, connectTimeout } = this.target;
    const deadline: Deadline = {
      expired: false,
      timer: setTimeout(() => {
        deadline.expired = true;
        this.waiting.delete(waiting);
        const where = waiting.socks
          ? formatHostPort(waiting.socks.host, waiting.socks.port)
          : remotePath !== undefined
            ? `the server's socket ${remotePath}`
            : formatHostPort(remoteHost, remotePort);
        this.fail(socket, new ConnectTimeoutError(where, connectTimeout), waiting.socks?.version);
      }, connectTimeout),
    };
    const waiting: Waiting = { socket, deadline };
    socket.once("close", () => {
      clearTimeout(deadline.timer);
      this.waiting.delete(waiting);
    });
    if (this.target.socks) this.negotiate(waiting, this.target.socks.allow);
    else this.open(waiting);
  }

  /** Read the SOCKS request (answering a SOCKS5 greeting on the way), then open its destination. */
  private negotiate(held: Waiting, allow: readonly AllowPattern[] | undefined): void {
    const { socket } = held;
    let buffered: Buffer = Buffer.alloc(0);
    let greeted = false;
    const stalled = setTimeout(() => finish(() => this.fail(socket, new Error("SOCKS handshake not completed in time"))), SOCKS_HANDSHAKE_MS);
    const finish = (then: () => void): void => {
      clearTimeout(stalled);
      socket.off("data", onData);
      socket.pause();
      then();
    };
    const onData = (chunk: Buffer): void => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      for (;;) {
        const step = parseSocks(buffered, greeted);
        if (step.kind === "more") return;
        if (step.kind === "greeting") {
          socket.write(step.reply);
          buffered = buffered.subarray(step.consumed);
          greeted = true;
          continue;
        }
        if (step.kind === "reject") {
          finish(() => {
            clearTimeout(held.deadline.timer);
            this.stats.connectionFailed();
            socket.end(step.reply, () => socket.destroy());
            this.events.onOpenFailed?.(new Error(step.why));
          });
          return;
        }
        const rest = buffered.subarray(step.consumed);
        finish(() => {
          // Bytes the client sent after its request go through the channel like any others.
          if (rest.length > 0) socket.unshift(rest);
          if (allow !== undefined && allowedBy(allow, step.host, step.port) === undefined) {
            clearTimeout(held.deadline.timer);
            this.stats.destinationRefused();
            socket.end(replyFor(step.version, REP.notAllowed), () => socket.destroy());
            this.events.onOpenFailed?.(new Error(`SOCKS destination ${formatHostPort(step.host, step.port)} is not in allow`));
            return;
          }
          held.socks = { host: step.host, port: step.port, version: step.version };
          this.open(held);
        });
        return;
      }
    };
    socket.on("data", onData);
    socket.once("close", () => clearTimeout(stalled));
    socket.resume();
  }

  private open(held: Waiting): void {
    const { socket, deadline } = held;
    if (socket.destroyed || deadline.expired) return;
    const opener = this.opener;
    if (!opener) {
      // No session right now (reconnecting): hold the connection rather than refuse it.
      this.waiting.add(held);
      return;
    }
    const remoteHost = held.socks?.host ?? this.target.remoteHost;
    const remotePort = held.socks?.port ?? this.target.remotePort;
    const remotePath = held.socks ? undefined : this.target.remotePath;
    opener(socket.remoteAddress ?? "127.0.0.1", socket.remotePort ?? 0, remoteHost, remotePort, remotePath).then(
      (channel) => {
        clearTimeout(deadline.timer);
        if (deadline.expired || socket.destroyed) {
          channel.destroy();
          return;
        }
        if (held.socks) socket.write(replyFor(held.socks.version, REP.succeeded));
        splice(socket, channel, () => undefined);
      },
      (err: unknown) => {
        if (deadline.expired) return;
        if (sessionGone(err) && this.listening && !socket.destroyed) {
          // The session died under this open (a half-open peer found out by keepalive): not the
          // target's fault. Wait for the next session, within what is left of connectTimeout.
          if (this.opener && this.opener !== opener) this.open(held);
          else this.waiting.add(held);
          return;
        }
        clearTimeout(deadline.timer);
        this.fail(socket, err instanceof Error ? err : new Error(messageOf(err)), held.socks?.version);
      },
    );
  }

  /** Count and close a connection that could not be served; a SOCKS client is told why first. */
  private fail(socket: Socket, err: Error, socksVersion?: 4 | 5): void {
    this.stats.connectionFailed();
    if (socksVersion !== undefined && !socket.destroyed) socket.end(replyFor(socksVersion, socksReplyFor(err)), () => socket.destroy());
    else socket.destroy();
    this.events.onOpenFailed?.(err);
  }
}

/**
 * The SOCKS reply for a failed open: refused → 0x05, a name or host that cannot be reached →
 * 0x04, the server's policy (PermitOpen) → 0x02, out of time → 0x06, else 0x01. What the server
 * said is all there is to go on (ssh2 gives the same reason code for refused and unresolvable).
 */
export function socksReplyFor(err: Error): ReplyCode {
  if (err instanceof ConnectTimeoutError) return REP.ttlExpired;
  const text = err.message;
  if (/refused/i.test(text)) return REP.connectionRefused;
  if (/prohibited|not permitted|denied/i.test(text)) return REP.notAllowed;
  if (/name or service|not known|resolve|no address|unreachable|no route|getaddrinfo/i.test(text)) return REP.hostUnreachable;
  return REP.generalFailure;
}

/** A socket file at `path` that nothing answers on is a leftover: remove it. Anything else stays. */
async function clearStaleSocket(path: string): Promise<void> {
  let info;
  try {
    info = await lstat(path);
  } catch {
    return; // nothing there
  }
  if (!info.isSocket()) throw new BindError(`unix:${path}`, 0, "exists and is not a socket");
  const answered = await new Promise<boolean>((resolve) => {
    const probe = netConnect({ path });
    probe.once("connect", () => {
      probe.destroy();
      resolve(true);
    });
    probe.once("error", () => resolve(false));
  });
  if (answered) throw new BindError(`unix:${path}`, 0, "in use: something listens on it");
  await unlink(path);
}

/** The SSH connection went away under a channel open (as opposed to the target refusing). */
function sessionGone(err: unknown): boolean {
  return err instanceof TunnelError && (err.reason === "ConnectionLost" || err.reason === "NotConnected");
}
