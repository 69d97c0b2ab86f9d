// Observation → status document (SPEC §4). Pure: `now` is passed in, the previous document
// supplies lastTransitionTime for conditions whose status did not flip.
import { localForwardId, remoteForwardId } from "../reconcile/forward-id.ts";
import { findCondition, setCondition, type ConditionUpdate } from "../reconcile/conditions.ts";
import {
  computeConnectedCondition,
  computePhase,
  describeForwardProblem,
  type ForwardHealth,
  type PhaseResult,
} from "../reconcile/phase.ts";
import type { Condition } from "../reconcile/types.ts";
import type {
  DynamicForwardStatus,
  LocalForwardObservation,
  LocalForwardStatus,
  RemoteForwardObservation,
  RemoteForwardStatus,
  TunnelObservation,
  TunnelStatusDoc,
} from "./types.ts";

export const CONFLICT_CONDITION = "Conflict";
export const INVALID_CONDITION = "Invalid";
export const SYNCED_CONDITION = "Synced";

/**
 * Conditions, in this order: Connected, Ready, then Conflict, Invalid and Synced when they apply.
 * Once Conflict, Invalid or Synced has appeared it stays, with status False, after the problem is fixed (the
 * Kubernetes convention: its lastTransitionTime then says when it was resolved).
 */
export function buildTunnelStatus(
  observation: TunnelObservation,
  previous: TunnelStatusDoc | undefined,
  now: string,
): TunnelStatusDoc {
  const forwardHealth = forwardHealthOf(observation);
  const { phase, ready } = phaseOf(observation, forwardHealth);
  const previousConditions = previous?.status.conditions ?? [];
  const updates: ConditionUpdate[] = [computeConnectedCondition(observation.session, observation.suspended, observation.stopped), ready];
  const conflict = conflictCondition(forwardHealth, previousConditions);
  if (conflict !== undefined) updates.push(conflict);
  const invalid = invalidCondition(observation.errors, previousConditions);
  if (invalid !== undefined) updates.push(invalid);
  const synced = syncedCondition(observation.notApplied, previousConditions);
  if (synced !== undefined) updates.push(synced);

  let merged: Condition[] = [...previousConditions];
  for (const update of updates) merged = setCondition(merged, update, now);
  // Fixed order whatever the previous file held; types we no longer manage are dropped.
  const conditions = updates.flatMap((update) => findCondition(merged, update.type) ?? []);

  const { session } = observation;
  return {
    apiVersion: "tunnelctl/v1",
    kind: "TunnelStatus",
    metadata: { name: observation.name, manifest: observation.manifest },
    status: {
      observedGeneration: observation.generation,
      phase,
      ...(observation.confirmed ? { confirmedAt: observation.confirmed.at, confirmInterval: observation.confirmed.interval } : {}),
      conditions,
      session: {
        state: session.state,
        serverVersion: session.serverVersion,
        hostKeyFingerprint: session.hostKeyFingerprint,
        connectedSince: session.connectedSince ?? "",
        reconnects: session.reconnects,
        lastError: session.lastError,
        configHash: session.configHash ?? "",
        ...(session.rttMs !== undefined ? { rttMs: session.rttMs } : {}),
        ...(session.windowAutotuneOff !== undefined ? { windowAutotune: `off: ${session.windowAutotuneOff}` } : {}),
        ...(session.via !== undefined && session.via.length > 0 ? { via: session.via.map((hop) => ({ ...hop })) } : {}),
      },
      forwards: forwardsStatus(observation),
      errors: [...observation.errors],
    },
  };
}

/** The phase and Ready condition of an observation (what its status document will say). */
export function phaseOf(observation: TunnelObservation, forwards: readonly ForwardHealth[] = forwardHealthOf(observation)): PhaseResult {
  return computePhase({
    invalid: observation.errors.length > 0,
    suspended: observation.suspended,
    session: observation.session,
    forwards,
    notApplied: observation.notApplied,
    stopped: observation.stopped,
  });
}

function forwardHealthOf(observation: TunnelObservation): ForwardHealth[] {
  return [
    ...observation.local.map((forward): ForwardHealth => health(localForwardId(forward), forward)),
    ...observation.remote.map((forward): ForwardHealth => health(remoteForwardId(forward), forward)),
  ];
}

/** Builds every document of one status file; previous documents are matched by tunnel name. */
export function buildStatusDocs(
  observations: readonly TunnelObservation[],
  previous: readonly TunnelStatusDoc[] | undefined,
  now: string,
): TunnelStatusDoc[] {
  const previousByName = new Map((previous ?? []).map((doc) => [doc.metadata.name, doc]));
  return observations.map((observation) =>
    buildTunnelStatus(observation, previousByName.get(observation.name), now),
  );
}

function health(
  id: string,
  forward: Pick<LocalForwardObservation | RemoteForwardObservation, "state" | "reason" | "message">,
): ForwardHealth {
  return {
    id,
    state: forward.state,
    ...(forward.reason !== undefined ? { reason: forward.reason } : {}),
    message: forward.message,
  };
}

