// The demo's SSH server: ssh2's Server on loopback, public-key auth only, and just enough of sshd to
// carry port forwards — direct-tcpip (ssh -L) and tcpip-forward / cancel-tcpip-forward (ssh -R).
import { connect, createServer, type AddressInfo, type Server as NetServer, type Socket } from "node:net";
import type { AuthContext, Connection, ParsedKey, ServerChannel, TcpipBindInfo, TcpipRequestInfo } from "ssh2";
import ssh2 from "../ssh/ssh2.ts";
import { fingerprintOfBlob, parseKeyOrThrow } from "./keys.ts";

export interface EmbeddedServerOptions {
  /** Host private key, PEM or OpenSSH format, unencrypted. */
  hostKey: string;
  /** OpenSSH public key lines ("ssh-ed25519 AAAA... comment"); blank lines and "#" comments are skipped. */
  authorizedKeys: string[];
  port?: number; // default 0: any free port
  host?: string; // default 127.0.0.1
  /** Which remote-forward binds to allow; default: loopback only ("", "localhost", 127.0.0.1, ::1). */
  allowRemoteBind?: (addr: string, port: number) => boolean;
  /** Told about what went wrong with a client or a forward; the server carries on. */
  onError?: (err: EmbeddedServerError) => void;
}

export interface EmbeddedServer {
  readonly host: string;
  readonly port: number;
  readonly hostKeyFingerprint: string;
  /** SSH clients connected now. */
  readonly connections: number;
  /** Sockets close() had to cut because their peer did not answer the disconnect within 2 s. */
  readonly socketsCutOff: number;
  /** Disconnect every client, close every listener and forwarded socket; resolves when all are closed. */
  close(): Promise<void>;
}

export class EmbeddedServerError extends Error {
  override readonly name = "EmbeddedServerError";
}

// How long close() lets a client answer our disconnect before cutting its socket.
const CLOSE_GRACE_MS = 2_000;
const LOOPBACK = new Set(["", "localhost", "127.0.0.1", "::1"]);

export async function startEmbeddedServer(opts: EmbeddedServerOptions): Promise<EmbeddedServer> {
  const host = opts.host ?? "127.0.0.1";
  const hostKey = parseKeyOrThrow(opts.hostKey, "host key");
  if (!hostKey.isPrivateKey()) throw new EmbeddedServerError("The host key must be a private key");
  const authorized = parseAuthorizedKeys(opts.authorizedKeys);
  const allowRemoteBind = opts.allowRemoteBind ?? ((addr: string) => LOOPBACK.has(addr));
  const report = (err: EmbeddedServerError): void => opts.onError?.(err);

  // Every socket and listener until its 'close': close() waits for all of them.
  const open = new Set<Socket | NetServer>();
  const hold = <T extends Socket | NetServer>(resource: T): T => {
    open.add(resource);
    resource.once("close", () => open.delete(resource));
    return resource;
  };
  const clients = new Set<Connection>();
  const rawSockets = new Set<Socket>();

  const sshServer = new ssh2.Server({ hostKeys: [opts.hostKey] }, (conn, info) => {
    clients.add(conn);
    conn.once("close", () => clients.delete(conn));
    serveClient(conn, `${info.ip}:${info.port}`, { authorized, allowRemoteBind, report, hold });
  });
  // Our own listener hands sockets to ssh2, so that every one gets TCP_NODELAY and close() can reach it.
  const listener = hold(
    createServer((socket) => {
      socket.setNoDelay(true);
      rawSockets.add(socket);
      socket.once("close", () => rawSockets.delete(socket));
      sshServer.injectSocket(hold(socket));
    }),
  );
  const port = await listen(listener, host, opts.port ?? 0, "the demo SSH server");
  listener.on("error", (err) => report(new EmbeddedServerError(`Demo SSH server on ${host}:${port}: ${err.message}`, { cause: err })));

  let closing: Promise<void> | undefined;
  let socketsCutOff = 0;
  const close = async (): Promise<void> => {
    listener.close();
    for (const conn of clients) conn.end();
    for (const socket of rawSockets) socket.end(); // those still before their SSH handshake
    const cutOff = setTimeout(() => {
      socketsCutOff += rawSockets.size;
      for (const socket of rawSockets) socket.destroy();
    }, CLOSE_GRACE_MS);
    // A socket or listener can still appear while clients disconnect; wait until none is left.
    while (open.size > 0) await Promise.all([...open].map(closed));
    clearTimeout(cutOff);
  };

  return {
    host,
    port,
    hostKeyFingerprint: fingerprintOfBlob(hostKey.getPublicSSH()),
    get connections() {
      return clients.size;
    },
    get socketsCutOff() {
      return socketsCutOff;
    },
    close: () => (closing ??= close()),
  };
}

