// ssh2, loaded once for all of tunnelctl, with a buffered source of random bytes for the padding
// of every SSH packet (random-pool.ts says why). Import ssh2's values from here, types from
// "ssh2".
//
// ssh2 takes randomFillSync from the crypto module once, when its modules load. So the pooled
// version is put on the crypto module for exactly that synchronous require, and the original is
// put back before anything else can run. Nothing else in the process ever sees the swap.
// Measured: tunnelctl's user CPU per GiB sent 0.48 → 0.39 s (README "Decisions", bench/RESULTS.md).
//
// If ssh2 was already loaded by someone else (an embedding program that imports it first), that
// copy is used as it is, with Node's own randomFillSync: slower, not less correct.
// randomPool().active tells which happened.
import { createRequire } from "node:module";
import { createPooledRandomFill, type RandomPoolStats } from "./random-pool.ts";

type Ssh2 = typeof import("ssh2");

const require = createRequire(import.meta.url);
const cryptoModule = require("node:crypto") as { randomFillSync: typeof import("node:crypto").randomFillSync };
const pool = createPooledRandomFill(cryptoModule.randomFillSync);
const active = require.cache[require.resolve("ssh2/lib/protocol/crypto.js")] === undefined;

function load(): Ssh2 {
  const original = cryptoModule.randomFillSync;
  cryptoModule.randomFillSync = pool.randomFillSync;
  try {
    return require("ssh2") as Ssh2;
  } finally {
    cryptoModule.randomFillSync = original;
  }
}

const ssh2: Ssh2 = load();
export default ssh2;

/** Whether ssh2 draws its padding from the pool, and how much it has drawn. */
export function randomPool(): RandomPoolStats & { active: boolean } {
  return { active, ...pool.stats() };
}
