// A live table of status files, for `get -w` and the demo: re-read when a status file changes
// (and every few seconds, for ages and staleness), shown only when the text differs from the last.
// On a terminal the screen is redrawn in place under a header; elsewhere tables are appended.
import { watch } from "chokidar";
import type { TunnelStatusDoc } from "../status/index.ts";
import type { CliOutput } from "./exit-codes.ts";
import { fitLines } from "./get-format.ts";
import { readStatusTree } from "./status-files.ts";

/** Clear the screen and put the cursor top left (a terminal only). */
const CLEAR_SCREEN = "\x1b[H\x1b[2J\x1b[3J";
/** Lines are cut to this width when the output is not a terminal. */
const PLAIN_WIDTH = 80;
const REFRESH_MS = 2_000;
/** Status writes come in bursts (one per tunnel of a file): look once they settle. */
const SETTLE_MS = 100;

export interface TableWatchOptions {
  root: string;
  output: CliOutput;
  render(docs: readonly TunnelStatusDoc[]): string;
  /** Set on a terminal: redraw in place under `header`, cut lines to `width()`. */
  terminal?: { header: string; width: () => number };
  /** Lines cut to PLAIN_WIDTH when not a terminal (the demo); `get -w` keeps them whole. */
  fitPlain?: boolean;
}

/** Starts watching; the returned function stops it. */
export function watchTable(options: TableWatchOptions): () => void {
  const { output, terminal } = options;
  let last = "";
  let busy = false;
  let again = false;
  const refresh = async (): Promise<void> => {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      const snapshot = await readStatusTree(options.root);
      const body = [options.render(snapshot.docs), ...snapshot.problems.map((problem) => `! ${problem}\n`)].join("");
      const width = terminal?.width() ?? (options.fitPlain ? PLAIN_WIDTH : undefined);
      const text = width === undefined ? body : fitLines(body, width);
      if (text !== last) {
        last = text;
        const stamp = `--- ${new Date().toLocaleTimeString()} ---\n`;
        output.out(terminal ? `${CLEAR_SCREEN}${terminal.header}${stamp}${text}` : `${stamp}${text}\n`);
      }
    } catch {
      // The directory is being edited or was removed: keep the last table, try again.
    } finally {
      busy = false;
      if (again) {
        again = false;
        void refresh();
      }
    }
  };
  let settle: NodeJS.Timeout | undefined;
  const soon = (): void => {
    clearTimeout(settle);
    settle = setTimeout(() => void refresh(), SETTLE_MS);
  };
  const watcher = watch(options.root, { ignoreInitial: true, ignored: (path, stats) => stats?.isFile() === true && !path.endsWith(".status") });
  watcher.on("all", soon);
  watcher.on("error", () => undefined);
  void refresh();
  const timer = setInterval(() => void refresh(), REFRESH_MS);
  return () => {
    clearInterval(timer);
    clearTimeout(settle);
    void watcher.close();
  };
}
