// Dynamic forwards (issue 21): a SOCKS4/4a/5 proxy through a real sshd, declared in a manifest and
// converged by the real `tunnelctl run`. curl is the client a person would use; the `socks`
// package checks IPv6 and the reply codes. Bytes are compared by hash, both ways.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, writeFileSync } from "node:fs";
import { createServer, connect as netConnect, type Server } from "node:net";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { SocksClient } from "socks";
import { manifest, waitForStatus, type StatusDoc } from "../helpers/controller.ts";
import { openLive, probe, startEchoServer, waitFor, type TestServer } from "../helpers/net.ts";
import { TestScope } from "../helpers/scope.ts";
import { freePort, sshdAvailable, type Sshd } from "../helpers/sshd.ts";

const run = promisify(execFile);
const haveSshd = sshdAvailable();
const CURL = "/usr/bin/curl";
const sha = (data: Buffer): string => createHash("sha256").update(data).digest("hex");

function curlAvailable(): boolean {
  if (existsSync(CURL)) return true;
  if (process.env.CI === "true") throw new Error(`curl not found at ${CURL}: CI must install curl`);
  process.stderr.write(`\n*** SKIPPING the curl checks: no ${CURL} ***\n\n`);
  return false;
}

type DynamicStatus = { localPort: number; state: string; message: string; totalConnections: number; failedConnections: number; refusedConnections: number; bytesIn: number; bytesOut: number; allow?: string[] };
const dynamicOf = (docs: StatusDoc[]): DynamicStatus[] => (docs[0]!.status.forwards as unknown as { dynamic?: DynamicStatus[] }).dynamic ?? [];

/** A manifest whose forwards include `dynamic` (the helper writes local and remote). */
function withDynamic(text: string, dynamic: string[]): string {
  return text.replace("    remote:", `    dynamic:\n${dynamic.map((d) => `      - ${d}`).join("\n")}\n    remote:`);
}

