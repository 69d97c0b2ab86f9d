// Which destinations a SOCKS forward may reach: `allow` patterns `HOST:PORT`, where HOST is a
// name with `*` wildcards (`*.internal`), an IP address, or a CIDR block (`10.0.0.0/8`, IPv6 in
// brackets: `[fd00::/8]`), and PORT is a number or `*`. Pure. Names are resolved by the server,
// never here: a CIDR or IP pattern matches only a request made by address, a name pattern only a
// request made by name.
import { isIP } from "node:net";

export interface AllowPattern {
  text: string;
  port: number | "*";
  host: { kind: "glob"; regex: RegExp } | { kind: "cidr"; family: 4 | 6; bits: bigint; prefix: number };
}

export class AllowPatternError extends Error {
  override name = "AllowPatternError";
}

export function parseAllowPattern(text: string): AllowPattern {
  const colon = text.lastIndexOf(":");
  if (colon <= 0) throw new AllowPatternError(`"${text}" is not HOST:PORT (e.g. "*.internal:5432", "10.0.0.0/8:*")`);
  const portText = text.slice(colon + 1);
  let port: number | "*";
  if (portText === "*") port = "*";
  else {
    port = Number(portText);
    if (!/^[0-9]{1,5}$/.test(portText) || port < 1 || port > 65535) throw new AllowPatternError(`"${text}": the port must be 1..65535 or * (got "${portText}")`);
  }
  let hostText = text.slice(0, colon);
  if (hostText.startsWith("[") && hostText.endsWith("]")) hostText = hostText.slice(1, -1);
  else if (hostText.includes(":")) throw new AllowPatternError(`"${text}": put an IPv6 address in brackets, e.g. "[fd00::/8]:*"`);
  const slash = hostText.indexOf("/");
  const address = slash >= 0 ? hostText.slice(0, slash) : hostText;
  const family = isIP(address);
  if (family === 4 || family === 6) {
    const width = family === 4 ? 32 : 128;
    const prefix = slash >= 0 ? Number(hostText.slice(slash + 1)) : width;
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > width || (slash >= 0 && !/^[0-9]+$/.test(hostText.slice(slash + 1)))) {
      throw new AllowPatternError(`"${text}": the prefix length must be 0..${width}`);
    }
    return { text, port, host: { kind: "cidr", family, bits: addressBits(address, family), prefix } };
  }
  if (slash >= 0) throw new AllowPatternError(`"${text}": a /prefix needs an IP address before it`);
  if (!/^[A-Za-z0-9*]([A-Za-z0-9*.-]*[A-Za-z0-9*])?$/.test(hostText)) throw new AllowPatternError(`"${text}": "${hostText}" is not a host name pattern`);
  const regex = new RegExp(`^${hostText.split("*").map(escapeRegex).join("[^]*")}$`, "i");
  return { text, port, host: { kind: "glob", regex } };
}

/** The first pattern that lets `host:port` through, or undefined (refused). */
export function allowedBy(patterns: readonly AllowPattern[], host: string, port: number): AllowPattern | undefined {
  const family = isIP(host);
  const bits = family === 4 || family === 6 ? addressBits(host, family) : undefined;
  return patterns.find((p) => {
    if (p.port !== "*" && p.port !== port) return false;
    if (p.host.kind === "glob") return family === 0 && p.host.regex.test(host);
    if (bits === undefined || p.host.family !== family) return false;
    const width = family === 4 ? 32n : 128n;
    const shift = width - BigInt(p.host.prefix);
    return bits >> shift === p.host.bits >> shift;
  });
}

function addressBits(address: string, family: 4 | 6): bigint {
  if (family === 4) return address.split(".").reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
  let groups = address.split("::");
  const head = groups[0] ? groups[0].split(":") : [];
  const tail = groups.length > 1 && groups[1] ? groups[1].split(":") : [];
  // An embedded IPv4 tail (::ffff:10.0.0.1) is two groups.
  const expand = (parts: string[]): string[] =>
    parts.flatMap((p) => (p.includes(".") ? ((n) => [(n >> 16n).toString(16), (n & 0xffffn).toString(16)])(addressBits(p, 4)) : [p]));
  const h = expand(head);
  const t = expand(tail);
  groups = [...h, ...Array.from({ length: 8 - h.length - t.length }, () => "0"), ...t];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

function escapeRegex(text: string): string {
  return text.replace(/[.+?^${}()|[\]\\]/g, "\\$&");
}
