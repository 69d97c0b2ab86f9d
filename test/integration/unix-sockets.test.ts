// Unix-socket forwards (issue 21, OpenSSH streamlocal): each of the four combinations of a path
// and a port on either side, through a real sshd and the real `tunnelctl run`. Bytes compared by
// hash; the socket file's mode checked; the files tunnelctl creates gone after delete and after
// shutdown; a path it did not create never removed; a change in place keeps open connections.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { connect, createServer, type Server } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { manifest, waitForStatus, type StatusDoc } from "../helpers/controller.ts";
import { probe, randomPayload, sha256, startEchoServer, waitFor, type TestServer } from "../helpers/net.ts";
import { TestScope } from "../helpers/scope.ts";
import { freePort, sshdAvailable, type Sshd } from "../helpers/sshd.ts";

const haveSshd = sshdAvailable();

/** Send `payload` to a unix socket (or a port), half-close, return what came back. */
function roundTripTo(where: { path: string } | { port: number }, payload: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = "path" in where ? connect({ path: where.path }) : connect({ host: "127.0.0.1", port: where.port });
    const chunks: Buffer[] = [];
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", reject);
    socket.on("close", () => resolve(Buffer.concat(chunks)));
    socket.end(payload);
  });
}

async function assertEchoes(where: { path: string } | { port: number }, what: string): Promise<void> {
  const payload = randomPayload(512 * 1024);
  const back = await roundTripTo(where, payload);
  assert.equal(sha256(back), sha256(payload), `${what}: bytes differ (${back.length} of ${payload.length})`);
}

function unixEcho(path: string): Promise<Server> {
  const server = createServer({ allowHalfOpen: true }, (s) => s.pipe(s));
  return new Promise((resolve) => server.listen(path, () => resolve(server)));
}

const allReady = (docs: StatusDoc[]): boolean =>
  docs[0]?.status.phase === "Ready" && docs[0].status.forwards.local.every((f) => f.state === "Active") && docs[0].status.forwards.remote.every((f) => f.state === "Active");

describe("unix-socket forwards (streamlocal)", { skip: !haveSshd }, () => {
  let sshd: Sshd;
  let echo: TestServer;
  let dir: string;
  let serverEchoPath: string;
  const scope = new TestScope("tunnelctl-unix-");

  before(async () => {
    sshd = await scope.sshd({ config: ["StreamLocalBindUnlink yes", "AllowStreamLocalForwarding yes"] });
    echo = await startEchoServer();
    scope.defer(() => echo.close());
    dir = scope.tempDir();
    // "On the server": sshd runs here, so a socket in the temp dir is one the server can reach.
    serverEchoPath = join(dir, "server-echo.sock");
    const server = await unixEcho(serverEchoPath);
    scope.defer(() => server.close());
  });
  after(() => scope.dispose());

  it("all four combinations carry bytes; modes; cleanup on delete and shutdown; a change in place keeps connections", async () => {
    const manifests = join(dir, "m");
    mkdirSync(manifests);
    const file = join(manifests, "u.yaml");
    const localSock = join(dir, "local.sock");
    const localSock2 = join(dir, "local2.sock");
    const remoteSock = join(dir, "remote.sock");
    const remoteSock2 = join(dir, "remote2.sock");
    const localEchoPath = join(dir, "local-echo.sock");
    const localEcho = await unixEcho(localEchoPath);
    scope.defer(() => localEcho.close());
    const port = await freePort();
    // A regular file where the first forward will listen: in the way (see below).
    writeFileSync(localSock, "not a socket\n");
    const forwards = (target1: string): string => `    local:
      - {localPath: ${localSock}, remoteHost: 127.0.0.1, remotePort: ${echo.port}}
      - {localPort: ${port}, remotePath: ${target1}}
      - {localPath: ${localSock2}, mode: "0660", remotePath: ${serverEchoPath}}
    remote:
      - {remotePath: ${remoteSock}, localHost: 127.0.0.1, localPort: ${echo.port}}
      - {remotePath: ${remoteSock2}, localPath: ${localEchoPath}}
`;
    const text = (target1: string): string => manifest(sshd, "unix", {}).replace(/ {2}forwards:\n[\s\S]*$/, `  forwards:\n${forwards(target1)}`);
    writeFileSync(file, text(serverEchoPath));
    const ctl = scope.run(manifests);
    const blocked = await waitForStatus(`${file}.status`, (d) => d[0]?.status.forwards.local[0]?.reason === "BindDenied", "a regular file in the way", ctl);
    assert.match(blocked[0]!.status.forwards.local[0]!.message, /exists and is not a socket/);
    assert.ok(existsSync(localSock), "a path tunnelctl did not create is never removed");
    // Now a stale socket file there instead: nothing listens on it, so it is replaced.
    rmSync(localSock);
    const leftover = createServer();
    await new Promise<void>((resolve) => leftover.listen(localSock, resolve));
    // Close the listener without removing the file, as a crashed process leaves it.
    (leftover as unknown as { _handle: { close(): void } })._handle.close();
    await waitForStatus(`${file}.status`, allReady, "every forward Active", ctl, 20_000);

    await assertEchoes({ path: localSock }, "local path → host:port");
    await assertEchoes({ port }, "local port → server path");
    await assertEchoes({ path: localSock2 }, "local path → server path");
    await assertEchoes({ path: remoteSock }, "server path → local host:port");
    await assertEchoes({ path: remoteSock2 }, "server path → local path");
    assert.equal(statSync(localSock).mode & 0o777, 0o600, "default mode 0600");
    assert.equal(statSync(localSock2).mode & 0o777, 0o660, "mode as the manifest says");
    const status = (await waitForStatus(`${file}.status`, allReady, "Ready", ctl))[0]!.status;
    assert.equal((status.forwards.local[0] as { localPath?: string }).localPath, localSock);
    assert.equal((status.forwards.remote[1] as { localPath?: string }).localPath, localEchoPath);

    // A change in place (the port forward's target becomes a host:port): the open connection stays.
    const live = connect({ host: "127.0.0.1", port });
    await new Promise<void>((resolve) => live.once("connect", () => resolve()));
    let liveClosed = false;
    live.on("close", () => (liveClosed = true));
    const echoed = new Promise<string>((resolve) => live.once("data", (d: Buffer) => resolve(d.toString())));
    writeFileSync(file, text(serverEchoPath).replace(`{localPort: ${port}, remotePath: ${serverEchoPath}}`, `{localPort: ${port}, remoteHost: 127.0.0.1, remotePort: ${echo.port}}`));
    await waitForStatus(`${file}.status`, (d) => allReady(d) && d[0]!.status.forwards.local[1]!.remotePort === echo.port, "target changed in place", ctl);
    live.write("still here\n");
    assert.equal(await echoed, "still here\n");
    assert.equal(liveClosed, false);
    live.destroy();

    // Deleted from the manifest: its socket file is gone; the others stay.
    writeFileSync(file, text(serverEchoPath).replace(`      - {localPath: ${localSock2}, mode: "0660", remotePath: ${serverEchoPath}}\n`, ""));
    await waitFor(() => !existsSync(localSock2), "the deleted forward's socket file is removed");
    assert.ok(existsSync(localSock));
    await assertEchoes({ path: localSock }, "the untouched forward still works");

    // Shutdown removes what tunnelctl created.
    assert.equal(await ctl.stop(), 0);
    assert.equal(existsSync(localSock), false, "socket file removed on shutdown");
    assert.equal(await probe(port), "ECONNREFUSED");
  });
});
