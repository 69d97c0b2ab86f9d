// One SSH connection (ssh2 Client) with what tunnelctl needs of it: a TCP_NODELAY socket, host
// key checking, auth, keepalive, typed errors, channel accounting and one terminal 'close' event.
import { EventEmitter } from "node:events";
import { connect as netConnect } from "node:net";
import type { Duplex } from "node:stream";
import type {
  AcceptConnection,
  AnyAuthMethod,
  Client,
  ClientChannel,
  RejectConnection,
  ServerHostKeyAlgorithm,
  TcpConnectionDetails,
} from "ssh2";
import ssh2 from "./ssh2.ts";
import { resolveAuth, type AuthOptions } from "./auth.ts";
import {
  AuthError,
  CancelRefusedError,
  ConnectionError,
  ConnectTimeoutError,
  ForwardRefusedError,
  RequestTimeoutError,
  TargetError,
  TunnelError,
  formatHostPort,
  messageOf,
} from "./errors.ts";
import { sendGlobalRequest, trackGlobalRequests } from "./global-request.ts";
import { orderHostKeyAlgorithms } from "./host-key-algorithms.ts";
import { judgeHostKey, knownKeyTypes, learnHostKey, readKnownHosts, type HostKeyOptions, type HostKeyVerdict } from "./host-key.ts";
import { tuneWindow } from "./window/autotune.ts";
import { RttProbe } from "./window/rtt-probe.ts";

export interface ConnectionOptions {
  host: string;
  port?: number | undefined;
  username: string;
  auth: AuthOptions;
  hostKey?: HostKeyOptions | undefined;
  keepalive?: { interval: number; countMax: number } | undefined;
  /** Time allowed for TCP connect + SSH handshake + auth, ms (default 20000). */
  readyTimeout?: number | undefined;
  /** Time allowed for the server to answer a global request (tcpip-forward, ...), ms (default 10000). */
  requestTimeout?: number | undefined;
  /** Largest receive window a forwarded channel may grow to, bytes (default 16 MiB; 2 MiB = fixed, as OpenSSH). */
  maxWindow?: number | undefined;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

export type UnixConnectionHandler = (socketPath: string, accept: AcceptConnection<ClientChannel>, reject: RejectConnection) => void;

export type TcpConnectionHandler = (
  info: TcpConnectionDetails,
  accept: AcceptConnection<ClientChannel>,
  reject: RejectConnection,
) => void;

/**
 * Events: 'close' (err?: TunnelError) — emitted once, when the connection is gone for any reason.
 */
export class SshConnection extends EventEmitter {
  readonly host: string;
  readonly port: number;
  readonly serverVersion: string;
  readonly hostKeyFingerprint: string;
  readonly connectedAt: Date;
  /** Channels open right now (both directions); the drain and leak checks read it. */
  openChannels = 0;
  /**
   * Resolves once the server has answered the first request sent after authentication (success,
   * failure or SSH_MSG_UNIMPLEMENTED: any answer), or that request's deadline has passed; rejects
   * with the close error if the connection closes first, so a closed connection is never taken
   * for a live one. An OpenSSH sshd counts a connection against MaxStartups until its
   * post-authentication process runs, which is after our 'ready'; the answer comes from that
   * process, so a handshake limit that waits for this never overruns MaxStartups.
   */
  readonly settled: Promise<void>;
  /** Time allowed for an answer to a global request, ms. */
  readonly requestTimeout: number;
  private readonly client: Client;
  private readonly rtt: RttProbe;
  private maxWindow: number | undefined;
  private closedFlag = false;
  private closeError: TunnelError | undefined;
  private tcpHandler: TcpConnectionHandler | undefined;
  private unixHandler: UnixConnectionHandler | undefined;

