import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { allowedBy, parseAllowPattern } from "../../src/manifest/allow-pattern.ts";
import { parseSocks, REP, replyFor } from "../../src/ssh/socks/protocol.ts";

const b = (...bytes: Array<number | string>): Buffer => Buffer.concat(bytes.map((x) => (typeof x === "string" ? Buffer.from(x, "latin1") : Buffer.from([x]))));

describe("SOCKS handshake parser", () => {
  const table: Array<{ name: string; data: Buffer; greeted?: boolean; want: unknown }> = [
    { name: "nothing yet", data: b(), want: { kind: "more" } },
    { name: "SOCKS5 greeting, no auth offered among others", data: b(5, 2, 2, 0), want: { kind: "greeting", reply: b(5, 0), consumed: 4 } },
    { name: "SOCKS5 greeting cut short", data: b(5, 3, 0), want: { kind: "more" } },
    { name: "SOCKS5 greeting with auth only", data: b(5, 1, 2), want: { kind: "reject", reply: b(5, 0xff), why: "SOCKS5 client wants authentication; only 'no authentication' is served" } },
    { name: "SOCKS5 CONNECT IPv4", greeted: true, data: b(5, 1, 0, 1, 10, 0, 0, 7, 0x15, 0x38, "rest"), want: { kind: "connect", version: 5, host: "10.0.0.7", port: 5432, consumed: 10 } },
    {
      name: "SOCKS5 CONNECT IPv6",
      greeted: true,
      data: b(5, 1, 0, 4, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 22),
      want: { kind: "connect", version: 5, host: "fd00::1", port: 22, consumed: 22 },
    },
    { name: "SOCKS5 CONNECT domain", greeted: true, data: b(5, 1, 0, 3, 11, "db.internal", 0x15, 0x38), want: { kind: "connect", version: 5, host: "db.internal", port: 5432, consumed: 18 } },
    { name: "SOCKS5 domain cut short", greeted: true, data: b(5, 1, 0, 3, 11, "db.int"), want: { kind: "more" } },
    { name: "SOCKS5 BIND", greeted: true, data: b(5, 2, 0, 1, 1, 2, 3, 4, 0, 80), want: { kind: "reject", reply: replyFor(5, REP.commandNotSupported), why: "SOCKS5 command BIND is not supported" } },
    { name: "SOCKS5 UDP ASSOCIATE", greeted: true, data: b(5, 3, 0, 1, 0, 0, 0, 0, 0, 0), want: { kind: "reject", reply: replyFor(5, REP.commandNotSupported), why: "SOCKS5 command UDP ASSOCIATE is not supported" } },
    { name: "SOCKS5 unknown address type", greeted: true, data: b(5, 1, 0, 9, 0, 0), want: { kind: "reject", reply: replyFor(5, REP.addressTypeNotSupported), why: "SOCKS5 address type 0x9 is not supported" } },
    { name: "SOCKS4 CONNECT", data: b(4, 1, 0, 80, 127, 0, 0, 1, "me", 0), want: { kind: "connect", version: 4, host: "127.0.0.1", port: 80, consumed: 11 } },
    { name: "SOCKS4a CONNECT by name", data: b(4, 1, 0, 80, 0, 0, 0, 1, 0, "example.internal", 0), want: { kind: "connect", version: 4, host: "example.internal", port: 80, consumed: 26 } },
    { name: "SOCKS4 without the user id's NUL yet", data: b(4, 1, 0, 80, 127, 0, 0, 1, "me"), want: { kind: "more" } },
    { name: "SOCKS4 BIND", data: b(4, 2, 0, 80, 127, 0, 0, 1, 0), want: { kind: "reject", reply: replyFor(4, REP.generalFailure), why: "SOCKS4 command BIND is not supported" } },
    { name: "HTTP is not SOCKS", data: b("GET / HTTP/1.1\r\n"), want: { kind: "reject", reply: b(), why: "not a SOCKS request (first byte 0x47)" } },
    { name: "SOCKS4 user id that never ends", data: Buffer.concat([b(4, 1, 0, 80, 1, 2, 3, 4), Buffer.alloc(300, 0x41)]), want: { kind: "reject", reply: replyFor(4, REP.generalFailure), why: "SOCKS4 user id too long" } },
  ];
  for (const row of table) it(row.name, () => assert.deepEqual(parseSocks(row.data, row.greeted ?? false), row.want));

  it("replies: SOCKS5 carries the code, SOCKS4 granted or rejected", () => {
    assert.deepEqual(replyFor(5, REP.connectionRefused), b(5, 5, 0, 1, 0, 0, 0, 0, 0, 0));
    assert.deepEqual(replyFor(4, REP.succeeded), b(0, 0x5a, 0, 0, 0, 0, 0, 0));
    assert.deepEqual(replyFor(4, REP.hostUnreachable), b(0, 0x5b, 0, 0, 0, 0, 0, 0));
  });
});

describe("allow patterns", () => {
  const patterns = ["*.internal:5432", "10.0.0.0/8:*", "[fd00::/8]:22", "api.example.com:443"].map(parseAllowPattern);
  const table: Array<[string, number, string | undefined]> = [
    ["db.internal", 5432, "*.internal:5432"],
    ["DB.Internal", 5432, "*.internal:5432"],
    ["db.internal", 5433, undefined],
    ["internal", 5432, undefined],
    ["10.1.2.3", 9, "10.0.0.0/8:*"],
    ["11.1.2.3", 9, undefined],
    ["fd00::1", 22, "[fd00::/8]:22"],
    ["fe80::1", 22, undefined],
    ["api.example.com", 443, "api.example.com:443"],
    ["evil-api.example.com", 443, undefined],
  ];
  for (const [host, port, want] of table) it(`${host}:${port} → ${want ?? "refused"}`, () => assert.equal(allowedBy(patterns, host, port)?.text, want));

  it("a name pattern never matches a request by address, nor a CIDR a request by name", () => {
    assert.equal(allowedBy([parseAllowPattern("*:*")], "10.0.0.1", 80), undefined);
    assert.equal(allowedBy([parseAllowPattern("0.0.0.0/0:*")], "example.com", 80), undefined);
    assert.equal(allowedBy([parseAllowPattern("0.0.0.0/0:*")], "192.0.2.1", 80)?.text, "0.0.0.0/0:*");
  });

  for (const [text, message] of [
    ["db.internal", /is not HOST:PORT/],
    ["db:0", /port must be 1\.\.65535 or \*/],
    ["fd00::1:22", /IPv6 address in brackets/],
    ["10.0.0.0/33:*", /prefix length must be 0\.\.32/],
    ["db/8:*", /needs an IP address/],
    ["db_1:*", /is not a host name pattern/],
  ] as const) {
    it(`rejects ${text}`, () => assert.throws(() => parseAllowPattern(text), message));
  }
});
