// Small network helpers for tests: targets that echo, hash or never answer, and a deadline wait.
import { createHash, randomBytes } from "node:crypto";
import { spawn } from "node:child_process";
import { connect, createServer, type AddressInfo, type Server, type Socket } from "node:net";

/** Wait until `predicate` is truthy, polling; throws with `what` after the deadline. */
export async function waitFor<T>(predicate: () => T | Promise<T>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await predicate();
      if (value) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: lastError });
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function sha256(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

export interface TestServer {
  port: number;
  server: Server;
  sockets: Set<Socket>;
  close(): Promise<void>;
}

async function listen(server: Server, host = "127.0.0.1", port = 0): Promise<TestServer> {
  const sockets = new Set<Socket>();
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    server,
    sockets,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Echo server: every byte comes straight back. */
export function startEchoServer(host = "127.0.0.1"): Promise<TestServer> {
  return listen(
    createServer((s) => {
      s.setNoDelay(true);
      s.pipe(s);
      s.on("error", () => s.destroy());
    }),
    host,
  );
}

/** A server that writes `tag` then echoes: tells which target a connection reached. */
export function startTaggedEchoServer(tag: string): Promise<TestServer> {
  return listen(
    createServer((s) => {
      s.setNoDelay(true);
      s.write(`${tag}\n`);
      s.pipe(s);
      s.on("error", () => s.destroy());
    }),
  );
}

/** Exchange: send `payload`, half-close, read everything back. */
export async function roundTrip(port: number, payload: Buffer, host = "127.0.0.1"): Promise<Buffer> {
  const sock = connect({ host, port, noDelay: true });
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    sock.on("data", (c: Buffer) => chunks.push(c));
    sock.on("end", () => resolve(Buffer.concat(chunks)));
    sock.on("error", reject);
    sock.on("connect", () => sock.end(payload));
  });
}

export function randomPayload(size: number): Buffer {
  return randomBytes(size);
}

/** Try to connect: resolves "accepted" or the error code (ECONNREFUSED, ...). */
export function probe(port: number, host = "127.0.0.1"): Promise<string> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    sock.once("connect", () => {
      sock.destroy();
      resolve("accepted");
    });
    sock.once("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

/** A long-lived connection that echoes line by line; lets a test check it stays alive. */
export interface LiveConnection {
  socket: Socket;
  /** Send a line and wait for its echo (after an optional greeting line is skipped). */
  ping(text: string, timeoutMs?: number): Promise<string>;
  readonly closed: boolean;
  received: string;
}

export async function openLive(port: number, host = "127.0.0.1"): Promise<LiveConnection> {
  const socket = connect({ host, port, noDelay: true });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  socket.setEncoding("utf8");
  const live = {
    socket,
    closed: false,
    received: "",
    async ping(text: string, timeoutMs = 5000): Promise<string> {
      const marker = `${text}\n`;
      const start = live.received.length;
      socket.write(marker);
      await waitFor(() => live.received.indexOf(marker, start) >= 0 || live.closed, `echo of ${text}`, timeoutMs);
      if (live.received.indexOf(marker, start) < 0) throw new Error(`connection closed before echo of ${text}`);
      return text;
    },
  };
  socket.on("data", (d: string) => (live.received += d));
  socket.on("close", () => (live.closed = true));
  socket.on("error", () => undefined);
  return live;
}

/** Read the first line a new connection receives (a tagged echo server's tag). */
export async function tagOf(port: number, host = "127.0.0.1"): Promise<string> {
  const live = await openLive(port, host);
  await waitFor(() => live.received.includes("\n") || live.closed, "tag line");
  live.socket.destroy();
  return live.received.split("\n")[0] ?? "";
}

/** A TCP port whose accept queue is full: a connect to it gets no answer at all (python3). */
export async function startBlackhole(): Promise<{ port: number; close(): void }> {
  const script = [
    "import socket, sys",
    "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(0)",
    "print(s.getsockname()[1], flush=True)",
    "fill = []",
    "for _ in range(4):",
    "    c = socket.socket(); c.setblocking(False)",
    "    try: c.connect(('127.0.0.1', s.getsockname()[1]))",
    "    except BlockingIOError: pass",
    "    fill.append(c)",
    "print('full', flush=True)",
    "sys.stdin.read()",
  ].join("\n");
  const proc = spawn("python3", ["-c", script], { stdio: ["pipe", "pipe", "inherit"] });
  let out = "";
  proc.stdout.setEncoding("utf8");
  proc.stdout.on("data", (d: string) => (out += d));
  await waitFor(() => out.includes("full"), "blackhole listener");
  return { port: Number(out.split("\n")[0]), close: () => proc.kill() };
}