  private constructor(client: Client, host: string, port: number, serverVersion: string, fingerprint: string, requestTimeout: number, maxWindow?: number) {
    super();
    this.client = client;
    this.maxWindow = maxWindow;
    this.rtt = new RttProbe(client, requestTimeout);
    this.requestTimeout = requestTimeout;
    this.host = host;
    this.port = port;
    this.serverVersion = serverVersion;
    this.hostKeyFingerprint = fingerprint;
    this.connectedAt = new Date();
    client.on("tcp connection", (info, accept, reject) => {
      const handler = this.tcpHandler;
      if (!handler) return reject();
      handler(info, accept, reject);
    });
    client.on("unix connection", (info, accept, reject) => {
      const handler = this.unixHandler;
      if (!handler) return reject();
      handler(info.socketPath, accept as unknown as AcceptConnection<ClientChannel>, reject);
    });
    client.on("error", (err: Error & { level?: string }) => {
      if (!this.closeError) {
        this.closeError = /keepalive/i.test(err.message)
          ? new ConnectionError("KeepaliveTimeout", `Connection to ${formatHostPort(host, port)} lost: no keepalive reply`, { cause: err })
          : new ConnectionError("ConnectionLost", `Connection to ${formatHostPort(host, port)} lost: ${err.message}`, { cause: err });
      }
    });
    client.on("close", () => this.markClosed());
    this.settled = new Promise((resolve, reject) => {
      const closed = (): void => reject(this.closeError ?? this.lostError("closed by the server"));
      this.once("close", closed);
      // What `ssh -N` sends: tunnelctl never opens a shell, so the server may refuse any. ssh2
      // sends it to every server whose version has two digits in a row (not only OpenSSH); any
      // answer will do, and a server that gives none must not hold us: the request has a deadline.
      sendGlobalRequest<void>((cb) => client.openssh_noMoreSessions(cb), requestTimeout).then(
        () => {
          this.off("close", closed);
          if (this.closedFlag) closed();
          else resolve();
        },
        () => undefined, // "Not connected": 'close' is on its way
      );
    });
    this.settled.catch(() => undefined); // the Session API never waits for it
  }

