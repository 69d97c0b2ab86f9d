// The small HTTP edge of `run --metrics-address`: node:http and a routing table of three paths.
// Everything it says is derived from the controller's snapshot; it never reads a file, a key or
// a manifest's content, so no secret or host key material can reach a response.
import { createServer, type Server } from "node:http";
import type { Controller } from "../controller/types.ts";
import { liveness, readiness, type Verdict } from "./readiness.ts";
import type { ControllerMetrics } from "./registry.ts";

export interface MetricsServer {
  /** host:port as bound (the port is the real one when 0 was asked for). */
  readonly address: string;
  close(): Promise<void>;
}

export class MetricsListenError extends Error {
  override name = "MetricsListenError";
}

/** "127.0.0.1:9464" / "[::1]:9464" → host and port (the syntax was checked by the option parser). */
export function splitListenAddress(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(":");
  const host = address.slice(0, colon).replace(/^\[(.*)\]$/, "$1");
  return { host, port: Number(address.slice(colon + 1)) };
}

/**
 * Binds exactly `address` before anything else starts; rejects with a message naming the address
 * when it cannot (in use, not an address of this machine).
 */
export async function startMetricsServer(
  address: string,
  source: { metrics: ControllerMetrics; controller: () => Controller | undefined },
): Promise<MetricsServer> {
  const verdict = (res: import("node:http").ServerResponse, v: Verdict): void => {
    res.writeHead(v.ok ? 200 : 503, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" });
    res.end(v.body);
  };
  const routes: Record<string, (res: import("node:http").ServerResponse) => Promise<void> | void> = {
    "/metrics": async (res) => {
      const text = await source.metrics.scrape();
      res.writeHead(200, { "content-type": source.metrics.registry.contentType, "cache-control": "no-store" });
      res.end(text);
    },
    "/healthz": (res) => verdict(res, liveness(source.controller()?.alive() ?? false)),
    "/readyz": (res) => {
      const c = source.controller();
      verdict(res, readiness(c?.loaded ?? false, c?.snapshot() ?? []));
    },
  };
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const route = Object.hasOwn(routes, path) ? routes[path] : undefined;
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8" });
      res.end("method not allowed\n");
      return;
    }
    if (route === undefined) {
      res.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
      res.end("not found: try /metrics, /healthz or /readyz\n");
      return;
    }
    Promise.resolve(route(res)).catch(() => {
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
      res.end("internal error\n");
    });
  });
  const { host, port } = splitListenAddress(address);
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => {
      const why = err.code === "EADDRINUSE" ? "address in use" : err.code === "EADDRNOTAVAIL" ? "not an address of this machine" : err.code === "EACCES" ? "permission denied" : err.message;
      reject(new MetricsListenError(`Cannot serve metrics on ${address}: ${why}`, { cause: err }));
    });
    server.listen({ host, port, exclusive: true }, () => resolve());
  });
  const bound = server.address();
  const boundPort = typeof bound === "object" && bound !== null ? bound.port : port;
  return {
    address: host.includes(":") ? `[${host}]:${boundPort}` : `${host}:${boundPort}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
