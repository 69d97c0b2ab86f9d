// A long link on loopback: a TCP relay that holds every chunk for `oneWayMs` in each direction
// (round trip = 2 × oneWayMs), order kept, with a cap on what it holds in flight (a link has a
// bandwidth-delay product, not infinite buffers). Userspace: netem needs kernel modules.
import { connect, createServer, type Server, type Socket } from "node:net";

export interface DelayRelay {
  port: number;
  close(): Promise<void>;
}

/** Bytes held per direction before the sender is paused (≈ 1 GiB/s × 128 ms). */
const IN_FLIGHT_CAP = 128 * 1024 * 1024;

export async function startDelayRelay(targetPort: number, oneWayMs: number, host = "127.0.0.1"): Promise<DelayRelay> {
  const sockets = new Set<Socket>();
  const server: Server = createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    const upstream = connect({ host, port: targetPort, allowHalfOpen: true, noDelay: true });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {
        client.destroy();
        upstream.destroy();
      });
    }
    delay(client, upstream, oneWayMs);
    delay(upstream, client, oneWayMs);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    port: (server.address() as { port: number }).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Copy `from` → `to`, each chunk (and the EOF) delivered `ms` after it arrived. */
function delay(from: Socket, to: Socket, ms: number): void {
  const queue: Array<{ at: number; chunk: Buffer | null }> = [];
  let held = 0;
  let timer: NodeJS.Timeout | undefined;
  const release = (): void => {
    timer = undefined;
    const now = performance.now();
    while (queue.length > 0 && queue[0]!.at <= now) {
      const { chunk } = queue.shift()!;
      if (chunk === null) {
        to.end();
        continue;
      }
      held -= chunk.length;
      if (!to.destroyed) to.write(chunk);
    }
    if (held < IN_FLIGHT_CAP / 2 && from.isPaused()) from.resume();
    if (queue.length > 0) timer = setTimeout(release, Math.max(0, queue[0]!.at - performance.now()));
  };
  const push = (chunk: Buffer | null): void => {
    queue.push({ at: performance.now() + ms, chunk });
    if (chunk !== null) held += chunk.length;
    if (held > IN_FLIGHT_CAP) from.pause();
    if (timer === undefined) timer = setTimeout(release, ms);
  };
  from.on("data", (chunk: Buffer) => push(chunk));
  from.on("end", () => push(null));
  // What the receiver cannot take yet stays in its socket's buffer: its own backpressure is the
  // receiving application's, which is what a window must not outrun.
}
