// Section 4: backpressure — a target that never reads, a client that keeps sending. The
// forwarder's RSS must stay bounded by the SSH window, not grow with what the client sends.
import { connect } from "node:net";
import { sleep } from "../lib/client.ts";
import { rssBytes } from "../lib/proc.ts";
import type { Report } from "../lib/report.ts";
import type { Contender, Rig } from "../lib/rig.ts";
import { MiB, formatSize } from "../lib/stats.ts";

export interface BackpressureOptions {
  size: number;
  /** The sender counts as stalled after this long without a 'drain'. */
  stallMs: number;
  log: (line: string) => void;
}

/** Growth we accept: the 2 MiB SSH window several times over, plus V8 heap noise. */
const BOUND_MIB = 32;

interface Outcome {
  growthMiB: number;
  acceptedMiB: number;
  stalled: boolean;
}

async function flood(c: Contender, size: number, stallMs: number, deadlineMs: number): Promise<Outcome> {
  const pid = c.pid!;
  const rss0 = rssBytes(pid) ?? 0;
  let peak = rss0;
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssBytes(pid) ?? 0);
  }, 25);
  const socket = connect({ host: "127.0.0.1", port: c.port, noDelay: true });
  socket.on("error", () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  socket.write("B");
  const chunk = Buffer.alloc(MiB, 0x42);
  let queued = 0;
  let stalled = false;
  const t0 = Date.now();
  while (queued < size && Date.now() - t0 < deadlineMs) {
    if (socket.write(chunk)) {
      queued += chunk.length;
      continue;
    }
    queued += chunk.length;
    const drained = await Promise.race([
      new Promise<boolean>((r) => socket.once("drain", () => r(true))),
      sleep(stallMs).then(() => false),
    ]);
    if (!drained) {
      stalled = true;
      break;
    }
  }
  // Hold the stall a little longer: growth that continues would show here.
  await sleep(1000);
  const accepted = socket.bytesWritten - socket.writableLength;
  clearInterval(sampler);
  peak = Math.max(peak, rssBytes(pid) ?? 0);
  socket.destroy();
  await sleep(500);
  return { growthMiB: (peak - rss0) / MiB, acceptedMiB: accepted / MiB, stalled };
}

export async function runBackpressure(rig: Rig, report: Report, options: BackpressureOptions): Promise<void> {
  const { size, stallMs, log } = options;
  const ids = ["tunnelctl-L", "tunnelctl-R", "ssh-L", "ssh-R"];
  for (const id of ids) {
    const c = rig.contenders.find((x) => x.id === id);
    if (!c?.pid) continue;
    const o = await flood(c, size, stallMs, 60_000);
    log(`  backpressure ${c.label}: RSS +${o.growthMiB.toFixed(1)} MiB, sender got ${o.acceptedMiB.toFixed(1)} MiB in, ${o.stalled ? "stalled" : "NOT stalled"}`);
    report.add("backpressure", `RSS growth, target never reads (${formatSize(size)} offered)`, c.label, "MiB", [o.growthMiB]);
    report.add("backpressure", "bytes the sender got in before stalling", c.label, "MiB", [o.acceptedMiB]);
    if (c.kind === "tunnelctl") {
      report.check(`tunnelctl -${c.direction} RSS growth against a target that never reads`, o.growthMiB, `≤ ${BOUND_MIB} MiB, sender stalls`, "MiB", o.growthMiB <= BOUND_MIB && o.stalled, o.stalled ? `sender stalled after ${o.acceptedMiB.toFixed(1)} MiB` : "sender never stalled");
    }
  }
}
