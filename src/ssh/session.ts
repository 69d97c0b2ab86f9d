// The imperative Session API, mirroring bbssh: connect, then set / delete / get local and remote
// forwards on the live session. Option normalisation lives here; the effects live in
// SshConnection (the SSH side) and ForwardSet (listeners and channels).
import { EventEmitter } from "node:events";
import { homedir } from "node:os";
import { join } from "node:path";
import type { LocalForwardSpec, RemoteForwardSpec } from "../manifest/types.ts";
import type { AuthOptions } from "./auth.ts";
import type { SshConnection } from "./connection.ts";
import { checkHost, checkOptionalHost, checkOptionalMs, checkOptionalWindow, checkPort, checkSocketPath } from "./check-args.ts";
import { parseAllowPattern } from "../manifest/allow-pattern.ts";
import { Dialer } from "./dial/dialer.ts";
import type { Endpoint, HopInfo } from "./dial/route.ts";
import { ForwardNotFoundError, InvalidArgumentError, type TunnelError } from "./errors.ts";
import { ForwardSet, type LocalForwardInfo, type RemoteForwardInfo } from "./forward-set.ts";
import type { HostKeyPolicy } from "./host-key.ts";

export const DEFAULT_BIND_ADDRESS = "127.0.0.1";
export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;

/** Give localPort (with bindAddress) or localPath; remoteHost + remotePort or remotePath. */
export interface LocalForwardInput {
  bindAddress?: string;
  localPort?: number;
  remoteHost?: string;
  remotePort?: number;
  /** ms allowed to open the remote end of each connection (default 30000). */
  connectTimeout?: number;
  /** Listen on this unix socket instead of a port (mode `mode`, default 0o600). */
  localPath?: string;
  mode?: number;
  /** Open the server's unix socket instead of remoteHost:remotePort. */
  remotePath?: string;
}

/** Give remotePort (with bindAddress) or remotePath; localHost + localPort or localPath. */
export interface RemoteForwardInput {
  bindAddress?: string;
  /** 0 = let the server choose; the chosen port is returned. */
  remotePort?: number;
  /** The server listens on this unix socket instead of a port. */
  remotePath?: string;
  /** Connections go to this unix socket here instead of localHost:localPort. */
  localPath?: string;
  localHost: string;
  localPort: number;
}

export interface HostKeyInput {
  knownHostsFile?: string;
  fingerprints?: string[];
  policy?: HostKeyPolicy;
}

/** A jump host; username, auth and hostKey left out are the session's (hostKey: not its fingerprint pins). */
export interface JumpHostInput {
  host: string;
  port?: number;
  username?: string;
  auth?: AuthOptions;
  hostKey?: HostKeyInput;
}

export interface ConnectOptions {
  username: string;
  port?: number;
  auth: AuthOptions;
  hostKey?: HostKeyInput;
  /** Jump hosts (ProxyJump) in order: hop 1 over TCP, each next one and the target through the previous. */
  jump?: JumpHostInput[];
  keepalive?: { interval: number; countMax: number };
  /** ms allowed for TCP connect + handshake + auth (default 20000). */
  readyTimeout?: number;
  /** ms allowed for the server to answer a request (tcpip-forward, cancel-tcpip-forward; default 10000). */
  requestTimeout?: number;
  /**
   * Largest receive window a forwarded connection may grow to on a long link, bytes (default
   * 16 MiB; 2 MiB keeps ssh2's and OpenSSH's fixed window). Growth comes out of a process-wide
   * budget (setWindowBudget, default 256 MiB).
   */
  maxWindow?: number;
  portForwardLocal?: LocalForwardInput[];
  portForwardRemote?: RemoteForwardInput[];
  portForwardDynamic?: DynamicForwardInput[];
}

/**
 * A remote forward as getPortForwardingRemote() lists it. `state: "HeldByServer"`: deleted, but
 * the server refused (or did not answer) the cancel and still listens; its connections are refused.
 */
export interface RemoteForwardListing extends RemoteForwardSpec {
  state?: "HeldByServer";
}

