// What a section produces: rows of samples (the table), target checks (the ratios) and notes.
import { summarize, type Summary } from "./stats.ts";

export interface Row {
  section: string;
  metric: string;
  contender: string;
  unit: string;
  samples: number[];
  summary: Summary;
  /** Higher is better (throughput) or lower is better (latency, memory). */
  better: "higher" | "lower";
}

export interface Check {
  target: string;
  measured: number;
  goal: string;
  unit: string;
  met: boolean | null; // null: could not be measured (a contender or section was left out)
  detail: string;
}

export class Report {
  readonly rows: Row[] = [];
  readonly checks: Check[] = [];
  readonly notes: string[] = [];

  add(section: string, metric: string, contender: string, unit: string, samples: number[], better: "higher" | "lower" = "lower"): Row {
    const row: Row = { section, metric, contender, unit, samples, summary: summarize(samples), better };
    this.rows.push(row);
    return row;
  }

  find(section: string, metric: string, contender: string): Row | undefined {
    return this.rows.find((r) => r.section === section && r.metric === metric && r.contender === contender);
  }

  check(target: string, measured: number, goal: string, unit: string, met: boolean, detail = ""): void {
    this.checks.push({ target, measured, goal, unit, met: Number.isFinite(measured) ? met : null, detail });
  }

  note(text: string): void {
    this.notes.push(text);
  }
}
