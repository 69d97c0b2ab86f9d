// Types of the pure core. Nothing here (or anywhere in src/reconcile) does I/O, reads a clock or
// draws a random number: callers pass those in.
import type { LocalForwardSpec, RemoteForwardSpec, TunnelSpec } from "../manifest/types.ts";

export type ForwardKind = "local" | "remote";

/** Forward identity: local (bindAddress, localPort), remote (bindAddress, remotePort). */
export type ForwardId = string; // "local/127.0.0.1:8080", "remote/127.0.0.1:9000"

export type SessionState = "Connecting" | "Connected" | "Backoff" | "Closed";
export type ForwardState = "Pending" | "Active" | "Failed" | "Conflict" | "Draining";
export type Phase = "Pending" | "Ready" | "Degraded" | "Failed" | "Invalid" | "Suspended" | "Stopped";

/** What the controller observes of one tunnel right now. */
export interface ObservedTunnel {
  /** Key of the session-level fields the live session was opened with, undefined when none. */
  sessionKey: string | undefined;
  sessionState: SessionState;
  /** Forwards that are open (listener bound / server confirmed), with the target they use now. */
  local: LocalForwardSpec[];
  remote: RemoteForwardSpec[];
}

export type Action =
  | { type: "open-session" }
  | { type: "replace-session" } // session-level change: make the new one, move forwards, close old
  | { type: "close-session" }
  | { type: "open-local"; forward: LocalForwardSpec }
  | { type: "update-local"; forward: LocalForwardSpec } // same identity, new target/timeout: in place
  | { type: "close-local"; forward: LocalForwardSpec }
  | { type: "open-remote"; forward: RemoteForwardSpec }
  | { type: "update-remote"; forward: RemoteForwardSpec }
  | { type: "close-remote"; forward: RemoteForwardSpec };

export type DesiredTunnel = TunnelSpec | undefined; // undefined: manifest gone → prune everything

export interface Condition {
  type: string; // CamelCase: Connected, Ready, ...
  status: "True" | "False" | "Unknown";
  reason: string; // one CamelCase word
  message: string;
  lastTransitionTime: string; // ISO 8601; moves only when status flips
}
