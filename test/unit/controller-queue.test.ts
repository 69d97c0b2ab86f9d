// The work queue and the handshake limiter: ordering, coalescing, one run per key, limits.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HandshakeLimiter } from "../../src/controller/handshake-limiter.ts";
import { WorkQueue } from "../../src/controller/queue.ts";

/** A promise with its resolve exposed, to hold a reconcile open until the test says so. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

/** A one-at-a-time queue that records its runs; the key "block" holds it until `hold.open()`. */
function blockedQueue(): { q: WorkQueue; runs: string[]; hold: ReturnType<typeof gate> } {
  const runs: string[] = [];
  const hold = gate();
  const q = new WorkQueue(
    async (k) => {
      runs.push(k);
      if (k === "block") await hold.promise;
    },
    { concurrency: 1, onError: assert.fail },
  );
  return { q, runs, hold };
}

describe("WorkQueue", () => {
  it("runs each added key once, in order", async () => {
    const runs: string[] = [];
    const q = new WorkQueue(async (k) => void runs.push(k), { concurrency: 1, onError: assert.fail });
    q.add("a");
    q.add("b");
    q.add("c");
    await q.idle();
    assert.deepEqual(runs, ["a", "b", "c"]);
  });

  it("coalesces a burst of adds for one key into one run", async () => {
    const { q, runs, hold } = blockedQueue();
    q.add("block");
    for (let i = 0; i < 10; i++) q.add("x");
    hold.open();
    await q.idle();
    assert.deepEqual(runs, ["block", "x"]);
  });

  it("never runs one key twice at once; an add during a run runs it once more after", async () => {
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    const hold = gate();
    const q = new WorkQueue(
      async () => {
        running++;
        runs++;
        maxRunning = Math.max(maxRunning, running);
        if (runs === 1) await hold.promise;
        running--;
      },
      { concurrency: 4, onError: assert.fail },
    );
    q.add("k");
    q.add("k"); // queued behind the first? No: it is running → marked dirty
    await Promise.resolve();
    q.add("k");
    hold.open();
    await q.idle();
    assert.equal(maxRunning, 1);
    assert.equal(runs, 2);
  });

  it("runs different keys in parallel up to the concurrency", async () => {
    let running = 0;
    let maxRunning = 0;
    const hold = gate();
    const q = new WorkQueue(
      async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        await hold.promise;
        running--;
      },
      { concurrency: 3, onError: assert.fail },
    );
    for (const k of ["a", "b", "c", "d", "e"]) q.add(k);
    await Promise.resolve();
    assert.equal(maxRunning, 3);
    hold.open();
    await q.idle();
    assert.equal(maxRunning, 3);
  });

  it("background work (addLow) waits for everything added normally; add() promotes it", async () => {
    const { q, runs, hold } = blockedQueue();
    q.add("block");
    for (const k of ["r1", "r2", "r3"]) q.addLow(k);
    q.add("edit");
    q.add("r3"); // an edit of a tunnel the resync also queued: it jumps the queue once
    hold.open();
    await q.idle();
    assert.deepEqual(runs, ["block", "edit", "r3", "r1", "r2"]);
  });

  it("background work leaves the event loop free between a few keys: an I/O callback and an edit get in", async () => {
    const runs: string[] = [];
    const q = new WorkQueue(
      async (k) => {
        runs.push(k); // nothing to do: no real await, as a resync of a converged tunnel
      },
      { concurrency: 64, onError: assert.fail },
    );
    for (let i = 0; i < 1000; i++) q.addLow(`t${i}`);
    // What the event loop delivers next (a file event): it must not wait for all 1,000.
    const before = await new Promise<number>((resolve) => setImmediate(() => resolve(runs.length)));
    assert.ok(before < 100, `${before} background reconciles ran before the next turn of the loop`);
    q.add("edit");
    await q.idle();
    assert.equal(runs.length, 1001);
    assert.ok(runs.indexOf("edit") < 200, `the edit ran after ${runs.indexOf("edit")} background reconciles`);
  });

  it("requeueAfter brings a key back; an add before then replaces the timer", async () => {
    const runs: string[] = [];
    const q = new WorkQueue(
      async (k) => {
        runs.push(k);
        return runs.length === 1 ? { requeueAfter: 60_000 } : undefined;
      },
      { concurrency: 1, onError: assert.fail },
    );
    q.add("k");
    await q.idle();
    assert.deepEqual(runs, ["k"]);
    q.add("k"); // does not wait a minute
    await q.idle();
    assert.deepEqual(runs, ["k", "k"]);
    await q.stop();
  });

  it("a throwing reconcile is reported and the queue keeps working", async () => {
    const errors: string[] = [];
    const runs: string[] = [];
    const q = new WorkQueue(
      async (k) => {
        runs.push(k);
        if (k === "bad") throw new Error("boom");
      },
      { concurrency: 1, onError: (k, err) => errors.push(`${k}: ${(err as Error).message}`) },
    );
    q.add("bad");
    q.add("good");
    await q.idle();
    assert.deepEqual(errors, ["bad: boom"]);
    assert.deepEqual(runs, ["bad", "good"]);
    await q.stop();
  });

  it("stop() waits for running work and takes no more", async () => {
    const runs: string[] = [];
    const hold = gate();
    const q = new WorkQueue(
      async (k) => {
        runs.push(k);
        await hold.promise;
      },
      { concurrency: 1, onError: assert.fail },
    );
    q.add("a");
    q.add("b");
    const stopped = q.stop();
    hold.open();
    await stopped;
    q.add("c");
    await q.idle();
    assert.deepEqual(runs, ["a"]);
  });
});

describe("HandshakeLimiter", () => {
  it("lets at most `limit` run at once per server, others queue, servers are independent", async () => {
    const limiter = new HandshakeLimiter(2);
    const active = new Map<string, number>();
    const peak = new Map<string, number>();
    const hold = gate();
    const task = (server: string) =>
      limiter.run(server, async () => {
        active.set(server, (active.get(server) ?? 0) + 1);
        peak.set(server, Math.max(peak.get(server) ?? 0, active.get(server)!));
        await hold.promise;
        active.set(server, active.get(server)! - 1);
        return server;
      });
    const all = [...Array.from({ length: 5 }, () => task("a")), ...Array.from({ length: 3 }, () => task("b"))];
    await Promise.resolve();
    assert.equal(active.get("a"), 2);
    assert.equal(active.get("b"), 2);
    hold.open();
    const results = await Promise.all(all);
    assert.equal(results.filter((r) => r === "a").length, 5);
    assert.equal(peak.get("a"), 2);
    assert.equal(peak.get("b"), 2);
  });

  it("releases the slot when the task fails", async () => {
    const limiter = new HandshakeLimiter(1);
    await assert.rejects(limiter.run("s", async () => Promise.reject(new Error("refused"))), /refused/);
    assert.equal(await limiter.run("s", async () => "next"), "next");
  });
});
