// `tunnelctl get [DIR]`: what the controller reports, from the status files under DIR (or under
// --status-dir). Reads files only: it works without a running controller, on any host.
import { stat } from "node:fs/promises";
import { serializeStatusDocs, type TunnelStatusDoc } from "../status/index.ts";
import { watchTable } from "./table-watch.ts";
import { EXIT_INVALID, EXIT_OK, type CliOutput } from "./exit-codes.ts";
import { renderTunnels } from "./get-format.ts";
import { describeFsError, displayPathOf, findFiles, isManifestName } from "./manifest-files.ts";
import type { OutputFormat } from "./options.ts";
import { readStatusTree } from "./status-files.ts";

export interface GetOptions {
  /** The manifest directory (status files beside the manifests). */
  dir: string;
  /** Where the status files are, when the controller ran with --status-dir. */
  statusDir?: string | undefined;
  output: OutputFormat;
  /** Keep running and show the table again whenever a status file changes (kubectl get -w). */
  watch?: boolean;
}

export async function runGet(options: GetOptions, output: CliOutput): Promise<number> {
  const root = options.statusDir ?? options.dir;
  try {
    if (!(await stat(root)).isDirectory()) {
      output.err(`tunnelctl get: ${root} is not a directory\n`);
      return EXIT_INVALID;
    }
  } catch (err) {
    output.err(`tunnelctl get: cannot read ${root}: ${describeFsError(err)}\n`);
    return EXIT_INVALID;
  }

  if (options.watch) return watchGet(options, root, output);
  const snapshot = await readStatusTree(root);
  for (const problem of snapshot.problems) output.err(`tunnelctl get: ${problem}\n`);
  const status = snapshot.problems.length > 0 ? EXIT_INVALID : EXIT_OK;

  if (options.output === "json") {
    output.out(`${JSON.stringify(snapshot.docs, null, 2)}\n`);
  } else if (options.output === "yaml") {
    output.out(serializeStatusDocs(snapshot.docs));
  } else if (snapshot.docs.length === 0) {
    output.out(await nothingFound(options));
  } else {
    output.out(renderTunnels(snapshot.docs, { now: Date.now(), wide: options.output === "wide" }));
  }
  return status;
}

/** No status files: say whether there are manifests that no controller reports on, and what runs one. */
async function nothingFound(options: GetOptions): Promise<string> {
  const root = options.statusDir ?? options.dir;
  const manifests = await findFiles(options.dir, isManifestName).catch(() => []);
  if (manifests.length === 0) return `No tunnels found under ${displayPathOf(root)}\n`;
  const dir = displayPathOf(options.dir);
  const statusDir = options.statusDir !== undefined ? ` --status-dir ${displayPathOf(options.statusDir)}` : "";
  return (
    `No status files under ${displayPathOf(root)}: no controller has written status for the ` +
    `${manifests.length} manifest${manifests.length === 1 ? "" : "s"} in ${dir}.\n` +
    `Start one with: tunnelctl run ${dir}${statusDir}\n`
  );
}

/** `get -w`: the table (or yaml/json) again on every change, until SIGINT or SIGTERM. */
async function watchGet(options: GetOptions, root: string, output: CliOutput): Promise<number> {
  const render = (docs: readonly TunnelStatusDoc[]): string => {
    if (options.output === "json") return `${JSON.stringify(docs, null, 2)}\n`;
    if (options.output === "yaml") return serializeStatusDocs(docs);
    if (docs.length === 0) return `No tunnels found under ${displayPathOf(root)}\n`;
    return renderTunnels(docs, { now: Date.now(), wide: options.output === "wide" });
  };
  const terminal = process.stdout.isTTY === true && (options.output === "table" || options.output === "wide");
  const stop = watchTable({ root, output, render, ...(terminal ? { terminal: { header: "", width: () => process.stdout.columns || 80 } } : {}) });
  await new Promise<void>((resolve) => {
    const done = (): void => {
      process.off("SIGINT", done);
      process.off("SIGTERM", done);
      resolve();
    };
    process.once("SIGINT", done);
    process.once("SIGTERM", done);
  });
  stop();
  return EXIT_OK;
}
