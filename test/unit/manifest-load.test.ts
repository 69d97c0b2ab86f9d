import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { loadManifestFile, loadManifestText, type LoadResult } from "../../src/manifest/index.ts";

const homeDir = "/home/op";
const load = (text: string | Uint8Array, file = "/srv/tunnels/team/db.yaml"): LoadResult =>
  loadManifestText(file, text, { homeDir, displayPath: "team/db.yaml" });
const located = (result: LoadResult): string[] => result.errors.map((error) => error.toString());

const VALID = `apiVersion: tunnelctl/v1
kind: Tunnel
metadata:
  name: db
spec:
  host: bastion.example.com
  username: deploy
  auth:
    agent: true
`;

describe("error positions", () => {
  it("gives the exact line:column of every error in one document, in source order", () => {
    const text = [
      "apiVersion: tunnelctl/v1", // 1
      "kind: Tunnel", // 2
      "metadata:", // 3
      "  name: Db", // 4
      "spec:", // 5
      "  host: bastion.example.com", // 6
      "  port: 0", // 7
      "  auth:", // 8
      "    pasword: x", // 9
      "    agent: true", // 10
      "  forwards:", // 11
      "    local:", // 12
      "      - localPort: 70000", // 13
      "        remoteHost: db", // 14
      "        remotePort: 5432", // 15
      "      - {localPort: 1, remoteHost: db, remotePort: 5432, bindAddress: 1.2.3.4.5}", // 16
      "",
    ].join("\n");
    assert.deepEqual(located(load(text)), [
      `team/db.yaml:4:9: metadata.name: must be lowercase letters, digits and '-', starting and ending with a letter or digit (got "Db")`,
      'team/db.yaml:6:3: spec: missing required field "username"',
      "team/db.yaml:7:9: spec.port: must be >= 1 (got 0)",
      'team/db.yaml:9:5: spec.auth: unknown field "pasword"',
      "team/db.yaml:13:20: spec.forwards.local[0].localPort: must be <= 65535 (got 70000)",
      'team/db.yaml:16:71: spec.forwards.local[1].bindAddress: must be an IP address (e.g. 127.0.0.1, 0.0.0.0, ::1) or localhost (got "1.2.3.4.5")',
    ]);
  });

  it("points at the key of an empty value", () => {
    assert.deepEqual(located(load(VALID.replace("  host: bastion.example.com", "  host:"))), [
      "team/db.yaml:6:3: spec.host: must be a string (got null)",
    ]);
  });

  it("points into the anchored node when the error is reached through an alias", () => {
    const text = `${VALID}  forwards:\n    local:\n      - &f {localPort: 0, remoteHost: db, remotePort: 1}\n      - *f\n`;
    assert.deepEqual(located(load(text)), [
      "team/db.yaml:12:24: spec.forwards.local[0].localPort: must be >= 1 (got 0)",
      "team/db.yaml:12:24: spec.forwards.local[1].localPort: must be >= 1 (got 0)",
    ]);
  });

  it("counts columns in characters, not bytes", () => {
    const text = VALID.replace("kind: Tunnel", "kind: Tunnel\n# ünïcödé ✓\n").replace("  name: db", '  name: "é"');
    assert.deepEqual(located(load(text)).map((e) => e.split(": ")[0]), ["team/db.yaml:6:9"]);
  });

  it("reports the first invalid UTF-8 byte with its position", () => {
    const bytes = Buffer.concat([Buffer.from("apiVersion: tunnelctl/v1\nkind: Tünnel"), Buffer.from([0xc3, 0x28]), Buffer.from("\n")]);
    assert.deepEqual(located(load(bytes)), ["team/db.yaml:2:13: invalid UTF-8 (byte 0xC3): manifests must be UTF-8 text"]);
  });

  it("rejects binary content (NUL) with its position, from a string too", () => {
    assert.deepEqual(located(load("a: 1\nb: x\u0000y\n")), ["team/db.yaml:2:5: file contains a NUL byte: binary files are not manifests"]);
  });
});

