// Soak: traffic keeps flowing through several tunnels while a few hundred random edits land
// (add / change / delete forwards, unrelated files, invalid edits, session changes). Afterwards:
// every byte arrived intact, no connection of an untouched forward was dropped, actual equals
// desired, and file descriptors and sshd sessions return to baseline.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readdirSync, readlinkSync, rmSync, unlinkSync, writeFileSync, mkdtempSync, renameSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { manifest, readStatus, startRun, waitForStatus, type LocalFwd, type RunningController } from "../helpers/controller.ts";
import { probe, startTaggedEchoServer, tagOf, waitFor, type TestServer } from "../helpers/net.ts";
import { prng } from "../helpers/prng.ts";
import { destroySshd, freePort, sshdAvailable, startSshd, type Sshd } from "../helpers/sshd.ts";

const haveSshd = sshdAvailable();
const TUNNELS = 4;
const EDITS = 300;
const SEED = Number(process.env.SOAK_SEED ?? 20261124);

/** A connection that streams random bytes through an echo target and checks them on the way back. */
interface Stream {
  socket: Socket;
  sent: ReturnType<typeof createHash>;
  received: ReturnType<typeof createHash>;
  sentBytes: number;
  receivedBytes: number;
  closed: boolean;
  stop(): Promise<{ sent: string; received: string; sentBytes: number; receivedBytes: number }>;
}

async function openStream(port: number): Promise<Stream> {
  const socket = connect({ host: "127.0.0.1", port, noDelay: true });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  let tagSkipped = false;
  const stream: Stream = {
    socket,
    sent: createHash("sha256"),
    received: createHash("sha256"),
    sentBytes: 0,
    receivedBytes: 0,
    closed: false,
    async stop() {
      running = false;
      socket.end();
      await waitFor(() => stream.closed, "stream to close after end()", 15_000);
      return { sent: stream.sent.digest("hex"), received: stream.received.digest("hex"), sentBytes: stream.sentBytes, receivedBytes: stream.receivedBytes };
    },
  };
  let pending = Buffer.alloc(0);
  socket.on("data", (d: Buffer) => {
    // The tagged echo target writes "S\n" first: skip it, then everything is our own bytes.
    if (!tagSkipped) {
      pending = Buffer.concat([pending, d]);
      const nl = pending.indexOf(10);
      if (nl < 0) return;
      tagSkipped = true;
      d = pending.subarray(nl + 1);
    }
    stream.received.update(d);
    stream.receivedBytes += d.length;
  });
  socket.on("close", () => (stream.closed = true));
  socket.on("error", () => undefined);
  let running = true;
  const pump = (): void => {
    while (running && !stream.closed) {
      // Keep at most 256 KiB in flight so the run measures integrity, not buffering.
      if (stream.sentBytes - stream.receivedBytes > 256 * 1024) {
        setTimeout(pump, 5);
        return;
      }
      const chunk = randomBytes(8 * 1024);
      stream.sent.update(chunk);
      stream.sentBytes += chunk.length;
      if (!socket.write(chunk)) {
        socket.once("drain", pump);
        return;
      }
    }
  };
  pump();
  return stream;
}

function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

