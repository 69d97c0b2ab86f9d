// The demo's embedded SSH server, driven by ssh2's Client the way tunnelctl drives a real sshd.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { after, before, describe, it } from "node:test";
import ssh2, { type Client } from "ssh2";
import { startEchoService, type EchoService } from "../../src/demo/echo-service.ts";
import { startEmbeddedServer, type EmbeddedServer, type EmbeddedServerError } from "../../src/demo/embedded-server.ts";
import { fingerprintOf, fingerprintOfBlob, generateDemoKeys, generateKeyPair, publicKeyOf } from "../../src/demo/keys.ts";

const MiB = 1024 * 1024;
const keys = generateDemoKeys();
const serverErrors: EmbeddedServerError[] = [];
const clients: Client[] = [];
const sockets: Socket[] = [];
// Still unset if before() failed half-way: after() closes only what was started.
let server: EmbeddedServer;
let echo: EchoService;
let tmp: string;

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), "tunnelctl-embedded-"));
  echo = await startEchoService();
  server = await startEmbeddedServer({
    hostKey: keys.host.privateKey,
    authorizedKeys: ["# the demo client", keys.client.publicKey],
    onError: (err) => serverErrors.push(err),
  });
});

after(async () => {
  for (const socket of sockets) socket.destroy();
  for (const client of clients) client.end();
  try {
    if (server) {
      await server.close();
      assert.equal(server.connections, 0);
      // Clients answered the disconnect and every forwarded socket closed: no socket needed cutting off.
      assert.equal(server.socketsCutOff, 0);
    }
  } finally {
    await echo?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }
});

describe("embedded SSH server", () => {
  it("accepts the authorised key and pins its host key fingerprint", async () => {
    const client = await connectClient(keys.client.privateKey);
    assert.ok(server.connections >= 1);
    client.end();
  });

  it("refuses a key that is not authorised", async () => {
    const intruder = generateKeyPair("intruder");
    await assert.rejects(connectClient(intruder.privateKey), (err: Error & { level?: string }) => {
      assert.equal(err.level, "client-authentication");
      return true;
    });
  });

  it("refuses sessions: it only forwards ports", async () => {
    const client = await connectClient(keys.client.privateKey);
    const err = await new Promise<Error | undefined>((resolve) => client.exec("true", (e) => resolve(e)));
    assert.ok(err, "exec should be refused");
    client.end();
  });

  it("carries 4 MiB both ways intact over direct-tcpip (ssh -L)", async () => {
    const client = await connectClient(keys.client.privateKey);
    const channel = await forwardOut(client, "127.0.0.1", echo.port);
    const closed = once(channel, "close");
    const payload = randomBytes(4 * MiB);
    const echoed = await roundTrip(channel, payload);
    assert.equal(sha256(echoed), sha256(payload));
    await closed; // the server closes its side once both directions are done: no leaked channel
    client.end();
  });

  it("rejects direct-tcpip to a closed port and names the target", async () => {
    const client = await connectClient(keys.client.privateKey);
    const port = await closedPort();
    await assert.rejects(forwardOut(client, "127.0.0.1", port), (err: Error & { reason?: number }) => {
      assert.equal(err.reason, 2); // SSH_OPEN_CONNECT_FAILED
      return true;
    });
    assert.ok(serverErrors.some((e) => e.message.includes(`127.0.0.1:${port}`) && e.message.includes("connection refused")));
    client.end();
  });

  it("binds a chosen port for tcpip-forward 0 (ssh -R) and delivers 4 MiB both ways intact", async () => {
    const client = await connectClient(keys.client.privateKey);
    const announced: number[] = [];
    client.on("tcp connection", (info, accept) => {
      announced.push(info.destPort);
      pipeToEcho(accept());
    });
    const port = await forwardIn(client, "127.0.0.1", 0);
    assert.ok(port > 0);

    const outside = track(connect({ host: "127.0.0.1", port, allowHalfOpen: true }));
    const payload = randomBytes(4 * MiB);
    const echoed = await roundTrip(outside, payload);
    assert.equal(sha256(echoed), sha256(payload));
    assert.deepEqual(announced, [port]);
    client.end();
  });

  it("frees the port on cancel-tcpip-forward and keeps live connections", async () => {
    const client = await connectClient(keys.client.privateKey);
    let accepted = 0;
    client.on("tcp connection", (_info, accept) => {
      accepted++;
      pipeToEcho(accept());
    });
    const port = await forwardIn(client, "127.0.0.1", 0);
    const live = track(connect({ host: "127.0.0.1", port, allowHalfOpen: true }));
    await waitFor(() => accepted === 1, 5_000);

    await new Promise<void>((resolve, reject) => client.unforwardIn("127.0.0.1", port, (err) => (err ? reject(err) : resolve())));
    await bindAndRelease(port); // no retry: the port must be free right after the reply

    const payload = randomBytes(64 * 1024);
    assert.equal(sha256(await roundTrip(live, payload)), sha256(payload));
    client.end();
  });

  it("closes a client's remote forwards when the client disconnects", async () => {
    const client = await connectClient(keys.client.privateKey);
    client.on("tcp connection", (_info, accept) => pipeToEcho(accept()));
    const port = await forwardIn(client, "127.0.0.1", 0);
    await assert.rejects(bindAndRelease(port), /EADDRINUSE/);
    client.end();
    await waitFor(() => bindAndRelease(port).then(() => true, () => false), 5_000);
  });

  it("refuses remote forwards off loopback by default", async () => {
    const client = await connectClient(keys.client.privateKey);
    await assert.rejects(forwardIn(client, "0.0.0.0", 0), /Unable to bind to 0\.0\.0\.0:0/);
    assert.ok(serverErrors.some((e) => e.message.includes("0.0.0.0:0") && e.message.includes("not allowed")));
    client.end();
  });

  it("prints the same fingerprints as ssh-keygen -lf", () => {
    const clientPub = join(tmp, "client.pub");
    const hostPub = join(tmp, "host.pub");
    writeFileSync(clientPub, `${keys.client.publicKey}\n`);
    writeFileSync(hostPub, `${publicKeyOf(keys.host.privateKey)}\n`);
    assert.equal(fingerprintOf(keys.client.publicKey), sshKeygenFingerprint(clientPub));
    assert.equal(server.hostKeyFingerprint, sshKeygenFingerprint(hostPub));
  });

  it("close() cuts off a peer that never answers the disconnect, and counts it", async () => {
    const own = await startEmbeddedServer({ hostKey: keys.host.privateKey, authorizedKeys: [keys.client.publicKey] });
    // Half-open and silent: it never ends its side, so only the cut-off can close it.
    const silent = track(connect({ host: own.host, port: own.port, allowHalfOpen: true }));
    silent.resume();
    await waitFor(() => silent.bytesRead > 0, 5_000); // the server's banner arrived: it holds the socket
    await own.close();
    assert.equal(own.socketsCutOff, 1);
  });
});