describe("documents", () => {
  it("loads every document of a multi-document file, each with its own index and errors", () => {
    const result = load(`${VALID}---\n${VALID.replace("name: db", "name: web")}---\n${VALID.replace("name: db", "name: BAD")}`);
    assert.deepEqual(
      result.documents.map((d) => [d.index, d.name, d.tunnel?.name, d.errors.length]),
      [
        [0, "db", "db", 0],
        [1, "web", "web", 0],
        [2, "BAD", undefined, 1],
      ],
    );
    assert.equal(result.documents[1]?.tunnel?.index, 1);
    assert.equal(result.errors[0]?.line, 24);
  });

  it("skips the empty document after a trailing --- and a leading one", () => {
    const result = load(`---\n${VALID}---\n`);
    assert.equal(result.documents.length, 1);
    assert.deepEqual(result.errors, []);
  });

  it("gives zero documents and no error for empty and comment-only files", () => {
    for (const text of ["", "\n\n", "# just a comment\n# and another\n", "---\n", "--- # nothing\n...\n"]) {
      assert.deepEqual(load(text), { documents: [], errors: [] }, JSON.stringify(text));
    }
  });

  it("treats an explicit null document as invalid, not empty", () => {
    assert.deepEqual(located(load("~\n")), ["team/db.yaml:1:1: document: must be a mapping (got null)"]);
  });

  it("keeps the best-effort name of an invalid document", () => {
    const result = load(VALID.replace("username: deploy", "username: 7"));
    assert.equal(result.documents[0]?.name, "db");
    assert.equal(result.documents[0]?.tunnel, undefined);
  });
});

describe("YAML hazards", () => {
  it("refuses an alias bomb without expanding it", () => {
    const lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 10; i++) {
      const prev = String.fromCharCode(96 + i);
      const name = String.fromCharCode(97 + i);
      lines.push(`${name}: &${name} [${Array(10).fill(`*${prev}`).join(",")}]`);
    }
    const started = performance.now();
    const result = load(`${lines.join("\n")}\n`);
    assert.ok(performance.now() - started < 1000, "must not expand 10^10 nodes");
    assert.deepEqual(located(result), [
      "team/db.yaml:2:8: too many alias expansions (limit 100 per anchor): refusing a possible alias bomb",
    ]);
  });

  it("allows ordinary aliases", () => {
    const text = VALID.replace("  host: bastion.example.com", "  host: &h bastion.example.com") +
      "  forwards:\n    local:\n      - {localPort: 1, remoteHost: *h, remotePort: 2}\n";
    const result = load(text);
    assert.deepEqual(result.errors, []);
    assert.equal(result.documents[0]?.tunnel?.spec.forwards.local[0]?.remoteHost, "bastion.example.com");
  });

  it("reports unknown tags (a warning in the library) as errors", () => {
    assert.deepEqual(located(load(VALID.replace("agent: true", "passwordEnv: !env PW"))), [
      "team/db.yaml:9:18: unknown tag !env: custom tags are not supported",
    ]);
  });

  it("reports duplicate keys with the key's name", () => {
    assert.deepEqual(located(load(VALID.replace("  username: deploy", "  username: deploy\n  username: root"))), [
      'team/db.yaml:8:3: duplicate key "username"',
    ]);
  });

  it("treats keys that become the same string as duplicates (1 and \"1\")", () => {
    assert.deepEqual(located(load('metadata:\n  labels:\n    1: a\n    "1": b\n')), ['team/db.yaml:4:5: duplicate key "1"']);
  });

  it("lists at most 100 errors per document and says how many more there are", () => {
    const text = Array.from({ length: 60_000 }, (_, i) => `k${i}: v`).join("\n");
    const started = performance.now();
    const errors = located(load(text));
    assert.ok(performance.now() - started < 5000, "linear, not quadratic, in the number of keys");
    assert.equal(errors.length, 101);
    assert.equal(errors.at(-1), "team/db.yaml:1:1: 59904 more errors in this document are not listed");
  });

  it("loads at most 1000 documents per file", () => {
    const result = load("a: 1\n---\n".repeat(1001));
    assert.equal(result.documents.length, 1000);
    assert.equal(result.errors.at(-1)?.toString(), "team/db.yaml:2000:1: too many documents in one file (more than 1000): the rest are not loaded");
  });

  it("reports tabs used as indentation", () => {
    assert.deepEqual(located(load(VALID.replace("    agent: true", "\tagent: true"))), [
      "team/db.yaml:9:1: Tabs are not allowed as indentation",
    ]);
  });

  it("keeps source excerpts out of messages (they could carry secrets)", () => {
    const result = load("spec:\n  auth: {password: s3cret\n");
    assert.ok(result.errors.length > 0);
    for (const error of result.errors) {
      assert.ok(!error.message.includes("s3cret"), error.message);
      assert.ok(!error.message.includes("\n"), error.message);
    }
  });

  it("reports nesting too deep for the parser's own recursion", () => {
    const depth = 200_000;
    const result = load(`a: ${"[".repeat(depth)}${"]".repeat(depth)}\n`);
    assert.ok(result.errors.some((error) => error.message === "nesting too deep (more than 64 levels)"), located(result).join("\n"));
  });

  it("refuses YAML 1.1 booleans: yes is a string", () => {
    assert.deepEqual(located(load(`${VALID}  suspend: yes\n`)), ['team/db.yaml:10:12: spec.suspend: must be true or false (got "yes")']);
  });
});

