// The one table (rows: n, median, p99, min, max), the target checks, and the Markdown of RESULTS.md.
import type { MachineInfo } from "./proc.ts";
import type { Check, Report, Row } from "./report.ts";

export function num(v: number): string {
  if (!Number.isFinite(v)) return "-";
  const a = Math.abs(v);
  if (a >= 1000) return v.toFixed(0);
  if (a >= 100) return v.toFixed(1);
  if (a >= 10) return v.toFixed(2);
  if (a >= 1) return v.toFixed(2);
  if (a === 0) return "0";
  return v.toFixed(3);
}

function pad(cells: string[][], right: boolean[]): string[] {
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  return cells.map((r) => r.map((c, i) => (right[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  ").trimEnd());
}

function rowCells(r: Row): string[] {
  const s = r.summary;
  return [r.section, r.metric, r.contender, String(s.n), num(s.median), s.n >= 20 ? num(s.p99) : "", num(s.min), num(s.max), r.unit];
}

const HEAD = ["section", "metric", "contender", "n", "median", "p99", "min", "max", "unit"];
const RIGHT = [false, false, false, true, true, true, true, true, false];

export function formatTable(report: Report): string {
  return pad([HEAD, ...report.rows.map(rowCells)], RIGHT).join("\n");
}

function checkCells(c: Check): string[] {
  const verdict = c.met === null ? "n/a" : c.met ? "met" : "MISSED";
  return [c.target, `${num(c.measured)}${c.unit === "×" ? "×" : c.unit ? ` ${c.unit}` : ""}`, c.goal, verdict, c.detail];
}

export function formatChecks(report: Report): string {
  if (report.checks.length === 0) return "";
  return pad([["target", "measured", "goal", "verdict", ""], ...report.checks.map(checkCells)], [false, true, false, false, false]).join("\n");
}

export function formatText(report: Report, machine: MachineInfo, header: string): string {
  const parts = [header, machineLine(machine), "", formatTable(report)];
  const checks = formatChecks(report);
  if (checks) parts.push("", "Targets (reported, never enforced):", checks);
  if (report.notes.length) parts.push("", "Notes:", ...report.notes.map((n) => `- ${n}`));
  return `${parts.join("\n")}\n`;
}

export function machineLine(m: MachineInfo): string {
  return `machine: ${m.nproc} × ${m.cpuModel}, ${m.memTotalGiB} GiB, Linux ${m.kernel}; node ${m.node}; ${m.openssh}; ssh2 ${m.ssh2}; load average at start ${m.loadAverageAtStart}`;
}

const mdEscape = (s: string): string => s.replace(/\|/g, "\\|");

export function formatMarkdown(report: Report, machine: MachineInfo, command: string, startedAt: string, durationS: number): string {
  const lines = [
    "# tunnelctl benchmark results",
    "",
    `Latest full run: \`${command}\`, started ${startedAt}, took ${durationS.toFixed(0)} s.`,
    "",
    "## Machine",
    "",
    `- CPU: ${machine.nproc} × ${machine.cpuModel} (nproc ${machine.nproc})`,
    `- Memory: ${machine.memTotalGiB} GiB; Linux ${machine.kernel}`,
    `- Node ${machine.node}; ${machine.openssh}; ssh2 ${machine.ssh2}`,
    `- Load average when the run started: ${machine.loadAverageAtStart} (other work on the machine shows up as spread between min and max)`,
    "",
    "## Results",
    "",
    "| section | metric | contender | n | median | p99 | min | max | unit |",
    "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ...report.rows.map((r) => `| ${rowCells(r).map(mdEscape).join(" | ")} |`),
    "",
  ];
  if (report.checks.length) {
    lines.push("## Targets", "", "| target | measured | goal | verdict | detail |", "| --- | ---: | --- | --- | --- |");
    lines.push(...report.checks.map((c) => `| ${checkCells(c).map(mdEscape).join(" | ")} |`), "");
  }
  if (report.notes.length) lines.push("## Notes", "", ...report.notes.map((n) => `- ${n}`), "");
  return lines.join("\n");
}
