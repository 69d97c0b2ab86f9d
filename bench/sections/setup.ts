// Section 2: connection setup — connect + 1-byte echo, sequential, through every contender,
// interleaved in chunks so every contender sees the same moments of the machine.
//
// Measured twice. First on a fresh process: tunnelctl and the Node relay have served only the
// throughput section's few connections, so V8 is still compiling their per-connection path (about
// 270 functions tier up over a process's first ~800 connections, on a background thread that
// competes for the same two cores). Then again after every JIT-compiled contender has served
// `warmup` more connections, unmeasured: the steady state of a tunnel that has been up a while.
// OpenSSH and direct TCP have no JIT and get no extra warm-up. Both phases are reported and checked;
// neither replaces the other.
import { echoOnce } from "../lib/client.ts";
import { roundOrder } from "../lib/order.ts";
import type { Report } from "../lib/report.ts";
import type { Rig } from "../lib/rig.ts";
import { percentile } from "../lib/stats.ts";

export interface SetupOptions {
  connections: number;
  rounds: number;
  /** Extra unmeasured connections through each JIT-compiled contender before the warm phase (0: no warm phase). */
  warmup: number;
  log: (line: string) => void;
}

/** A connection slower than this counts as having met a delayed-ACK (Nagle) stall. */
const STALL_MS = 35;

const SETUP_METRIC = "connect + 1-byte echo";
const SETUP_METRIC_WARM = "connect + 1-byte echo, warm";

export async function runSetup(rig: Rig, report: Report, options: SetupOptions): Promise<void> {
  const { connections, rounds, warmup, log } = options;
  for (const c of rig.contenders) for (let i = 0; i < 20; i++) await echoOnce(c.port, 5_000); // first connections, unmeasured
  const fresh = await measure(rig, connections, rounds, (round) => log(`  setup (fresh process) round ${round}/${rounds}: ${Math.ceil(connections / rounds)} connections per contender`));
  reportPhase(rig, report, fresh, SETUP_METRIC, "", connections);
  if (warmup === 0) return;

  const jit = rig.contenders.filter((c) => c.kind === "tunnelctl" || c.kind === "relay");
  log(`  setup: warming up ${jit.map((c) => c.id).join(", ")}: ${warmup} connections each, unmeasured`);
  for (const c of jit) for (let i = 0; i < warmup; i++) await echoOnce(c.port, 5_000);
  const warm = await measure(rig, connections, rounds, (round) => log(`  setup (warm) round ${round}/${rounds}`));
  reportPhase(rig, report, warm, SETUP_METRIC_WARM, `, warm (after ${warmup} more connections)`, connections);
}

/**
 * `connections` sequential connections per contender, in `rounds` chunks, each round in the next
 * order of a Williams design: over the rounds every contender runs right after every other one
 * equally often. What ran just before a contender moved a p50 by as much as 43 % here (bench/lib/order.ts).
 */
async function measure(rig: Rig, connections: number, rounds: number, onRound: (round: number) => void): Promise<Map<string, number[]>> {
  const samples = new Map<string, number[]>(rig.contenders.map((c) => [c.id, []]));
  const perRound = Math.ceil(connections / rounds);
  for (let round = 0; round < rounds; round++) {
    const order = roundOrder(rig.contenders, round);
    for (const c of order) {
      const list = samples.get(c.id)!;
      const n = Math.min(perRound, connections - list.length);
      for (let i = 0; i < n; i++) list.push(await echoOnce(c.port, 5_000));
    }
    onRound(round + 1);
  }
  return samples;
}

function reportPhase(rig: Rig, report: Report, samples: Map<string, number[]>, metric: string, phase: string, connections: number): void {
  for (const c of rig.contenders) report.add("setup", metric, c.label, "ms", samples.get(c.id)!);
  for (const c of rig.contenders) {
    const stalls = samples.get(c.id)!.filter((ms) => ms >= STALL_MS).length;
    if (stalls > 0) report.note(`setup${phase}: ${c.label}: ${stalls} of ${connections} connections took ≥ ${STALL_MS} ms (delayed-ACK / Nagle stall)`);
  }

  const p50 = (id: string): number => percentile(samples.get(id) ?? [], 50);
  const sshL = p50("ssh-L");
  for (const d of ["L", "R"] as const) {
    const ours = samples.get(`tunnelctl-${d}`) ?? [];
    const ratio = p50(`tunnelctl-${d}`) / sshL;
    report.check(`tunnelctl -${d} setup p50${phase} ÷ ssh -L p50 (${sshL.toFixed(2)} ms)`, ratio, "≤ 1.5×", "×", ratio <= 1.5);
    const stalls = ours.length ? ours.filter((ms) => ms >= STALL_MS).length : NaN;
    report.check(`tunnelctl -${d} connections with a ~43 ms stall${phase}`, stalls, "0", "", stalls === 0, `p99 ${percentile(ours, 99).toFixed(2)} ms`);
  }
}
