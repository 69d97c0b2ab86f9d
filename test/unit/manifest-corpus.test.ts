// The fixture corpus: every malformed manifest reports the expected file:line:column and
// message; every valid manifest (and every example under manifests/) loads clean; every
// invalid set of files reports its cross-file errors.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { checkConflicts, loadManifestText, type ManifestError, type Tunnel } from "../../src/manifest/index.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));
const fixtures = path.join(root, "test/fixtures");
const homeDir = "/home/tunnelctl";

interface Expectation {
  line: number;
  column: number;
  text: string;
}

/** `LINE:COL substring` from the file's first-line comment, or from a NAME.expect sidecar. */
function expectationFor(file: string, bytes: Buffer): Expectation {
  const sidecar = file.replace(/\.yaml$/, ".expect");
  let spec: string;
  try {
    spec = readFileSync(sidecar, "utf8").trim();
  } catch {
    const firstLine = bytes.toString("utf8").split("\n")[0] ?? "";
    const match = /^# expect: (.*)$/.exec(firstLine);
    assert.ok(match?.[1], `${path.basename(file)}: first line must be "# expect: LINE:COL message"`);
    spec = match[1];
  }
  const parsed = /^(\d+):(\d+) (.+)$/.exec(spec);
  assert.ok(parsed, `${path.basename(file)}: bad expectation ${JSON.stringify(spec)}`);
  return { line: Number(parsed[1]), column: Number(parsed[2]), text: parsed[3] ?? "" };
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((name) => name.endsWith(".yaml"))
    .sort()
    .map((name) => path.join(dir, name));
}

function describeErrors(errors: readonly ManifestError[]): string {
  return errors.map((error) => `  ${error.toString()}`).join("\n") || "  (no errors)";
}

describe("invalid manifests report position and message", () => {
  const files = yamlFiles(path.join(fixtures, "invalid"));

  it("the corpus has at least 40 cases", () => {
    assert.ok(files.length >= 40, `only ${files.length} fixtures`);
  });

  for (const file of files) {
    const name = path.basename(file);
    it(name, () => {
      const bytes = readFileSync(file);
      const expected = expectationFor(file, bytes);
      const result = loadManifestText(file, bytes, { displayPath: name, homeDir });
      const found = result.errors.find(
        (error) => error.line === expected.line && error.column === expected.column && error.message.includes(expected.text),
      );
      assert.ok(
        found,
        `expected ${name}:${expected.line}:${expected.column}: …${expected.text}… among\n${describeErrors(result.errors)}`,
      );
      assert.equal(found.file, name);
      assert.equal(found.toString(), `${name}:${expected.line}:${expected.column}: ${found.message}`);
    });
  }
});

describe("valid manifests load without errors", () => {
  const files = [...yamlFiles(path.join(fixtures, "valid")), ...yamlFiles(path.join(root, "manifests"))];
  for (const file of files) {
    const name = path.relative(root, file);
    it(name, () => {
      const result = loadManifestText(file, readFileSync(file), { displayPath: name, homeDir });
      assert.deepEqual(result.errors, [], describeErrors(result.errors));
      for (const document of result.documents) assert.ok(document.tunnel, `${name} document ${document.index}`);
    });
  }

  it("counts only non-empty documents", () => {
    const count = (file: string): number =>
      loadManifestText(file, readFileSync(path.join(fixtures, "valid", file)), { homeDir }).documents.length;
    assert.equal(count("multi-document.yaml"), 2);
    assert.equal(count("comments-only.yaml"), 0);
  });
});

describe("invalid sets report cross-file errors", () => {
  const setsDir = path.join(fixtures, "invalid-sets");
  for (const setName of readdirSync(setsDir).sort()) {
    it(setName, () => {
      const dir = path.join(setsDir, setName);
      const relative = (file: string): string => path.relative(dir, file);
      const tunnels: Tunnel[] = [];
      for (const file of yamlFiles(dir)) {
        const result = loadManifestText(file, readFileSync(file), { displayPath: relative(file), homeDir });
        assert.deepEqual(result.errors, [], `${relative(file)} must be valid on its own:\n${describeErrors(result.errors)}`);
        for (const document of result.documents) if (document.tunnel) tunnels.push(document.tunnel);
      }
      const { duplicates, conflicts } = checkConflicts(tunnels, relative);
      const errors = [...duplicates, ...conflicts].map((entry) => entry.error);
      const expectations = readFileSync(path.join(dir, "expect"), "utf8").trim().split("\n");
      for (const line of expectations) {
        const match = /^(\S+):(\d+):(\d+) (.+)$/.exec(line);
        assert.ok(match, `${setName}/expect: bad line ${JSON.stringify(line)}`);
        const [, file, row, column, text] = match;
        const found = errors.find(
          (error) =>
            error.file === file && error.line === Number(row) && error.column === Number(column) && error.message.includes(text ?? ""),
        );
        assert.ok(found, `expected ${line} among\n${describeErrors(errors)}`);
      }
      assert.equal(errors.length, expectations.length, `unexpected extra errors:\n${describeErrors(errors)}`);
    });
  }
});