export function normalizeLocal(input: LocalForwardInput, at = ""): LocalForwardSpec {
  checkOptionalMs(`${at}connectTimeout`, input.connectTimeout);
  const spec: LocalForwardSpec = {
    bindAddress: "",
    localPort: 0,
    remoteHost: "",
    remotePort: 0,
    connectTimeout: input.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT_MS,
  };
  if (input.localPath !== undefined) {
    checkSocketPath(`${at}localPath`, input.localPath, { absolute: true });
    if (input.localPort !== undefined || input.bindAddress !== undefined) throw new InvalidArgumentError(`${at}localPath`, "give localPort (with bindAddress) or localPath, not both");
    if (input.mode !== undefined && (!Number.isInteger(input.mode) || input.mode < 0 || input.mode > 0o777)) throw new InvalidArgumentError(`${at}mode`, `must be a file mode such as 0o600 (got ${String(input.mode)})`);
    spec.localPath = input.localPath;
    spec.mode = input.mode ?? 0o600;
  } else {
    checkOptionalHost(`${at}bindAddress`, input.bindAddress);
    checkPort(`${at}localPort`, input.localPort);
    spec.bindAddress = input.bindAddress ?? DEFAULT_BIND_ADDRESS;
    spec.localPort = input.localPort as number;
  }
  if (input.remotePath !== undefined) {
    checkSocketPath(`${at}remotePath`, input.remotePath);
    if (input.remoteHost !== undefined || input.remotePort !== undefined) throw new InvalidArgumentError(`${at}remotePath`, "give remoteHost and remotePort, or remotePath, not both");
    spec.remotePath = input.remotePath;
  } else {
    checkHost(`${at}remoteHost`, input.remoteHost);
    checkPort(`${at}remotePort`, input.remotePort);
    spec.remoteHost = input.remoteHost as string;
    spec.remotePort = input.remotePort as number;
  }
  return spec;
}

export interface DynamicForwardInput {
  bindAddress?: string;
  localPort: number;
  /** ms allowed for the SOCKS handshake and to open each destination (default 30000). */
  connectTimeout?: number;
  /** HOST:PORT patterns the proxy may reach ("*.internal:5432", "10.0.0.0/8:*"); default: anything. */
  allow?: string[];
}

export interface DynamicForwardSpec {
  bindAddress: string;
  localPort: number;
  connectTimeout: number;
  allow?: string[];
}

export function normalizeDynamic(input: DynamicForwardInput, at = ""): DynamicForwardSpec {
  checkOptionalHost(`${at}bindAddress`, input.bindAddress);
  checkPort(`${at}localPort`, input.localPort);
  checkOptionalMs(`${at}connectTimeout`, input.connectTimeout);
  if (input.allow !== undefined) {
    if (!Array.isArray(input.allow)) throw new InvalidArgumentError(`${at}allow`, "must be a list of HOST:PORT patterns");
    input.allow.forEach((pattern, i) => {
      try {
        parseAllowPattern(String(pattern));
      } catch (err) {
        throw new InvalidArgumentError(`${at}allow[${i}]`, (err as Error).message);
      }
    });
  }
  return {
    bindAddress: input.bindAddress ?? DEFAULT_BIND_ADDRESS,
    localPort: input.localPort,
    connectTimeout: input.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT_MS,
    ...(input.allow !== undefined ? { allow: [...input.allow] } : {}),
  };
}

/** A dynamic forward lives among the local listeners (one port space). */
function toLocalSpec(spec: DynamicForwardSpec): LocalForwardSpec {
  return {
    bindAddress: spec.bindAddress,
    localPort: spec.localPort,
    remoteHost: "",
    remotePort: 0,
    connectTimeout: spec.connectTimeout,
    socks: spec.allow !== undefined ? { allow: [...spec.allow] } : {},
  };
}

export function normalizeRemote(input: RemoteForwardInput, at = ""): RemoteForwardSpec {
  const spec: RemoteForwardSpec = { bindAddress: "", remotePort: 0, localHost: "", localPort: 0 };
  if (input.remotePath !== undefined) {
    checkSocketPath(`${at}remotePath`, input.remotePath);
    if (input.remotePort !== undefined || input.bindAddress !== undefined) throw new InvalidArgumentError(`${at}remotePath`, "give remotePort (with bindAddress) or remotePath, not both");
    spec.remotePath = input.remotePath;
  } else {
    checkOptionalHost(`${at}bindAddress`, input.bindAddress);
    checkPort(`${at}remotePort`, input.remotePort, { allowZero: true });
    spec.bindAddress = input.bindAddress ?? DEFAULT_BIND_ADDRESS;
    spec.remotePort = input.remotePort as number;
  }
  if (input.localPath !== undefined) {
    checkSocketPath(`${at}localPath`, input.localPath, { absolute: true });
    if (input.localHost !== undefined || input.localPort !== undefined) throw new InvalidArgumentError(`${at}localPath`, "give localHost and localPort, or localPath, not both");
    spec.localPath = input.localPath;
  } else {
    checkHost(`${at}localHost`, input.localHost);
    checkPort(`${at}localPort`, input.localPort);
    spec.localHost = input.localHost as string;
    spec.localPort = input.localPort as number;
  }
  return spec;
}

