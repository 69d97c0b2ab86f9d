// The demo's target service: TCP echo, optionally greeting each connection with a banner line.
import { createServer, type AddressInfo, type Socket } from "node:net";

export interface EchoServiceOptions {
  host?: string; // default 127.0.0.1
  port?: number; // default 0: any free port
  banner?: string;
}

export interface EchoService {
  host: string;
  port: number;
  close(): Promise<void>;
}

export async function startEchoService(opts: EchoServiceOptions = {}): Promise<EchoService> {
  const host = opts.host ?? "127.0.0.1";
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    socket.setNoDelay(true);
    if (opts.banner !== undefined) socket.write(`${opts.banner}\n`);
    socket.pipe(socket);
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(new Error(`Cannot bind echo service to ${host}:${opts.port ?? 0}: ${err.code ?? err.message}`, { cause: err })),
    );
    server.listen(opts.port ?? 0, host, resolve);
  });
  const port = (server.address() as AddressInfo).port;

  return {
    host,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}
