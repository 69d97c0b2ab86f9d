// The guard of the ssh2 hook (src/ssh/window/autotune.ts): a channel without the internals the hook
// needs is left exactly as it is (ssh2's fixed window), and the process reports why autotuning is
// off. The real channels are exercised end to end in test/integration/window-autotune.test.ts.
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { describe, it } from "node:test";
import { autotuneDisabledReason, PINNED_SSH2_VERSION, tuneWindow, windowBudgetUsage } from "../../src/ssh/window/autotune.ts";
import { SSH2_VERSION } from "../../src/version.ts";

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
