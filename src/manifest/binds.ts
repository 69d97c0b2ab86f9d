// When two local listeners would fight over a port. Kernel rules, as Node binds: 0.0.0.0 takes
// the port on every IPv4 address; :: takes it on every address of both families (Node listens
// dual-stack on ::); localhost may resolve to 127.0.0.1 or ::1, so it overlaps both. Pure.
import type { LocalForwardSpec } from "./types.ts";

export type LocalBind = Pick<LocalForwardSpec, "bindAddress" | "localPort"> & { localPath?: string | undefined };

type BindAddress =
  | { kind: "any4" }
  | { kind: "any6" }
  | { kind: "localhost" }
  | { kind: "ip"; family: 4 | 6; address: string };

/** True when both binds cannot be listening at the same time. */
export function localBindsOverlap(a: LocalBind, b: LocalBind): boolean {
  if (a.localPath !== undefined || b.localPath !== undefined) return a.localPath === b.localPath;
  return a.localPort === b.localPort && addressesOverlap(classify(a.bindAddress), classify(b.bindAddress));
}

/**
 * Binds claimed so far, for checking many binds against each other without comparing every
 * pair: claims are bucketed by port and their addresses classified once.
 */
export class LocalBindClaims<Owner> {
  readonly #byPort = new Map<number, Array<{ address: BindAddress; owner: Owner }>>();
  /** Unix-socket listeners: one path, one owner. */
  readonly #byPath = new Map<string, Owner[]>();

  /** The earliest claim that overlaps `bind` and is not skipped, if any. */
  find(bind: LocalBind, skip?: (owner: Owner) => boolean): Owner | undefined {
    if (bind.localPath !== undefined) return this.#byPath.get(bind.localPath)?.find((owner) => !(skip?.(owner) ?? false));
    const address = classify(bind.bindAddress);
    return this.#byPort
      .get(bind.localPort)
      ?.find((claim) => !(skip?.(claim.owner) ?? false) && addressesOverlap(claim.address, address))?.owner;
  }

  add(bind: LocalBind, owner: Owner): void {
    if (bind.localPath !== undefined) {
      this.#byPath.set(bind.localPath, [...(this.#byPath.get(bind.localPath) ?? []), owner]);
      return;
    }
    const claims = this.#byPort.get(bind.localPort) ?? [];
    claims.push({ address: classify(bind.bindAddress), owner });
    this.#byPort.set(bind.localPort, claims);
  }
}

function addressesOverlap(a: BindAddress, b: BindAddress): boolean {
  if (a.kind === "any6" || b.kind === "any6") return true;
  if (a.kind === "any4" || b.kind === "any4") {
    const other = a.kind === "any4" ? b : a;
    return other.kind !== "ip" || other.family === 4;
  }
  if (a.kind === "localhost" || b.kind === "localhost") {
    const other = a.kind === "localhost" ? b : a;
    return other.kind !== "ip" || other.address === "127.0.0.1" || other.address === "::1";
  }
  return a.kind === "ip" && b.kind === "ip" && a.address === b.address;
}

function classify(bindAddress: string): BindAddress {
  const lower = bindAddress.toLowerCase();
  if (lower === "localhost") return { kind: "localhost" };
  if (!lower.includes(":")) return lower === "0.0.0.0" ? { kind: "any4" } : { kind: "ip", family: 4, address: lower };
  const address = canonicalIpv6(lower);
  // An IPv4-mapped address (::ffff:a.b.c.d) is that IPv4 address.
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(address);
  if (mapped !== null) {
    const high = parseInt(mapped[1] ?? "0", 16);
    const low = parseInt(mapped[2] ?? "0", 16);
    const ipv4 = [high >> 8, high & 255, low >> 8, low & 255].join(".");
    return ipv4 === "0.0.0.0" ? { kind: "any4" } : { kind: "ip", family: 4, address: ipv4 };
  }
  return address === "::" ? { kind: "any6" } : { kind: "ip", family: 6, address };
}

/** The WHATWG URL parser prints IPv6 in canonical form (RFC 5952): `0:0::1` → `::1`. */
function canonicalIpv6(address: string): string {
  try {
    return new URL(`http://[${address}]/`).hostname.slice(1, -1);
  } catch {
    return address;
  }
}

/** `127.0.0.1:8080`, `[::1]:8080`. */
export function formatBind(bind: LocalBind): string {
  if (bind.localPath !== undefined) return `unix:${bind.localPath}`;
  const host = bind.bindAddress.includes(":") ? `[${bind.bindAddress}]` : bind.bindAddress;
  return `${host}:${bind.localPort}`;
}