describe("normalisation", () => {
  const tunnelOf = (text: string, file = "/srv/tunnels/team/db.yaml") => {
    const result = load(text, file);
    assert.deepEqual(result.errors, []);
    const tunnel = result.documents[0]?.tunnel;
    assert.ok(tunnel);
    return tunnel;
  };

  it("applies every default", () => {
    const tunnel = tunnelOf(`${VALID}  forwards:\n    local:\n      - {localPort: 8080, remoteHost: web, remotePort: 80}\n    remote:\n      - {remotePort: 0, localHost: 127.0.0.1, localPort: 3000}\n`);
    assert.deepEqual(tunnel.labels, {});
    assert.deepEqual(tunnel.spec, {
      host: "bastion.example.com",
      port: 22,
      username: "deploy",
      auth: { agent: true },
      hostKey: { knownHostsFile: "/home/op/.ssh/known_hosts", fingerprints: [], policy: "strict" },
      keepalive: { interval: 15_000, countMax: 3 },
      reconnect: { minDelay: 1000, maxDelay: 60_000 },
      transport: { maxWindow: 16 * 1024 * 1024 },
      suspend: false,
      forwards: {
        local: [{ bindAddress: "127.0.0.1", localPort: 8080, remoteHost: "web", remotePort: 80, connectTimeout: 30_000 }],
        remote: [{ bindAddress: "127.0.0.1", remotePort: 0, localHost: "127.0.0.1", localPort: 3000 }],
      },
    });
  });

  it("turns durations into milliseconds", () => {
    const tunnel = tunnelOf(`${VALID}  keepalive: {interval: 1.5s, countMax: 2}\n  reconnect: {minDelay: 250ms, maxDelay: 2m}\n  forwards:\n    local:\n      - {localPort: 1, remoteHost: h, remotePort: 2, connectTimeout: 5000}\n`);
    assert.deepEqual(tunnel.spec.keepalive, { interval: 1500, countMax: 2 });
    assert.deepEqual(tunnel.spec.reconnect, { minDelay: 250, maxDelay: 120_000 });
    assert.equal(tunnel.spec.forwards.local[0]?.connectTimeout, 5000);
  });

  it("turns sizes into bytes, and refuses a receive window below ssh2's 2 MiB or above 1 GiB", () => {
    assert.equal(tunnelOf(`${VALID}  transport: {maxWindow: 64MiB}\n`).spec.transport?.maxWindow, 64 * 1024 * 1024);
    assert.equal(tunnelOf(`${VALID}  transport: {maxWindow: 2097152}\n`).spec.transport?.maxWindow, 2 * 1024 * 1024);
    assert.equal(tunnelOf(`${VALID}  transport: {maxWindow: 1.5GiB}\n`.replace("1.5GiB", "1GiB")).spec.transport?.maxWindow, 1024 ** 3);
    const small = load(`${VALID}  transport: {maxWindow: 1MiB}\n`, "/srv/t.yaml");
    assert.match(small.errors.map(String).join("\n"), /spec\.transport\.maxWindow: size "1MiB" is out of range: from 2MiB to 1GiB/);
    const typo = load(`${VALID}  transport: {maxWindow: 16MB}\n`, "/srv/t.yaml");
    assert.match(typo.errors.map(String).join("\n"), /maxWindow.*must be a size/);
  });

  it("expands ~ to the home directory and resolves relative paths against the manifest's folder", () => {
    const text = VALID.replace(
      "    agent: true",
      "    privateKeyFile: ~/.ssh/id_ed25519\n    passphraseFile: ../secrets/pass\n    agent: run/agent.sock\n  hostKey:\n    knownHostsFile: \"~\"",
    );
    const tunnel = tunnelOf(text);
    assert.deepEqual(tunnel.spec.auth, {
      privateKeyFile: "/home/op/.ssh/id_ed25519",
      passphraseFile: "/srv/tunnels/secrets/pass",
      agent: "/srv/tunnels/team/run/agent.sock",
    });
    assert.equal(tunnel.spec.hostKey.knownHostsFile, "/home/op");
  });

  it("keeps absolute paths and env names as written", () => {
    const tunnel = tunnelOf(VALID.replace("    agent: true", "    passwordFile: /run/secrets/pw\n    privateKeyFile: /keys/k\n    passphraseEnv: KEY_PASS"));
    assert.deepEqual(tunnel.spec.auth, { passwordFile: "/run/secrets/pw", privateKeyFile: "/keys/k", passphraseEnv: "KEY_PASS" });
  });

  it("resolves the file to an absolute path", () => {
    const tunnel = tunnelOf(VALID, "relative/dir/db.yaml");
    assert.equal(tunnel.file, path.resolve("relative/dir/db.yaml"));
  });

  it("fills positions of the name and each local forward", () => {
    const tunnel = tunnelOf(`${VALID}  forwards:\n    local:\n      - {localPort: 1, remoteHost: h, remotePort: 2}\n      - localPort: 3\n        remoteHost: h\n        remotePort: 4\n`);
    assert.deepEqual(tunnel.positions, {
      name: { line: 4, column: 9 },
      localForwards: [
        { line: 12, column: 9 },
        { line: 13, column: 9 },
      ],
    });
  });

  it("hashes name, labels and spec into an 8-hex generation that ignores formatting and key order", () => {
    const a = tunnelOf(VALID);
    const reordered = tunnelOf(`kind: Tunnel\napiVersion: tunnelctl/v1\nmetadata: {name: db}\nspec: {auth: {agent: true}, username: deploy, host: bastion.example.com, port: 22, keepalive: {interval: 15000}}\n`);
    const changed = tunnelOf(VALID.replace("deploy", "admin"));
    const relabelled = tunnelOf(VALID.replace("  name: db", "  name: db\n  labels: {env: prod}"));
    assert.match(a.generation, /^[0-9a-f]{8}$/);
    assert.equal(reordered.generation, a.generation);
    assert.notEqual(changed.generation, a.generation);
    assert.notEqual(relabelled.generation, a.generation);
  });

  it("accepts a UTF-8 BOM and CRLF line endings without shifting columns", () => {
    const text = `\uFEFF${VALID.replace("name: db", "name: Db")}`.replace(/\n/g, "\r\n");
    assert.deepEqual(located(load(text)).map((e) => e.split(": ")[0]), ["team/db.yaml:4:9"]);
    assert.deepEqual(located(load(Buffer.from(text))).map((e) => e.split(": ")[0]), ["team/db.yaml:4:9"]);
  });
});

