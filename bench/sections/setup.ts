// Section 2: connection setup — connect + 1-byte echo, sequential, through every contender,
// interleaved in chunks so every contender sees the same moments of the machine.
import { echoOnce } from "../lib/client.ts";
import type { Report } from "../lib/report.ts";
import type { Rig } from "../lib/rig.ts";
import { percentile } from "../lib/stats.ts";

export interface SetupOptions {
  connections: number;
  rounds: number;
  log: (line: string) => void;
}

/** A connection slower than this counts as having met a delayed-ACK (Nagle) stall. */
const STALL_MS = 35;

export async function runSetup(rig: Rig, report: Report, options: SetupOptions): Promise<void> {
  const { connections, rounds, log } = options;
  const samples = new Map<string, number[]>(rig.contenders.map((c) => [c.id, []]));
  const perRound = Math.ceil(connections / rounds);
  for (const c of rig.contenders) for (let i = 0; i < 20; i++) await echoOnce(c.port, 5_000); // warm-up, unmeasured
  for (let round = 0; round < rounds; round++) {
    const order = rig.contenders.map((_, i) => rig.contenders[(i + round) % rig.contenders.length]!);
    for (const c of order) {
      const list = samples.get(c.id)!;
      const n = Math.min(perRound, connections - list.length);
      for (let i = 0; i < n; i++) list.push(await echoOnce(c.port, 5_000));
    }
    log(`  setup round ${round + 1}/${rounds}: ${perRound} connections per contender`);
  }
  for (const c of rig.contenders) report.add("setup", "connect + 1-byte echo", c.label, "ms", samples.get(c.id)!);
  for (const c of rig.contenders) {
    const stalls = samples.get(c.id)!.filter((ms) => ms >= STALL_MS).length;
    if (stalls > 0) report.note(`setup: ${c.label}: ${stalls} of ${connections} connections took ≥ ${STALL_MS} ms (delayed-ACK / Nagle stall)`);
  }

  const p50 = (id: string): number => percentile(samples.get(id) ?? [], 50);
  const sshL = p50("ssh-L");
  for (const d of ["L", "R"] as const) {
    const ours = samples.get(`tunnelctl-${d}`) ?? [];
    const ratio = p50(`tunnelctl-${d}`) / sshL;
    report.check(`tunnelctl -${d} setup p50 ÷ ssh -L p50 (${sshL.toFixed(2)} ms)`, ratio, "≤ 1.5×", "×", ratio <= 1.5);
    const stalls = ours.length ? ours.filter((ms) => ms >= STALL_MS).length : NaN;
    report.check(`tunnelctl -${d} connections with a ~43 ms stall`, stalls, "0", "", stalls === 0, `p99 ${percentile(ours, 99).toFixed(2)} ms`);
  }
}
