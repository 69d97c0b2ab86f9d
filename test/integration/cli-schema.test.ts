// `tunnelctl schema` prints the JSON Schema that validates manifests, unchanged.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { describeRun, REPO_ROOT, runCli } from "../helpers/cli.ts";

describe("schema", () => {
  it("prints schemas/tunnel.schema.json as JSON", async () => {
    const result = await runCli(["schema"]);
    assert.equal(result.code, 0, describeRun(result));
    assert.equal(result.stderr, "");
    const expected: unknown = JSON.parse(readFileSync(path.join(REPO_ROOT, "schemas/tunnel.schema.json"), "utf8"));
    assert.deepEqual(JSON.parse(result.stdout), expected);
  });

  it("takes no arguments (exit 2)", async () => {
    const result = await runCli(["schema", "extra"]);
    assert.equal(result.code, 2, describeRun(result));
    assert.match(result.stderr, /too many arguments/);
  });
});