describe("dynamic forwards (SOCKS)", { skip: !haveSshd }, () => {
  let sshd: Sshd;
  let http: HttpServer;
  let httpPort: number;
  let echo: TestServer;
  let echo6: Server;
  let echo6Port: number;
  const body = randomBytes(4 * 1024 * 1024);
  const scope = new TestScope("tunnelctl-socks-");
  const haveCurl = curlAvailable();

  before(async () => {
    sshd = await scope.sshd();
    echo = await startEchoServer();
    scope.defer(() => echo.close());
    // GET /big: 4 MiB of known bytes; POST /sha: the SHA-256 of what was sent.
    http = createHttpServer((req, res) => {
      if (req.url === "/big") {
        res.end(body);
        return;
      }
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => res.end(sha(Buffer.concat(chunks))));
    });
    await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
    httpPort = (http.address() as { port: number }).port;
    scope.defer(() => new Promise((resolve) => http.close(resolve)));
    echo6 = createServer((s) => s.pipe(s));
    await new Promise<void>((resolve) => echo6.listen(0, "::1", resolve));
    echo6Port = (echo6.address() as { port: number }).port;
    scope.defer(() => echo6.close());
  });
  after(() => scope.dispose());

  it("serves curl (socks5-hostname, socks5, socks4a) and the socks package (IPv6, 200 at once), with reply codes and allow; converges in place", async (t) => {
    const dir = scope.tempDir();
    const file = join(dir, "proxy.yaml");
    const [socksPort, limitedPort, localPort] = [await freePort(), await freePort(), await freePort()];
    const base = manifest(sshd, "proxy", { local: [{ localPort, remotePort: echo.port }] });
    writeFileSync(file, withDynamic(base, [`{localPort: ${socksPort}, connectTimeout: 2s}`]));
    const ctl = scope.run(dir);
    await waitForStatus(`${file}.status`, (d) => d[0]?.status.phase === "Ready" && dynamicOf(d)[0]?.state === "Active", "Ready with the proxy Active", ctl);
    const proxy = `127.0.0.1:${socksPort}`;
    const live = await openLive(localPort);
    await live.ping("before");

    if (haveCurl) {
      for (const flag of ["--socks5-hostname", "--socks5", "--socks4a"]) {
        const got = await run(CURL, ["-sS", "--fail", flag, proxy, `http://127.0.0.1:${httpPort}/big`], { encoding: "buffer", maxBuffer: 16 * 1024 * 1024 });
        assert.equal(sha(got.stdout), sha(body), `${flag}: the body came through intact`);
      }
      const upload = randomBytes(3 * 1024 * 1024);
      const uploadFile = join(dir, ".upload");
      writeFileSync(uploadFile, upload);
      const posted = await run(CURL, ["-sS", "--fail", "--socks5-hostname", proxy, "--data-binary", `@${uploadFile}`, `http://localhost:${httpPort}/sha`], { encoding: "utf8" });
      assert.equal(posted.stdout, sha(upload), "the upload came through intact (a name resolved by the server)");
    } else t.diagnostic("curl checks skipped");

    // IPv6 destination, by address.
    const v6 = await SocksClient.createConnection({ proxy: { host: "127.0.0.1", port: socksPort, type: 5 }, command: "connect", destination: { host: "::1", port: echo6Port } });
    const line = await new Promise<string>((resolve) => {
      v6.socket.once("data", (d: Buffer) => resolve(d.toString()));
      v6.socket.write("over v6\n");
    });
    assert.equal(line, "over v6\n");
    v6.socket.destroy();

    // Reply codes: refused, unresolvable.
    const closed = await freePort();
    await assert.rejects(SocksClient.createConnection({ proxy: { host: "127.0.0.1", port: socksPort, type: 5 }, command: "connect", destination: { host: "127.0.0.1", port: closed } }), /ConnectionRefused/);
    await assert.rejects(SocksClient.createConnection({ proxy: { host: "127.0.0.1", port: socksPort, type: 5 }, command: "connect", destination: { host: "no-such-host.invalid", port: 80 } }), /HostUnreachable/);
    // BIND and UDP ASSOCIATE are answered "command not supported" (0x07), as raw bytes show.
    for (const command of [2, 3]) {
      const reply = await rawExchange(socksPort, Buffer.from([5, 1, 0, 5, command, 0, 1, 0, 0, 0, 0, 0, 0]));
      assert.deepEqual([...reply.subarray(0, 4)], [5, 0, 5, 7], `command ${command}: greeting accepted, then reply 0x07`);
    }

    // A malformed greeting gets a close, a silent client is cut off by connectTimeout; the proxy lives on.
    const garbage = netConnect({ host: "127.0.0.1", port: socksPort });
    garbage.write("GET / HTTP/1.1\r\n\r\n");
    await new Promise<void>((resolve) => garbage.once("close", () => resolve()).on("error", () => undefined).resume());
    const silent = netConnect({ host: "127.0.0.1", port: socksPort });
    const t0 = Date.now();
    await new Promise<void>((resolve) => silent.once("close", () => resolve()).on("error", () => undefined).resume());
    assert.ok(Date.now() - t0 < 8000, "a stalled handshake is cut off (connectTimeout 2s)");

    // 200 connections at once, each echoing its own bytes.
    const results = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const payload = randomBytes(16 * 1024 + i);
        const conn = await SocksClient.createConnection({ proxy: { host: "127.0.0.1", port: socksPort, type: 5 }, command: "connect", destination: { host: "127.0.0.1", port: echo.port }, timeout: 20_000 });
        const chunks: Buffer[] = [];
        conn.socket.on("data", (c: Buffer) => chunks.push(c));
        conn.socket.end(payload);
        await new Promise((resolve) => conn.socket.once("close", resolve));
        return sha(Buffer.concat(chunks)) === sha(payload);
      }),
    );
    assert.equal(results.filter(Boolean).length, 200, "every concurrent connection echoed its bytes intact");

    // An allow list on a second proxy, added in place: the first proxy and the local forward are untouched.
    writeFileSync(file, withDynamic(base, [`{localPort: ${socksPort}, connectTimeout: 2s}`, `{localPort: ${limitedPort}, allow: ["127.0.0.1:${echo.port}", "*.internal:5432"]}`]));
    await waitForStatus(`${file}.status`, (d) => dynamicOf(d).length === 2 && dynamicOf(d).every((f) => f.state === "Active"), "two proxies Active", ctl);
    const ok = await SocksClient.createConnection({ proxy: { host: "127.0.0.1", port: limitedPort, type: 4 }, command: "connect", destination: { host: "127.0.0.1", port: echo.port } });
    ok.socket.destroy();
    await assert.rejects(SocksClient.createConnection({ proxy: { host: "127.0.0.1", port: limitedPort, type: 5 }, command: "connect", destination: { host: "127.0.0.1", port: httpPort } }), /NotAllowed/);
    const counted = await waitForStatus(`${file}.status`, (d) => dynamicOf(d)[1]?.refusedConnections === 1, "the refusal counted", ctl);
    assert.deepEqual(dynamicOf(counted)[1]!.allow, [`127.0.0.1:${echo.port}`, "*.internal:5432"]);
    assert.ok(dynamicOf(counted)[0]!.totalConnections >= 200);
    await live.ping("after adding a proxy");

    // Removed in place: the port is free, the other forwards and the live connection stay.
    writeFileSync(file, base);
    // Both proxies go in one change. Once the status lists neither, neither port may accept (the
    // status never runs ahead of what is running); before that, one may close a moment after the
    // other (a CI run caught that when this waited on the first port alone).
    await waitForStatus(`${file}.status`, (d) => dynamicOf(d).length === 0, "both proxies gone from the status", ctl);
    assert.equal(await probe(socksPort), "ECONNREFUSED");
    assert.equal(await probe(limitedPort), "ECONNREFUSED");
    await live.ping("after removing the proxies");
    assert.equal(live.closed, false);
    live.socket.end();
    assert.equal(await ctl.stop(), 0);
  });

  it("validate warns about a proxy on a non-loopback address without allow, and status says it", async () => {
    const dir = scope.tempDir();
    const file = join(dir, "open.yaml");
    const port = await freePort();
    writeFileSync(file, withDynamic(manifest(sshd, "open", {}), [`{bindAddress: 0.0.0.0, localPort: ${port}}`]));
    const { runCli } = await import("../helpers/cli.ts");
    const result = await runCli(["validate", file]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /open\.yaml:\d+:\d+: warning: spec\.forwards\.dynamic\[0\]: listens on 0\.0\.0\.0 without allow/);
    const ctl = scope.run(dir);
    const docs = await waitForStatus(`${file}.status`, (d) => dynamicOf(d)[0]?.state === "Active", "Active", ctl);
    assert.match(dynamicOf(docs)[0]!.message, /without allow: anyone who can reach it can use the SSH server's network/);
    assert.equal(await ctl.stop(), 0);
  });
});

/** Send raw bytes to the proxy and collect everything it answers until it closes. */
function rawExchange(port: number, bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: "127.0.0.1", port });
    const chunks: Buffer[] = [];
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", reject);
    socket.once("close", () => resolve(Buffer.concat(chunks)));
    socket.write(bytes);
  });
}
