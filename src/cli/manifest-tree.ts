// Loading manifests the way `validate` checks them: files as given, directories searched, every
// error (schema, names and local binds across all files) as a `file:line:column: message` line.
import { stat } from "node:fs/promises";
import path from "node:path";
import { checkConflicts, compareManifestErrors, loadManifestFile, type ManifestError, type Tunnel } from "../manifest/index.ts";
import { START_OF_FILE } from "../manifest/errors.ts";
import { localForwardName } from "../manifest/forward-paths.ts";
import { dynamicForwardWarning } from "../manifest/semantic.ts";
import { describeFsError, displayPathOf, findFiles, isManifestName } from "./manifest-files.ts";

export interface ManifestTree {
  files: string[];
  /** Every valid tunnel (also those of files that have errors elsewhere). */
  tunnels: Tunnel[];
  /** Printable lines: paths that could not be read, then every error in file and source order. */
  errors: string[];
  /** `file:line:column: warning: ...` for what is valid but probably unwise. */
  warnings: string[];
}

export async function loadManifestTree(paths: readonly string[], homeDir: string): Promise<ManifestTree> {
  const { files, problems } = await collectFiles(paths);
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
  const warnings = tunnels.flatMap((tunnel) =>
    tunnel.spec.forwards.local.flatMap((forward, i) => {
      const warning = dynamicForwardWarning(forward);
      const at = tunnel.positions.localForwards[i] ?? START_OF_FILE;
      return warning === undefined ? [] : [`${displayPathOf(tunnel.file)}:${at.line}:${at.column}: warning: ${localForwardName(tunnel.spec, i)}: ${warning}`];
    }),
  );
  return { files, tunnels, errors: [...problems, ...errors.map((error) => error.toString())], warnings };
}

/** Each path: a file is taken as it is (whatever its name), a directory is searched. */
async function collectFiles(paths: readonly string[]): Promise<{ files: string[]; problems: string[] }> {
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
