// Turns file system events into hints: "re-read this file" or "rescan everything". Events are
// never trusted as a description of what changed, only as a reason to look. Handles editors'
// rename-into-place, git checkout, ConfigMap `..data` swaps (hidden names ignored), a swapped
// symlinked DIR (its real path is compared on every rescan) and DIR removed and recreated (the
// parent is watched too).
import { watch, type FSWatcher } from "chokidar";
import { realpath, readdir, stat } from "node:fs/promises";
import { basename, dirname, join, relative, sep } from "node:path";

export interface WatcherHints {
  file(path: string): void;
  rescan(): void;
}

export function isManifestName(path: string): boolean {
  return /\.ya?ml$/i.test(path);
}

/** A path below `dir` with a hidden segment (`.git`, `..data`, `.#tmp`) is not a manifest. */
export function isHiddenBelow(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  if (rel === "" || rel.startsWith("..")) return false;
  return rel.split(sep).some((segment) => segment.startsWith("."));
}

/** Every manifest file under `dir` (following symlinks, skipping hidden names). */
export async function listManifests(dir: string): Promise<string[]> {
  const out: string[] = [];
  const seen = new Set<string>();
  const walk = async (folder: string): Promise<void> => {
    let real: string;
    try {
      real = await realpath(folder);
    } catch {
      return;
    }
    if (seen.has(real)) return; // symlink loops
    seen.add(real);
    let entries: string[];
    try {
      entries = await readdir(folder);
    } catch {
      return;
    }
    for (const name of entries.sort()) {
      if (name.startsWith(".")) continue;
      const path = join(folder, name);
      let info;
      try {
        info = await stat(path);
      } catch {
        continue; // dangling symlink or gone
      }
      if (info.isDirectory()) await walk(path);
      else if (info.isFile() && isManifestName(name)) out.push(path);
    }
  };
  await walk(dir);
  return out;
}

export class DirectoryWatcher {
  private readonly dir: string;
  private readonly hints: WatcherHints;
  private watcher: FSWatcher | undefined;
  private parentWatcher: FSWatcher | undefined;
  private watchedRealPath: string | undefined;
  private closed = false;

  constructor(dir: string, hints: WatcherHints) {
    this.dir = dir;
    this.hints = hints;
  }

  async start(): Promise<void> {
    this.parentWatcher = watch(dirname(this.dir), {
      depth: 0,
      ignoreInitial: true,
      ignored: (path: string) => path !== dirname(this.dir) && basename(path) !== basename(this.dir),
    });
    // DIR (or the symlink it is) appearing, vanishing or being swapped.
    this.parentWatcher.on("all", () => {
      void this.check();
    });
    this.parentWatcher.on("error", () => undefined);
    await this.restart();
  }

  /** Re-watch when DIR now resolves elsewhere (symlink swap) or came back; then rescan. */
  async check(): Promise<void> {
    let real: string | undefined;
    try {
      real = await realpath(this.dir);
    } catch {
      real = undefined;
    }
    if (real !== this.watchedRealPath) await this.restart();
    this.hints.rescan();
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([this.watcher?.close(), this.parentWatcher?.close()]);
  }

  private async restart(): Promise<void> {
    if (this.closed) return;
    const old = this.watcher;
    this.watcher = undefined;
    await old?.close();
    try {
      this.watchedRealPath = await realpath(this.dir);
    } catch {
      this.watchedRealPath = undefined;
      return; // not there (yet): the parent watcher tells us when it is
    }
    const watcher = watch(this.dir, {
      ignoreInitial: true,
      followSymlinks: true,
      ignored: (path: string) => isHiddenBelow(this.dir, path),
    });
    watcher.on("all", (event, path) => {
      if ((event === "add" || event === "change" || event === "unlink") && isManifestName(path) && path !== this.dir) {
        this.hints.file(path);
      } else {
        // Folders appearing or vanishing, DIR itself changing: look at everything.
        void this.check();
      }
    });
    watcher.on("error", () => void this.check());
    this.watcher = watcher;
    await new Promise<void>((resolve) => watcher.once("ready", () => resolve()));
  }
}
