// `tunnelctl validate PATH...`: load every manifest (files as given, directories searched), check
// names and local binds across all of them, print each error as file:line:column: message.
import os from "node:os";
import { EXIT_INVALID, EXIT_OK, type CliOutput } from "./exit-codes.ts";
import { loadManifestTree } from "./manifest-tree.ts";

export interface ValidateOptions {
  paths: string[];
  /** `~` in manifests expands to this. */
  homeDir?: string;
}

export async function runValidate(options: ValidateOptions, output: CliOutput): Promise<number> {
  const { files, tunnels, errors, warnings } = await loadManifestTree(options.paths, options.homeDir ?? os.homedir());
  for (const line of [...errors, ...warnings]) output.out(`${line}\n`);
  if (errors.length > 0) {
    output.err(`${count(errors.length, "error")}; ${count(files.length, "file")} checked\n`);
    return EXIT_INVALID;
  }
  const note = files.length === 0 ? " (no *.yaml or *.yml files found)" : "";
  output.out(`${count(tunnels.length, "tunnel")} in ${count(files.length, "file")} OK${note}\n`);
  return EXIT_OK;
}

export function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}