  private lostError(detail: string): ConnectionError {
    return new ConnectionError("ConnectionLost", `Connection to ${formatHostPort(this.host, this.port)} lost: ${detail}`);
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** Handle `forwarded-tcpip` channels (remote forwards). Every call must end in accept or reject. */
  onTcpConnection(handler: TcpConnectionHandler | undefined): void {
    this.tcpHandler = handler;
  }

  /** Handle `forwarded-streamlocal@openssh.com` channels (remote unix-socket forwards). */
  onUnixConnection(handler: UnixConnectionHandler | undefined): void {
    this.unixHandler = handler;
  }

  /** Open a direct-streamlocal@openssh.com channel to the unix socket `path` on the server. */
  openStreamLocal(path: string): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
      if (this.closedFlag) {
        reject(new ConnectionError("NotConnected", `Not connected to ${formatHostPort(this.host, this.port)}`));
        return;
      }
      try {
        this.client.openssh_forwardOutStreamLocal(path, (err, channel) => {
          if (err) {
            reject(
              this.closedFlag
                ? new ConnectionError("ConnectionLost", `Connection to ${formatHostPort(this.host, this.port)} lost while opening ${path}`, { cause: err })
                : new TunnelError("TargetUnreachable", `Cannot open the server's socket ${path} through the tunnel: ${err.message}`, { cause: err }),
            );
            return;
          }
          this.trackChannel(channel);
          resolve(channel);
        });
      } catch (err) {
        reject(new ConnectionError("NotConnected", `Not connected to ${formatHostPort(this.host, this.port)}`, { cause: err }));
      }
    });
  }

  /** Ask the server to listen on the unix socket `path` (streamlocal-forward@openssh.com). */
  async requestStreamLocalForward(path: string): Promise<void> {
    const answer = await this.globalRequest<void>((cb) => this.client.openssh_forwardInStreamLocal(path, cb), `opening remote socket forward ${path}`, (late) => {
      if (late.outcome !== "success" || this.closedFlag) return;
      try {
        this.client.openssh_unforwardInStreamLocal(path, () => undefined);
      } catch {
        // "Not connected": the socket went with the connection
      }
    });
    switch (answer.outcome) {
      case "success":
        return;
      case "timeout":
        throw new RequestTimeoutError(`streamlocal-forward for ${path}`, formatHostPort(this.host, this.port), this.requestTimeout);
      case "unimplemented":
        throw new TunnelError("ForwardRefused", `Cannot forward the server's socket ${path}: the server does not implement streamlocal-forward`, { cause: answer.error });
      case "failure":
        throw new TunnelError("ForwardRefused", `Cannot forward the server's socket ${path}: refused by the server (path in use, not allowed, or StreamLocalBindUnlink off with a stale file)`, { cause: answer.error });
    }
  }

  /** Ask the server to stop listening on `path`; resolves at once when the connection is gone. */
  async cancelStreamLocalForward(path: string): Promise<void> {
    if (this.closedFlag) return;
    let answer;
    try {
      answer = await this.globalRequest<void>((cb) => this.client.openssh_unforwardInStreamLocal(path, cb), `cancelling remote socket forward ${path}`);
    } catch (err) {
      if (err instanceof ConnectionError) return;
      throw err;
    }
    if (answer.outcome === "success") return;
    if (answer.outcome === "timeout") throw new RequestTimeoutError(`cancel-streamlocal-forward for ${path}`, formatHostPort(this.host, this.port), this.requestTimeout);
    throw new TunnelError("CancelRefused", `Cannot cancel the server's socket forward ${path}: ${answer.outcome === "unimplemented" ? "not implemented by the server" : "refused by the server"}`, { cause: answer.error });
  }

  /** Open a direct-tcpip channel (ssh -L) to dstHost:dstPort. */
  openChannel(srcAddr: string, srcPort: number, dstHost: string, dstPort: number): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
      if (this.closedFlag) {
        reject(new ConnectionError("NotConnected", `Not connected to ${formatHostPort(this.host, this.port)}`));
        return;
      }
      try {
        // forwardOut throws synchronously after a disconnect.
        this.client.forwardOut(srcAddr, srcPort, dstHost, dstPort, (err, channel) => {
          if (err) {
            // Opens still pending when the connection drops fail after 'close' ("No response from
            // server"): the session is at fault, not the target.
            reject(
              this.closedFlag
                ? new ConnectionError("ConnectionLost", `Connection to ${formatHostPort(this.host, this.port)} lost while opening ${formatHostPort(dstHost, dstPort)}`, { cause: err })
                : new TargetError(dstHost, dstPort, err.message, { cause: err }),
            );
            return;
          }
          this.trackChannel(channel);
          resolve(channel);
        });
      } catch (err) {
        reject(new ConnectionError("NotConnected", `Not connected to ${formatHostPort(this.host, this.port)}`, { cause: err }));
      }
    });
  }

  /** The session's round-trip time, ms (the smallest of recent keepalive round trips; undefined until one). */
  get rttMs(): number | undefined {
    return this.rtt.rttMs;
  }

  /** The receive-window cap for channels opened from now on (bytes). */
  setMaxWindow(bytes: number | undefined): void {
    this.maxWindow = bytes;
  }

  /** Count a channel as open until it closes, and adapt its receive window (window/autotune.ts). */
  trackChannel(channel: ClientChannel): void {
    tuneWindow(channel, { rttMs: () => this.rtt.rttMs, maxWindow: this.maxWindow });
    this.openChannels++;
    channel.once("close", () => {
      this.openChannels--;
      if (this.openChannels === 0) this.emit("idle");
    });
  }

  /** Ask the server to listen (ssh -R). Resolves with the port it bound (useful for port 0). */
  async requestRemoteForward(bindAddress: string, port: number): Promise<number> {
    const where = formatHostPort(bindAddress, port);
    const answer = await this.globalRequest<number>(
      // Always pass a callback: ssh2 updates its forwarding map only then.
      (cb) => this.client.forwardIn(bindAddress, port, cb),
      `opening remote forward ${where}`,
      (late) => {
        // Confirmed after we gave up: release it, or the retry would find the port taken by us.
        if (late.outcome !== "success" || this.closedFlag) return;
        try {
          this.client.unforwardIn(bindAddress, port === 0 ? late.value : port, () => undefined);
        } catch {
          // "Not connected": the port went with the connection
        }
      },
    );
    switch (answer.outcome) {
      case "success":
        if (port !== 0) return port;
        routeUnnamedPort(this.client, bindAddress, answer.value);
        return answer.value;
      case "timeout":
        throw new RequestTimeoutError(`tcpip-forward for ${where}`, formatHostPort(this.host, this.port), this.requestTimeout);
      case "unimplemented":
        throw new ForwardRefusedError(bindAddress, port, { cause: answer.error, detail: "the server does not implement tcpip-forward (SSH_MSG_UNIMPLEMENTED)" });
      case "failure":
        throw new ForwardRefusedError(bindAddress, port, { cause: answer.error });
    }
  }

  /**
   * Ask the server to stop listening. Live channels stay open (they drain). Rejects with
   * CancelRefusedError when the server says no (it still listens), RequestTimeoutError when it
   * does not answer; resolves at once when the connection is gone (the port went with it).
   */
  async cancelRemoteForward(bindAddress: string, port: number): Promise<void> {
    if (this.closedFlag) return; // the server released it with the connection
    const where = formatHostPort(bindAddress, port);
    let answer;
    try {
      answer = await this.globalRequest<void>((cb) => this.client.unforwardIn(bindAddress, port, cb), `cancelling remote forward ${where}`);
    } catch (err) {
      if (err instanceof ConnectionError) return;
      throw err;
    }
    switch (answer.outcome) {
      case "success":
        unrouteUnnamedPort(this.client, bindAddress, port);
        return;
      case "timeout":
        throw new RequestTimeoutError(`cancel-tcpip-forward for ${where}`, formatHostPort(this.host, this.port), this.requestTimeout);
      case "unimplemented":
        throw new CancelRefusedError(bindAddress, port, "the server does not implement cancel-tcpip-forward (SSH_MSG_UNIMPLEMENTED)", { cause: answer.error });
      case "failure":
        throw new CancelRefusedError(bindAddress, port, "refused by the server", { cause: answer.error });
    }
  }

  /**
   * One global request with a deadline. A connection that drops while it is pending rejects with
   * ConnectionLost (the close error), never with what the request would have said.
   */
  private async globalRequest<T>(
    send: (cb: (err: Error | null | undefined, value?: T) => void) => void,
    what: string,
    onLate?: Parameters<typeof sendGlobalRequest<T>>[2],
  ): ReturnType<typeof sendGlobalRequest<T>> {
    if (this.closedFlag) throw new ConnectionError("NotConnected", `Not connected to ${formatHostPort(this.host, this.port)}`);
    let answer;
    try {
      answer = await sendGlobalRequest<T>(send, this.requestTimeout, onLate);
    } catch (err) {
      // ssh2 throws "Not connected" synchronously after a disconnect.
      throw new ConnectionError("NotConnected", `Not connected to ${formatHostPort(this.host, this.port)}`, { cause: err });
    }
    if (this.closedFlag && answer.outcome !== "success") {
      const lost = this.closeError ?? this.lostError("closed by the server");
      throw new ConnectionError(lost.reason === "KeepaliveTimeout" ? "KeepaliveTimeout" : "ConnectionLost", `${lost.message} while ${what}`, { cause: lost });
    }
    return answer;
  }

  /** Close the connection; resolves once it is closed. */
  close(): Promise<void> {
    if (this.closedFlag) return Promise.resolve();
    return new Promise((resolve) => {
      this.once("close", () => resolve());
      this.client.end();
      // A peer that does not answer our disconnect must not hold us up: destroy after a grace.
      const timer = setTimeout(() => this.client.destroy(), 2000);
      timer.unref();
    });
  }

  /** Close at once, without waiting for the server. */
  destroy(): void {
    if (!this.closedFlag) this.client.destroy();
  }

  /** Close at once and report `err` as the reason (a jump host this connection ran through died). */
  destroyWith(err: TunnelError): void {
    if (this.closedFlag) return;
    this.closeError = err;
    this.client.destroy();
  }

  private markClosed(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.rtt.stop();
    this.emit("close", this.closeError);
  }

  /**
   * Open a connection; rejects with a typed error (HostKeyError, AuthError, ConnectionError, ...).
   * `sock`: an open stream to the server instead of a new TCP connection (a jump host's
   * direct-tcpip channel).
   */
  static async open(options: ConnectionOptions, sock?: Duplex): Promise<SshConnection> {
    const host = options.host;
    const port = options.port ?? 22;
    const where = formatHostPort(host, port);
    const auth = await resolveAuth(options.auth);
    const knownHostsText = options.hostKey?.policy === "insecure-accept-any" ? "" : await readKnownHosts(options.hostKey?.knownHostsFile);
    const readyTimeout = options.readyTimeout ?? 20_000;

    return new Promise<SshConnection>((resolve, reject) => {
      const client = new ssh2.Client();
      let verdict: HostKeyVerdict | undefined;
      let serverVersion = "";
      let settled = false;
      let authAttempted = false;
      const fail = (err: TunnelError): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        client.removeAllListeners();
        client.on("error", () => undefined);
        client.destroy();
        reject(err);
      };
      const timer = setTimeout(() => fail(new ConnectTimeoutError(`SSH server ${where}`, readyTimeout)), readyTimeout);

      // ssh2 never sets it; without it each forwarded connection waits ~43 ms for a delayed ACK.
      const stream: Duplex = sock ?? netConnect({ host, port }).setNoDelay(true);

      client.on("handshake", () => {
        authAttempted = true;
      });
      client.on("error", (err: Error & { level?: string; code?: string }) => {
        if (verdict && !verdict.ok && verdict.error) return fail(verdict.error);
        const code = (err as NodeJS.ErrnoException).code;
        if (err.level === "client-authentication") {
          return fail(new AuthError(`Authentication to ${where} as ${options.username} refused by the server`, { cause: err }));
        }
        if (code === "ECONNREFUSED") return fail(new ConnectionError("ConnectionRefused", `Cannot connect to ${where}: connection refused`, { cause: err }));
        if (code === "ENOTFOUND" || code === "EAI_AGAIN") {
          return fail(new ConnectionError("HostUnresolvable", `Cannot resolve ${host}: ${code}`, { cause: err }));
        }
        return fail(new ConnectionError("ConnectionLost", `Cannot connect to ${where}: ${err.message}`, { cause: err }));
      });
      client.on("close", () => {
        if (verdict && !verdict.ok && verdict.error) return fail(verdict.error);
        fail(new ConnectionError("ConnectionLost", `Connection to ${where} closed ${authAttempted ? "during authentication" : "before the handshake"}`));
      });
      client.on("ready", () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        client.removeAllListeners();
        const conn = new SshConnection(client, host, port, serverVersion, verdict?.fingerprint ?? "", options.requestTimeout ?? DEFAULT_REQUEST_TIMEOUT_MS, options.maxWindow);
        if (verdict?.learn && options.hostKey?.knownHostsFile) {
          learnHostKey(options.hostKey.knownHostsFile, verdict.learn).then(
            () => resolve(conn),
            (err: unknown) => {
              conn.destroy();
              reject(new ConnectionError("Unknown", `Cannot record host key in ${options.hostKey?.knownHostsFile}: ${messageOf(err)}`));
            },
          );
        } else resolve(conn);
      });

      const config: Parameters<Client["connect"]>[0] = {
        sock: stream,
        username: options.username,
        readyTimeout,
        keepaliveInterval: options.keepalive?.interval ?? 15_000,
        keepaliveCountMax: options.keepalive?.countMax ?? 3,
        // The algorithms of the key types known for this host first, as OpenSSH's ssh does.
        algorithms: {
          serverHostKey: orderHostKeyAlgorithms(knownKeyTypes(host, port, knownHostsText, options.hostKey ?? {})) as ServerHostKeyAlgorithm[],
        },
        hostVerifier: (key: Buffer, verify: (ok: boolean) => void) => {
          // Callback form on purpose: ssh2 takes a returned Promise as "accept".
          serverVersion = readServerVersion(client);
          verdict = judgeHostKey(host, port, key, knownHostsText, options.hostKey ?? {});
          verify(verdict.ok);
        },
      };
      // The methods in ssh2's own order, with the key already parsed (see resolveAuth): given a
      // key file and passphrase instead, ssh2 would decrypt it again on every connect.
      const username = options.username;
      const methods: AnyAuthMethod[] = [{ type: "none", username }];
      if (auth.password !== undefined) methods.push({ type: "password", username, password: auth.password });
      if (auth.privateKey) methods.push({ type: "publickey", username, key: auth.privateKey });
      if (auth.agent) methods.push({ type: "agent", username, agent: auth.agent });
      config.authHandler = methods;
      try {
        client.connect(config);
        trackGlobalRequests(client);
      } catch (err) {
        // Not expected with a parsed key; never echo a secret if it happens.
        fail(new AuthError(`Cannot start authentication to ${where}`, { reason: "KeyFileError" }));
        void err;
      }
    });
  }
}

