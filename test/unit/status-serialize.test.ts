import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parse } from "yaml";
import { buildTunnelStatus } from "../../src/status/build.ts";
import { StatusParseError, parseStatusDocs, serializeStatusDocs, serializeWithDocument } from "../../src/status/serialize.ts";
import type { TunnelObservation, TunnelStatusDoc } from "../../src/status/types.ts";
import { prng } from "../helpers/prng.ts";
import { localObservation, observation, remoteObservation, sessionObservation } from "../helpers/status-fixtures.ts";

const now = "2025-03-01T10:00:00.000Z";

function statusDoc(name: string, overrides: Partial<TunnelObservation> = {}): TunnelStatusDoc {
  return buildTunnelStatus(
    observation({
      name,
      manifest: "tunnels/db.yaml",
      session: sessionObservation({ hostKeyFingerprint: "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s", connectedSince: now }),
      local: [localObservation({ failedConnections: 1 })],
      // localHost "yes" is a YAML 1.1 boolean, if unquoted.
      remote: [remoteObservation({ bindAddress: "::1", remotePort: 0, boundPort: 41234, localHost: "yes" })],
      ...overrides,
    }),
    undefined,
    now,
  );
}

describe("serializeStatusDocs", () => {
  const docs = [
    statusDoc("db-bastion"),
    statusDoc("web", { generation: "12345678", errors: ["tunnels/db.yaml:20:7: unknown field \"hots\""] }),
    statusDoc("on"),
  ];
  const text = serializeStatusDocs(docs);

  test("round-trips", () => {
    assert.deepEqual(parseStatusDocs(text), docs);
  });

  test("one document per tunnel, `---` between them, in order", () => {
    assert.equal(text.match(/^---$/gm)?.length, 2);
    assert.ok(!text.startsWith("---"));
    assert.deepEqual(
      [...text.matchAll(/^ {2}name: (.*)$/gm)].map((match) => match[1]),
      ["db-bastion", "web", '"on"'],
    );
  });

  test("is stable: same documents, same bytes", () => {
    assert.equal(serializeStatusDocs(structuredClone(docs)), text);
  });

  test("keys appear in SPEC order", () => {
    const keys = [...(text.split("---\n")[0] ?? "").matchAll(/^\s*(?:- )?([A-Za-z]+):/gm)].map((match) => match[1]);
    assert.deepEqual(keys.slice(0, 12), [
      "apiVersion",
      "kind",
      "metadata",
      "name",
      "manifest",
      "status",
      "observedGeneration",
      "phase",
      "conditions",
      "type",
      "status",
      "reason",
    ]);
    const sessionStart = keys.indexOf("session");
    assert.deepEqual(keys.slice(sessionStart, sessionStart + 7), [
      "session",
      "state",
      "serverVersion",
      "hostKeyFingerprint",
      "connectedSince",
      "reconnects",
      "lastError",
    ]);
    assert.equal(keys.at(-1), "errors");
  });

  const quoted: Array<{ name: string; line: RegExp }> = [
    { name: "condition status True stays a string", line: /^ {6}status: "True"$/m },
    { name: "timestamps are quoted (YAML 1.1 readers would make them dates)", line: /^ {6}lastTransitionTime: "2025-03-01T10:00:00\.000Z"$/m },
    { name: "connectedSince is quoted", line: /^ {4}connectedSince: "2025-03-01T10:00:00\.000Z"$/m },
    { name: "an all-digit generation stays a string", line: /^ {2}observedGeneration: "12345678"$/m },
    { name: "yes/no/on/off stay strings", line: /^ {8}localHost: "yes"$/m },
    { name: "empty strings", line: /^ {4}lastError: ""$/m },
  ];
  for (const { name, line } of quoted) test(name, () => assert.match(text, line));

  test("plain where nothing is ambiguous", () => {
    assert.match(text, /^ {2}observedGeneration: 3f9a1c2e$/m);
    assert.match(text, /^ {2}phase: Ready$/m);
    assert.match(text, /^ {4}serverVersion: SSH-2\.0-OpenSSH_9\.2p1$/m);
  });

  test("YAML 1.1 readers see the same strings", () => {
    for (const document of text.split("---\n")) {
      const value = parse(document, { version: "1.1" }) as TunnelStatusDoc;
      assert.equal(value.status.conditions[0]?.status, "True");
      assert.equal(typeof value.status.conditions[0]?.lastTransitionTime, "string");
      assert.equal(value.status.forwards.remote[0]?.localHost, "yes");
    }
  });

  test("long messages stay on one line", () => {
    const message = `Cannot bind 127.0.0.1:8080: ${"address in use ".repeat(20)}`.trim();
    const doc = statusDoc("long", {
      local: [
        localObservation({
          state: "Failed",
          reason: "PortInUse",
          message,
          activeConnections: 0,
          totalConnections: 0,
          failedConnections: 0,
          bytesIn: 0,
          bytesOut: 0,
        }),
      ],
    });
    const serialized = serializeStatusDocs([doc]);
    assert.ok(serialized.split("\n").some((line) => line.includes(message)));
    assert.deepEqual(parseStatusDocs(serialized), [doc]);
  });

  test("no documents: empty text", () => {
    assert.equal(serializeStatusDocs([]), "");
    assert.deepEqual(parseStatusDocs(""), []);
  });
});

