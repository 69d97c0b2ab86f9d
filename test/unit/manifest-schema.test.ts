// One case per schema rule: a valid manifest, changed in one place, must give exactly one
// error with exactly this message. The first case is the unchanged manifest: no errors.
import assert from "node:assert/strict";
import net from "node:net";
import { describe, it } from "node:test";
import { stringify } from "yaml";
import { loadManifestText } from "../../src/manifest/index.ts";
import { tunnelSchemaText } from "../../src/manifest/schema.ts";

// Cases deliberately put wrong types anywhere in the document: `any` is the honest type here.
type Doc = Record<string, any>;

function baseDocument(): Doc {
  return {
    apiVersion: "tunnelctl/v1",
    kind: "Tunnel",
    metadata: { name: "db-bastion", labels: { env: "prod" } },
    spec: {
      host: "bastion.example.com",
      username: "deploy",
      auth: { privateKeyFile: "~/.ssh/id_ed25519" },
      forwards: {
        local: [{ localPort: 15432, remoteHost: "db.internal", remotePort: 5432 }],
        remote: [{ remotePort: 9000, localHost: "127.0.0.1", localPort: 3000 }],
      },
    },
  };
}

function messagesFor(edit: (doc: Doc) => void): string[] {
  const doc = baseDocument();
  edit(doc);
  const result = loadManifestText("/m/t.yaml", stringify(doc), { homeDir: "/home/u" });
  return result.errors.map((error) => error.message);
}

