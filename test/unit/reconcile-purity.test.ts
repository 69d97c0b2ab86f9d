// src/reconcile is the pure core (STYLE.md): it must not reach for I/O, a clock or randomness.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";

const reconcileDir = new URL("../../src/reconcile/", import.meta.url);
const forbidden: Array<{ what: string; pattern: RegExp }> = [
  { what: "a node: import", pattern: /from\s+["']node:/ },
  { what: "an import of fs/net/child_process", pattern: /from\s+["'](fs|net|child_process|os|dns|tls)["']/ },
  { what: "a dynamic import", pattern: /\bimport\(/ },
  { what: "the clock", pattern: /\bDate\.now\b|new Date\(|performance\.now/ },
  { what: "randomness", pattern: /Math\.random|crypto\./ },
  { what: "timers", pattern: /\bset(Timeout|Interval|Immediate)\(/ },
  { what: "process", pattern: /\bprocess\./ },
];

for (const file of readdirSync(reconcileDir).filter((name) => name.endsWith(".ts"))) {
  test(`src/reconcile/${file} is pure`, () => {
    // Comments may mention what the code must not do; only code counts.
    const source = readFileSync(new URL(file, reconcileDir), "utf8")
      .replace(/\/\*[\s\S]*?\*\//g, "")
      .replace(/^\s*\/\/.*$/gm, "")
      .replace(/\s\/\/ .*$/gm, "");
    for (const { what, pattern } of forbidden) {
      assert.doesNotMatch(source, pattern, `${file} uses ${what}`);
    }
  });
}
