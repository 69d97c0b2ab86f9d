// Rules inside one document that JSON Schema cannot state: minDelay ≤ maxDelay, and forward
// identities that collide (the reconciler's plan() relies on identities being unique).
import { formatBind, LocalBindClaims } from "./binds.ts";
import type { FieldIssue } from "./field-path.ts";
import type { RawTunnel } from "./raw.ts";
import type { TunnelSpec } from "./types.ts";

export function checkTunnelSpec(spec: TunnelSpec, raw: RawTunnel["spec"]): FieldIssue[] {
  const issues: FieldIssue[] = [];

  if (spec.reconnect.minDelay > spec.reconnect.maxDelay) {
    issues.push({
      path: ["spec", "reconnect", "minDelay"],
      at: "value",
      message: `spec.reconnect.minDelay: must not be greater than maxDelay (got ${show(raw.reconnect.minDelay)} > ${show(raw.reconnect.maxDelay)})`,
    });
  }

  const claims = new LocalBindClaims<number>();
  spec.forwards.local.forEach((forward, i) => {
    const earlier = claims.find(forward);
    const other = earlier === undefined ? undefined : spec.forwards.local[earlier];
    if (earlier === undefined || other === undefined) {
      claims.add(forward, i);
      return;
    }
    const same = other.bindAddress === forward.bindAddress;
    issues.push({
      path: ["spec", "forwards", "local", i],
      at: "value",
      message: `spec.forwards.local[${i}]: ${formatBind(forward)} ${same ? "repeats" : "overlaps"} spec.forwards.local[${earlier}] (${formatBind(other)})`,
    });
  });

  const remoteIdentities = new Map<string, number>();
  spec.forwards.remote.forEach((forward, i) => {
    const identity = `${forward.bindAddress.toLowerCase()} ${forward.remotePort}`;
    const earlier = remoteIdentities.get(identity);
    if (earlier === undefined) {
      remoteIdentities.set(identity, i);
      return;
    }
    const hint = forward.remotePort === 0 ? ": forwards with remotePort 0 need different bind addresses" : "";
    issues.push({
      path: ["spec", "forwards", "remote", i],
      at: "value",
      message: `spec.forwards.remote[${i}]: ${forward.bindAddress} port ${forward.remotePort} repeats spec.forwards.remote[${earlier}]${hint}`,
    });
  });

  return issues;
}

function show(value: number | string): string {
  return typeof value === "string" ? value : `${value}ms`;
}