// --- helpers -----------------------------------------------------------------------------------

function connectClient(privateKey: string): Promise<Client> {
  const client = new ssh2.Client();
  clients.push(client);
  const sock = track(connect({ host: server.host, port: server.port }));
  sock.setNoDelay(true);
  return new Promise((resolve, reject) => {
    client.once("ready", () => resolve(client)).once("error", reject);
    client.connect({
      sock,
      username: "demo",
      privateKey,
      hostVerifier: (key: Buffer, verify: (ok: boolean) => void) => verify(fingerprintOfBlob(key) === server.hostKeyFingerprint),
    });
  });
}

function forwardOut(client: Client, host: string, port: number): Promise<Duplex> {
  return new Promise((resolve, reject) =>
    client.forwardOut("127.0.0.1", 0, host, port, (err, channel) => (err ? reject(err) : resolve(channel))),
  );
}

function forwardIn(client: Client, addr: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => client.forwardIn(addr, port, (err, bound) => (err ? reject(err) : resolve(bound))));
}

/** What the tunnelctl side of a remote forward does: hand the channel to the local service. */
function pipeToEcho(channel: Duplex): void {
  const local = track(connect({ host: "127.0.0.1", port: echo.port }));
  local.setNoDelay(true);
  local.on("error", () => channel.destroy());
  channel.pipe(local).pipe(channel);
}

/** Send `payload`, half-close, and collect everything that comes back until the far side ends. */
function roundTrip(stream: Duplex, payload: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.once("end", () => resolve(Buffer.concat(chunks)));
    stream.once("error", reject);
    stream.end(payload);
  });
}

async function bindAndRelease(port: number): Promise<void> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once("error", reject);
    probe.listen(port, "127.0.0.1", resolve);
  });
  await new Promise((resolve) => probe.close(resolve));
}

async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const address = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  assert.ok(address !== null && typeof address === "object");
  return address.port;
}

/** Poll `predicate` until it holds; fail with the deadline rather than hang. */
async function waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms: ${predicate.toString()}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

function track(socket: Socket): Socket {
  sockets.push(socket);
  return socket;
}

function sha256(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

function sshKeygenFingerprint(pubFile: string): string {
  const out = execFileSync("/usr/bin/ssh-keygen", ["-l", "-E", "sha256", "-f", pubFile], { encoding: "utf8" });
  const fingerprint = out.split(/\s+/)[1];
  if (!fingerprint?.startsWith("SHA256:")) throw new Error(`unexpected ssh-keygen output: ${out}`);
  return fingerprint;
}