/**
 * A server may name the port that was asked for (0) instead of the one it bound in the
 * forwarded-tcpip channels of a port-0 forward (asyncssh does). ssh2 routes such a channel only
 * when its forwarding map has an `addr:0` entry (its fix for old OpenSSH): add one. The client
 * cannot tell two port-0 forwards on one address apart there; the latest wins.
 */
function routeUnnamedPort(client: Client, bindAddress: string, boundPort: number): void {
  const forwarding = (client as unknown as { _forwarding?: Record<string, number> })._forwarding;
  if (forwarding) forwarding[`${bindAddress}:0`] = boundPort;
}

function unrouteUnnamedPort(client: Client, bindAddress: string, boundPort: number): void {
  const forwarding = (client as unknown as { _forwarding?: Record<string, number> })._forwarding;
  if (forwarding?.[`${bindAddress}:0`] === boundPort) delete forwarding[`${bindAddress}:0`];
}

function readServerVersion(client: Client): string {
  const raw = (client as unknown as { _protocol?: { _remoteIdentRaw?: Buffer } })._protocol?._remoteIdentRaw;
  const ident = raw ? raw.toString("latin1").trim() : "";
  if (ident) return ident.split(" ")[0] ?? ident;
  const software = (client as unknown as { _remoteVer?: string })._remoteVer;
  return software ? `SSH-2.0-${software}` : "";
}
