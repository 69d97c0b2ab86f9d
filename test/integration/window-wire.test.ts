// Issue 20, seen from the other end of the wire. sshd cannot show what a client advertised, so an
// ssh2 Server of the test's own stands in as the peer (in addition to the sshd tests in
// window-autotune.test.ts, not instead): it watches every change of the window tunnelctl gave it
// (its initial window, each WINDOW_ADJUST, each byte it sent) through a property trap on the
// channel, and checks the promise against the caps at every change, across a delay relay (100 ms
// round trip) so that windows really grow. Then the readers stop: everything tunnelctl let the
// server send must fit in what its windows and its budget allow, plus the local sockets' buffers.
// The readers use a unix-socket forward: a loopback TCP reader that has been reading fast has a
// receive buffer autotuned up to tcp_rmem's maximum (32 MiB here), which would hide everything.
// In the other direction the server checks that tunnelctl never sends past the window it was given.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { connect as netConnect, type Socket } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import ssh2, { type Connection, type ServerChannel } from "ssh2";
import { generateDemoKeys, fingerprintOf } from "../../src/demo/keys.ts";
import { connect, setWindowBudget, type Session } from "../../src/index.ts";
import { BASE_WINDOW } from "../../src/ssh/window/policy.ts";
import { startDelayRelay, type DelayRelay } from "../helpers/delay-relay.ts";
import { waitFor } from "../helpers/net.ts";
import { TestScope } from "../helpers/scope.ts";
import { freePort } from "../helpers/sshd.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const READERS = 2;
const BUDGET = 4 * MiB;
const MAX_WINDOW = 16 * MiB;
/** Each reader takes this much at full speed (its window grows), then stops. */
const READ_BEFORE_STALL = 32 * MiB;
const UPLOAD = 24 * MiB;
/** What a unix stream socket and Node's writable buffer can hold for a reader that stopped (net.core.wmem_default is 208 KiB). */
const UNIX_SOCKET_SLACK = 1 * MiB;
/** The server stops sending for PAUSE_MS (a few round trips) after every PAUSE_EVERY bytes, to read the whole window. */
const PAUSE_EVERY = 8 * MiB;
const PAUSE_MS = 400;
/** direct-tcpip destinations the test server serves itself (no socket behind them). */
const STREAM_PORT = 9;
const SINK_PORT = 10;
const CHUNK = randomBytes(64 * KiB);

/** One channel as the server sees it. */
interface Watched {
  /** Bytes of window tunnelctl has granted (initial + every adjust). */
  granted: number;
  /** Bytes the server sent. */
  sent: number;
  hash: ReturnType<typeof createHash>;
  /**
   * The whole window open to the server, read each time it stopped sending for a few round trips
   * (every PAUSE_EVERY bytes): by then the reader took everything, so all tunnelctl has opened is
   * granted and unused.
   */
  windows: number[];
  stop(): void;
  ended: Promise<void>;
}

interface Observer {
  port: number;
  fingerprint: string;
  streams: Watched[];
  /** Violations of the caps, as they happened (empty when none). */
  violations: string[];
  /** Sink connections: bytes received, sha256, and the lowest window seen after a packet. */
  sinks: Array<{ bytes: number; hash: ReturnType<typeof createHash>; lowestWindow: number; done: Promise<void> }>;
  close(): Promise<void>;
}

