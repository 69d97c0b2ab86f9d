import type { Report, Row } from "../lib/report.ts";
export interface FleetOptions {
  sizes: number[];
  scaleTunnels: number | undefined;
  edits: number;
  forwards: number;
  remoteForwards: number;
  servers: number;
  cpuProfDir: string | undefined;
  built: boolean;
  cpuPerGiB: Row[];
  log: (line: string) => void;
}
export async function runFleet(_report: Report, _options: FleetOptions): Promise<void> {}
