// Summarise V8 CPU profiles (node --cpu-prof, e.g. from `npm run bench -- --cpu-prof`): the
// functions with the most self time and the most inclusive time, so a missed target points at
// code. Usage: node --import tsx bench/profile-summary.ts FILE.cpuprofile... [--top N] [--filter TEXT]
// [--from S] [--to S]
import { readFileSync } from "node:fs";
import { relative } from "node:path";
import { parseArgs } from "node:util";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: Node[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

const { values, positionals } = parseArgs({
  options: { top: { type: "string", default: "25" }, filter: { type: "string" }, from: { type: "string" }, to: { type: "string" } },
  allowPositionals: true,
});
const top = Number(values.top);
// --from/--to S: only the samples S seconds after the profile started (e.g. an idle window);
// a negative S counts back from the end.
const window = { from: values.from === undefined ? undefined : Number(values.from), to: values.to === undefined ? undefined : Number(values.to) };
const root = process.cwd();

for (const file of positionals) {
  const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // Time per sample from timeDeltas (µs); fall back to hit counts.
  const selfUs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  const lengthUs = profile.endTime - profile.startTime;
  const at = (s: number | undefined, dflt: number): number => (s === undefined ? dflt : s < 0 ? lengthUs + s * 1e6 : s * 1e6);
  const fromUs = at(window.from, 0);
  const toUs = at(window.to, lengthUs);
  let clock = 0;
  for (let i = 0; i < samples.length; i++) {
    clock += deltas[i] ?? 0;
    if (clock < fromUs || clock > toUs) continue;
    const d = deltas[i + 1] ?? deltas[i] ?? 0;
    selfUs.set(samples[i]!, (selfUs.get(samples[i]!) ?? 0) + d);
  }
  const key = (n: Node): string => {
    const f = n.callFrame;
    const where = f.url ? `${relative(root, f.url.replace(/^file:\/\//, ""))}:${f.lineNumber + 1}` : "";
    return `${f.functionName || "(anonymous)"} ${where}`.trim();
  };
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let all = 0;
  for (const [id, us] of selfUs) {
    const n = byId.get(id)!;
    all += us;
    self.set(key(n), (self.get(key(n)) ?? 0) + us);
    // Inclusive: credit every distinct function on the stack once.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const k = key(byId.get(cur)!);
      if (seen.has(k)) continue;
      seen.add(k);
      total.set(k, (total.get(k) ?? 0) + us);
    }
  }
  const idle = [...self].filter(([k]) => k.startsWith("(idle)")).reduce((s, [, v]) => s + v, 0);
  const filter = values.filter;
  const show = (title: string, m: Map<string, number>): void => {
    process.stdout.write(`\n${title}\n`);
    const rows = [...m].filter(([k]) => !filter || k.includes(filter)).sort((a, b) => b[1] - a[1]).slice(0, top);
    for (const [k, us] of rows) process.stdout.write(`${(us / 1000).toFixed(0).padStart(8)} ms ${((us / all) * 100).toFixed(1).padStart(5)} %  ${k}\n`);
  };
  process.stdout.write(`${file}: ${((profile.endTime - profile.startTime) / 1e6).toFixed(1)} s wall, ${(all / 1e6).toFixed(1)} s sampled, ${(idle / 1e6).toFixed(1)} s idle\n`);
  show("self time", self);
  show("inclusive time", total);
}
