// Checks across all tunnels of a directory: unique names, and no two tunnels listening on
// overlapping local (bindAddress, localPort). The owner of a claim is decided the same way every
// time: what is running keeps it, otherwise the first in (file, document index) order. Pure.
import { formatBind, LocalBindClaims } from "./binds.ts";
import { ManifestError, START_OF_FILE } from "./errors.ts";
import { localForwardName } from "./forward-paths.ts";
import type { LocalForwardSpec, SourcePosition, Tunnel } from "./types.ts";

export interface DuplicateName {
  /** The tunnel that loses: it must not run. */
  tunnel: Tunnel;
  /** The tunnel that keeps the name. */
  owner: Tunnel;
  error: ManifestError;
}

export interface BindConflict {
  /** The tunnel whose forward loses: that forward must not be opened (state Conflict). */
  tunnel: Tunnel;
  forwardIndex: number;
  /** The tunnel that keeps the bind, and which of its forwards holds it. */
  owner: Tunnel;
  ownerForwardIndex: number;
  error: ManifestError;
}

export interface SetCheckResult {
  duplicates: DuplicateName[];
  conflicts: BindConflict[];
}

/** What is running now, so that it keeps what it holds ("the one already running keeps it"). */
export interface ClaimPriority {
  /** The tunnel (this file and document) is the one running under its name. */
  isRunning?: (tunnel: Tunnel) => boolean;
  /** This local forward of the tunnel is listening now. Checked before isRunning. */
  holdsLocal?: (tunnel: Tunnel, forward: LocalForwardSpec, forwardIndex: number) => boolean;
}

/**
 * Duplicate names and local bind conflicts in a set of valid tunnels. Tunnels that lose their
 * name claim no ports; suspended tunnels listen on nothing, so they claim no ports either.
 */
export function checkConflicts(
  tunnels: readonly Tunnel[],
  displayPath: (file: string) => string,
  priority: ClaimPriority = {},
): SetCheckResult {
  // Ask each question once, not once per comparison of a sort.
  const running = new Set(tunnels.filter((tunnel) => priority.isRunning?.(tunnel) ?? false));
  const ordered = [...tunnels].sort((a, b) => Number(running.has(b)) - Number(running.has(a)) || compareLocation(a, b));
  const where = (tunnel: Tunnel, position: SourcePosition | undefined): string => {
    const at = position ?? START_OF_FILE;
    return `${displayPath(tunnel.file)}:${at.line}:${at.column}`;
  };

  const duplicates: DuplicateName[] = [];
  const byName = new Map<string, Tunnel>();
  for (const tunnel of ordered) {
    const owner = byName.get(tunnel.name);
    if (owner === undefined) {
      byName.set(tunnel.name, tunnel);
      continue;
    }
    const error = new ManifestError(
      displayPath(tunnel.file),
      tunnel.positions.name ?? START_OF_FILE,
      `metadata.name: tunnel name ${JSON.stringify(tunnel.name)} is already used at ${where(owner, owner.positions.name)}`,
    );
    duplicates.push({ tunnel, owner, error });
  }

  const losers = new Set(duplicates.map((duplicate) => duplicate.tunnel));
  const claimants = ordered.filter((tunnel) => !losers.has(tunnel) && !tunnel.spec.suspend);
  const forwards = claimants.flatMap((tunnel) =>
    tunnel.spec.forwards.local.map((forward, forwardIndex) => ({
      tunnel,
      forward,
      forwardIndex,
      held: priority.holdsLocal?.(tunnel, forward, forwardIndex) ?? false,
    })),
  );
  // Stable sort: listeners that are bound now first, then the tunnel order above.
  const claimOrder = [...forwards].sort((a, b) => Number(b.held) - Number(a.held));

  const conflicts: BindConflict[] = [];
  const granted = new LocalBindClaims<(typeof forwards)[number]>();
  for (const claim of claimOrder) {
    // Overlaps inside one tunnel are the document's own error (semantic.ts), not a conflict.
    const owner = granted.find(claim.forward, (held) => held.tunnel === claim.tunnel);
    if (owner === undefined) {
      granted.add(claim.forward, claim);
      continue;
    }
    const ownerAt = where(owner.tunnel, owner.tunnel.positions.localForwards[owner.forwardIndex]);
    const error = new ManifestError(
      displayPath(claim.tunnel.file),
      claim.tunnel.positions.localForwards[claim.forwardIndex] ?? claim.tunnel.positions.name ?? START_OF_FILE,
      `${localForwardName(claim.tunnel.spec, claim.forwardIndex)}: ${formatBind(claim.forward)} conflicts with ${formatBind(owner.forward)} ` +
        `of tunnel ${JSON.stringify(owner.tunnel.name)} (${ownerAt}), which keeps it`,
    );
    conflicts.push({ tunnel: claim.tunnel, forwardIndex: claim.forwardIndex, owner: owner.tunnel, ownerForwardIndex: owner.forwardIndex, error });
  }
  conflicts.sort((a, b) => compareLocation(a.tunnel, b.tunnel) || a.forwardIndex - b.forwardIndex);
  duplicates.sort((a, b) => compareLocation(a.tunnel, b.tunnel));
  return { duplicates, conflicts };
}

function compareLocation(a: Tunnel, b: Tunnel): number {
  if (a.file !== b.file) return a.file < b.file ? -1 : 1;
  // Same place, two names: a tunnel kept running from an earlier version of the document (now
  // invalid or renamed) and the one there now. By name, so the order never depends on input order.
  return a.index - b.index || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}
