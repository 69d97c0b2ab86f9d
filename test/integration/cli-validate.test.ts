// `tunnelctl validate`, run as a real process: every malformed manifest of the corpus is reported
// at its expected file:line:column, every invalid set with its cross-file errors, valid
// manifests pass; missing paths and usage errors give the documented exit codes.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { describeRun, REPO_ROOT, runCli } from "../helpers/cli.ts";

const fixtures = path.join(REPO_ROOT, "test/fixtures");
// The corpus has ~80 files; a process each, a few at a time.
const concurrency = 4;

/** `LINE:COL substring` from the file's first-line comment or its NAME.expect sidecar. */
function expectationFor(file: string): { position: string; text: string } {
  let spec: string;
  try {
    spec = readFileSync(file.replace(/\.yaml$/, ".expect"), "utf8").trim();
  } catch {
    const firstLine = readFileSync(file, "utf8").split("\n")[0] ?? "";
    spec = /^# expect: (.*)$/.exec(firstLine)?.[1] ?? "";
  }
  const parsed = /^(\d+:\d+) (.+)$/.exec(spec);
  assert.ok(parsed?.[1] && parsed[2], `${file}: no expectation`);
  return { position: parsed[1], text: parsed[2] };
}

const yamlFilesIn = (dir: string): string[] =>
  readdirSync(dir)
    .filter((name) => name.endsWith(".yaml"))
    .sort()
    .map((name) => path.join(dir, name));

describe("validate: every malformed manifest of the corpus", () => {
  const files = yamlFilesIn(path.join(fixtures, "invalid"));
  const shownFiles = files.map((file) => path.relative(REPO_ROOT, file));
  // One process for the whole corpus (a process per file costs a Node start-up each); every
  // file's expected error must still be there, at its own path and position.
  let result: Awaited<ReturnType<typeof runCli>>;
  before(async () => {
    result = await runCli(["validate", ...shownFiles]);
  });

  it("has a corpus to check", () => assert.ok(files.length >= 40, `only ${files.length} fixtures`));
  it("exits 1 and counts every file", () => {
    assert.equal(result.code, 1, describeRun(result));
    assert.match(result.stderr, new RegExp(`^\\d+ errors?; ${files.length} files checked\n$`));
  });

  files.forEach((file, i) => {
    const shown = shownFiles[i]!;
    it(path.basename(file), () => {
      const expected = expectationFor(file);
      const prefix = `${shown}:${expected.position}: `;
      const line = result.stdout.split("\n").find((candidate) => candidate.startsWith(prefix) && candidate.includes(expected.text));
      assert.ok(line, `expected a line "${prefix}…${expected.text}…"\n${describeRun(result)}`);
    });
  });
});

describe("validate: invalid sets report their cross-file errors", { concurrency }, () => {
  const setsDir = path.join(fixtures, "invalid-sets");
  for (const setName of readdirSync(setsDir).sort()) {
    it(setName, async () => {
      const dir = path.join(setsDir, setName);
      // From inside the set, so that the printed paths are the ones in `expect`.
      const result = await runCli(["validate", "."], { cwd: dir });
      assert.equal(result.code, 1, describeRun(result));
      const printed = result.stdout.trim().split("\n");
      const expectations = readFileSync(path.join(dir, "expect"), "utf8").trim().split("\n");
      for (const expectation of expectations) {
        const match = /^(\S+:\d+:\d+) (.+)$/.exec(expectation);
        assert.ok(match?.[1] && match[2], `${setName}/expect: bad line ${expectation}`);
        const [, where, text] = match;
        assert.ok(
          printed.some((line) => line.startsWith(`${where}: `) && line.includes(text)),
          `expected "${where}: …${text}…"\n${describeRun(result)}`,
        );
      }
      assert.equal(printed.length, expectations.length, describeRun(result));
    });
  }
});

describe("validate: valid manifests", { concurrency }, () => {
  const expectedTunnels: Record<string, number> = { "comments-only.yaml": 0, "multi-document.yaml": 2 };
  for (const file of yamlFilesIn(path.join(fixtures, "valid"))) {
    const name = path.basename(file);
    it(name, async () => {
      const result = await runCli(["validate", path.relative(REPO_ROOT, file)]);
      assert.equal(result.code, 0, describeRun(result));
      const tunnels = expectedTunnels[name] ?? 1;
      assert.equal(result.stdout, `${tunnels} tunnel${tunnels === 1 ? "" : "s"} in 1 file OK\n`);
      assert.equal(result.stderr, "");
    });
  }

  it("the example manifests, as a directory", async () => {
    const result = await runCli(["validate", "manifests"]);
    assert.equal(result.code, 0, describeRun(result));
    assert.match(result.stdout, /^\d+ tunnels? in \d+ files? OK\n$/);
  });
});

