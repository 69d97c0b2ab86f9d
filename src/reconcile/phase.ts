// Phase (the one-word summary in status and `tunnelctl get`) and the Connected / Ready
// conditions, from what the controller observes. Pure: the caller supplies everything.
//
// Decision table — first matching row wins. "Forwards" ignores Draining ones: they were removed
// from the manifest and only wait for open connections to end, so they don't affect readiness.
//
//  # | invalid | suspended | session state         | forwards                         | phase     | Ready (status, reason)
//  0 | the controller stopped (its final status)                                         | Stopped   | False, ControllerStopped
//  1 | yes     | any       | any                   | any                              | Invalid   | False, ManifestInvalid
//  2 | no      | yes       | any                   | any                              | Suspended | False, Suspended
// 2b | no      | no        | Connected, but the latest spec's session could not be opened | Degraded | False, SpecNotApplied
//  3 | no      | no        | Connected             | none, or all Active              | Ready     | True,  AllForwardsActive
//  4 | no      | no        | Connected             | any Failed                       | Degraded  | False, ForwardFailed
//  5 | no      | no        | Connected             | any Conflict (none Failed)       | Degraded  | False, ForwardConflict
//  6 | no      | no        | Connected             | some Pending, the rest Active    | Pending   | False, ForwardPending
//  7 | no      | no        | Connecting, no error  | any                              | Pending   | False, Connecting
//  8 | no      | no        | Closed, no error      | any                              | Pending   | False, NotConnected
//  9 | no      | no        | Backoff, or Connecting/Closed after an error | any       | Failed    | False, <lastErrorReason> or SessionFailed
//
// Why Invalid wins (row 1): SPEC §3 keeps the last valid version running but says the status
// shows `phase: Invalid` with the errors — the operator must fix the file; what still runs is
// visible in the Connected condition and the forward list.
// Why row 6 is Pending, not Degraded: a forward that is being opened (just after connecting, or
// just added) is not a fault; Degraded means something is wrong. A forward that failed and waits
// for its retry is Failed (row 4), not Pending.
// Why row 2b: a session-level change (host, user, auth, ...) that fails leaves the old session
// running — right — but what runs is not what the manifest says, so the tunnel is not Ready.
// Why rows 7/9 look at the error: "Connecting" for the first time is Pending; connecting again
// after a failure (the session dropped, auth was refused) is still Failed until it succeeds, so the
// phase does not flap Failed → Pending → Failed on every retry.
import type { ConditionUpdate } from "./conditions.ts";
import { describeForwardId } from "./forward-id.ts";
import type { ForwardId, ForwardState, Phase, SessionState } from "./types.ts";

export interface SessionHealth {
  state: SessionState;
  /** Human message of the last failure, "" when none since the last successful connect. */
  lastError: string;
  /** One CamelCase word for the last failure: AuthFailed, HostKeyMismatch, ConnectionRefused, ... */
  lastErrorReason?: string;
}

export interface ForwardHealth {
  id: ForwardId;
  state: ForwardState;
  /** One CamelCase word when not Active: PortInUse, RemotePortBusy, ForwardRefused, Conflict, ... */
  reason?: string;
  message: string;
}

export interface PhaseInput {
  /** The current version of the manifest has errors (the last valid one may still run). */
  invalid: boolean;
  suspended: boolean;
  session: SessionHealth;
  forwards: readonly ForwardHealth[];
  /** The controller has stopped: its final word (row 0). */
  stopped?: boolean | undefined;
  /** Why the latest spec is not what runs (row 2b), if it is not. */
  notApplied?: { reason: string; message: string } | undefined;
}

export interface PhaseResult {
  phase: Phase;
  /** The Ready condition without lastTransitionTime (see setCondition). */
  ready: ConditionUpdate;
}

export const READY_CONDITION = "Ready";
export const CONNECTED_CONDITION = "Connected";

export function computePhase(input: PhaseInput): PhaseResult {
  if (input.stopped) return notReady("Stopped", "ControllerStopped", "tunnelctl stopped; nothing runs until it starts again");
  if (input.invalid) {
    return notReady("Invalid", "ManifestInvalid", "The manifest is invalid; see status.errors");
  }
  if (input.suspended) return notReady("Suspended", "Suspended", "spec.suspend is true");

  const { session } = input;
  if (session.state === "Connected" && input.notApplied) {
    return notReady("Degraded", "SpecNotApplied", `the latest spec is not applied: ${input.notApplied.reason}: ${input.notApplied.message}`);
  }
  if (session.state === "Connected") {
    const notActive = input.forwards.filter((forward) => forward.state !== "Active" && forward.state !== "Draining");
    if (notActive.length === 0) {
      return { phase: "Ready", ready: { type: READY_CONDITION, status: "True", reason: "AllForwardsActive", message: "" } };
    }
    const message = notActive.map(describeForwardProblem).join("; ");
    if (notActive.some((forward) => forward.state === "Failed")) return notReady("Degraded", "ForwardFailed", message);
    if (notActive.some((forward) => forward.state === "Conflict")) return notReady("Degraded", "ForwardConflict", message);
    return notReady("Pending", "ForwardPending", message);
  }
  const failedBefore = session.lastError !== "";
  if (session.state === "Connecting" && !failedBefore) return notReady("Pending", "Connecting", "");
  if (session.state === "Closed" && !failedBefore) return notReady("Pending", "NotConnected", "");
  return notReady("Failed", session.lastErrorReason ?? "SessionFailed", session.lastError);
}

/** The Connected condition: the real state of the session, whatever the manifest says now. */
export function computeConnectedCondition(session: SessionHealth, suspended: boolean, stopped = false): ConditionUpdate {
  const condition = (status: "True" | "False", reason: string, message: string): ConditionUpdate => ({
    type: CONNECTED_CONDITION,
    status,
    reason,
    message,
  });
  if (stopped) return condition("False", "ControllerStopped", "tunnelctl stopped");
  if (session.state === "Connected") return condition("True", "Connected", "");
  if (suspended) return condition("False", "Suspended", "spec.suspend is true");
  if (session.lastError !== "") {
    return condition("False", session.lastErrorReason ?? "SessionFailed", session.lastError);
  }
  if (session.state === "Connecting") return condition("False", "Connecting", "");
  return condition("False", "NotConnected", "");
}

/** `local 127.0.0.1:8080: PortInUse: Cannot bind 127.0.0.1:8080: address in use` */
export function describeForwardProblem(forward: ForwardHealth): string {
  const parts = [describeForwardId(forward.id), forward.reason ?? forward.state];
  if (forward.message !== "") parts.push(forward.message);
  return parts.join(": ");
}

function notReady(phase: Phase, reason: string, message: string): PhaseResult {
  return { phase, ready: { type: READY_CONDITION, status: "False", reason, message } };
}