describe("loadManifestFile", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "tunnelctl-manifest-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("reads and loads a file", async () => {
    const file = path.join(dir, "db.yaml");
    writeFileSync(file, VALID);
    const result = await loadManifestFile(file, { homeDir, displayPath: "db.yaml" });
    assert.deepEqual(result.errors, []);
    assert.equal(result.documents[0]?.tunnel?.file, file);
  });

  it("refuses a 10 MiB file at 1:1 without parsing it", async () => {
    const file = path.join(dir, "huge.yaml");
    const size = 10 * 1024 * 1024; // generated here: a 10 MiB fixture does not belong in git
    writeFileSync(file, `${VALID}${"# padding\n".repeat(size / 10)}`.slice(0, size));
    const started = performance.now();
    const result = await loadManifestFile(file, { homeDir, displayPath: "huge.yaml" });
    assert.ok(performance.now() - started < 1000);
    assert.deepEqual(located(result), ["huge.yaml:1:1: file is too large: 10 MiB (manifests are limited to 1 MiB)"]);
  });

  it("applies the same cap to text in memory", () => {
    const result = loadManifestText("x.yaml", "a".repeat(2048), { homeDir, maxBytes: 1024 });
    assert.deepEqual(located(result), ["x.yaml:1:1: file is too large: 2 KiB (manifests are limited to 1 KiB)"]);
  });

  it("rejects with the file system error when the file is missing", async () => {
    await assert.rejects(loadManifestFile(path.join(dir, "gone.yaml"), { homeDir }), { code: "ENOENT" });
  });
});

