// plan(desired, actual) → actions: the pure diff at the heart of the reconciler (the kubelet
// computePodActions model). It says WHAT to do; when to do it (backoff, handshake limits) is
// the caller's business.
//
// Session:
//   - The session is LIVE when `sessionKey` is set and the state is Connecting or Connected.
//     Backoff and Closed are not live: a desired tunnel gets `open-session` (the caller discards
//     any dead session object and connects with the desired fields).
//   - Live with a different `sessionKey(desired)` → `replace-session`. The forward actions that
//     follow are the diff computed as if the session were kept (against `actual`), so the caller
//     makes the new session, moves the forwards it observed onto it (local listeners stay bound:
//     make-before-break), applies the forward diff on the new session, then closes the old one.
//   - Teardown (desired undefined: manifest gone; or `suspend: true`): close every observed
//     forward, then `close-session` when a session object exists (key set, state not Closed —
//     Backoff counts, it may hold a retry). Teardown with nothing open returns [].
//
// Forwards (identity per SPEC §2, see forward-id.ts): only in actual → close; only in desired →
// open; in both with a different target (local: remoteHost, remotePort, connectTimeout; remote:
// localHost, localPort) → update in place. A remote forward with remotePort 0 has identity
// (bindAddress, 0) on both sides: the observed list carries the spec's 0, and the caller keeps
// the allocated port separately.
//
// Order is execution order: session open/replace first (forwards need a session), then closes
// (free ports before opens reuse them), then updates, then opens; within each group sorted by
// kind, bind address, then port number. In teardown, close-session comes LAST, after the forward
// closes, so remote forwards are released on the server before the session goes away.
import type { LocalForwardSpec, RemoteForwardSpec } from "../manifest/types.ts";
import { canonicalJson } from "../manifest/canonical-json.ts";
import { compareForwardKeys, localForwardId, remoteForwardId, sessionKey } from "./forward-id.ts";
import type { Action, DesiredTunnel, ForwardId, ObservedTunnel } from "./types.ts";

/** Two forwards in one list share an identity; the manifest validator must have rejected it. */
export class DuplicateForwardError extends Error {
  override name = "DuplicateForwardError";
  readonly forwardId: ForwardId;
  constructor(forwardId: ForwardId, side: "desired" | "actual") {
    super(`Duplicate forward ${forwardId} in ${side} state: forward identities must be unique`);
    this.forwardId = forwardId;
  }
}

export function plan(desired: DesiredTunnel, actual: ObservedTunnel): Action[] {
  if (desired === undefined || desired.suspend) return planTeardown(actual);

  const sessionIsLive =
    actual.sessionKey !== undefined &&
    (actual.sessionState === "Connecting" || actual.sessionState === "Connected");
  const sessionActions: Action[] = !sessionIsLive
    ? [{ type: "open-session" }]
    : actual.sessionKey !== sessionKey(desired)
      ? [{ type: "replace-session" }]
      : [];

  const local = diffForwards(desired.forwards.local, actual.local, localForwardOps);
  const remote = diffForwards(desired.forwards.remote, actual.remote, remoteForwardOps);
  return [
    ...sessionActions,
    ...local.closes.map((forward): Action => ({ type: "close-local", forward })),
    ...remote.closes.map((forward): Action => ({ type: "close-remote", forward })),
    ...local.updates.map((forward): Action => ({ type: "update-local", forward })),
    ...remote.updates.map((forward): Action => ({ type: "update-remote", forward })),
    ...local.opens.map((forward): Action => ({ type: "open-local", forward })),
    ...remote.opens.map((forward): Action => ({ type: "open-remote", forward })),
  ];
}

function planTeardown(actual: ObservedTunnel): Action[] {
  const sessionExists = actual.sessionKey !== undefined && actual.sessionState !== "Closed";
  return [
    ...sortForwards(actual.local, localForwardOps).map((forward): Action => ({ type: "close-local", forward })),
    ...sortForwards(actual.remote, remoteForwardOps).map((forward): Action => ({ type: "close-remote", forward })),
    ...(sessionExists ? [{ type: "close-session" } as const] : []),
  ];
}

/** What the diff needs to know about one kind of forward. */
interface ForwardOps<F> {
  id(forward: F): ForwardId;
  sortKey(forward: F): Parameters<typeof compareForwardKeys>[0];
  /** Same identity assumed; true when the target or timeout differ (an in-place update). */
  targetDiffers(desired: F, actual: F): boolean;
}

const localForwardOps: ForwardOps<LocalForwardSpec> = {
  id: localForwardId,
  sortKey: (forward) => ({ kind: "local", bindAddress: forward.bindAddress, port: forward.localPort }),
  targetDiffers: (desired, actual) =>
    desired.remoteHost !== actual.remoteHost ||
    desired.remotePort !== actual.remotePort ||
    desired.connectTimeout !== actual.connectTimeout ||
    desired.remotePath !== actual.remotePath ||
    desired.mode !== actual.mode ||
    // A dynamic forward's "target" is its allow list (identity already says it is dynamic).
    canonicalJson(desired.socks?.allow) !== canonicalJson(actual.socks?.allow),
};

const remoteForwardOps: ForwardOps<RemoteForwardSpec> = {
  id: remoteForwardId,
  sortKey: (forward) => ({ kind: "remote", bindAddress: forward.bindAddress, port: forward.remotePort }),
  targetDiffers: (desired, actual) =>
    desired.localHost !== actual.localHost || desired.localPort !== actual.localPort || desired.localPath !== actual.localPath,
};

interface ForwardDiff<F> {
  closes: F[]; // observed forwards to close (the observed value, as it is open now)
  updates: F[]; // desired values for forwards to change in place
  opens: F[]; // desired forwards to open
}

function diffForwards<F>(desired: readonly F[], actual: readonly F[], ops: ForwardOps<F>): ForwardDiff<F> {
  const desiredById = indexById(desired, ops, "desired");
  const actualById = indexById(actual, ops, "actual");
  const diff: ForwardDiff<F> = { closes: [], updates: [], opens: [] };
  for (const [id, actualForward] of actualById) {
    if (!desiredById.has(id)) diff.closes.push(actualForward);
  }
  for (const [id, desiredForward] of desiredById) {
    const actualForward = actualById.get(id);
    if (actualForward === undefined) diff.opens.push(desiredForward);
    else if (ops.targetDiffers(desiredForward, actualForward)) diff.updates.push(desiredForward);
  }
  return {
    closes: sortForwards(diff.closes, ops),
    updates: sortForwards(diff.updates, ops),
    opens: sortForwards(diff.opens, ops),
  };
}

function indexById<F>(forwards: readonly F[], ops: ForwardOps<F>, side: "desired" | "actual"): Map<ForwardId, F> {
  const byId = new Map<ForwardId, F>();
  for (const forward of forwards) {
    const id = ops.id(forward);
    if (byId.has(id)) throw new DuplicateForwardError(id, side);
    byId.set(id, forward);
  }
  return byId;
}

function sortForwards<F>(forwards: readonly F[], ops: ForwardOps<F>): F[] {
  return [...forwards].sort((a, b) => compareForwardKeys(ops.sortKey(a), ops.sortKey(b)));
}
