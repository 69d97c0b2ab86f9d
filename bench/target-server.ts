// The far end of every benchmark connection, run as its own process so that its CPU is not the
// harness's. One port, and the first byte a connection sends picks what it does:
//   E  echo everything back, the E included, until EOF
//   U  sink: count what follows until EOF, reply with the count (8 bytes, big-endian), end
//   D  source: read an 8-byte big-endian length, send that many bytes, end
//   B  black hole: never read again (backpressure test)
// Prints {"port": N} on stdout once listening; exits when stdin closes (its parent is gone).
import { randomBytes } from "node:crypto";
import { createServer, type AddressInfo, type Socket } from "node:net";
import { writeBulk } from "./lib/bulk.ts";

const CHUNK = randomBytes(1024 * 1024);

function serve(socket: Socket): void {
  socket.setNoDelay(true);
  socket.on("error", () => socket.destroy());
  let head: Buffer = Buffer.alloc(0);
  const onFirst = (chunk: Buffer): void => {
    head = head.length ? Buffer.concat([head, chunk]) : chunk;
    const mode = String.fromCharCode(head[0]!);
    if (mode === "D" && head.length < 9) return;
    socket.off("data", onFirst);
    switch (mode) {
      case "E":
        return echo(socket, head);
      case "U":
        return sink(socket, head.length - 1);
      case "D":
        return source(socket, Number(head.readBigUInt64BE(1)));
      case "B":
        socket.pause();
        return;
      default:
        socket.destroy();
    }
  };
  socket.on("data", onFirst);
}

function echo(socket: Socket, first: Buffer): void {
  const send = (chunk: Buffer): void => {
    if (!socket.write(chunk)) socket.pause();
  };
  socket.on("drain", () => socket.resume());
  send(first);
  socket.on("data", send);
  socket.on("end", () => socket.end());
}

function sink(socket: Socket, already: number): void {
  let count = already;
  socket.on("data", (chunk: Buffer) => (count += chunk.length));
  socket.on("end", () => {
    const reply = Buffer.alloc(8);
    reply.writeBigUInt64BE(BigInt(count));
    socket.end(reply);
  });
}

function source(socket: Socket, length: number): void {
  socket.resume(); // read (and drop) anything else the client sends, so its EOF arrives
  socket.on("data", () => undefined);
  writeBulk(socket, CHUNK, length, () => socket.end());
}

const server = createServer({ allowHalfOpen: true }, serve);
server.listen({ host: "127.0.0.1", port: 0, backlog: 1024 }, () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});
process.stdin.on("end", () => process.exit(0));
process.stdin.on("error", () => process.exit(0));
process.stdin.resume();