describe("jump hosts", () => {
  const withJump = (jump: string): string =>
    `${VALID}  hostKey: {knownHostsFile: ~/kh, fingerprints: ["SHA256:${"A".repeat(43)}"], policy: accept-new}\n  jump:\n${jump}`;

  it("fills a hop's username, auth and hostKey (its file and policy, not the target's pins) from the tunnel", () => {
    const result = load(withJump("    - host: bastion-a.example\n    - {host: bastion-b.example, port: 2222, username: jump, auth: {privateKeyFile: keys/b}, hostKey: {policy: strict}}\n"));
    assert.deepEqual(result.errors, []);
    assert.deepEqual(result.documents[0]?.tunnel?.spec.jump, [
      { host: "bastion-a.example", port: 22, username: "deploy", auth: { agent: true }, hostKey: { knownHostsFile: "/home/op/kh", fingerprints: [], policy: "accept-new" } },
      {
        host: "bastion-b.example",
        port: 2222,
        username: "jump",
        auth: { privateKeyFile: "/srv/tunnels/team/keys/b" },
        hostKey: { knownHostsFile: "/home/op/.ssh/known_hosts", fingerprints: [], policy: "strict" },
      },
    ]);
  });

  it("leaves spec.jump out when there are no hops (the generation of a direct tunnel does not change)", () => {
    const direct = load(VALID).documents[0]?.tunnel;
    const empty = load(`${VALID}  jump: []\n`).documents[0]?.tunnel;
    assert.equal(direct?.spec.jump, undefined);
    assert.equal(empty?.spec.jump, undefined);
    assert.equal(empty?.generation, direct?.generation);
  });

  it("checks every hop against the schema, with positions", () => {
    const text = `${VALID}  jump:\n    - {host: "user@b", prot: 22}\n    - port: 22\n    - {host: c, auth: {password: x}}\n`;
    assert.deepEqual(located(load(text)), [
      'team/db.yaml:11:14: spec.jump[0].host: must be a host name or IP address, without user@, :port or brackets (use username and port) (got "user@b")',
      'team/db.yaml:11:24: spec.jump[0]: unknown field "prot"',
      'team/db.yaml:12:7: spec.jump[1]: missing required field "host"',
      "team/db.yaml:13:23: spec.jump[2].auth: needs at least one authentication method: privateKeyFile, agent, passwordFile or passwordEnv",
      "team/db.yaml:13:24: spec.jump[2].auth.password: inline secrets are not allowed: use passwordFile or passwordEnv",
    ]);
  });
});

describe("one pass reports everything (issue 16)", () => {
  it("cross-field rules are reported beside schema errors, not after they are fixed", () => {
    const text = `${VALID}  hostname: x\n  reconnect: {minDelay: 10s, maxDelay: 1s}\n`;
    assert.deepEqual(located(load(text)), [
      'team/db.yaml:10:3: spec: unknown field "hostname" (did you mean "host"?)',
      "team/db.yaml:11:25: spec.reconnect.minDelay: must not be greater than maxDelay (got 10s > 1s)",
    ]);
  });

  it("a file that is not a manifest gets one clear error, not a parser dump", () => {
    const readme = "# Title\n\nSome `code`: here\n- a list: {x\n```yaml\nspec: x\n```\n";
    const result = load(readme, "/srv/README.md");
    assert.deepEqual(located(result), [
      "team/db.yaml:1:1: not a tunnelctl manifest: it is not valid YAML (manifests are *.yaml or *.yml files)",
    ]);
    assert.deepEqual(located(load("name: x\n", "/srv/notes.txt")), [
      "team/db.yaml:1:1: not a tunnelctl manifest: no document has apiVersion, kind, metadata or spec (manifests are *.yaml or *.yml files)",
    ]);
    assert.deepEqual(located(load(VALID, "/srv/db.txt")), [], "a manifest under another name still loads");
  });
});
