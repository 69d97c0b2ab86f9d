// `tunnelctl validate PATH...`: load every manifest (files as given, directories searched), check
// names and local binds across all of them, print each error as file:line:column: message.
import { stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { checkConflicts, compareManifestErrors, loadManifestFile, type ManifestError, type Tunnel } from "../manifest/index.ts";
import { EXIT_INVALID, EXIT_OK, type CliOutput } from "./exit-codes.ts";
import { describeFsError, displayPathOf, findFiles, isManifestName } from "./manifest-files.ts";

export interface ValidateOptions {
  paths: string[];
  /** `~` in manifests expands to this. */
  homeDir?: string;
}

interface Collected {
  files: string[];
  /** Paths that could not be read at all, as printable lines. */
  problems: string[];
}

export async function runValidate(options: ValidateOptions, output: CliOutput): Promise<number> {
  const homeDir = options.homeDir ?? os.homedir();
  const { files, problems } = await collectFiles(options.paths);

  const errors: ManifestError[] = [];
  const tunnels: Tunnel[] = [];
  for (const file of files) {
    try {
      const result = await loadManifestFile(file, { displayPath: displayPathOf(file), homeDir });
      errors.push(...result.errors);
      for (const document of result.documents) if (document.tunnel !== undefined) tunnels.push(document.tunnel);
    } catch (err) {
      problems.push(`${displayPathOf(file)}: ${describeFsError(err)}`);
    }
  }
  const { duplicates, conflicts } = checkConflicts(tunnels, displayPathOf);
  errors.push(...duplicates.map((entry) => entry.error), ...conflicts.map((entry) => entry.error));

  errors.sort(compareManifestErrors); // stable: a file's own errors stay in source order
  const lines = [...problems, ...errors.map((error) => error.toString())];
  for (const line of lines) output.out(`${line}\n`);
  if (lines.length > 0) {
    output.err(`${count(lines.length, "error")}; ${count(files.length, "file")} checked\n`);
    return EXIT_INVALID;
  }
  const note = files.length === 0 ? " (no *.yaml or *.yml files found)" : "";
  output.out(`${count(tunnels.length, "tunnel")} in ${count(files.length, "file")} OK${note}\n`);
  return EXIT_OK;
}

/** Each path: a file is taken as it is (whatever its name), a directory is searched. */
async function collectFiles(paths: readonly string[]): Promise<Collected> {
  const files = new Set<string>();
  const problems: string[] = [];
  for (const given of paths) {
    try {
      const info = await stat(given);
      if (info.isDirectory()) for (const file of await findFiles(given, isManifestName)) files.add(path.resolve(file));
      else files.add(path.resolve(given));
    } catch (err) {
      problems.push(`${given}: ${describeFsError(err)}`);
    }
  }
  return { files: [...files].sort(), problems };
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}
