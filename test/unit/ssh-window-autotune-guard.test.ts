// The guard of the ssh2 hook (src/ssh/window/autotune.ts): a channel without the internals the hook
// needs is left exactly as it is (ssh2's fixed window), and the process reports why autotuning is
// off. The real channels are exercised end to end in test/integration/window-autotune.test.ts.
import assert from "node:assert/strict";
import { PassThrough, Readable, type Duplex } from "node:stream";
import { describe, it } from "node:test";
import { autotuneDisabledReason, PINNED_SSH2_VERSION, tuneWindow, windowBudgetUsage } from "../../src/ssh/window/autotune.ts";
import { SSH2_VERSION } from "../../src/version.ts";

/** A stream with the internals of an ssh2 channel that the hook uses (and nothing else of ssh2). */
class FakeChannel extends Readable {
  incoming = { window: 2 * 1024 * 1024 };
  outgoing = { id: 0, state: "open" };
  _client = { _protocol: { channelWindowAdjust: (): void => undefined } };
  override _read(): void {}
}

describe("the ssh2 window hook: chunks that wait", () => {
  it("copies a chunk that will wait in the buffer out of a larger buffer it is a slice of; passes one through untouched", async () => {
    const channel = new FakeChannel();
    tuneWindow(channel as unknown as Duplex, { rttMs: () => undefined });
    const parent = Buffer.alloc(64 * 1024, 7);
    // Flowing with an empty buffer: the reader takes it at once, as it is.
    const seen: Buffer[] = [];
    channel.on("data", (d: Buffer) => seen.push(d));
    const flowing = parent.subarray(100, 100 + 32 * 1024);
    channel.push(flowing);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(seen[0], flowing);
    // Paused: it waits, so it must not hold the 64 KiB it was cut from.
    channel.pause();
    const waiting = parent.subarray(200, 200 + 32 * 1024);
    channel.push(waiting);
    const held = channel.read() as Buffer;
    assert.deepEqual(held, waiting);
    assert.equal(held.buffer.byteLength, waiting.length);
  });
});

describe("the ssh2 window hook's guard", () => {
  it("runs on the pinned ssh2 version", () => {
    assert.equal(SSH2_VERSION, PINNED_SSH2_VERSION, "ssh2 was upgraded: re-check src/ssh/window/autotune.ts against its Channel.js and client.js, then move the pin");
    assert.equal(autotuneDisabledReason(), undefined);
  });

  it("leaves a stream without ssh2's channel internals untouched, and says autotuning is off", () => {
    const stream = new PassThrough();
    const { push, _read } = stream;
    tuneWindow(stream, { rttMs: () => 50 });
    assert.equal(stream.push, push);
    assert.equal(stream._read, _read);
    assert.match(autotuneDisabledReason() ?? "", /lacks the window internals/);
    assert.deepEqual(windowBudgetUsage(), { total: 256 * 1024 * 1024, used: 0 });
  });
});