interface ClientContext {
  authorized: ParsedKey[];
  allowRemoteBind: (addr: string, port: number) => boolean;
  report: (err: EmbeddedServerError) => void;
  hold: <T extends Socket | NetServer>(resource: T) => T;
}

function serveClient(conn: Connection, peer: string, ctx: ClientContext): void {
  const { report, hold } = ctx;
  const forwards = new Map<string, NetServer>(); // "bindAddr:port" as the client asked for it
  const sockets = new Set<Socket>(); // this client's forwarded TCP connections, both directions
  let gone = false;

  const track = (socket: Socket): Socket => {
    socket.setNoDelay(true);
    sockets.add(hold(socket));
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => {}); // every error ends in 'close', where the other side is torn down
    return socket;
  };

  conn.on("error", (err) => report(new EmbeddedServerError(`SSH client ${peer}: ${err.message}`, { cause: err })));
  conn.on("authentication", (auth) => authenticate(auth, ctx.authorized));
  // No 'session' listener: ssh2 refuses shells and commands with "administratively prohibited".

  conn.on("tcpip", (accept, reject, { destIP, destPort }: TcpipRequestInfo) => {
    const target = track(connect({ host: destIP, port: destPort, allowHalfOpen: true }));
    const onConnectError = (err: NodeJS.ErrnoException): void => {
      report(new EmbeddedServerError(`Cannot connect to ${destIP}:${destPort} for ${peer}: ${describe(err)}`, { cause: err }));
      reject(); // ssh2 sends "connect failed" and has no way to carry our message
    };
    target.once("error", onConnectError);
    target.once("connect", () => {
      target.off("error", onConnectError);
      bridge(accept(), target);
    });
  });

  conn.on("request", (accept, reject, name, { bindAddr, bindPort }: TcpipBindInfo) => {
    switch (name) {
      case "tcpip-forward":
        startForward(bindAddr, bindPort).then(
          (port) => accept?.(port),
          (err: EmbeddedServerError) => {
            report(err);
            reject?.();
          },
        );
        return;
      case "cancel-tcpip-forward": {
        const forward = forwards.get(`${bindAddr}:${bindPort}`);
        if (!forward) return reject?.();
        forwards.delete(`${bindAddr}:${bindPort}`);
        forward.close(); // stops new connections; live ones stay open, as with sshd
        return accept?.();
      }
      default:
        return reject?.();
    }
  });

  async function startForward(bindAddr: string, bindPort: number): Promise<number> {
    if (!ctx.allowRemoteBind(bindAddr, bindPort)) {
      throw new EmbeddedServerError(`Remote forward on ${bindAddr}:${bindPort} for ${peer} is not allowed`);
    }
    const server = hold(createServer({ allowHalfOpen: true }, (socket) => forwardToClient(track(socket), bindAddr)));
    // "" and "localhost" mean loopback, as with sshd's GatewayPorts=no.
    const address = bindAddr === "" || bindAddr === "localhost" ? "127.0.0.1" : bindAddr;
    const port = await listen(server, address, bindPort, `a remote forward for ${peer}`);
    if (gone) {
      server.close();
      throw new EmbeddedServerError(`SSH client ${peer} left before its remote forward on ${bindAddr}:${port} was ready`);
    }
    server.on("error", (err) => report(new EmbeddedServerError(`Remote forward on ${address}:${port}: ${err.message}`, { cause: err })));
    forwards.set(`${bindAddr}:${port}`, server);
    return port;
  }

  function forwardToClient(socket: Socket, bindAddr: string): void {
    const bindPort = socket.localPort ?? 0;
    // The client matches the channel to its forward by the address it asked for, not the one we bound.
    conn.forwardOut(bindAddr, bindPort, socket.remoteAddress ?? "", socket.remotePort ?? 0, (err, channel) => {
      if (err) {
        report(new EmbeddedServerError(`SSH client ${peer} refused a connection on ${bindAddr}:${bindPort}: ${err.message}`, { cause: err }));
        socket.destroy();
        return;
      }
      bridge(channel, socket);
    });
  }

  conn.once("close", () => {
    gone = true;
    for (const server of forwards.values()) server.close();
    forwards.clear();
    for (const socket of sockets) socket.destroy();
  });
}

