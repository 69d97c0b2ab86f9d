// Observation → status document (SPEC §4). Pure: `now` is passed in, the previous document
// supplies lastTransitionTime for conditions whose status did not flip.
import { localForwardId, remoteForwardId } from "../reconcile/forward-id.ts";
import { findCondition, setCondition, type ConditionUpdate } from "../reconcile/conditions.ts";
import {
  computeConnectedCondition,
  computePhase,
  describeForwardProblem,
  type ForwardHealth,
} from "../reconcile/phase.ts";
import type { Condition } from "../reconcile/types.ts";
import type {
  LocalForwardObservation,
  LocalForwardStatus,
  RemoteForwardObservation,
  RemoteForwardStatus,
  TunnelObservation,
  TunnelStatusDoc,
} from "./types.ts";

export const CONFLICT_CONDITION = "Conflict";
export const INVALID_CONDITION = "Invalid";

/**
 * Conditions, in this order: Connected, Ready, then Conflict and Invalid when they apply. Once
 * Conflict or Invalid has appeared it stays, with status False, after the problem is fixed (the
 * Kubernetes convention: its lastTransitionTime then says when it was resolved).
 */
export function buildTunnelStatus(
  observation: TunnelObservation,
  previous: TunnelStatusDoc | undefined,
  now: string,
): TunnelStatusDoc {
  const forwardHealth = [
    ...observation.local.map((forward): ForwardHealth => health(localForwardId(forward), forward)),
    ...observation.remote.map((forward): ForwardHealth => health(remoteForwardId(forward), forward)),
  ];
  const { phase, ready } = computePhase({
    invalid: observation.errors.length > 0,
    suspended: observation.suspended,
    session: observation.session,
    forwards: forwardHealth,
  });
  const previousConditions = previous?.status.conditions ?? [];
  const updates: ConditionUpdate[] = [computeConnectedCondition(observation.session, observation.suspended), ready];
  const conflict = conflictCondition(forwardHealth, previousConditions);
  if (conflict !== undefined) updates.push(conflict);
  const invalid = invalidCondition(observation.errors, previousConditions);
  if (invalid !== undefined) updates.push(invalid);

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
      conditions,
      session: {
        state: session.state,
        serverVersion: session.serverVersion,
        hostKeyFingerprint: session.hostKeyFingerprint,
        connectedSince: session.connectedSince ?? "",
        reconnects: session.reconnects,
        lastError: session.lastError,
        ...(session.via !== undefined && session.via.length > 0 ? { via: session.via.map((hop) => ({ ...hop })) } : {}),
      },
      forwards: {
        local: observation.local.map(localForwardStatus),
        remote: observation.remote.map(remoteForwardStatus),
      },
      errors: [...observation.errors],
    },
  };
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

function localForwardStatus(forward: LocalForwardObservation): LocalForwardStatus {
  return {
    bindAddress: forward.bindAddress,
    localPort: forward.localPort,
    remoteHost: forward.remoteHost,
    remotePort: forward.remotePort,
    state: forward.state,
    ...(forward.reason !== undefined ? { reason: forward.reason } : {}),
    activeConnections: forward.activeConnections,
    totalConnections: forward.totalConnections,
    failedConnections: forward.failedConnections,
    bytesIn: forward.bytesIn,
    bytesOut: forward.bytesOut,
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
    state: forward.state,
    ...(forward.reason !== undefined ? { reason: forward.reason } : {}),
    activeConnections: forward.activeConnections,
    totalConnections: forward.totalConnections,
    bytesIn: forward.bytesIn,
    bytesOut: forward.bytesOut,
    message: forward.message,
  };
}
