// The host key algorithms offered to a server: those of the key types already known for the host
// first, like OpenSSH's ssh (order_hostkeyalgs).
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, test } from "node:test";
import { orderHostKeyAlgorithms } from "../../src/ssh/host-key-algorithms.ts";
import { knownKeyTypes } from "../../src/ssh/host-key.ts";

const AVAILABLE = [
  "ssh-ed25519",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "rsa-sha2-512",
  "rsa-sha2-256",
  "ssh-rsa",
];

describe("orderHostKeyAlgorithms", () => {
  const cases: Array<{ name: string; known: string[]; want: string[] }> = [
    { name: "nothing known: the default order, unchanged", known: [], want: AVAILABLE },
    { name: "ed25519 known: already first, unchanged", known: ["ssh-ed25519"], want: AVAILABLE },
    {
      name: "ecdsa known: ecdsa first",
      known: ["ecdsa-sha2-nistp256"],
      want: ["ecdsa-sha2-nistp256", "ssh-ed25519", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
    },
    {
      name: "ssh-rsa known: the SHA-2 signatures of an RSA key first, then SHA-1",
      known: ["ssh-rsa"],
      want: ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa", "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"],
    },
    {
      name: "two known types: both first, in the default order",
      known: ["ssh-rsa", "ecdsa-sha2-nistp384"],
      want: ["ecdsa-sha2-nistp384", "rsa-sha2-512", "rsa-sha2-256", "ssh-rsa", "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp521"],
    },
    { name: "a type this client cannot check (ssh-dss) adds nothing", known: ["ssh-dss"], want: AVAILABLE },
  ];
  for (const c of cases) {
    test(c.name, () => assert.deepEqual(orderHostKeyAlgorithms(c.known, AVAILABLE), c.want));
  }
});

describe("knownKeyTypes", () => {
  const blob = (seed: string, type: string): string => {
    const name = Buffer.from(type);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(name.length);
    return Buffer.concat([len, name, Buffer.from(seed)]).toString("base64");
  };
  const fp = (b64: string): string => `SHA256:${createHash("sha256").update(Buffer.from(b64, "base64")).digest("base64").replace(/=+$/, "")}`;
  const ecdsa = blob("a", "ecdsa-sha2-nistp256");
  const rsa = blob("b", "ssh-rsa");
  const ed = blob("c", "ssh-ed25519");
  const text = [
    `[127.0.0.1]:2222 ecdsa-sha2-nistp256 ${ecdsa}`,
    `other.example ssh-rsa ${rsa}`,
    `@revoked [127.0.0.1]:2222 ssh-ed25519 ${ed}`,
    `*.example,!bad.example ssh-rsa ${rsa}`,
  ].join("\n");
  const cases: Array<{ name: string; host: string; port: number; options: Parameters<typeof knownKeyTypes>[3]; want: string[] }> = [
    { name: "the types of this host's entries ([host]:port)", host: "127.0.0.1", port: 2222, options: {}, want: ["ecdsa-sha2-nistp256"] },
    { name: "another port: nothing", host: "127.0.0.1", port: 22, options: {}, want: [] },
    { name: "wildcard patterns count", host: "www.example", port: 22, options: {}, want: ["ssh-rsa"] },
    { name: "negation excludes", host: "bad.example", port: 22, options: {}, want: [] },
    { name: "pins: the type of the known_hosts key with that fingerprint, whatever its host", host: "10.0.0.1", port: 22, options: { fingerprints: [fp(rsa)] }, want: ["ssh-rsa"] },
    { name: "pins with no matching key: nothing", host: "127.0.0.1", port: 2222, options: { fingerprints: ["SHA256:nope"] }, want: [] },
    { name: "insecure-accept-any: nothing", host: "127.0.0.1", port: 2222, options: { policy: "insecure-accept-any" }, want: [] },
  ];
  for (const c of cases) {
    test(c.name, () => assert.deepEqual(knownKeyTypes(c.host, c.port, text, c.options), c.want));
  }
});
