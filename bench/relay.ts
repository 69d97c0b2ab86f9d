// A plain Node TCP relay with no crypto: listen, connect to the target, pipe both ways. It is the
// ceiling for any forwarder written in Node on this machine. Same socket options as tunnelctl's
// forwards: TCP_NODELAY, half-close carried across.
// Usage: relay.ts TARGET_PORT. Prints {"port": N}; exits when stdin closes.
import { connect, createServer, type AddressInfo } from "node:net";

const targetPort = Number(process.argv[2]);
if (!Number.isInteger(targetPort) || targetPort <= 0) {
  process.stderr.write("usage: relay.ts TARGET_PORT\n");
  process.exit(2);
}

const server = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (client) => {
  client.setNoDelay(true);
  const target = connect({ host: "127.0.0.1", port: targetPort, allowHalfOpen: true, noDelay: true });
  target.setNoDelay(true);
  client.on("error", () => target.destroy());
  target.on("error", () => client.destroy());
  client.on("close", () => target.destroy());
  target.on("close", () => client.destroy());
  target.once("connect", () => {
    client.pipe(target);
    target.pipe(client);
  });
});
server.listen({ host: "127.0.0.1", port: 0, backlog: 1024 }, () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});
process.stdin.on("end", () => process.exit(0));
process.stdin.on("error", () => process.exit(0));
process.stdin.resume();