async function startObserver(hostKey: string, hostPublicKey: string): Promise<Observer> {
  const streams: Watched[] = [];
  const violations: string[] = [];
  const sinks: Observer["sinks"] = [];
  const conns = new Set<Connection>();
  const outstandingTotal = (): number => streams.reduce((n, s) => n + (s.granted - s.sent), 0);

  /** Trap `outgoing.window`: ssh2 adds each WINDOW_ADJUST to it and takes each packet off it. */
  const watch = (channel: ServerChannel): Watched => {
    const outgoing = (channel as unknown as { outgoing: { window: number } }).outgoing;
    let window = outgoing.window;
    const w: Watched = { granted: window, sent: 0, hash: createHash("sha256"), windows: [], stop: () => undefined, ended: Promise.resolve() };
    Object.defineProperty(outgoing, "window", {
      get: () => window,
      set: (value: number) => {
        if (value > window) w.granted += value - window;
        else w.sent += window - value;
        window = value;
        if (window > MAX_WINDOW) violations.push(`a channel was given ${window} bytes of window (maxWindow ${MAX_WINDOW})`);
        const total = outstandingTotal();
        if (total > streams.length * BASE_WINDOW + BUDGET) violations.push(`${total} bytes of window outstanding over ${streams.length} channels (budget ${BUDGET})`);
      },
      configurable: true,
    });
    return w;
  };

  const stream = (channel: ServerChannel): void => {
    const w = watch(channel);
    streams.push(w);
    let stopped = false;
    w.ended = new Promise<void>((resolve) => {
      let sinceBreak = 0;
      const pump = (): void => {
        while (!stopped) {
          if (sinceBreak >= PAUSE_EVERY) {
            sinceBreak = 0;
            return void setTimeout(() => {
              w.windows.push(w.granted - w.sent);
              pump();
            }, PAUSE_MS);
          }
          w.hash.update(CHUNK);
          sinceBreak += CHUNK.length;
          if (!channel.write(CHUNK)) return void channel.once("drain", pump);
        }
        channel.end();
        resolve();
      };
      w.stop = () => {
        stopped = true;
      };
      pump();
    });
  };

  const sink = (channel: ServerChannel): void => {
    const incoming = (channel as unknown as { incoming: { window: number } }).incoming;
    const s = { bytes: 0, hash: createHash("sha256"), lowestWindow: incoming.window, done: Promise.resolve() };
    sinks.push(s);
    s.done = new Promise<void>((resolve) => {
      channel.on("data", (data: Buffer) => {
        s.bytes += data.length;
        s.hash.update(data);
        s.lowestWindow = Math.min(s.lowestWindow, incoming.window);
        // A slow reader now and then, so that the window (not the link) is what holds tunnelctl back.
        if (s.bytes % (4 * MiB) < data.length) {
          channel.pause();
          setTimeout(() => channel.resume(), 30);
        }
      });
      channel.on("end", () => {
        channel.end();
        resolve();
      });
    });
  };

  const server = new ssh2.Server({ hostKeys: [hostKey] }, (conn) => {
    conns.add(conn);
    conn.on("close", () => conns.delete(conn));
    conn.on("error", () => undefined);
    conn.on("authentication", (ctx) => (ctx.method === "publickey" ? ctx.accept() : ctx.reject(["publickey"])));
    conn.on("tcpip", (accept, reject, info) => {
      if (info.destPort === STREAM_PORT) stream(accept());
      else if (info.destPort === SINK_PORT) sink(accept());
      else reject();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as { port: number }).port,
    fingerprint: fingerprintOf(hostPublicKey),
    streams,
    violations,
    sinks,
    close: () =>
      new Promise<void>((resolve) => {
        for (const conn of conns) conn.end();
        server.close(() => resolve());
      }),
  };
}

function dial(port: number | string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = typeof port === "string" ? netConnect({ path: port }) : netConnect({ host: "127.0.0.1", port, noDelay: true });
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });
}

