// What `run` would do to get from one state to another, per tunnel: the pure core of
// `tunnelctl diff`. Each tunnel's actions are exactly plan()'s; this only pairs tunnels by name
// and names the change (Terraform's create / update / delete / no-op).
import type { TunnelSpec } from "../manifest/types.ts";
import { sessionKey } from "./forward-id.ts";
import { plan } from "./plan.ts";
import type { Action, ObservedTunnel } from "./types.ts";

export type ChangeKind = "create" | "update" | "delete" | "unchanged";

export interface TunnelChange {
  name: string;
  /** Where the tunnel is described now (the desired side), else where it was. */
  manifest: string;
  change: ChangeKind;
  actions: Action[];
}

export interface DesiredEntry {
  spec: TunnelSpec;
  manifest: string;
}

export interface ActualEntry {
  observed: ObservedTunnel;
  manifest: string;
}

/** Every tunnel on either side, sorted by name. */
export function diffTunnels(desired: ReadonlyMap<string, DesiredEntry>, actual: ReadonlyMap<string, ActualEntry>): TunnelChange[] {
  const names = [...new Set([...desired.keys(), ...actual.keys()])].sort();
  return names.map((name): TunnelChange => {
    const want = desired.get(name);
    const have = actual.get(name);
    const actions = plan(want?.spec, have?.observed ?? NOTHING);
    const change: ChangeKind = have === undefined ? "create" : want === undefined ? "delete" : actions.length === 0 ? "unchanged" : "update";
    return { name, manifest: want?.manifest ?? have?.manifest ?? "", change, actions };
  });
}

/** A tunnel running exactly `spec`: its session up, every forward open (the --against side). */
export function observedFromSpec(spec: TunnelSpec): ObservedTunnel {
  if (spec.suspend) return NOTHING;
  return { sessionKey: sessionKey(spec), sessionState: "Connected", local: [...spec.forwards.local], remote: [...spec.forwards.remote] };
}

const NOTHING: ObservedTunnel = { sessionKey: undefined, sessionState: "Closed", local: [], remote: [] };