describe("validate: directories, several paths, missing paths", () => {
  let dir: string;
  const good = (name: string, port: number): string => `apiVersion: tunnelctl/v1
kind: Tunnel
metadata: {name: ${name}}
spec:
  host: bastion.example.com
  username: deploy
  auth: {agent: true}
  forwards:
    local:
      - {localPort: ${port}, remoteHost: db, remotePort: 5432}
`;

  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), "tunnelctl-validate-"));
    mkdirSync(path.join(dir, "tree/sub/deeper"), { recursive: true });
    mkdirSync(path.join(dir, "tree/.hidden"));
    writeFileSync(path.join(dir, "tree/a.yaml"), good("a", 1001));
    writeFileSync(path.join(dir, "tree/sub/deeper/b.yml"), good("b", 1002));
    writeFileSync(path.join(dir, "tree/notes.txt"), "not a manifest: ignored");
    // Names and folders starting with "." are not manifests (editor backups, ConfigMap ..data).
    writeFileSync(path.join(dir, "tree/.a.yaml.swp.yaml"), "{{{ broken");
    writeFileSync(path.join(dir, "tree/.hidden/broken.yaml"), "{{{ broken");
    writeFileSync(path.join(dir, "clash.yaml"), good("c", 1001));
    writeFileSync(path.join(dir, "any-name.conf"), good("d", 1004));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("searches a directory recursively for *.yaml and *.yml, skipping dot names", async () => {
    const result = await runCli(["validate", "tree"], { cwd: dir });
    assert.equal(result.code, 0, describeRun(result));
    assert.equal(result.stdout, "2 tunnels in 2 files OK\n");
  });

  it("takes a file given by name whatever its extension", async () => {
    const result = await runCli(["validate", "any-name.conf"], { cwd: dir });
    assert.equal(result.code, 0, describeRun(result));
    assert.equal(result.stdout, "1 tunnel in 1 file OK\n");
  });

  it("checks conflicts across every path given, with paths relative to the cwd", async () => {
    const result = await runCli(["validate", "tree", "clash.yaml"], { cwd: dir });
    assert.equal(result.code, 1, describeRun(result));
    assert.match(result.stdout, /^tree\/a\.yaml:10:9: spec\.forwards\.local\[0\]: 127\.0\.0\.1:1001 conflicts with 127\.0\.0\.1:1001 of tunnel "c" \(clash\.yaml:10:9\), which keeps it\n$/);
  });

  it("an empty directory is fine, and says so", async () => {
    mkdirSync(path.join(dir, "empty"));
    const empty = await runCli(["validate", "empty"], { cwd: dir });
    assert.equal(empty.code, 0, describeRun(empty));
    assert.equal(empty.stdout, "0 tunnels in 0 files OK (no *.yaml or *.yml files found)\n");
  });

  it("a path that does not exist is an error, and the others are still checked", async () => {
    const result = await runCli(["validate", "no-such.yaml", "tree"], { cwd: dir });
    assert.equal(result.code, 1, describeRun(result));
    assert.equal(result.stdout, "no-such.yaml: no such file or directory\n");
    assert.equal(result.stderr, "1 error; 2 files checked\n");
  });
});

describe("validate: usage", () => {
  it("no path is a usage error (exit 2)", async () => {
    const result = await runCli(["validate"]);
    assert.equal(result.code, 2, describeRun(result));
    assert.match(result.stderr, /missing required argument 'path'/);
  });

  it("an unknown option is a usage error (exit 2)", async () => {
    const result = await runCli(["validate", "--strict", "manifests"]);
    assert.equal(result.code, 2, describeRun(result));
    assert.match(result.stderr, /unknown option '--strict'/);
    assert.equal(result.stdout, "");
  });

  it("an unknown command is a usage error (exit 2)", async () => {
    const result = await runCli(["valdate", "manifests"]);
    assert.equal(result.code, 2, describeRun(result));
    assert.match(result.stderr, /unknown command 'valdate'/);
    assert.match(result.stderr, /Did you mean validate\?/);
  });

  it("no command at all prints the usage and exits 2", async () => {
    const result = await runCli([]);
    assert.equal(result.code, 2, describeRun(result));
    assert.match(result.stderr, /Usage: tunnelctl/);
  });

  for (const args of [["--help"], ["validate", "--help"], ["run", "--help"], ["get", "--help"], ["schema", "--help"], ["demo", "--help"], ["help", "validate"]]) {
    it(`${args.join(" ")} prints help and exits 0`, async () => {
      const result = await runCli(args);
      assert.equal(result.code, 0, describeRun(result));
      assert.match(result.stdout, /^Usage: tunnelctl/);
      assert.equal(result.stderr, "");
    });
  }

  it("--version prints the package version", async () => {
    const result = await runCli(["--version"]);
    assert.equal(result.code, 0, describeRun(result));
    const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { version: string };
    assert.equal(result.stdout, `${pkg.version}\n`);
  });
});
