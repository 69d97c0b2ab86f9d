// The status document (SPEC §4) and what the controller observes to build it. Field order in
// these interfaces is the order in the written file.
import type { LocalForwardSpec, RemoteForwardSpec } from "../manifest/types.ts";
import type { Condition, ForwardState, Phase, SessionState } from "../reconcile/types.ts";

/** Traffic counters: refreshed in the file at most every --status-interval (see StatusWriter). */
export interface ForwardCounters {
  activeConnections: number;
  totalConnections: number;
  bytesIn: number;
  bytesOut: number;
  /** The largest receive window among the forward's open connections, bytes; unset (or 0) when none is open. */
  receiveWindow?: number;
}

export interface LocalForwardObservation extends LocalForwardSpec, ForwardCounters {
  state: ForwardState;
  /** One CamelCase word when not Active: PortInUse, Conflict, ... */
  reason?: string;
  message: string;
  failedConnections: number;
  /** Where the listener really listens, when that is more than bindAddress ("localhost": 127.0.0.1 and ::1). */
  listenAddresses?: string[];
  /** Dynamic (SOCKS) forwards: destinations refused by `allow`. */
  refusedConnections?: number;
}

export interface RemoteForwardObservation extends RemoteForwardSpec, ForwardCounters {
  /** The port the server bound (differs from remotePort when remotePort is 0); unset until bound. */
  boundPort?: number;
  state: ForwardState;
  /** One CamelCase word when not Active: RemotePortBusy, ForwardRefused, ... */
  reason?: string;
  message: string;
}

export interface SessionObservation {
  state: SessionState;
  serverVersion: string; // "" until connected once
  hostKeyFingerprint: string; // "SHA256:...", "" until connected once
  connectedSince?: string; // ISO 8601, set while Connected
  reconnects: number;
  lastError: string; // "" when none since the last successful connect
  /** One CamelCase word: AuthFailed, HostKeyMismatch, HostUnknown, ConnectionRefused, KeepaliveTimeout */
  lastErrorReason?: string;
  /** Short hash of the session-level settings the open session was made with (see configHash). */
  configHash?: string;
  /** The open session's round-trip time, ms (smallest recent keepalive round trip); unset until measured. */
  rttMs?: number;
  /** Why receive windows do not adapt in this process (unset when they do). */
  windowAutotuneOff?: string;
  /** The jump hosts of the live (or last) session, in order; absent for a direct one. */
  via?: HopStatus[];
}

/** One jump host of a session: where, and the host key it presented. */
export interface HopStatus {
  host: string;
  port: number;
  hostKeyFingerprint: string;
}

/** Everything the controller knows about one tunnel, as input to buildTunnelStatus. */
export interface TunnelObservation {
  name: string;
  /** Manifest path for display (relative to the watched directory). */
  manifest: string;
  /** observedGeneration: hash of the spec this observation describes. */
  generation: string;
  /** `file:line:column: message`; non-empty ⇒ phase Invalid. */
  errors: string[];
  suspended: boolean;
  /** The controller has stopped (the final status of a clean shutdown): nothing runs any more. */
  stopped?: boolean;
  /** When a running controller last confirmed this document, and how often it does (see StatusDoc). */
  confirmed?: { at: string; interval: string };
  /**
   * Set when the latest spec is not what runs: a session-level change failed and the old session
   * keeps running (`generation` above is then the old one). The Synced condition reports it.
   */
  notApplied?: { generation: string; reason: string; message: string };
  session: SessionObservation;
  local: LocalForwardObservation[];
  remote: RemoteForwardObservation[];
}

export interface LocalForwardStatus {
  bindAddress: string;
  localPort: number;
  remoteHost: string;
  remotePort: number;
  /** Unix-socket forms (SPEC §7): the socket listened on here, its mode ("0600"), the server's socket. */
  localPath?: string;
  mode?: string;
  remotePath?: string;
  /** ms allowed to open the far end (part of the forward's target: `diff` compares it). */
  connectTimeout: number;
  state: ForwardState;
  reason?: string;
  activeConnections: number;
  totalConnections: number;
  failedConnections: number;
  bytesIn: number;
  bytesOut: number;
  /** The largest receive window among the open connections, bytes; shown while one is open. */
  receiveWindow?: number;
  /** Where the listener really listens, when that is more than bindAddress ("localhost": 127.0.0.1 and ::1). */
  listenAddresses?: string[];
  message: string;
}

/** A dynamic forward (ssh -D): a SOCKS proxy on bindAddress:localPort. */
export interface DynamicForwardStatus {
  bindAddress: string;
  localPort: number;
  connectTimeout: number;
  /** The allow patterns, when the manifest limits destinations. */
  allow?: string[];
  state: ForwardState;
  reason?: string;
  activeConnections: number;
  totalConnections: number;
  failedConnections: number;
  /** SOCKS requests for destinations `allow` does not list. */
  refusedConnections: number;
  bytesIn: number;
  bytesOut: number;
  receiveWindow?: number;
  message: string;
}

export interface RemoteForwardStatus {
  bindAddress: string;
  remotePort: number;
  boundPort?: number;
  localHost: string;
  localPort: number;
  /** Unix-socket forms: the server's socket listened on, the socket connected to here. */
  remotePath?: string;
  localPath?: string;
  state: ForwardState;
  reason?: string;
  activeConnections: number;
  totalConnections: number;
  bytesIn: number;
  bytesOut: number;
  receiveWindow?: number;
  message: string;
}

export interface SessionStatus {
  state: SessionState;
  serverVersion: string;
  hostKeyFingerprint: string;
  connectedSince: string; // "" when not connected
  reconnects: number;
  lastError: string;
  /**
   * Short hash of the session-level settings (host, port, user, auth, host key, keepalive) the
   * open session was made with; "" when none is open. `tunnelctl diff` compares a manifest with it.
   */
  configHash: string;
  /** The session's round-trip time, ms, once measured (it sizes the receive windows). */
  rttMs?: number;
  /** Set when receive-window autotuning is off in this process, with the reason. */
  windowAutotune?: string;
  /** Jump hosts, in order (only for a session through jump hosts). */
  via?: HopStatus[];
}

export interface TunnelStatusDoc {
  apiVersion: "tunnelctl/v1";
  kind: "TunnelStatus";
  metadata: { name: string; manifest: string };
  status: {
    observedGeneration: string;
    phase: Phase;
    /**
     * When a running controller last confirmed this document (ISO 8601), and how often it does so
     * (a duration): a document not confirmed for several intervals is no longer kept up to date.
     * Refreshed with the counters, not on every write.
     */
    confirmedAt?: string;
    confirmInterval?: string;
    conditions: Condition[];
    session: SessionStatus;
    /** `dynamic` only when the tunnel has dynamic forwards. */
    forwards: { local: LocalForwardStatus[]; remote: RemoteForwardStatus[]; dynamic?: DynamicForwardStatus[] };
    errors: string[];
  };
}
