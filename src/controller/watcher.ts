// Turns file system events into hints: "re-read this file" or "rescan everything". Events are
// never trusted as a description of what changed, only as a reason to look. Handles editors'
// rename-into-place, git checkout, ConfigMap `..data` swaps (hidden names ignored), a swapped
// symlinked DIR (its real path is compared on every rescan) and DIR removed and recreated (the
// parent is watched too).
import { watch, type FSWatcher } from "chokidar";
import type { Dirent, Stats } from "node:fs";
import { realpath, readdir, stat } from "node:fs/promises";
import { dirname, isAbsolute, join, relative, sep } from "node:path";

const REALPATH_POLL_MS = 1000;

export interface WatcherHints {
  file(path: string): void;
  /** Look at everything; `moved`: DIR now resolves to another place (a symlink swap, recreated). */
  rescan(moved: boolean): void;
}

export function isManifestName(path: string): boolean {
  return /\.ya?ml$/i.test(path);
}

/** A path below `dir` with a hidden segment (`.git`, `..data`, `.#tmp`) is not a manifest. */
export function isHiddenBelow(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  if (rel === "" || rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel)) return false;
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
    let entries: Dirent[];
    try {
      entries = await readdir(folder, { withFileTypes: true });
    } catch {
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const name = entry.name;
      if (name.startsWith(".")) continue;
      const path = join(folder, name);
      // The entry's type comes with the listing: only a symlink (to its target) or a file system
      // that does not say (DT_UNKNOWN: every is*() false) needs a stat.
      let isDirectory = entry.isDirectory();
      let isFile = entry.isFile();
      const special = entry.isFIFO() || entry.isSocket() || entry.isBlockDevice() || entry.isCharacterDevice();
      if (entry.isSymbolicLink() || (!isDirectory && !isFile && !special)) {
        try {
          const info = await stat(path);
          isDirectory = info.isDirectory();
          isFile = info.isFile();
        } catch {
          continue; // dangling symlink or gone
        }
      }
      if (isDirectory) await walk(path);
      else if (isFile && isManifestName(name)) out.push(path);
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
  private poll: NodeJS.Timeout | undefined;

  constructor(dir: string, hints: WatcherHints) {
    this.dir = dir;
    this.hints = hints;
  }

  async start(): Promise<void> {
    // DIR (or the symlink it is) appearing, vanishing or being swapped. Any event in the parent
    // is only a reason to look where DIR resolves to now (check() is a realpath, nothing more).
    this.parentWatcher = watch(dirname(this.dir), { depth: 0, ignoreInitial: true });
    this.parentWatcher.on("all", () => void this.check(false));
    this.parentWatcher.on("error", () => undefined);
    // A symlink swapped by rename (git-sync, or a parent of DIR) raises no event for the link
    // itself, and the parent's events can come before the swap: also look every second.
    this.poll = setInterval(() => void this.check(false), REALPATH_POLL_MS);
    this.poll.unref();
    await this.restart();
  }

  /**
   * Re-watch and rescan when DIR now resolves elsewhere (symlink swap), vanished or came back.
   * With `force`, rescan anyway (periodic resync, folders appearing or vanishing).
   */
  async check(force = true): Promise<void> {
    let real: string | undefined;
    try {
      real = await realpath(this.dir);
    } catch {
      real = undefined;
    }
    const moved = real !== this.watchedRealPath;
    if (moved) await this.restart();
    if (moved || force) this.hints.rescan(moved);
  }

  /** Watching (DIR may not exist yet: then its parent is watched, which counts). */
  get running(): boolean {
    return !this.closed && this.parentWatcher !== undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.poll);
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
      // Status files, their temp files and anything else that is not a manifest get no watcher.
      ignored: (path: string, stats?: Stats) => isHiddenBelow(this.dir, path) || (stats?.isFile() === true && !isManifestName(path)),
    });
    watcher.on("all", (event, path) => {
      if (event === "add" || event === "change" || event === "unlink") {
        // Status files, editor droppings and other non-manifests are no reason to look.
        if (isManifestName(path)) this.hints.file(path);
        else if (path === this.dir) void this.check(false);
      } else {
        // Folders appearing or vanishing, DIR itself changing: look at everything.
        void this.check();
      }
    });
    watcher.on("error", () => void this.check(true));
    this.watcher = watcher;
    await new Promise<void>((resolve) => watcher.once("ready", () => resolve()));
  }
}