const cases: Array<[string, (doc: Doc) => void, string[]]> = [
  ["everything valid: no errors", () => {}, []],
  // top level
  ["apiVersion required", (d) => delete d.apiVersion, ['missing required field "apiVersion"']],
  ["apiVersion const", (d) => (d.apiVersion = "tunnelctl/v2"), ['apiVersion: must be "tunnelctl/v1" (got "tunnelctl/v2")']],
  ["kind const", (d) => (d.kind = "Service"), ['kind: must be "Tunnel" (got "Service")']],
  ["metadata required", (d) => delete d.metadata, ['missing required field "metadata"']],
  ["spec required", (d) => delete d.spec, ['missing required field "spec"']],
  ["no unknown top-level fields", (d) => (d.status = {}), ['unknown field "status"']],
  ["document is a mapping", (d) => Object.keys(d).forEach((k) => delete d[k]), [
    'missing required field "apiVersion"',
    'missing required field "kind"',
    'missing required field "metadata"',
    'missing required field "spec"',
  ]],
  // metadata
  ["name required", (d) => delete d.metadata.name, ['metadata: missing required field "name"']],
  ["name is a string", (d) => (d.metadata.name = 42), ["metadata.name: must be a string (got 42)"]],
  ["name pattern", (d) => (d.metadata.name = "-db"), [
    `metadata.name: must be lowercase letters, digits and '-', starting and ending with a letter or digit (got "-db")`,
  ]],
  ["name max 63", (d) => (d.metadata.name = "a".repeat(64)), [
    `metadata.name: must be at most 63 characters long (got "${"a".repeat(57)}...", 64 characters)`,
  ]],
  ["name of 63 is fine", (d) => (d.metadata.name = "a".repeat(63)), []],
  ["labels is a mapping", (d) => (d.metadata.labels = ["env=prod"]), ["metadata.labels: must be a mapping (got a list)"]],
  ["label values are strings", (d) => (d.metadata.labels.tier = 1), ["metadata.labels.tier: must be a string (got 1)"]],
  ["label value syntax", (d) => (d.metadata.labels.env = "a,b"), [
    `metadata.labels.env: must be letters, digits, '-', '_' or '.', starting and ending with a letter or digit (got "a,b")`,
  ]],
  ["label key syntax", (d) => (d.metadata.labels["a=b"] = "x"), [
    `metadata.labels: invalid key "a=b": must be letters, digits, '-', '_' or '.', starting and ending with a letter or digit, with an optional 'prefix/'`,
  ]],
  ["label key with prefix is fine", (d) => (d.metadata.labels["example.com/team"] = "a_b.c-d"), []],
  ["no unknown metadata fields", (d) => (d.metadata.namespace = "x"), ['metadata: unknown field "namespace"']],
  // spec
  ["spec is a mapping", (d) => (d.spec = "x"), ['spec: must be a mapping (got "x")']],
  ["host required", (d) => delete d.spec.host, ['spec: missing required field "host"']],
  ["host without user@", (d) => (d.spec.host = "me@h"), [
    'spec.host: must be a host name or IP address, without user@, :port or brackets (use username and port) (got "me@h")',
  ]],
  ["host IPv6 is fine", (d) => (d.spec.host = "2001:db8::1"), []],
  ["port is an integer", (d) => (d.spec.port = 22.5), ["spec.port: must be an integer (got 22.5)"]],
  ["port >= 1", (d) => (d.spec.port = 0), ["spec.port: must be >= 1 (got 0)"]],
  ["port <= 65535", (d) => (d.spec.port = 65536), ["spec.port: must be <= 65535 (got 65536)"]],
  ["username required", (d) => delete d.spec.username, ['spec: missing required field "username"']],
  ["username not empty", (d) => (d.spec.username = ""), ['spec.username: must not be empty (got "")']],
  ["username without edge whitespace", (d) => (d.spec.username = "deploy "), [
    'spec.username: must not start or end with whitespace (got "deploy ")',
  ]],
  ["suspend is a boolean", (d) => (d.spec.suspend = "no"), ['spec.suspend: must be true or false (got "no")']],
  ["no unknown spec fields", (d) => (d.spec.proxyJump = "x"), ['spec: unknown field "proxyJump"']],
  // auth
  ["auth required", (d) => delete d.spec.auth, ['spec: missing required field "auth"']],
  ["auth needs a method", (d) => (d.spec.auth = {}), [
    "spec.auth: needs at least one authentication method: privateKeyFile, agent, passwordFile or passwordEnv",
  ]],
  ["agent: false is not a method", (d) => (d.spec.auth = { agent: false }), [
    "spec.auth: needs at least one authentication method: privateKeyFile, agent, passwordFile or passwordEnv",
  ]],
  ["agent: true is a method", (d) => (d.spec.auth = { agent: true }), []],
  ["agent socket path is a method", (d) => (d.spec.auth = { agent: "/run/agent.sock" }), []],
  ["agent type (no value echoed)", (d) => (d.spec.auth.agent = 1), ["spec.auth.agent: must be true, false or the path of an agent socket"]],
  ["passwordFile is a method", (d) => (d.spec.auth = { passwordFile: "pw" }), []],
  ["passwordEnv is a method", (d) => (d.spec.auth = { passwordEnv: "PW" }), []],
  ["no inline password", (d) => (d.spec.auth.password = "hunter2"), [
    "spec.auth.password: inline secrets are not allowed: use passwordFile or passwordEnv",
  ]],
  ["no inline passphrase", (d) => (d.spec.auth.passphrase = "hunter2"), [
    "spec.auth.passphrase: inline secrets are not allowed: use passphraseFile or passphraseEnv",
  ]],
  ["no inline private key", (d) => (d.spec.auth.privateKey = "-----BEGIN"), [
    "spec.auth.privateKey: inline secrets are not allowed: use privateKeyFile",
  ]],
  ["passphraseFile xor passphraseEnv", (d) => Object.assign(d.spec.auth, { passphraseFile: "p", passphraseEnv: "P" }), [
    "spec.auth: give passphraseFile or passphraseEnv, not both",
  ]],
  ["passwordFile xor passwordEnv", (d) => Object.assign(d.spec.auth, { passwordFile: "p", passwordEnv: "P" }), [
    "spec.auth: give passwordFile or passwordEnv, not both",
  ]],
  ["passphrase needs a private key", (d) => (d.spec.auth = { agent: true, passphraseFile: "p" }), [
    'spec.auth: "passphraseFile" needs "privateKeyFile"',
  ]],
  ["env var name syntax (no value echoed)", (d) => (d.spec.auth = { passwordEnv: "MY-PW" }), [
    "spec.auth.passwordEnv: must be an environment variable name (letters, digits and '_', not starting with a digit)",
  ]],
  ["paths are not empty", (d) => (d.spec.auth.privateKeyFile = ""), ["spec.auth.privateKeyFile: must not be empty"]],
  ["no ~user paths", (d) => (d.spec.auth.privateKeyFile = "~bob/key"), [
    "spec.auth.privateKeyFile: ~user is not supported: use ~/..., an absolute path or a path relative to the manifest",
  ]],
  ["no unknown auth fields", (d) => (d.spec.auth.keyFile = "k"), ['spec.auth: unknown field "keyFile" (did you mean "privateKeyFile"?)']],
  ["a name from ssh_config gets the field it means", (d) => ((d.spec.hostname = d.spec.host), delete d.spec.host), ['spec: missing required field "host"', 'spec: unknown field "hostname" (did you mean "host"?)']],
  ["a near-miss kind is named", (d) => (d.kind = "Tunel"), ['kind: must be "Tunnel" (got "Tunel"; did you mean "Tunnel"?)']],
  ["a near-miss apiVersion key is named", (d) => ((d.apiversion = d.apiVersion), delete d.apiVersion), ['missing required field "apiVersion"', 'unknown field "apiversion" (did you mean "apiVersion"?)']],
  // hostKey
  ["hostKey is a mapping", (d) => (d.spec.hostKey = "strict"), ['spec.hostKey: must be a mapping (got "strict")']],
  ["policy enum", (d) => (d.spec.hostKey = { policy: "yolo" }), [
    'spec.hostKey.policy: must be one of "strict", "accept-new", "insecure-accept-any" (got "yolo")',
  ]],
  ["fingerprints are SHA256", (d) => (d.spec.hostKey = { fingerprints: ["SHA256:short"] }), [
    'spec.hostKey.fingerprints[0]: must be a SHA256 fingerprint as printed by ssh-keygen -l: "SHA256:" and 43 base64 characters (got "SHA256:short")',
  ]],
  ["fingerprints are unique", (d) => (d.spec.hostKey = { fingerprints: [`SHA256:${"A".repeat(43)}`, `SHA256:${"A".repeat(43)}`] }), [
    "spec.hostKey.fingerprints: must not repeat an item (items 0 and 1 are the same)",
  ]],
  ["knownHostsFile is a string", (d) => (d.spec.hostKey = { knownHostsFile: true }), [
    "spec.hostKey.knownHostsFile: must be a string (got true)",
  ]],
  ["no unknown hostKey fields", (d) => (d.spec.hostKey = { checkHostIP: true }), ['spec.hostKey: unknown field "checkHostIP"']],
  // keepalive, reconnect, durations
  ["duration string syntax", (d) => (d.spec.keepalive = { interval: "15 s" }), [
    'spec.keepalive.interval: must be a duration: milliseconds as a number, or a number with a unit ms, s, m or h (e.g. "500ms", "30s", "2m") (got "15 s")',
  ]],
  ["duration type", (d) => (d.spec.keepalive = { interval: true }), [
    'spec.keepalive.interval: must be a duration: milliseconds as a number, or a string such as "30s" (got true)',
  ]],
  ["duration >= 0", (d) => (d.spec.reconnect = { minDelay: -1 }), ["spec.reconnect.minDelay: must be >= 0 (got -1)"]],
  ["duration <= 2^31-1 as a number", (d) => (d.spec.reconnect = { maxDelay: 2 ** 31 }), [
    "spec.reconnect.maxDelay: must be <= 2147483647 (got 2147483648)",
  ]],
  ["duration <= 2^31-1 as a string", (d) => (d.spec.reconnect = { maxDelay: "600h" }), [
    'spec.reconnect.maxDelay: duration "600h" is too long: at most 2147483647ms (about 24.8 days)',
  ]],
  ["countMax >= 1", (d) => (d.spec.keepalive = { countMax: 0 }), ["spec.keepalive.countMax: must be >= 1 (got 0)"]],
  ["countMax is an integer", (d) => (d.spec.keepalive = { countMax: "3" }), ['spec.keepalive.countMax: must be an integer (got "3")']],
  ["no unknown keepalive fields", (d) => (d.spec.keepalive = { timeout: 1 }), ['spec.keepalive: unknown field "timeout"']],
  ["minDelay <= maxDelay", (d) => (d.spec.reconnect = { minDelay: "2m", maxDelay: 60000 }), [
    "spec.reconnect.minDelay: must not be greater than maxDelay (got 2m > 60000ms)",
  ]],
  ["no unknown reconnect fields", (d) => (d.spec.reconnect = { factor: 2 }), ['spec.reconnect: unknown field "factor"']],
  // forwards
  ["forwards is a mapping", (d) => (d.spec.forwards = []), ["spec.forwards: must be a mapping (got a list)"]],
  ["no unknown forwards fields", (d) => (d.spec.forwards.socks = []), ['spec.forwards: unknown field "socks"']],
  ["local is a list", (d) => (d.spec.forwards.local = {}), ["spec.forwards.local: must be a list (got a mapping)"]],
  ["local item is a mapping", (d) => (d.spec.forwards.local = [8080]), ["spec.forwards.local[0]: must be a mapping (got 8080)"]],
  ["local localPort required", (d) => delete d.spec.forwards.local[0].localPort, [
    'spec.forwards.local[0]: missing required field "localPort"',
  ]],
  ["local remoteHost required", (d) => delete d.spec.forwards.local[0].remoteHost, [
    'spec.forwards.local[0]: missing required field "remoteHost"',
  ]],
  ["local remotePort required", (d) => delete d.spec.forwards.local[0].remotePort, [
    'spec.forwards.local[0]: missing required field "remotePort"',
  ]],
  ["local localPort >= 1", (d) => (d.spec.forwards.local[0].localPort = 0), ["spec.forwards.local[0].localPort: must be >= 1 (got 0)"]],
  ["local localPort <= 65535", (d) => (d.spec.forwards.local[0].localPort = 70000), [
    "spec.forwards.local[0].localPort: must be <= 65535 (got 70000)",
  ]],
  ["local remotePort >= 1", (d) => (d.spec.forwards.local[0].remotePort = 0), ["spec.forwards.local[0].remotePort: must be >= 1 (got 0)"]],
  ["local bindAddress is an IP or localhost", (d) => (d.spec.forwards.local[0].bindAddress = "db.local"), [
    'spec.forwards.local[0].bindAddress: must be an IP address (e.g. 127.0.0.1, 0.0.0.0, ::1) or localhost (got "db.local")',
  ]],
  ["local remoteHost not empty", (d) => (d.spec.forwards.local[0].remoteHost = ""), [
    'spec.forwards.local[0].remoteHost: must not be empty (got "")',
  ]],
  ["local remoteHost without whitespace", (d) => (d.spec.forwards.local[0].remoteHost = "db internal"), [
    'spec.forwards.local[0].remoteHost: must be a host name or address without whitespace (got "db internal")',
  ]],
  ["local connectTimeout is a duration", (d) => (d.spec.forwards.local[0].connectTimeout = "soon"), [
    'spec.forwards.local[0].connectTimeout: must be a duration: milliseconds as a number, or a number with a unit ms, s, m or h (e.g. "500ms", "30s", "2m") (got "soon")',
  ]],
  ["no unknown local fields, with a suggestion", (d) => (d.spec.forwards.local[0].localport = 1), [
    'spec.forwards.local[0]: unknown field "localport" (did you mean "localPort"?)',
  ]],
  ["local identities are unique", (d) => d.spec.forwards.local.push({ ...d.spec.forwards.local[0], remotePort: 5433 }), [
    "spec.forwards.local[1]: 127.0.0.1:15432 repeats spec.forwards.local[0] (127.0.0.1:15432)",
  ]],
  ["local binds must not overlap", (d) => d.spec.forwards.local.push({ ...d.spec.forwards.local[0], bindAddress: "::" }), [
    "spec.forwards.local[1]: [::]:15432 overlaps spec.forwards.local[0] (127.0.0.1:15432)",
  ]],
  ["remote is a list", (d) => (d.spec.forwards.remote = "9000:localhost:3000"), [
    'spec.forwards.remote: must be a list (got "9000:localhost:3000")',
  ]],
  ["remote remotePort required", (d) => delete d.spec.forwards.remote[0].remotePort, [
    'spec.forwards.remote[0]: missing required field "remotePort"',
  ]],
  ["remote localHost required", (d) => delete d.spec.forwards.remote[0].localHost, [
    'spec.forwards.remote[0]: missing required field "localHost"',
  ]],
  ["remote localPort required", (d) => delete d.spec.forwards.remote[0].localPort, [
    'spec.forwards.remote[0]: missing required field "localPort"',
  ]],
  ["remote remotePort 0 is fine", (d) => (d.spec.forwards.remote[0].remotePort = 0), []],
  ["remote remotePort >= 0", (d) => (d.spec.forwards.remote[0].remotePort = -1), ["spec.forwards.remote[0].remotePort: must be >= 0 (got -1)"]],
  ["remote remotePort <= 65535", (d) => (d.spec.forwards.remote[0].remotePort = 65536), [
    "spec.forwards.remote[0].remotePort: must be <= 65535 (got 65536)",
  ]],
  ["remote localPort >= 1", (d) => (d.spec.forwards.remote[0].localPort = 0), ["spec.forwards.remote[0].localPort: must be >= 1 (got 0)"]],
  ["remote bindAddress without whitespace", (d) => (d.spec.forwards.remote[0].bindAddress = "0.0.0.0 "), [
    'spec.forwards.remote[0].bindAddress: must be a host name or address without whitespace (got "0.0.0.0 ")',
  ]],
  ["no unknown remote fields", (d) => (d.spec.forwards.remote[0].gatewayPorts = true), [
    'spec.forwards.remote[0]: unknown field "gatewayPorts"',
  ]],
  ["remote identities are unique", (d) => d.spec.forwards.remote.push({ ...d.spec.forwards.remote[0], localPort: 3001 }), [
    "spec.forwards.remote[1]: 127.0.0.1 port 9000 repeats spec.forwards.remote[0]",
  ]],
];