/**
 * A live SSH session and its forwards. Events: 'close' (err?: TunnelError) once, when the
 * session ends (closed by us, or lost); every listener is closed with it.
 */
export class Session extends EventEmitter {
  readonly host: string;
  readonly forwards: ForwardSet;
  /** The jump hosts the session runs through, with the host key each presented; [] when direct. */
  readonly via: HopInfo[];
  private readonly connection: SshConnection;
  private closing: Promise<void> | undefined;

  constructor(host: string, connection: SshConnection, via: HopInfo[] = []) {
    super();
    this.host = host;
    this.connection = connection;
    this.via = via;
    this.forwards = new ForwardSet();
    connection.once("close", (err?: TunnelError) => {
      void this.forwards.close().then(() => this.emit("close", err));
    });
  }

  get serverVersion(): string {
    return this.connection.serverVersion;
  }

  get hostKeyFingerprint(): string {
    return this.connection.hostKeyFingerprint;
  }

  get closed(): boolean {
    return this.connection.closed;
  }

  /** Resolves once the listener accepts connections; an existing identity is changed in place. */
  async setPortForwardingLocal(input: LocalForwardInput): Promise<LocalForwardSpec> {
    const spec = normalizeLocal(input);
    await this.forwards.setLocal(spec);
    return spec;
  }

  /** Stops accepting at once (the port is free when this resolves); open connections drain. */
  async deletePortForwardingLocal(input: { bindAddress?: string; localPort: number } | { localPath: string }): Promise<void> {
    const matches =
      "localPath" in input
        ? this.forwards.getLocal().filter((f) => f.localPath === input.localPath)
        : this.forwards.findLocal(input.bindAddress, input.localPort).filter((f) => f.socks === undefined && f.localPath === undefined);
    if (matches.length === 0) {
      throw "localPath" in input ? new ForwardNotFoundError("local", `unix:${input.localPath}`, 0) : new ForwardNotFoundError("local", input.bindAddress, input.localPort);
    }
    await Promise.all(matches.map((f) => this.forwards.deleteLocal(f)));
  }

  getPortForwardingLocal(): LocalForwardSpec[] {
    return this.forwards.getLocal().filter((f) => f.socks === undefined);
  }

  /**
   * A SOCKS proxy (ssh -D) on bindAddress:localPort; resolves once it accepts connections. An
   * existing identity is changed in place (its allow list and timeout).
   */
  async setPortForwardingDynamic(input: DynamicForwardInput): Promise<DynamicForwardSpec> {
    const spec = normalizeDynamic(input);
    await this.forwards.setLocal(toLocalSpec(spec));
    return spec;
  }

  /** Stops accepting at once; open connections drain. */
  async deletePortForwardingDynamic(input: { bindAddress?: string; localPort: number }): Promise<void> {
    const matches = this.forwards.findLocal(input.bindAddress, input.localPort).filter((f) => f.socks !== undefined);
    if (matches.length === 0) throw new ForwardNotFoundError("dynamic", input.bindAddress, input.localPort);
    await Promise.all(matches.map((f) => this.forwards.deleteLocal(f)));
  }

  getPortForwardingDynamic(): DynamicForwardSpec[] {
    return this.forwards
      .getLocal()
      .filter((f) => f.socks !== undefined)
      .map((f) => ({ bindAddress: f.bindAddress, localPort: f.localPort, connectTimeout: f.connectTimeout, ...(f.socks?.allow !== undefined ? { allow: f.socks.allow } : {}) }));
  }

  /** Resolves once the server confirmed; `remotePort` in the result is the port really bound. */
  async setPortForwardingRemote(input: RemoteForwardInput): Promise<RemoteForwardSpec> {
    const spec = normalizeRemote(input);
    const boundPort = await this.forwards.setRemote(spec);
    return { ...spec, remotePort: boundPort };
  }

  /**
   * Releases the port on the server (waits for its reply); open connections drain. A server that
   * refuses (CancelRefusedError) or does not answer (RequestTimeoutError) still listens: the
   * forward stays listed with `state: "HeldByServer"` and its connections are refused; delete
   * asks again, set takes it back.
   */
  async deletePortForwardingRemote(input: { bindAddress?: string; remotePort: number } | { remotePath: string }): Promise<void> {
    // Accept the port asked for (0) or the port the server chose.
    const matches = [...this.forwards.remoteInfo(), ...this.forwards.heldRemoteInfo()]
      .filter((f) =>
        "remotePath" in input
          ? f.remotePath === input.remotePath
          : f.remotePath === undefined &&
            (f.remotePort === input.remotePort || f.boundPort === input.remotePort) &&
            (input.bindAddress === undefined || f.bindAddress === input.bindAddress),
      );
    if (matches.length === 0) {
      throw "remotePath" in input ? new ForwardNotFoundError("remote", `unix:${input.remotePath}`, 0) : new ForwardNotFoundError("remote", input.bindAddress, input.remotePort);
    }
    await Promise.all(matches.map((f) => this.forwards.deleteRemote(f)));
  }