describe("soak: random edits under traffic", { skip: !haveSshd }, () => {
  let sshd: Sshd;
  let targets: TestServer[];
  let steadyTarget: TestServer;
  let dir: string;
  let ctl: RunningController | undefined;

  before(async () => {
    sshd = await startSshd();
    targets = await Promise.all(["T0", "T1", "T2"].map((t) => startTaggedEchoServer(t)));
    steadyTarget = await startTaggedEchoServer("S");
    dir = mkdtempSync(join(tmpdir(), "tunnelctl-soak-"));
  });
  after(async () => {
    await ctl?.stop("SIGKILL");
    await Promise.all([...targets, steadyTarget].map((t) => t.close()));
    await destroySshd(sshd);
    rmSync(dir, { recursive: true, force: true });
  });

  it(`${EDITS} random edits while traffic flows (seed ${SEED})`, { timeout: 120_000 }, async () => {
    const random = prng(SEED);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
    const portPool = await Promise.all(Array.from({ length: 24 }, () => freePort()));
    const steadyPorts = await Promise.all(Array.from({ length: TUNNELS }, () => freePort()));
    const used = new Set<number>();

    // Desired state, per tunnel: a steady forward (never touched) plus a changing set.
    const tunnels = Array.from({ length: TUNNELS }, (_, i) => ({
      name: `soak-${i}`,
      file: join(dir, `soak-${i}.yaml`),
      keepalive: 2,
      forwards: new Map<number, number>(), // localPort → target index
    }));
    const text = (t: (typeof tunnels)[number]): string => {
      const local: LocalFwd[] = [
        { localPort: steadyPorts[tunnels.indexOf(t)]!, remotePort: steadyTarget.port },
        ...[...t.forwards].map(([localPort, target]) => ({ localPort, remotePort: targets[target]!.port })),
      ];
      return manifest(sshd, t.name, { local }).replace("keepalive: {interval: 2s, countMax: 3}", `keepalive: {interval: ${t.keepalive}s, countMax: 3}`);
    };
    const write = (t: (typeof tunnels)[number], content = text(t)): void => {
      // Half the writes in place, half by rename, like editors do.
      if (random() < 0.5) writeFileSync(t.file, content);
      else {
        writeFileSync(join(dir, `.${t.name}.tmp`), content);
        renameSync(join(dir, `.${t.name}.tmp`), t.file);
      }
    };

    ctl = startRun(dir, [], {});
    const pid = ctl.proc.pid!;
    const running = ctl;
    await waitFor(() => running.output().includes("controller started"), "controller started");
    const baselineFds = openFds(pid);
    for (const t of tunnels) writeFileSync(t.file, text(t));
    for (const t of tunnels) await waitForStatus(`${t.file}.status`, (d) => d[0]?.status.phase === "Ready", `${t.name} Ready`, ctl);
    const streams = await Promise.all(steadyPorts.flatMap((p) => [openStream(p), openStream(p)]));

    /** Every status says exactly the desired forwards, all Active, phase Ready. */
    const convergeAll = async (): Promise<void> => {
      for (const t of tunnels) {
        await waitForStatus(
          `${t.file}.status`,
          (d) => {
            const s = d[0]?.status;
            if (!s || s.phase !== "Ready") return false;
            const ports = s.forwards.local.map((f) => `${f.localPort}->${f.remotePort}`).sort();
            const want = [`${steadyPorts[tunnels.indexOf(t)]}->${steadyTarget.port}`, ...[...t.forwards].map(([p, i]) => `${p}->${targets[i]!.port}`)].sort();
            return JSON.stringify(ports) === JSON.stringify(want);
          },
          `${t.name} converged`,
          ctl,
          30_000,
        );
      }
    };
    let checkpoints = 0;

    let invalid: (typeof tunnels)[number] | undefined;
    for (let edit = 0; edit < EDITS; edit++) {
      // One random edit (break = this edit is done).
      do {
        const t = pick(tunnels);
        if (invalid && random() < 0.5) {
          write(invalid); // repair the broken one
          invalid = undefined;
          break;
        }
        const roll = random();
        if (roll < 0.35) {
          const free = portPool.filter((p) => !used.has(p));
          if (free.length > 0) {
            const port = pick(free);
            used.add(port);
            t.forwards.set(port, Math.floor(random() * targets.length));
          }
        } else if (roll < 0.55 && t.forwards.size > 0) {
          const port = pick([...t.forwards.keys()]);
          t.forwards.set(port, (t.forwards.get(port)! + 1) % targets.length);
        } else if (roll < 0.75 && t.forwards.size > 0) {
          const port = pick([...t.forwards.keys()]);
          t.forwards.delete(port);
          used.delete(port); // free for any tunnel at once: a move between tunnels is an edit too
        } else if (roll < 0.85) {
          writeFileSync(join(dir, `notes-${edit % 5}.txt`), `unrelated ${edit}\n`); // not a manifest
          break;
        } else if (roll < 0.93 && !invalid) {
          invalid = t;
          write(t, text(t).replace("kind: Tunnel", "kind: Tunnel\n  bogus: [") ); // YAML error
          break;
        } else if (roll < 0.96) {
          t.keepalive = t.keepalive === 2 ? 3 : 2; // session-level change
        }
        if (t !== invalid) write(t);
      } while (false);
      // Every 20 edits: converge, and check a random forward really reaches its target.
      if (edit % 20 === 19) {
        if (invalid) write(invalid);
        invalid = undefined;
        await convergeAll();
        const live = tunnels.flatMap((x) => [...x.forwards]);
        if (live.length > 0) {
          const [port, target] = pick(live);
          assert.equal(await tagOf(port), `T${target}`, `forward ${port} after edit ${edit}`);
        }
        checkpoints++;
      }
    }
    if (invalid) write(invalid);

    await convergeAll();
    // Actual equals desired: desired ports reach their target, the rest of the pool refuses.
    const desiredPorts = new Map<number, string>();
    for (const t of tunnels) for (const [p, i] of t.forwards) desiredPorts.set(p, `T${i}`);
    for (const port of portPool) {
      if (desiredPorts.has(port)) assert.equal(await tagOf(port), desiredPorts.get(port), `port ${port}`);
      else await waitFor(async () => (await probe(port)) === "ECONNREFUSED", `port ${port} refuses`);
    }

    // No connection of an untouched forward was dropped, and every byte came back intact.
    for (const s of streams) assert.equal(s.closed, false, "a connection through an untouched forward was dropped");
    const results = await Promise.all(streams.map((s) => s.stop()));
    assert.ok(checkpoints >= EDITS / 20 - 1);
    for (const r of results) {
      assert.ok(r.sentBytes > 0);
      assert.equal(r.receivedBytes, r.sentBytes);
      assert.equal(r.received, r.sent);
    }

    // Leaks: with every manifest gone, listeners, sessions and descriptors return to baseline.
    for (const t of tunnels) unlinkSync(t.file);
    for (const t of tunnels) await waitFor(() => readStatus(`${t.file}.status`) === undefined, `${t.name} status removed`);
    for (const p of [...steadyPorts, ...portPool]) assert.equal(await probe(p), "ECONNREFUSED");
    await waitFor(() => sshd.sessionPids().length === 0, "every sshd session closed", 20_000);
    await waitFor(() => openFds(pid) <= baselineFds, `fds back to ${baselineFds}`, 20_000).catch((err: Error) => {
      throw new Error(`${err.message}; now ${openFds(pid)}: ${readdirSync(`/proc/${pid}/fd`).map((fd) => { try { return readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { return "?"; } }).join(" ")}`);
    });
    assert.equal(await ctl.stop(), 0);
  });
});
