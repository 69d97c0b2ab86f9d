// Typed errors of the SSH layer. Each carries a `reason` (one CamelCase word, used as the status
// condition reason) and a message that names what failed and the value that made it fail.
// Messages never contain a secret (passphrase, password, key material).

export type TunnelErrorReason =
  | "PortInUse"
  | "BindDenied"
  | "ForwardRefused"
  | "RemotePortBusy"
  | "CancelRefused"
  | "RequestTimeout"
  | "HostKeyMismatch"
  | "HostKeyUnknown"
  | "HostKeyRevoked"
  | "AuthFailed"
  | "KeyFileError"
  | "PassphraseWrong"
  | "SecretUnavailable"
  | "AgentUnavailable"
  | "ConnectTimeout"
  | "ConnectionRefused"
  | "HostUnresolvable"
  | "ConnectionLost"
  | "KeepaliveTimeout"
  | "NotConnected"
  | "ForwardNotFound"
  | "TargetUnreachable"
  | "InvalidArgument"
  | "Unknown";

export class TunnelError extends Error {
  readonly reason: TunnelErrorReason;
  constructor(reason: TunnelErrorReason, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TunnelError";
    this.reason = reason;
  }
}

/** A local listener could not bind: the address is in use. */
export class PortInUseError extends TunnelError {
  readonly bindAddress: string;
  readonly port: number;
  constructor(bindAddress: string, port: number, options?: { cause?: unknown }) {
    super("PortInUse", `Cannot bind ${formatHostPort(bindAddress, port)}: address in use`, options);
    this.name = "PortInUseError";
    this.bindAddress = bindAddress;
    this.port = port;
  }
}

/** A local listener could not bind for another reason (permission, address not on this host). */
export class BindError extends TunnelError {
  constructor(bindAddress: string, port: number, detail: string, options?: { cause?: unknown }) {
    // A unix socket is named "unix:PATH" with port 0.
    const where = bindAddress.startsWith("unix:") ? bindAddress : formatHostPort(bindAddress, port);
    super("BindDenied", `Cannot bind ${where}: ${detail}`, options);
    this.name = "BindError";
  }
}

/**
 * The server refused a remote forward. sshd gives the same answer for a busy port, a port held
 * by another session and forwarding disabled; `reason` is RemotePortBusy only when context says
 * so (the port was ours before a reconnect).
 */
export class ForwardRefusedError extends TunnelError {
  readonly bindAddress: string;
  readonly port: number;
  constructor(
    bindAddress: string,
    port: number,
    options?: { cause?: unknown; reason?: "ForwardRefused" | "RemotePortBusy"; detail?: string },
  ) {
    const reason = options?.reason ?? "ForwardRefused";
    const why =
      options?.detail ??
      (reason === "RemotePortBusy"
        ? "port still held on the server (by an earlier session?)"
        : "refused by the server (port busy or forwarding not allowed)");
    super(reason, `Cannot forward remote ${formatHostPort(bindAddress, port)}: ${why}`, options);
    this.name = "ForwardRefusedError";
    this.bindAddress = bindAddress;
    this.port = port;
  }
}

/**
 * The server refused to stop listening on a remote forward (dropbear 2022.83 refuses every
 * cancel-tcpip-forward). The forward stays listed as held by the server; tunnelctl refuses the
 * connections the server still sends through it.
 */
export class CancelRefusedError extends TunnelError {
  readonly bindAddress: string;
  readonly port: number;
  constructor(bindAddress: string, port: number, detail: string, options?: { cause?: unknown }) {
    super("CancelRefused", `Cannot cancel remote forward ${formatHostPort(bindAddress, port)}: ${detail}; the server still listens there`, options);
    this.name = "CancelRefusedError";
    this.bindAddress = bindAddress;
    this.port = port;
  }
}

/** The server did not answer a request (tcpip-forward, cancel-tcpip-forward) in time. */
export class RequestTimeoutError extends TunnelError {
  constructor(what: string, server: string, timeoutMs: number, options?: { cause?: unknown }) {
    super("RequestTimeout", `No answer from ${server} to ${what} within ${timeoutMs} ms`, options);
    this.name = "RequestTimeoutError";
  }
}

export class HostKeyError extends TunnelError {
  readonly host: string;
  readonly fingerprint: string;
  constructor(
    reason: "HostKeyMismatch" | "HostKeyUnknown" | "HostKeyRevoked",
    host: string,
    fingerprint: string,
    detail: string,
    /** How to fix it, said after the fingerprint. */
    fix?: string,
  ) {
    super(reason, `Host key for ${host} ${detail} (server presented ${fingerprint})${fix ? `: ${fix}` : ""}`);
    this.name = "HostKeyError";
    this.host = host;
    this.fingerprint = fingerprint;
  }
}

export class AuthError extends TunnelError {
  constructor(
    message: string,
    options?: { cause?: unknown; reason?: "AuthFailed" | "KeyFileError" | "PassphraseWrong" | "SecretUnavailable" | "AgentUnavailable" },
  ) {
    super(options?.reason ?? "AuthFailed", message, options);
    this.name = "AuthError";
  }
}

/** Something did not answer in time: the SSH server, or the remote end of a forwarded connection. */
export class ConnectTimeoutError extends TunnelError {
  constructor(what: string, timeoutMs: number, options?: { cause?: unknown }) {
    super("ConnectTimeout", `Timed out after ${timeoutMs} ms connecting to ${what}`, options);
    this.name = "ConnectTimeoutError";
  }
}

/** The SSH connection could not be made or was lost. */
export class ConnectionError extends TunnelError {
  constructor(
    reason: "ConnectionRefused" | "HostUnresolvable" | "ConnectionLost" | "KeepaliveTimeout" | "NotConnected" | "Unknown",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(reason, message, options);
    this.name = "ConnectionError";
  }
}

export class ForwardNotFoundError extends TunnelError {
  constructor(kind: "local" | "remote" | "dynamic", bindAddress: string | undefined, port: number) {
    const where = bindAddress?.startsWith("unix:") ? bindAddress : bindAddress ? formatHostPort(bindAddress, port) : `port ${port}`;
    super("ForwardNotFound", `No ${kind} forward on ${where}`);
    this.name = "ForwardNotFoundError";
  }
}

/** A library call was given a value it cannot use (a port out of range, an empty host, ...). */
export class InvalidArgumentError extends TunnelError {
  /** The argument, as a path: "localPort", "portForwardLocal[1].remotePort", ... */
  readonly field: string;
  constructor(field: string, message: string) {
    super("InvalidArgument", `Invalid ${field}: ${message}`);
    this.name = "InvalidArgumentError";
    this.field = field;
  }
}

export function formatHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Best-effort reason for any error, for status conditions. */
export function reasonOf(err: unknown): TunnelErrorReason {
  return err instanceof TunnelError ? err.reason : "Unknown";
}

/** Message of any error, for status and logs. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The remote end of a forwarded connection could not be opened (refused, unresolvable). */
export class TargetError extends TunnelError {
  constructor(host: string, port: number, detail: string, options?: { cause?: unknown }) {
    super("TargetUnreachable", `Cannot open ${formatHostPort(host, port)} through the tunnel: ${detail}`, options);
    this.name = "TargetError";
  }
}
