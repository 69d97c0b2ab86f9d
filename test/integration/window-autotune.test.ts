// Receive-window autotuning (issue 20) through the real `tunnelctl run` and a real sshd, with the
// userspace delay relay between them (20 ms round trip): windows grow for a fast reader on local
// (direct-tcpip) and remote (forwarded-tcpip) forwards, stay at ssh2's 2 MiB for a stalled reader
// and on a LAN, never grow past the process budget, and bytes arrive intact (sha256) both ways.
// What the tests read is what an operator reads: the status file and a /metrics scrape.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { connect as netConnect, createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { manifest, waitForStatus, type RunningController, type StatusDoc } from "../helpers/controller.ts";
import { startDelayRelay, type DelayRelay } from "../helpers/delay-relay.ts";
import { startEchoServer, waitFor, type TestServer } from "../helpers/net.ts";
import { TestScope } from "../helpers/scope.ts";
import { freePort, sshdAvailable, type Sshd } from "../helpers/sshd.ts";

const haveSshd = sshdAvailable();
const MiB = 1024 * 1024;
const BASE = 2 * MiB;
const PATTERN = randomBytes(MiB);

type Windowed = { receiveWindow?: number; activeConnections?: number; bytesIn?: number; bytesOut?: number; boundPort?: number };
type Doc = StatusDoc & { status: { session: { rttMs?: number; windowAutotune?: string } } };
const localOf = (docs: StatusDoc[]): Windowed => docs[0]!.status.forwards.local[0] as Windowed;
const remoteOf = (docs: StatusDoc[]): Windowed => docs[0]!.status.forwards.remote[0] as Windowed;

/** A server that streams PATTERN to each connection until stop(), hashing what it wrote. */
interface Streamer {
  port: number;
  /** End every stream; resolves with each connection's [bytes, sha256] in accept order. */
  stop(): Promise<Array<[number, string]>>;
  /** The streams are blocked: the far side has taken nothing for `stableMs`. */
  blocked(stableMs: number): Promise<void>;
  close(): Promise<void>;
}

async function startStreamer(): Promise<Streamer> {
  const streams: Array<{ socket: Socket; hash: ReturnType<typeof createHash>; bytes: number; stopped: boolean; ended: Promise<void> }> = [];
  const server: Server = createServer((socket) => {
    socket.on("error", () => undefined);
    const s = { socket, hash: createHash("sha256"), bytes: 0, stopped: false, ended: Promise.resolve() };
    // Writes until the socket pushes back, then again on 'drain'; ends at the first 'drain' after stop().
    s.ended = new Promise<void>((resolve) => {
      const pump = (): void => {
        while (!s.stopped) {
          s.hash.update(PATTERN);
          s.bytes += PATTERN.length;
          if (!socket.write(PATTERN)) return void socket.once("drain", pump);
        }
        socket.end(resolve);
      };
      pump();
    });
    streams.push(s);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as { port: number }).port,
    async stop() {
      for (const s of streams) s.stopped = true;
      await Promise.all(streams.map((s) => s.ended));
      return streams.map((s) => [s.bytes, s.hash.digest("hex")]);
    },
    async blocked(stableMs) {
      let last = -1;
      let since = Date.now();
      await waitFor(() => {
        const written = streams.reduce((n, s) => n + s.socket.bytesWritten, 0);
        if (written !== last || !streams.every((s) => s.socket.writableNeedDrain)) {
          last = written;
          since = Date.now();
        }
        return streams.length > 0 && Date.now() - since >= stableMs;
      }, "the streams to block", 20_000);
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of streams) s.socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Read a connection to the end, hashing it; `pause` holds the reader until resumed. */
function readAll(socket: Socket): { done: Promise<[number, string]>; bytes: () => number } {
  const hash = createHash("sha256");
  let bytes = 0;
  socket.on("data", (d: Buffer) => {
    hash.update(d);
    bytes += d.length;
  });
  return {
    bytes: () => bytes,
    done: new Promise((resolve, reject) => {
      socket.once("end", () => resolve([bytes, hash.digest("hex")]));
      socket.once("error", reject);
    }),
  };
}

function dial(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ host: "127.0.0.1", port, noDelay: true });
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });
}