function authenticate(auth: AuthContext, authorized: ParsedKey[]): void {
  if (auth.method !== "publickey") return auth.reject(["publickey"]);
  const key = authorized.find((candidate) => candidate.getPublicSSH().equals(auth.key.data));
  if (!key) return auth.reject(["publickey"]);
  // Without a signature the client only asks whether this key would do; with one it proves it holds the private key.
  if (auth.signature !== undefined && (auth.blob === undefined || key.verify(auth.blob, auth.signature, auth.hashAlgo) !== true)) {
    return auth.reject(["publickey"]);
  }
  auth.accept();
}

/**
 * Pipe a channel and a TCP socket into each other, half-closes included; when one side fails or goes
 * away, the other follows. The socket must have allowHalfOpen, or its peer's EOF would end our writes.
 */
function bridge(channel: ServerChannel, socket: Socket): void {
  if (socket.destroyed) {
    channel.destroy();
    return;
  }
  // ssh2 sends CLOSE as soon as a server channel's writable side ends, which would cut off data the
  // client is still sending. So on the socket's EOF send only an SSH EOF, after the queued data (a
  // write's callback runs once all before it are sent), and end the channel when both directions are.
  let socketEnded = false;
  let channelEnded = false;
  const endIfBothEnded = (): void => {
    if (socketEnded && channelEnded) channel.end();
  };
  socket.once("end", () => {
    socketEnded = true;
    if (channel.writableEnded) return; // the client closed the channel already
    channel.write(Buffer.alloc(0), () => {
      channel.eof();
      endIfBothEnded();
    });
  });
  channel.once("end", () => {
    channelEnded = true;
    endIfBothEnded();
  });

  socket.on("error", () => channel.destroy());
  channel.on("error", () => socket.destroy());
  // ssh2's channel.destroy() sends CLOSE at once and drops what is queued: only for a socket gone without EOF.
  socket.once("close", () => {
    if (!socketEnded) channel.destroy();
  });
  // The channel is done both ways: let the socket deliver what the client sent, then let it go.
  channel.once("close", () => {
    if (socket.writableFinished) socket.destroy();
    else socket.end(() => socket.destroy());
  });
  channel.pipe(socket);
  socket.pipe(channel, { end: false });
}

// Not events.once(): that rejects on 'error', and a socket may well fail on its way out.
function closed(resource: Socket | NetServer): Promise<void> {
  return new Promise((resolve) => resource.once("close", () => resolve()));
}

function parseAuthorizedKeys(lines: string[]): ParsedKey[] {
  return lines
    .map((line, index) => ({ line: line.trim(), index }))
    .filter(({ line }) => line !== "" && !line.startsWith("#"))
    .map(({ line, index }) => parseKeyOrThrow(line, `authorized key #${index + 1}`));
}

function listen(server: NetServer, host: string, port: number, what: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      server.close();
      reject(new EmbeddedServerError(`Cannot bind ${what} to ${host}:${port}: ${describe(err)}`, { cause: err }));
    };
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

const ERRNO_TEXT: Record<string, string> = {
  EADDRINUSE: "address in use",
  EADDRNOTAVAIL: "address not available",
  EACCES: "permission denied",
  ECONNREFUSED: "connection refused",
  ENOTFOUND: "host not found",
  ETIMEDOUT: "timed out",
};

function describe(err: NodeJS.ErrnoException): string {
  return (err.code !== undefined ? ERRNO_TEXT[err.code] : undefined) ?? err.message;
}
