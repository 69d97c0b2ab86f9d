// Rules inside one document that JSON Schema cannot state: minDelay ≤ maxDelay, and forward
// identities that collide (the reconciler's plan() relies on identities being unique).
import { formatBind, LocalBindClaims } from "./binds.ts";
import type { FieldIssue } from "./field-path.ts";
import type { RawTunnel } from "./raw.ts";
import type { TunnelSpec } from "./types.ts";
import { parseDuration } from "./duration.ts";
import { parseAllowPattern } from "./allow-pattern.ts";
import { localForwardName, localForwardPath } from "./forward-paths.ts";

export function checkTunnelSpec(spec: TunnelSpec, raw: RawTunnel["spec"]): FieldIssue[] {
  const issues: FieldIssue[] = [...delayIssues(spec.reconnect.minDelay, spec.reconnect.maxDelay, raw.reconnect)];

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
      path: localForwardPath(spec, i),
      at: "value",
      message: `${localForwardName(spec, i)}: ${formatBind(forward)} ${same ? "repeats" : "overlaps"} ${localForwardName(spec, earlier)} (${formatBind(other)})`,
    });
  });

  spec.forwards.local.forEach((forward, i) => {
    (forward.socks?.allow ?? []).forEach((pattern, k) => {
      try {
        parseAllowPattern(pattern);
      } catch (err) {
        const path = [...localForwardPath(spec, i), "allow", k];
        issues.push({ path, at: "value", message: `${localForwardName(spec, i)}.allow[${k}]: ${(err as Error).message}` });
      }
    });
  });

  const remoteIdentities = new Map<string, number>();
  spec.forwards.remote.forEach((forward, i) => {
    const identity = forward.remotePath !== undefined ? `unix:${forward.remotePath}` : `${forward.bindAddress.toLowerCase()} ${forward.remotePort}`;
    const earlier = remoteIdentities.get(identity);
    if (earlier === undefined) {
      remoteIdentities.set(identity, i);
      return;
    }
    const hint = forward.remotePath === undefined && forward.remotePort === 0 ? ": forwards with remotePort 0 need different bind addresses" : "";
    const what = forward.remotePath !== undefined ? `remotePath ${forward.remotePath}` : `${forward.bindAddress} port ${forward.remotePort}`;
    issues.push({
      path: ["spec", "forwards", "remote", i],
      at: "value",
      message: `spec.forwards.remote[${i}]: ${what} repeats spec.forwards.remote[${earlier}]${hint}`,
    });
  });

  return issues;
}

/**
 * The same rules on a document the schema rejected, as far as its fields can be read: one
 * `validate` pass then reports every error of a file, not the schema's first and these later.
 */
export function checkInvalidDocument(data: unknown): FieldIssue[] {
  const reconnect = field(field(data, "spec"), "reconnect");
  const minDelay = field(reconnect, "minDelay");
  const maxDelay = field(reconnect, "maxDelay");
  if (!isDuration(minDelay) || !isDuration(maxDelay)) return [];
  try {
    return delayIssues(parseDuration(minDelay), parseDuration(maxDelay), { minDelay, maxDelay });
  } catch {
    return []; // the schema (or normalise) reports the bad duration itself
  }
}

function delayIssues(min: number, max: number, raw: { minDelay: number | string; maxDelay: number | string }): FieldIssue[] {
  if (min <= max) return [];
  return [
    {
      path: ["spec", "reconnect", "minDelay"],
      at: "value",
      message: `spec.reconnect.minDelay: must not be greater than maxDelay (got ${show(raw.minDelay)} > ${show(raw.maxDelay)})`,
    },
  ];
}

function field(value: unknown, key: string): unknown {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>)[key] : undefined;
}

function isDuration(value: unknown): value is number | string {
  return typeof value === "number" || typeof value === "string";
}

function show(value: number | string): string {
  return typeof value === "string" ? value : `${value}ms`;
}

/**
 * Warnings, not errors: a SOCKS proxy listening beyond loopback with no `allow` lets anyone who
 * reaches it use the SSH server's network. `validate` prints them; the forward's status says it.
 */
export function dynamicForwardWarning(forward: { bindAddress: string; socks?: { allow?: string[] } }): string | undefined {
  if (forward.socks === undefined || forward.socks.allow !== undefined || isLoopback(forward.bindAddress)) return undefined;
  return `listens on ${forward.bindAddress} without allow: anyone who can reach it can use the SSH server's network (list the destinations in allow, or bind 127.0.0.1)`;
}

function isLoopback(address: string): boolean {
  return address === "localhost" || address === "::1" || /^127\./.test(address);
}
