// LocalForward while no SSH connection is attached: accepted connections are held, and
// connectTimeout counts from accept — time spent waiting for the session is part of it, so a
// held connection is never kept longer than connectTimeout in all. Fake timers; real sockets.
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { afterEach, beforeEach, describe, it, mock } from "node:test";
import type { Duplex } from "node:stream";
import { PassThrough } from "node:stream";
import { ConnectionError, TargetError } from "../../src/ssh/errors.ts";
import { LocalForward, type ChannelOpener } from "../../src/ssh/local-forward.ts";
import { freePort } from "../helpers/sshd.ts";

const TIMEOUT = 1000;

/** A session whose channels say hello. */
const channelOpener: ChannelOpener = async (): Promise<Duplex> => {
  const channel = new PassThrough();
  channel.write("from the channel\n");
  return channel;
};

/** Let real I/O happen (fake timers do not move): poll on setImmediate, bounded. */
async function until(predicate: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 10_000; i++) {
    if (predicate()) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`never happened: ${what}`);
}

describe("LocalForward holds connections while no session is attached", () => {
  let forward: LocalForward | undefined;
  let client: Socket | undefined;

  beforeEach(() => mock.timers.enable({ apis: ["setTimeout"] }));
  afterEach(async () => {
    mock.timers.reset();
    client?.destroy();
    await forward?.destroy();
  });

  async function heldConnection(): Promise<{ closed: () => boolean; received: () => string }> {
    const port = await freePort();
    forward = await LocalForward.listen("127.0.0.1", port, { remoteHost: "target", remotePort: 80, connectTimeout: TIMEOUT }, undefined);
    const sock = connect({ host: "127.0.0.1", port });
    client = sock;
    let closed = false;
    let received = "";
    sock.on("error", () => undefined);
    sock.on("close", () => (closed = true));
    sock.setEncoding("utf8").on("data", (d: string) => (received += d));
    const f = forward;
    await until(() => f.connectionCount === 1, "connection accepted");
    return { closed: () => closed, received: () => received };
  }

  it("closes a held connection when connectTimeout runs out with no session, and counts it failed", async () => {
    const held = await heldConnection();
    mock.timers.tick(TIMEOUT - 1);
    await new Promise((r) => setImmediate(r));
    assert.equal(held.closed(), false, "still held just before connectTimeout");
    mock.timers.tick(1);
    await until(held.closed, "closed at connectTimeout");
    assert.equal(forward!.stats.snapshot().failedConnections, 1);
  });

  it("serves a held connection once a session is attached", async () => {
    const held = await heldConnection();
    mock.timers.tick(TIMEOUT / 2);
    forward!.setOpener(channelOpener);
    await until(() => held.received() === "from the channel\n", "bytes from the channel");
    mock.timers.tick(TIMEOUT);
    await new Promise((r) => setImmediate(r));
    assert.equal(held.closed(), false, "a served connection is not timed out");
    assert.equal(forward!.stats.snapshot().failedConnections, 0);
  });

  it("the time held counts against connectTimeout: a session back late gets only what is left", async () => {
    const held = await heldConnection();
    mock.timers.tick(TIMEOUT * 0.6);
    // The session is back, but opening the channel hangs (a target that does not answer).
    forward!.setOpener(() => new Promise<Duplex>(() => undefined));
    mock.timers.tick(TIMEOUT * 0.4);
    await until(held.closed, "closed connectTimeout after accept, not after the session came back");
    assert.equal(forward!.stats.snapshot().failedConnections, 1);
  });

  it("an open that fails because the session died (half-open peer found out) is held for the next session", async () => {
    const held = await heldConnection();
    let lose: (err: Error) => void = () => undefined;
    forward!.setOpener(() => new Promise<Duplex>((_, reject) => (lose = reject)));
    await new Promise((r) => setImmediate(r));
    lose(new ConnectionError("ConnectionLost", "Connection to server:22 lost while opening target:80"));
    forward!.setOpener(undefined);
    await new Promise((r) => setImmediate(r));
    assert.equal(held.closed(), false, "held, not failed");
    forward!.setOpener(channelOpener);
    await until(() => held.received() === "from the channel\n", "served by the next session");
    assert.equal(forward!.stats.snapshot().failedConnections, 0);
  });

  it("an open the target refuses fails at once (it is not held)", async () => {
    const held = await heldConnection();
    forward!.setOpener(() => Promise.reject(new TargetError("target", 80, "Connection refused")));
    await until(held.closed, "closed on the refusal");
    assert.equal(forward!.stats.snapshot().failedConnections, 1);
  });
});
