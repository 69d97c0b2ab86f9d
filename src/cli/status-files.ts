// Reading the status files the controller wrote (SPEC §4), for `get` and the demo's table.
import { readFile } from "node:fs/promises";
import { parseStatusDocs, type TunnelStatusDoc } from "../status/index.ts";
import { describeFsError, displayPathOf, findFiles, isStatusName } from "./manifest-files.ts";

export interface StatusSnapshot {
  /** Every document of every status file, files in path order, documents in file order. */
  docs: TunnelStatusDoc[];
  /** Status files found. */
  files: number;
  /** Files that could not be read or parsed: "path: reason". */
  problems: string[];
}

export async function readStatusTree(root: string): Promise<StatusSnapshot> {
  const files = await findFiles(root, isStatusName);
  const docs: TunnelStatusDoc[] = [];
  const problems: string[] = [];
  for (const file of files) {
    const shown = displayPathOf(file);
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (err) {
      // Removed between listing and reading: its manifest was deleted, not a problem.
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") problems.push(`${shown}: ${describeFsError(err)}`);
      continue;
    }
    try {
      docs.push(...parseStatusDocs(text, shown));
    } catch (err) {
      problems.push(err instanceof Error ? err.message : String(err));
    }
  }
  return { docs, files: files.length, problems };
}
