// The buffered randomFillSync that ssh2 pads its packets from: every byte the wrapped generator
// gives is handed out at most once and in order, the block is zeroed as it is used, and anything
// but a small (buffer, offset, size) request goes to the wrapped generator untouched.
import assert from "node:assert/strict";
import { randomFillSync } from "node:crypto";
import { describe, it } from "node:test";
import { MAX_POOLED, createPooledRandomFill } from "../../src/ssh/random-pool.ts";
import { prng } from "../helpers/prng.ts";

/** A stand-in generator that numbers its bytes and keeps a copy of every whole block it filled. */
function countingFill() {
  let counter = 0;
  const blocks: Buffer[] = [];
  const live: Uint8Array[] = [];
  const calls: unknown[][] = [];
  const fill = ((buf: Uint8Array, offset?: number, size?: number) => {
    calls.push([buf, offset, size]);
    const start = offset ?? 0;
    const end = size === undefined ? buf.length : start + size;
    for (let i = start; i < end; i++) buf[i] = counter++ % 256;
    if (offset === undefined) {
      blocks.push(Buffer.from(buf));
      live.push(buf);
    }
    return buf;
  }) as typeof randomFillSync;
  return { fill, blocks, live, calls };
}

describe("createPooledRandomFill", () => {
  it("hands out the generator's bytes in order, each at most once, into the requested range", () => {
    const gen = countingFill();
    const pool = createPooledRandomFill(gen.fill);
    const next = prng(7);
    const requests: Buffer[] = [];
    for (let i = 0; i < 2_000; i++) {
      const size = Math.floor(next() * (MAX_POOLED + 1));
      const offset = Math.floor(next() * 8);
      const buf = Buffer.alloc(offset + size + 8, 0xee);
      assert.equal(pool.randomFillSync(buf, offset, size), buf);
      assert.ok(buf.subarray(0, offset).every((b) => b === 0xee), "bytes before the range untouched");
      assert.ok(buf.subarray(offset + size).every((b) => b === 0xee), "bytes after the range untouched");
      requests.push(Buffer.from(buf.subarray(offset, offset + size)));
    }
    // Each request is the next stretch of the current block; one that does not fit opens the
    // next block (the old block's tail is dropped, never served later).
    let block = -1;
    let at = Infinity;
    for (const bytes of requests) {
      if (at + bytes.length > gen.blocks[0]!.length) {
        block++;
        at = 0;
      }
      assert.deepEqual(bytes, gen.blocks[block]!.subarray(at, at + bytes.length));
      at += bytes.length;
    }
    assert.equal(block, gen.blocks.length - 1, "every block was used");
    assert.equal(pool.stats().refills, gen.blocks.length);
    assert.equal(pool.stats().pooled, 2_000);
    assert.ok(gen.calls.every(([, o, s]) => o === undefined && s === undefined), "only whole blocks were asked for");
  });

  it("zeroes the block behind what it has handed out", () => {
    const gen = countingFill();
    const pool = createPooledRandomFill(gen.fill);
    pool.randomFillSync(Buffer.alloc(100), 0, 100);
    const block = gen.live[0]!;
    assert.ok(block.subarray(0, 100).every((b) => b === 0), "used bytes are zero in the block");
    assert.ok(block.subarray(100, 200).some((b) => b !== 0), "unused bytes are still there");
  });

  const bypass: Array<{ name: string; call: (f: typeof randomFillSync) => unknown; args: unknown[] }> = [
    { name: "a request larger than MAX_POOLED", call: (f) => f(Buffer.alloc(1000), 0, MAX_POOLED + 1), args: [0, MAX_POOLED + 1] },
    { name: "a whole buffer (no offset, no size)", call: (f) => f(Buffer.alloc(16)), args: [undefined, undefined] },
    { name: "an offset without a size", call: (f) => f(Buffer.alloc(16), 4), args: [4, undefined] },
    { name: "a DataView", call: (f) => f(new DataView(new ArrayBuffer(16)), 0, 16), args: [0, 16] },
    { name: "an ArrayBuffer", call: (f) => f(new ArrayBuffer(16) as unknown as DataView, 0, 16), args: [0, 16] },
    { name: "a range past the end", call: (f) => f(Buffer.alloc(16), 10, 10), args: [10, 10] },
    { name: "a negative offset", call: (f) => f(Buffer.alloc(16), -1, 4), args: [-1, 4] },
    { name: "a fractional size", call: (f) => f(Buffer.alloc(16), 0, 1.5), args: [0, 1.5] },
  ];
  for (const { name, call, args } of bypass) {
    it(`passes ${name} to the generator as it is`, () => {
      const gen = countingFill();
      const pool = createPooledRandomFill(gen.fill);
      call(pool.randomFillSync);
      assert.equal(gen.calls.length, 1);
      assert.deepEqual(gen.calls[0]!.slice(1), args);
      assert.equal(pool.stats().pooled, 0);
    });
  }

  it("throws Node's own errors for bad arguments", () => {
    const pool = createPooledRandomFill();
    assert.throws(() => pool.randomFillSync(Buffer.alloc(16), 10, 10), { code: "ERR_OUT_OF_RANGE" });
    assert.throws(() => pool.randomFillSync("text" as unknown as Buffer, 0, 4), { code: "ERR_INVALID_ARG_TYPE" });
  });

  it("gives distinct bytes from the real generator", () => {
    const pool = createPooledRandomFill();
    const seen = new Set<string>();
    for (let i = 0; i < 10_000; i++) seen.add(pool.randomFillSync(Buffer.alloc(16), 0, 16).toString("hex"));
    assert.equal(seen.size, 10_000);
    assert.ok(pool.stats().refills >= Math.floor((10_000 * 16) / 4096));
  });
});