  /**
   * Remote forwards with `remotePort` set to the port the server really listens on; deleted ones
   * the server did not let go of are listed with `state: "HeldByServer"`.
   */
  getPortForwardingRemote(): RemoteForwardListing[] {
    const listing = (f: RemoteForwardInfo): RemoteForwardListing => ({
      bindAddress: f.bindAddress,
      remotePort: f.boundPort,
      localHost: f.localHost,
      localPort: f.localPort,
    });
    return [
      ...this.forwards.remoteInfo().map(listing),
      ...this.forwards.heldRemoteInfo().map((f): RemoteForwardListing => ({ ...listing(f), state: "HeldByServer" })),
    ];
  }

  /** Forwards with their connection counters. */
  stats(): { local: LocalForwardInfo[]; remote: RemoteForwardInfo[] } {
    return { local: this.forwards.localInfo(), remote: this.forwards.remoteInfo() };
  }

  /** Release remote forwards on the server, close listeners and connections, end the session. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.forwards.close();
      await this.connection.close();
    })();
    return this.closing;
  }
}

/** Connect and open the initial forwards; rejects (and closes everything) if any of them fails. */
export async function connect(host: string, options: ConnectOptions): Promise<Session> {
  checkHost("host", host);
  if (options.port !== undefined) checkPort("port", options.port);
  if (typeof options.username !== "string" || options.username === "") throw new InvalidArgumentError("username", "must be a non-empty string");
  checkOptionalMs("readyTimeout", options.readyTimeout);
  checkOptionalMs("requestTimeout", options.requestTimeout);
  checkOptionalWindow("maxWindow", options.maxWindow);
  if (options.jump !== undefined && !Array.isArray(options.jump)) throw new InvalidArgumentError("jump", "must be a list of jump hosts");
  (options.jump ?? []).forEach((hop, i) => {
    checkHost(`jump[${i}].host`, hop.host);
    if (hop.port !== undefined) checkPort(`jump[${i}].port`, hop.port);
  });
  // Every forward is checked before anything connects: a bad one must not leave a session behind.
  (options.portForwardLocal ?? []).forEach((f, i) => normalizeLocal(f, `portForwardLocal[${i}].`));
  (options.portForwardRemote ?? []).forEach((f, i) => normalizeRemote(f, `portForwardRemote[${i}].`));
  (options.portForwardDynamic ?? []).forEach((f, i) => normalizeDynamic(f, `portForwardDynamic[${i}].`));
  const hostKey = {
    knownHostsFile: options.hostKey?.knownHostsFile ?? join(homedir(), ".ssh", "known_hosts"),
    fingerprints: options.hostKey?.fingerprints,
    policy: options.hostKey?.policy ?? "strict",
  };
  const endpoint = (hop: JumpHostInput): Endpoint => ({
    host: hop.host,
    port: hop.port,
    username: hop.username ?? options.username,
    auth: hop.auth ?? options.auth,
    hostKey: hop.hostKey
      ? { knownHostsFile: hop.hostKey.knownHostsFile ?? hostKey.knownHostsFile, fingerprints: hop.hostKey.fingerprints, policy: hop.hostKey.policy ?? "strict" }
      : { ...hostKey, fingerprints: undefined },
    keepalive: options.keepalive,
    readyTimeout: options.readyTimeout,
    requestTimeout: options.requestTimeout,
    maxWindow: options.maxWindow,
  });
  // The session's own hop sessions: closed with it (the controller shares them between tunnels).
  const { connection, via } = await new Dialer({ shareHops: false }).dial({
    hops: (options.jump ?? []).map(endpoint),
    target: { host, port: options.port, username: options.username, auth: options.auth, hostKey, keepalive: options.keepalive, readyTimeout: options.readyTimeout, requestTimeout: options.requestTimeout, maxWindow: options.maxWindow },
  });
  const session = new Session(host, connection, via);
  await session.forwards.attach(connection);
  try {
    await Promise.all([
      ...(options.portForwardLocal ?? []).map((f) => session.setPortForwardingLocal(f)),
      ...(options.portForwardRemote ?? []).map((f) => session.setPortForwardingRemote(f)),
      ...(options.portForwardDynamic ?? []).map((f) => session.setPortForwardingDynamic(f)),
    ]);
  } catch (err) {
    await session.close();
    throw err;
  }
  return session;
}