describe("receive-window autotuning", { skip: !haveSshd }, () => {
  const scope = new TestScope("tunnelctl-window-");
  let sshd: Sshd;
  let relay: DelayRelay;

  before(async () => {
    sshd = await scope.sshd();
    relay = await startDelayRelay(sshd.port, 10);
    scope.defer(() => relay.close());
  });

  /** A streamer of this test's own (a failed test leaves its streams to the scope). */
  async function newStreamer(): Promise<Streamer> {
    const streamer = await startStreamer();
    scope.defer(() => streamer.close());
    return streamer;
  }
  after(() => scope.dispose());

  let previous: RunningController | undefined;

  /** A controller running one tunnel to sshd (through the relay when `long`); the previous test's is stopped. */
  async function runTunnel(name: string, forwards: Parameters<typeof manifest>[2], long: boolean, args: string[] = []): Promise<{ ctl: RunningController; status: string }> {
    const dir = scope.tempDir();
    const file = join(dir, `${name}.yaml`);
    const server = long ? { ...sshd, port: relay.port } : sshd;
    writeFileSync(file, manifest(server, name, forwards, { hostKey: { fingerprints: `["${sshd.hostKeyFingerprint}"]` } }));
    await previous?.stop();
    const ctl = scope.run(dir, args);
    previous = ctl;
    const status = `${file}.status`;
    await waitForStatus(status, (d) => d[0]?.status.phase === "Ready" && (d as Doc[])[0]!.status.session.rttMs !== undefined, "Ready, with a measured RTT", ctl);
    return { ctl, status };
  }

  it("grows a local forward's window for a fast reader at 20 ms, and reports the RTT; bytes intact", async () => {
    const streamer = await newStreamer();
    const localPort = await freePort();
    const { ctl, status } = await runTunnel("grow-local", { local: [{ localPort, remotePort: streamer.port }] }, true);
    const rtt = (await waitForStatus(status, () => true, "status") as Doc[])[0]!.status.session.rttMs!;
    assert.ok(rtt >= 19 && rtt < 200, `rttMs ${rtt} should be about the relay's 20 ms`);
    const socket = await dial(localPort);
    const reader = readAll(socket);
    const docs = await waitForStatus(status, (d) => (localOf(d).receiveWindow ?? 0) > BASE, "the window to grow past 2 MiB", ctl, 60_000);
    assert.ok(localOf(docs).receiveWindow! <= 16 * MiB, "never past the default cap");
    const [[sentBytes, sentHash]] = (await streamer.stop()) as [[number, string]];
    const [gotBytes, gotHash] = await reader.done;
    assert.equal(gotBytes, sentBytes);
    assert.equal(gotHash, sentHash);
    await waitForStatus(status, (d) => localOf(d).activeConnections === 0 && localOf(d).receiveWindow === undefined, "the window to go with the connection", ctl);
  });

  it("grows a remote forward's (forwarded-tcpip) window for a fast local target at 20 ms", async () => {
    // The sink hashes what arrives; the uploader writes into the server's end of the forward.
    const received = createHash("sha256");
    let receivedBytes = 0;
    let sinkEnded!: () => void;
    const sinkDone = new Promise<void>((resolve) => (sinkEnded = resolve));
    const sink = createServer((s) => {
      s.on("data", (d: Buffer) => {
        received.update(d);
        receivedBytes += d.length;
      });
      s.on("end", () => {
        s.end();
        sinkEnded();
      });
      s.on("error", () => undefined);
    });
    await new Promise<void>((resolve) => sink.listen(0, "127.0.0.1", resolve));
    scope.defer(() => new Promise<void>((resolve) => sink.close(() => resolve())));
    const { ctl, status } = await runTunnel("grow-remote", { remote: [{ remotePort: 0, localPort: (sink.address() as { port: number }).port }] }, true);
    const bound = remoteOf(await waitForStatus(status, (d) => remoteOf(d).boundPort !== undefined, "the bound port", ctl)).boundPort!;
    const uploader = await dial(bound);
    const sent = createHash("sha256");
    let sentBytes = 0;
    let stop = false;
    const pump = (): void => {
      while (!stop) {
        sent.update(PATTERN);
        sentBytes += PATTERN.length;
        if (!uploader.write(PATTERN)) return void uploader.once("drain", pump);
      }
      uploader.end();
    };
    pump();
    await waitForStatus(status, (d) => (remoteOf(d).receiveWindow ?? 0) > BASE, "the remote forward's window to grow past 2 MiB", ctl, 60_000);
    stop = true;
    if (!uploader.writableNeedDrain) pump();
    await sinkDone;
    assert.equal(receivedBytes, sentBytes);
    assert.equal(received.digest("hex"), sent.digest("hex"));
    uploader.destroy();
  });

  it("keeps a stalled reader at 2 MiB; its bytes still arrive intact once it reads", async () => {
    const streamer = await newStreamer();
    const localPort = await freePort();
    const { ctl, status } = await runTunnel("stalled", { local: [{ localPort, remotePort: streamer.port }] }, true);
    const socket = await dial(localPort);
    socket.pause();
    // Everything in between fills (window, kernel buffers) and the stream stops.
    await streamer.blocked(1500);
    const docs = await waitForStatus(status, (d) => localOf(d).activeConnections === 1 && (localOf(d).bytesOut ?? 0) > 0, "the connection in the status", ctl);
    assert.equal(localOf(docs).receiveWindow, BASE);
    const reader = readAll(socket);
    socket.resume();
    const [[sentBytes, sentHash]] = (await streamer.stop()) as [[number, string]];
    assert.deepEqual(await reader.done, [sentBytes, sentHash]);
  });

  it("on a LAN (no relay) the window stays at 2 MiB for a fast reader", async () => {
    const streamer = await newStreamer();
    const localPort = await freePort();
    const { ctl, status } = await runTunnel("lan", { local: [{ localPort, remotePort: streamer.port }] }, false);
    const rtt = (await waitForStatus(status, () => true, "status") as Doc[])[0]!.status.session.rttMs!;
    assert.ok(rtt < 10, `loopback rttMs ${rtt}`);
    const socket = await dial(localPort);
    const reader = readAll(socket);
    // Far more than the kernel-buffer allowance and hundreds of round trips: had it grown, it would have.
    await waitFor(() => reader.bytes() > 96 * MiB, "96 MiB through the forward", 60_000);
    const docs = await waitForStatus(status, (d) => (localOf(d).bytesOut ?? 0) > 96 * MiB, "the status to show them", ctl);
    assert.equal(localOf(docs).receiveWindow, BASE);
    const [[sentBytes, sentHash]] = (await streamer.stop()) as [[number, string]];
    assert.deepEqual(await reader.done, [sentBytes, sentHash]);
  });

  it("50 connections both ways under a 4 MiB budget: bytes intact, growth never past the budget, released at the end", async () => {
    const streamer = await newStreamer();
    const echo: TestServer = await startEchoServer();
    scope.defer(() => echo.close());
    const localPort = await freePort();
    const bulkPort = await freePort();
    const metricsPort = await freePort();
    const { ctl, status } = await runTunnel(
      "budget",
      { local: [{ localPort, remotePort: echo.port }, { localPort: bulkPort, remotePort: streamer.port }], remote: [{ remotePort: 0, localPort: echo.port }] },
      true,
      ["--window-budget", "4MiB", "--metrics-address", `127.0.0.1:${metricsPort}`],
    );
    const bound = remoteOf(await waitForStatus(status, (d) => remoteOf(d).boundPort !== undefined, "the bound port", ctl)).boundPort!;
    const scrape = async (): Promise<{ used: number; total: number; windows: number[] }> => {
      const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      const value = (re: RegExp): number => Number(re.exec(text)?.[1] ?? NaN);
      const windows = [...text.matchAll(/^tunnelctl_forward_receive_window_bytes\{[^}]*\} (\S+)$/gm)].map((m) => Number(m[1]));
      return { used: value(/^tunnelctl_window_budget_bytes\{kind="used"\} (\S+)$/m), total: value(/^tunnelctl_window_budget_bytes\{kind="total"\} (\S+)$/m), windows };
    };
    // Two bulk downloads that want to grow, beside 50 echo connections (25 through -L, 25 through -R).
    const bulk = await Promise.all([dial(bulkPort), dial(bulkPort)]);
    const bulkReaders = bulk.map(readAll);
    const echoes = Array.from({ length: 50 }, async (_, i) => {
      const payload = randomBytes(1 * MiB);
      const socket = await dial(i % 2 === 0 ? localPort : bound);
      const reader = readAll(socket);
      socket.end(payload);
      const [bytes, hash] = await reader.done;
      assert.equal(bytes, payload.length, `connection ${i}: length`);
      assert.equal(hash, createHash("sha256").update(payload).digest("hex"), `connection ${i}: sha256`);
    });
    let observed = 0;
    let maxUsed = 0;
    const watching = (async () => {
      for (;;) {
        const m = await scrape();
        assert.equal(m.total, 4 * MiB);
        assert.ok(m.used <= m.total, `budget used ${m.used} > total ${m.total}`);
        for (const w of m.windows) assert.ok(w <= BASE + 4 * MiB, `a window of ${w} bytes is more than the budget lets us buffer`);
        maxUsed = Math.max(maxUsed, m.used);
        observed++;
        if (m.used === m.total || observed > 2000) return;
        await new Promise((r) => setTimeout(r, 20)); // polling interval of the watcher, not synchronisation
      }
    })();
    await Promise.all(echoes);
    await waitFor(async () => (await scrape()).used === 4 * MiB, "the bulk downloads to take the whole budget", 60_000);
    await watching;
    const sent = await streamer.stop();
    const got = await Promise.all(bulkReaders.map((r) => r.done));
    assert.deepEqual(got.sort(), [...sent].sort());
    await waitFor(async () => (await scrape()).used === 0, "every byte of budget released when the connections closed", 15_000);
  });
});
