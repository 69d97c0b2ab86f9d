// The client side of every measurement, speaking target-server.ts's one-byte protocol. Every
// operation has a deadline and rejects when it passes: a stuck forwarder ends the run, it never
// hangs it.
import { createHash } from "node:crypto";
import { connect, type Socket } from "node:net";
import { performance } from "node:perf_hooks";
import { writeBulk } from "./bulk.ts";

const CHUNK = Buffer.alloc(1024 * 1024, 0x5a);

export class BenchTimeoutError extends Error {
  override name = "BenchTimeoutError";
}

function withDeadline<T>(what: string, ms: number, socket: () => Socket | undefined, run: (done: (v: T) => void, fail: (e: Error) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      socket()?.destroy();
      reject(new BenchTimeoutError(`${what}: no result within ${ms} ms`));
    }, ms);
    run(
      (v) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(v);
      },
      (e) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket()?.destroy();
        reject(e);
      },
    );
  });
}

function open(port: number): Socket {
  return connect({ host: "127.0.0.1", port, noDelay: true, allowHalfOpen: true });
}

/** Client → target: send `size` bytes, wait for the target's count. Returns elapsed ms. */
export async function upload(port: number, size: number, timeoutMs: number): Promise<number> {
  const { bytes, ms } = await uploadWith(port, `upload ${size} B via :${port}`, timeoutMs, (s) => writeBulk(s, CHUNK, size, () => s.end()));
  if (bytes !== size) throw new Error(`upload via :${port}: target counted ${bytes} bytes, sent ${size}`);
  return ms;
}

/** An upload to the target's sink: `send` writes the bytes and ends; resolves with the target's count. */
function uploadWith(port: number, what: string, timeoutMs: number, send: (s: Socket, t0: number) => void): Promise<TimedTransfer> {
  let socket: Socket | undefined;
  return withDeadline(what, timeoutMs, () => socket, (done, fail) => {
    const t0 = performance.now();
    socket = open(port);
    const s = socket;
    const reply: Buffer[] = [];
    s.on("error", fail);
    s.once("connect", () => {
      s.write(Buffer.from("U"));
      send(s, t0);
    });
    s.on("data", (c: Buffer) => reply.push(c));
    s.on("end", () => {
      const ms = performance.now() - t0;
      s.destroy();
      const buf = Buffer.concat(reply);
      if (buf.length !== 8) fail(new Error(`${what}: no count from the target`));
      else done({ bytes: Number(buf.readBigUInt64BE(0)), ms });
    });
  });
}

/** What asks the target for `size` bytes: "D" and the length (8 bytes, big-endian). */
export function downloadRequest(size: number): Buffer {
  const head = Buffer.alloc(9);
  head.write("D", 0);
  head.writeBigUInt64BE(BigInt(size), 1);
  return head;
}

/** Target → client: ask for `size` bytes and read them all. Returns elapsed ms. */
export function download(port: number, size: number, timeoutMs: number): Promise<number> {
  let socket: Socket | undefined;
  return withDeadline(`download ${size} B via :${port}`, timeoutMs, () => socket, (done, fail) => {
    const t0 = performance.now();
    socket = open(port);
    const s = socket;
    let count = 0;
    s.on("error", fail);
    s.once("connect", () => s.write(downloadRequest(size)));
    s.on("data", (c: Buffer) => (count += c.length));
    s.on("end", () => {
      const elapsed = performance.now() - t0;
      s.end();
      s.destroy();
      if (count !== size) fail(new Error(`download via :${port}: received ${count} bytes, expected ${size}`));
      else done(elapsed);
    });
  });
}

/** A transfer that ran for a fixed time: what got through, and how long it took. */
export interface TimedTransfer {
  bytes: number;
  ms: number;
}

/**
 * Target → client for `seconds` (from the connect: the channel's open and the ramp-up count, as
 * for any real transfer), then close. A long link needs a transfer this long for a window's
 * ramp-up not to be most of it; sizes would make the slowest contender take minutes.
 */
export function downloadFor(port: number, seconds: number, timeoutMs: number): Promise<TimedTransfer> {
  let socket: Socket | undefined;
  return withDeadline(`download for ${seconds} s via :${port}`, timeoutMs, () => socket, (done, fail) => {
    const t0 = performance.now();
    socket = open(port);
    const s = socket;
    let count = 0;
    s.on("error", fail);
    s.once("connect", () => s.write(downloadRequest(2 ** 50)));
    const timer = setTimeout(() => {
      const ms = performance.now() - t0;
      s.destroy();
      done({ bytes: count, ms });
    }, seconds * 1000);
    s.on("data", (c: Buffer) => (count += c.length));
    s.on("end", () => {
      clearTimeout(timer);
      fail(new Error(`download via :${port}: ended after ${count} bytes`));
    });
  });
}

/** Client → target for `seconds`, then EOF; done when the target's count arrives (the tail included). */
export function uploadFor(port: number, seconds: number, timeoutMs: number): Promise<TimedTransfer> {
  return uploadWith(port, `upload for ${seconds} s via :${port}`, timeoutMs, (s, t0) => {
    const until = t0 + seconds * 1000;
    const pump = (): void => {
      while (performance.now() < until) {
        if (!s.write(CHUNK)) {
          s.once("drain", pump);
          return;
        }
      }
      s.end();
    };
    pump();
  });
}

/** Connect, send one byte, wait for its echo. Returns elapsed ms (connect included). */
export function echoOnce(port: number, timeoutMs: number): Promise<number> {
  let socket: Socket | undefined;
  return withDeadline(`1-byte echo via :${port}`, timeoutMs, () => socket, (done, fail) => {
    const t0 = performance.now();
    socket = open(port);
    const s = socket;
    s.on("error", fail);
    s.once("connect", () => s.write("E"));
    s.once("data", () => {
      const elapsed = performance.now() - t0;
      s.destroy();
      done(elapsed);
    });
    s.once("end", () => fail(new Error(`1-byte echo via :${port}: closed before the echo`)));
  });
}

/** Send `payload` through the echo target and hash what comes back (the leading E excluded). */
export function echoHash(port: number, payload: Buffer, timeoutMs: number): Promise<string> {
  let socket: Socket | undefined;
  return withDeadline(`echo ${payload.length} B via :${port}`, timeoutMs, () => socket, (done, fail) => {
    socket = open(port);
    const s = socket;
    const hash = createHash("sha256");
    let skipped = false;
    s.on("error", fail);
    s.once("connect", () => {
      s.write("E");
      s.end(payload);
    });
    s.on("data", (c: Buffer) => {
      if (!skipped) {
        skipped = true;
        c = c.subarray(1);
      }
      hash.update(c);
    });
    s.on("end", () => {
      s.destroy();
      done(hash.digest("hex"));
    });
  });
}

/** Wait until something accepts TCP connections on `port` (retrying every `everyMs`). */
export async function waitAccepting(port: number, timeoutMs: number, everyMs = 20): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    if (await tryConnect(port)) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) throw new BenchTimeoutError(`nothing accepted on 127.0.0.1:${port} within ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}

export function tryConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: "127.0.0.1", port });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => {
      s.destroy();
      resolve(false);
    });
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