describe("receive windows on the wire (an ssh2 server as the observing peer, 100 ms round trip)", () => {
  const scope = new TestScope("tunnelctl-window-wire-");
  let observer: Observer;
  let relay: DelayRelay;
  let session: Session;

  before(async () => {
    const keys = generateDemoKeys();
    observer = await startObserver(keys.host.privateKey, keys.host.publicKey);
    scope.defer(() => observer.close());
    relay = await startDelayRelay(observer.port, 50);
    scope.defer(() => relay.close());
    const keyFile = join(scope.tempDir(), "id");
    writeFileSync(keyFile, keys.client.privateKey, { mode: 0o600 });
    setWindowBudget(BUDGET);
    scope.defer(() => setWindowBudget(256 * MiB));
    session = await connect("127.0.0.1", {
      username: "tunnel",
      port: relay.port,
      auth: { privateKeyFile: keyFile },
      hostKey: { fingerprints: [observer.fingerprint] },
      maxWindow: MAX_WINDOW,
    });
    scope.defer(() => session.close());
  });
  after(() => scope.dispose());

  it("grows windows, never past maxWindow or the budget, and a stalled reader holds no more than they allow", async () => {
    const localPath = join(scope.tempDir(), "stream.sock");
    await session.setPortForwardingLocal({ localPath, remoteHost: "127.0.0.1", remotePort: STREAM_PORT });
    // Windows grow only once the session's round trip is measured.
    await waitFor(() => (session as unknown as { connection: { rttMs?: number } }).connection.rttMs !== undefined, "the round trip measured", 10_000);
    const readers = await Promise.all(Array.from({ length: READERS }, () => dial(localPath)));
    const received = readers.map(() => ({ bytes: 0, hash: createHash("sha256") }));
    let stall = true;
    readers.forEach((socket, i) => {
      socket.on("data", (d: Buffer) => {
        received[i]!.bytes += d.length;
        received[i]!.hash.update(d);
        if (stall && received[i]!.bytes >= READ_BEFORE_STALL && !socket.isPaused()) socket.pause();
      });
    });
    await waitFor(() => observer.streams.length === READERS && readers.every((s) => s.isPaused()), "every reader to take its share and stop", 60_000);
    // The server sends until the windows run out: then what tunnelctl holds is all it promised.
    let last = -1;
    let since = Date.now();
    await waitFor(
      () => {
        const sent = observer.streams.reduce((n, s) => n + s.sent, 0);
        if (sent !== last) [last, since] = [sent, Date.now()];
        return observer.streams.every((s) => s.granted === s.sent) && Date.now() - since > 500;
      },
      "the server to run out of window",
      30_000,
    );

    assert.deepEqual(observer.violations, []);
    // The test means something only if windows grew.
    const windows = observer.streams.map((s) => s.windows.map((w) => (w / MiB).toFixed(2)).join(" ")).join("; ");
    assert.ok(
      observer.streams.some((s) => s.windows.some((w) => w > BASE_WINDOW + 512 * KiB)),
      `no window grew past 2 MiB (windows seen, MiB: ${windows})`,
    );
    // Held by tunnelctl or the local sockets: what the server sent and the readers have not read.
    // Per connection that is its window, or ssh2's own 2 MiB readable buffer on top of a 2 MiB window
    // (ssh2's top-up does not count what the reader has not taken: its behaviour at the base window),
    // plus the socket; the growth of all of them together is the budget. Without it: up to 2 × 16 MiB.
    const held = observer.streams.reduce((n, s) => n + s.sent, 0) - received.reduce((n, r) => n + r.bytes, 0);
    const bound = READERS * (2 * BASE_WINDOW + UNIX_SOCKET_SLACK) + BUDGET;
    assert.ok(held <= bound, `${(held / MiB).toFixed(1)} MiB held for stalled readers, more than windows + budget + socket buffers allow (${(bound / MiB).toFixed(1)} MiB)`);

    // Nothing lost: the readers resume and read to the end, byte for byte what the server wrote.
    for (const s of observer.streams) s.stop();
    const ended = readers.map(() => false);
    readers.forEach((socket, i) => socket.once("end", () => (ended[i] = true)));
    stall = false;
    for (const socket of readers) socket.resume();
    await waitFor(() => ended.every(Boolean), "every reader to read to the end", 60_000);
    assert.deepEqual(
      received.map((r) => [r.bytes, r.hash.digest("hex")]),
      observer.streams.map((s) => [s.sent, s.hash.digest("hex")]),
    );
    for (const socket of readers) socket.destroy();
    await session.deletePortForwardingLocal({ localPath });
  });

  it("never sends past the window the server gave (uploads to a slow reader arrive whole)", async () => {
    const localPort = await freePort();
    await session.setPortForwardingLocal({ localPort, remoteHost: "127.0.0.1", remotePort: SINK_PORT });
    const payload = randomBytes(UPLOAD);
    const socket = await dial(localPort);
    socket.end(payload);
    await waitFor(() => observer.sinks.length === 1, "the sink channel", 10_000);
    await observer.sinks[0]!.done;
    const sink = observer.sinks[0]!;
    assert.ok(sink.lowestWindow >= 0, `tunnelctl sent ${-sink.lowestWindow} bytes past the server's window`);
    assert.deepEqual([sink.bytes, sink.hash.digest("hex")], [UPLOAD, createHash("sha256").update(payload).digest("hex")]);
    socket.destroy();
  });
});
