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
  TcpConnectionDetails,
} from "ssh2";
import ssh2 from "./ssh2.ts";
import { resolveAuth, type AuthOptions } from "./auth.ts";
import {
  AuthError,
  ConnectionError,
  ConnectTimeoutError,
  ForwardRefusedError,
  HostKeyError,
  TargetError,
  TunnelError,
  formatHostPort,
  messageOf,
} from "./errors.ts";
import { judgeHostKey, learnHostKey, readKnownHosts, type HostKeyOptions, type HostKeyVerdict } from "./host-key.ts";

export interface ConnectionOptions {
  host: string;
  port?: number | undefined;
  username: string;
  auth: AuthOptions;
  hostKey?: HostKeyOptions | undefined;
  keepalive?: { interval: number; countMax: number } | undefined;
  /** Time allowed for TCP connect + SSH handshake + auth, ms (default 20000). */
  readyTimeout?: number | undefined;
}

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
   * Resolves once the server has answered the first request sent after authentication, or the
   * connection has closed; never rejects. An OpenSSH sshd counts a connection against MaxStartups
   * until its post-authentication process runs, which is after our 'ready'; the answer comes from
   * that process, so a handshake limit that waits for this never overruns MaxStartups.
   */
  readonly settled: Promise<void>;
  private readonly client: Client;
  private closedFlag = false;
  private closeError: TunnelError | undefined;
  private tcpHandler: TcpConnectionHandler | undefined;

  private constructor(client: Client, host: string, port: number, serverVersion: string, fingerprint: string) {
    super();
    this.client = client;
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
    client.on("error", (err: Error & { level?: string }) => {
      if (!this.closeError) {
        this.closeError = /keepalive/i.test(err.message)
          ? new ConnectionError("KeepaliveTimeout", `Connection to ${formatHostPort(host, port)} lost: no keepalive reply`, { cause: err })
          : new ConnectionError("ConnectionLost", `Connection to ${formatHostPort(host, port)} lost: ${err.message}`, { cause: err });
      }
    });
    client.on("close", () => this.markClosed());
    this.settled = new Promise((resolve) => {
      this.once("close", () => resolve());
      try {
        // What `ssh -N` sends: tunnelctl never opens a shell, so the server may refuse any. ssh2
        // sends it only to a server that says it is OpenSSH, and calls back at once for others.
        client.openssh_noMoreSessions(() => resolve());
      } catch {
        resolve(); // "Not connected": 'close' is on its way
      }
    });
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** Handle `forwarded-tcpip` channels (remote forwards). Every call must end in accept or reject. */
  onTcpConnection(handler: TcpConnectionHandler | undefined): void {
    this.tcpHandler = handler;
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

  /** Count a channel as open until it closes. */
  trackChannel(channel: ClientChannel): void {
    this.openChannels++;
    channel.once("close", () => {
      this.openChannels--;
      if (this.openChannels === 0) this.emit("idle");
    });
  }

  /** Ask the server to listen (ssh -R). Resolves with the port it bound (useful for port 0). */
  requestRemoteForward(bindAddress: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      if (this.closedFlag) {
        reject(new ConnectionError("NotConnected", `Not connected to ${formatHostPort(this.host, this.port)}`));
        return;
      }
      try {
        // Always pass a callback: ssh2 updates its forwarding map only then.
        this.client.forwardIn(bindAddress, port, (err, bound) => {
          if (err) reject(new ForwardRefusedError(bindAddress, port, { cause: err }));
          else resolve(port === 0 ? bound : port);
        });
      } catch (err) {
        reject(new ConnectionError("NotConnected", `Not connected to ${formatHostPort(this.host, this.port)}`, { cause: err }));
      }
    });
  }

  /** Ask the server to stop listening. Live channels stay open (they drain). */
  cancelRemoteForward(bindAddress: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.closedFlag) {
        resolve(); // the server released it with the connection
        return;
      }
      try {
        this.client.unforwardIn(bindAddress, port, (err) => {
          if (err && !this.closedFlag) {
            reject(new TunnelError("Unknown", `Cannot cancel remote forward ${formatHostPort(bindAddress, port)}: ${err.message}`, { cause: err }));
          } else resolve();
        });
      } catch {
        resolve();
      }
    });
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
        const conn = new SshConnection(client, host, port, serverVersion, verdict?.fingerprint ?? "");
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
      } catch (err) {
        // Not expected with a parsed key; never echo a secret if it happens.
        fail(new AuthError(`Cannot start authentication to ${where}`, { reason: "KeyFileError" }));
        void err;
      }
    });
  }
}

function readServerVersion(client: Client): string {
  const raw = (client as unknown as { _protocol?: { _remoteIdentRaw?: Buffer } })._protocol?._remoteIdentRaw;
  const ident = raw ? raw.toString("latin1").trim() : "";
  if (ident) return ident.split(" ")[0] ?? ident;
  const software = (client as unknown as { _remoteVer?: string })._remoteVer;
  return software ? `SSH-2.0-${software}` : "";
}
