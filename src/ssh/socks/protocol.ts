// The SOCKS handshake as `ssh -D` serves it, as pure functions of the bytes received so far:
// SOCKS5 (RFC 1928) CONNECT with IPv4, IPv6 and domain names, no authentication; SOCKS4 and
// SOCKS4a CONNECT. BIND and UDP ASSOCIATE are answered "command not supported". Nothing here
// touches a socket: the caller feeds bytes and writes the replies it is given.

/** SOCKS5 reply codes (RFC 1928 §6). */
export const REP = {
  succeeded: 0x00,
  generalFailure: 0x01,
  notAllowed: 0x02,
  networkUnreachable: 0x03,
  hostUnreachable: 0x04,
  connectionRefused: 0x05,
  ttlExpired: 0x06,
  commandNotSupported: 0x07,
  addressTypeNotSupported: 0x08,
} as const;
export type ReplyCode = (typeof REP)[keyof typeof REP];

export type Step =
  /** More bytes are needed. */
  | { kind: "more" }
  /** SOCKS5 greeting understood: write `reply`, drop `consumed` bytes, then parse the request. */
  | { kind: "greeting"; reply: Buffer; consumed: number }
  /** A CONNECT request: open `host:port`, then write replyFor(version, code) and pass the rest through. */
  | { kind: "connect"; version: 4 | 5; host: string; port: number; consumed: number }
  /** Refused: write `reply` (may be empty), then close. `why` is for people. */
  | { kind: "reject"; reply: Buffer; why: string };

/** Longest handshake we accept: a SOCKS4 user id or a domain is short; more is not SOCKS. */
const MAX_FIELD = 255;

/**
 * The next step of a handshake. `greeted` is true once the SOCKS5 greeting has been answered
 * (the bytes then start with the request).
 */
export function parseSocks(data: Buffer, greeted: boolean): Step {
  if (data.length === 0) return { kind: "more" };
  const version = data[0];
  if (greeted) return parseRequest5(data);
  if (version === 5) return parseGreeting5(data);
  if (version === 4) return parseRequest4(data);
  return { kind: "reject", reply: Buffer.alloc(0), why: `not a SOCKS request (first byte 0x${(version ?? 0).toString(16).padStart(2, "0")})` };
}

function parseGreeting5(data: Buffer): Step {
  if (data.length < 2) return { kind: "more" };
  const count = data[1]!;
  if (count === 0) return { kind: "reject", reply: Buffer.from([5, 0xff]), why: "SOCKS5 greeting offers no authentication method" };
  if (data.length < 2 + count) return { kind: "more" };
  const methods = data.subarray(2, 2 + count);
  // 0x00: no authentication, the only method `ssh -D` offers.
  if (!methods.includes(0x00)) return { kind: "reject", reply: Buffer.from([5, 0xff]), why: "SOCKS5 client wants authentication; only 'no authentication' is served" };
  return { kind: "greeting", reply: Buffer.from([5, 0x00]), consumed: 2 + count };
}

function parseRequest5(data: Buffer): Step {
  if (data.length < 4) return { kind: "more" };
  if (data[0] !== 5 || data[2] !== 0) return { kind: "reject", reply: reply5(REP.generalFailure), why: "malformed SOCKS5 request" };
  const command = data[1];
  const atyp = data[3];
  let host: string;
  let at: number;
  if (atyp === 0x01) {
    if (data.length < 10) return { kind: "more" };
    host = [...data.subarray(4, 8)].join(".");
    at = 8;
  } else if (atyp === 0x04) {
    if (data.length < 22) return { kind: "more" };
    host = ipv6Text(data.subarray(4, 20));
    at = 20;
  } else if (atyp === 0x03) {
    if (data.length < 5) return { kind: "more" };
    const length = data[4]!;
    if (length === 0) return { kind: "reject", reply: reply5(REP.generalFailure), why: "SOCKS5 request with an empty domain name" };
    if (data.length < 5 + length + 2) return { kind: "more" };
    host = data.subarray(5, 5 + length).toString("latin1");
    at = 5 + length;
  } else {
    return { kind: "reject", reply: reply5(REP.addressTypeNotSupported), why: `SOCKS5 address type 0x${(atyp ?? 0).toString(16)} is not supported` };
  }
  if (command !== 0x01) {
    return { kind: "reject", reply: reply5(REP.commandNotSupported), why: `SOCKS5 command ${command === 2 ? "BIND" : command === 3 ? "UDP ASSOCIATE" : `0x${(command ?? 0).toString(16)}`} is not supported` };
  }
  const port = data.readUInt16BE(at);
  return { kind: "connect", version: 5, host, port, consumed: at + 2 };
}

function parseRequest4(data: Buffer): Step {
  if (data.length < 9) return { kind: "more" };
  const command = data[1];
  const port = data.readUInt16BE(2);
  const ip = data.subarray(4, 8);
  const userEnd = data.indexOf(0, 8);
  if (userEnd < 0) return data.length - 8 > MAX_FIELD ? { kind: "reject", reply: reply4(false), why: "SOCKS4 user id too long" } : { kind: "more" };
  // SOCKS4a: 0.0.0.x (x ≠ 0) means "the domain name follows the user id".
  const is4a = ip[0] === 0 && ip[1] === 0 && ip[2] === 0 && ip[3] !== 0;
  let host = [...ip].join(".");
  let consumed = userEnd + 1;
  if (is4a) {
    const nameEnd = data.indexOf(0, consumed);
    if (nameEnd < 0) return data.length - consumed > MAX_FIELD ? { kind: "reject", reply: reply4(false), why: "SOCKS4a domain name too long" } : { kind: "more" };
    host = data.subarray(consumed, nameEnd).toString("latin1");
    if (host === "") return { kind: "reject", reply: reply4(false), why: "SOCKS4a request with an empty domain name" };
    consumed = nameEnd + 1;
  }
  if (command !== 0x01) return { kind: "reject", reply: reply4(false), why: `SOCKS4 command ${command === 2 ? "BIND" : `0x${(command ?? 0).toString(16)}`} is not supported` };
  return { kind: "connect", version: 4, host, port, consumed };
}

/** The reply to a CONNECT: `code` is a SOCKS5 reply code; SOCKS4 knows only granted / rejected. */
export function replyFor(version: 4 | 5, code: ReplyCode): Buffer {
  return version === 5 ? reply5(code) : reply4(code === REP.succeeded);
}

function reply5(code: ReplyCode): Buffer {
  // BND.ADDR 0.0.0.0:0, as `ssh -D` answers: the bound address is the server's business.
  return Buffer.from([5, code, 0, 1, 0, 0, 0, 0, 0, 0]);
}

function reply4(granted: boolean): Buffer {
  return Buffer.from([0, granted ? 0x5a : 0x5b, 0, 0, 0, 0, 0, 0]);
}

function ipv6Text(bytes: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  // The shortest form (RFC 5952): the longest run of two or more zero groups becomes "::".
  let best = { start: -1, length: 0 };
  for (let i = 0; i < 8; ) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > best.length && j - i >= 2) best = { start: i, length: j - i };
    i = j;
  }
  if (best.start < 0) return groups.join(":");
  return `${groups.slice(0, best.start).join(":")}::${groups.slice(best.start + best.length).join(":")}`;
}
