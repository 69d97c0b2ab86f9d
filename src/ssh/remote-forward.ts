// A remote forward (ssh -R): the server listens, and each connection it accepts arrives as a
// `forwarded-tcpip` channel that we join to a fresh TCP connection to localHost:localPort.
import { connect as netConnect, type Socket } from "node:net";
import type { AcceptConnection, ClientChannel, RejectConnection } from "ssh2";
import type { SshConnection } from "./connection.ts";
import { splice } from "./splice.ts";
import { ForwardStats } from "./stats.ts";

export interface RemoteForwardTarget {
  localHost: string;
  localPort: number;
  /** Connect to this unix socket here instead of localHost:localPort. */
  localPath?: string | undefined;
}

/**
 * What a client can honestly say about where the server listens. The SSH protocol confirms a
 * remote forward without saying which address the server bound: OpenSSH honours a non-loopback
 * request only with `GatewayPorts clientspecified` (or `yes`), and under its default `no` binds
 * loopback instead, silently. A loopback request needs no note; anything else gets one.
 */
export function bindAddressNote(bindAddress: string): string {
  const loopback = bindAddress === "localhost" || bindAddress === "::1" || /^127\./.test(bindAddress);
  if (loopback) return "";
  return `requested ${bindAddress || "all addresses"}; the server's GatewayPorts setting decides the address it really listens on (OpenSSH's default, no, means loopback only)`;
}

/** Time allowed to reach localHost:localPort for one forwarded connection. */
const LOCAL_CONNECT_TIMEOUT_MS = 30_000;

export class RemoteForward {
  readonly bindAddress: string;
  /** The port asked for (0 = server chooses): part of the identity. */
  readonly remotePort: number;
  /** The port the server really listens on. */
  readonly boundPort: number;
  target: RemoteForwardTarget;
  readonly stats = new ForwardStats();
  private readonly sockets = new Set<Socket>();
  onOpenFailed: ((err: Error) => void) | undefined;
  /** Called when the last connection through this forward closes. */
  onIdle: (() => void) | undefined;

  /** The server listens on this unix socket instead of a port (streamlocal-forward). */
  readonly remotePath: string | undefined;

  constructor(bindAddress: string, remotePort: number, boundPort: number, target: RemoteForwardTarget, remotePath?: string) {
    this.bindAddress = bindAddress;
    this.remotePort = remotePort;
    this.boundPort = boundPort;
    this.target = target;
    this.remotePath = remotePath;
  }

  get connectionCount(): number {
    return this.sockets.size;
  }

  /** Change the target in place: new connections use it, open ones are left alone. */
  update(target: RemoteForwardTarget): void {
    this.target = target;
  }

  /** Serve one incoming connection: connect locally first, then accept (or reject) the channel. */
  handle(connection: SshConnection, accept: AcceptConnection<ClientChannel>, reject: RejectConnection): void {
    const { localHost, localPort, localPath } = this.target;
    const socket = localPath !== undefined ? netConnect({ path: localPath, allowHalfOpen: true }) : netConnect({ host: localHost, port: localPort, allowHalfOpen: true });
    if (localPath === undefined) socket.setNoDelay(true);
    const where = localPath ?? `${localHost}:${localPort}`;
    const timer = setTimeout(() => socket.destroy(new Error(`timed out connecting to ${where}`)), LOCAL_CONNECT_TIMEOUT_MS);
    socket.once("error", (err) => {
      clearTimeout(timer);
      if (socket.connecting || !this.sockets.has(socket)) {
        this.stats.connectionFailed();
        this.onOpenFailed?.(err);
        reject();
      }
    });
    socket.once("connect", () => {
      clearTimeout(timer);
      const channel = accept();
      connection.trackChannel(channel);
      this.sockets.add(socket);
      this.stats.track(socket, false);
      socket.once("close", () => {
        this.sockets.delete(socket);
        this.stats.untrack(socket);
        if (this.sockets.size === 0) this.onIdle?.();
      });
      splice(socket, channel, () => undefined);
    });
  }

  /** Close every connection through this forward. */
  destroy(): void {
    for (const s of this.sockets) s.destroy();
  }
}