function conflictCondition(
  forwards: readonly ForwardHealth[],
  previous: readonly Condition[],
): ConditionUpdate | undefined {
  const conflicting = forwards.filter((forward) => forward.state === "Conflict");
  if (conflicting.length > 0) {
    return {
      type: CONFLICT_CONDITION,
      status: "True",
      reason: "ForwardConflict",
      message: conflicting.map(describeForwardProblem).join("; "),
    };
  }
  if (findCondition(previous, CONFLICT_CONDITION) === undefined) return undefined;
  return { type: CONFLICT_CONDITION, status: "False", reason: "NoConflict", message: "" };
}

function invalidCondition(errors: readonly string[], previous: readonly Condition[]): ConditionUpdate | undefined {
  const [firstError] = errors;
  if (firstError !== undefined) {
    const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : "";
    return { type: INVALID_CONDITION, status: "True", reason: "ManifestInvalid", message: `${firstError}${more}` };
  }
  if (findCondition(previous, INVALID_CONDITION) === undefined) return undefined;
  return { type: INVALID_CONDITION, status: "False", reason: "ManifestValid", message: "" };
}

/**
 * Synced: is the latest spec what runs? Shown once a change could not be applied, and kept (True)
 * afterwards, like Conflict and Invalid.
 */
function syncedCondition(notApplied: TunnelObservation["notApplied"], previous: readonly Condition[]): ConditionUpdate | undefined {
  if (notApplied !== undefined) {
    return {
      type: SYNCED_CONDITION,
      status: "False",
      reason: notApplied.reason,
      message: `generation ${notApplied.generation} is not applied (the previous session keeps running): ${notApplied.message}`,
    };
  }
  if (findCondition(previous, SYNCED_CONDITION) === undefined) return undefined;
  return { type: SYNCED_CONDITION, status: "True", reason: "Applied", message: "" };
}

function forwardsStatus(observation: TunnelObservation): TunnelStatusDoc["status"]["forwards"] {
  const local = observation.local.filter((f) => f.socks === undefined).map(localForwardStatus);
  const remote = observation.remote.map(remoteForwardStatus);
  const dynamic = observation.local.filter((f) => f.socks !== undefined).map(dynamicForwardStatus);
  return dynamic.length > 0 ? { local, remote, dynamic } : { local, remote };
}

function dynamicForwardStatus(forward: LocalForwardObservation): DynamicForwardStatus {
  return {
    bindAddress: forward.bindAddress,
    localPort: forward.localPort,
    connectTimeout: forward.connectTimeout,
    ...(forward.socks?.allow !== undefined ? { allow: [...forward.socks.allow] } : {}),
    state: forward.state,
    ...(forward.reason !== undefined ? { reason: forward.reason } : {}),
    activeConnections: forward.activeConnections,
    totalConnections: forward.totalConnections,
    failedConnections: forward.failedConnections,
    refusedConnections: forward.refusedConnections ?? 0,
    bytesIn: forward.bytesIn,
    bytesOut: forward.bytesOut,
    ...receiveWindowOf(forward),
    message: forward.message,
  };
}

function localForwardStatus(forward: LocalForwardObservation): LocalForwardStatus {
  return {
    bindAddress: forward.bindAddress,
    localPort: forward.localPort,
    remoteHost: forward.remoteHost,
    remotePort: forward.remotePort,
    ...(forward.localPath !== undefined ? { localPath: forward.localPath, mode: `0${(forward.mode ?? 0o600).toString(8)}` } : {}),
    ...(forward.remotePath !== undefined ? { remotePath: forward.remotePath } : {}),
    connectTimeout: forward.connectTimeout,
    state: forward.state,
    ...(forward.reason !== undefined ? { reason: forward.reason } : {}),
    activeConnections: forward.activeConnections,
    totalConnections: forward.totalConnections,
    failedConnections: forward.failedConnections,
    bytesIn: forward.bytesIn,
    bytesOut: forward.bytesOut,
    ...receiveWindowOf(forward),
    // Shown only when it says more than bindAddress ("localhost": 127.0.0.1 and ::1).
    ...(forward.listenAddresses !== undefined && forward.listenAddresses.join() !== forward.bindAddress ? { listenAddresses: forward.listenAddresses } : {}),
    message: forward.message,
  };
}

function remoteForwardStatus(forward: RemoteForwardObservation): RemoteForwardStatus {
  return {
    bindAddress: forward.bindAddress,
    remotePort: forward.remotePort,
    ...(forward.boundPort !== undefined ? { boundPort: forward.boundPort } : {}),
    localHost: forward.localHost,
    localPort: forward.localPort,
    ...(forward.remotePath !== undefined ? { remotePath: forward.remotePath } : {}),
    ...(forward.localPath !== undefined ? { localPath: forward.localPath } : {}),
    state: forward.state,
    ...(forward.reason !== undefined ? { reason: forward.reason } : {}),
    activeConnections: forward.activeConnections,
    totalConnections: forward.totalConnections,
    bytesIn: forward.bytesIn,
    bytesOut: forward.bytesOut,
    ...receiveWindowOf(forward),
    message: forward.message,
  };
}

/** The receive window, shown while a connection is open (it is a property of connections). */
function receiveWindowOf(forward: { receiveWindow?: number }): { receiveWindow?: number } {
  return forward.receiveWindow ? { receiveWindow: forward.receiveWindow } : {};
}