describe("serializeStatusDocs: the direct emitter writes what the yaml package writes", () => {
  // Strings a YAML emitter must think about: indicators, YAML 1.1 and 1.2 look-alikes, spaces
  // at the ends, non-ASCII, and (taking the yaml path) control characters and line breaks.
  const TRICKY = [
    "", "plain", "yes", "No", "on", "OFF", "y", "~", "null", "Null", "true", "12:30", "1_000", "0x1f", "0o17", "1e3", ".5", "-1", "+1", ".inf",
    "2025-03-01", "2025-03-01T10:00:00.000Z", "- item", "-", "? q", ": c", "a: b", "a:b", "#c", "a #b", "a# b", "[x]", "{y}", "*alias", "&anchor",
    "!tag", "%pct", "@at", "`bt", "|", ">", "'q'", '"dq"', "\\back", " lead", "trail ", "two  spaces", "--- doc", "...", "→ unicode …", "ünï",
    "127.0.0.1", "::1", "[::1]:22", "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s", "x".repeat(300), "line\nbreak", "tab\there", "bell\u0007",
    "cr\rlf", "nbsp\u00a0x", "ls\u2028x",
  ];
  const random = prng(Number(process.env.STATUS_SEED ?? 20261124));
  const pick = (): string => TRICKY[Math.floor(random() * TRICKY.length)]!;
  const count = (): number => Math.floor(random() * 1000);
  const docs = Array.from({ length: 300 }, () =>
    buildTunnelStatus(
      observation({
        name: pick(),
        manifest: pick(),
        generation: pick(),
        errors: random() < 0.3 ? [pick(), pick()] : [],
        suspended: random() < 0.2,
        session: sessionObservation({ lastError: pick(), serverVersion: pick(), hostKeyFingerprint: pick(), reconnects: count() }),
        local: Array.from({ length: Math.floor(random() * 3) }, () =>
          localObservation({ bindAddress: pick(), remoteHost: pick(), activeConnections: count(), totalConnections: count(), failedConnections: count(), message: pick() }),
        ),
        remote: Array.from({ length: Math.floor(random() * 3) }, () => remoteObservation({ bindAddress: pick(), localHost: pick(), message: pick() })),
      }),
      undefined,
      pick(),
    ),
  );
  test("300 seeded random documents: same bytes, and they read back", () => {
    docs.forEach((doc, i) => {
      assert.equal(serializeStatusDocs([doc]), serializeWithDocument(doc), `document ${i}`);
      assert.deepEqual(parseStatusDocs(serializeStatusDocs([doc])), [JSON.parse(JSON.stringify(doc))], `document ${i}`);
    });
    assert.equal(serializeStatusDocs(docs), docs.map(serializeWithDocument).join("---\n"));
  });
});

describe("parseStatusDocs", () => {
  const bad: Array<{ name: string; text: string; message: RegExp }> = [
    { name: "broken YAML", text: "status: [", message: /Cannot parse db\.yaml\.status document 1/ },
    { name: "another kind", text: "apiVersion: tunnelctl/v1\nkind: Tunnel\nmetadata: {}\nstatus: {}\n", message: /expected apiVersion tunnelctl\/v1, kind TunnelStatus/ },
    { name: "a scalar", text: "hello\n", message: /document 1/ },
  ];
  for (const { name, text, message } of bad) {
    test(`rejects ${name}`, () => {
      assert.throws(() => parseStatusDocs(text, "db.yaml.status"), (error: unknown) => {
        assert.ok(error instanceof StatusParseError);
        assert.equal(error.name, "StatusParseError");
        assert.match(error.message, message);
        return true;
      });
    });
  }
});
