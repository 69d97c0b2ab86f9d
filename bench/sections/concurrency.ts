// Section 3: many connections at once — N concurrent connections each echoing 1 MiB of distinct
// data; total wall time, and every echoed byte checked by hash.
import { createHash, randomBytes } from "node:crypto";
import { echoHash } from "../lib/client.ts";
import { roundOrder } from "../lib/order.ts";
import type { Report } from "../lib/report.ts";
import type { Rig } from "../lib/rig.ts";
import { formatSize } from "../lib/stats.ts";

export interface ConcurrencyOptions {
  connections: number;
  size: number;
  rounds: number;
  log: (line: string) => void;
}

export async function runConcurrency(rig: Rig, report: Report, options: ConcurrencyOptions): Promise<void> {
  const { connections, size, rounds, log } = options;
  // Distinct payloads without allocating N × size: slices of one pool at different offsets.
  const pool = randomBytes(size + connections * 4096);
  const payloads = Array.from({ length: connections }, (_, i) => pool.subarray(i * 4096, i * 4096 + size));
  const expected = payloads.map((p) => createHash("sha256").update(p).digest("hex"));
  const times = new Map<string, number[]>(rig.contenders.map((c) => [c.id, []]));
  const bad = new Map<string, number>(rig.contenders.map((c) => [c.id, 0]));
  const errors = new Map<string, string>();

  for (let round = 0; round < rounds; round++) {
    const order = roundOrder(rig.contenders, round);
    for (const c of order) {
      const t0 = performance.now();
      const results = await Promise.allSettled(payloads.map((p) => echoHash(c.port, p, 120_000)));
      const ms = performance.now() - t0;
      let failed = 0;
      results.forEach((r, i) => {
        if (r.status === "rejected") {
          failed++;
          errors.set(c.id, String((r.reason as Error).message));
        } else if (r.value !== expected[i]) failed++;
      });
      bad.set(c.id, bad.get(c.id)! + failed);
      times.get(c.id)!.push(ms);
      log(`  concurrency round ${round + 1}/${rounds} ${c.label}: ${ms.toFixed(0)} ms, ${failed} bad`);
    }
  }
  const metric = `${connections} × ${formatSize(size)} echo, total`;
  for (const c of rig.contenders) report.add("concurrency", metric, c.label, "ms", times.get(c.id)!);
  for (const c of rig.contenders) {
    const n = bad.get(c.id)!;
    if (n > 0) report.note(`concurrency: ${c.label}: ${n} connections failed or came back altered (${errors.get(c.id) ?? "hash mismatch"})`);
  }
  for (const d of ["L", "R"] as const) {
    const id = `tunnelctl-${d}`;
    const n = bad.get(id) ?? NaN;
    report.check(`tunnelctl -${d} ${connections} concurrent: connections failed or altered`, n, "0", "", n === 0, `of ${connections * rounds}`);
  }
}