describe("schema rules", () => {
  for (const [name, edit, expected] of cases) {
    it(name, () => assert.deepEqual(messagesFor(edit), expected));
  }
});

describe("schema file", () => {
  const schema = JSON.parse(tunnelSchemaText) as Record<string, unknown>;

  it("is JSON Schema 2020-12 with an $id and a title", () => {
    assert.equal(schema.$schema, "https://json-schema.org/draft/2020-12/schema");
    assert.equal(typeof schema.$id, "string");
    assert.equal(typeof schema.title, "string");
  });

  it("closes every object with additionalProperties: false", () => {
    const open: string[] = [];
    const walk = (node: unknown, where: string): void => {
      if (typeof node !== "object" || node === null) return;
      const record = node as Record<string, unknown>;
      // An `if` is a predicate ("is it a mapping with localPath?"), not a shape to close.
      if (record.type === "object" && record.additionalProperties === undefined && !where.endsWith("/if")) open.push(where);
      for (const [key, value] of Object.entries(record)) walk(value, `${where}/${key}`);
    };
    walk(schema, "#");
    // labels is a free-form map of strings (its values are constrained instead).
    assert.deepEqual(open, []);
  });

  it("local bindAddress pattern accepts exactly what net.isIP accepts (plus localhost)", () => {
    const defs = schema.$defs as Record<string, { properties: Record<string, { pattern: string }> }>;
    const pattern = new RegExp(defs.localForward?.properties.bindAddress?.pattern ?? "", "u");
    const samples = [
      "127.0.0.1", "0.0.0.0", "255.255.255.255", "10.1.2.3", "256.0.0.1", "1.2.3", "01.2.3.4", "1.2.3.4.5", "1.2.3.04",
      "::", "::1", "fe80::1", "2001:db8::ff00:42:8329", "2001:0db8:0000:0000:0000:ff00:0042:8329", "::ffff:127.0.0.1",
      "1::", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", ":::", "1::2::3", "12345::",
      "::ffff:0:127.0.0.1", "64:ff9b::192.0.2.33", "g::1", "", " 127.0.0.1",
    ];
    for (const sample of samples) {
      assert.equal(pattern.test(sample), net.isIP(sample) !== 0, `${JSON.stringify(sample)}`);
    }
    assert.ok(pattern.test("localhost"));
    // Zone ids are valid for net.isIP but not supported as bind addresses.
    assert.ok(!pattern.test("fe80::1%eth0"));
  });
});
