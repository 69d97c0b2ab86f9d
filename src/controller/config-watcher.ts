// Watches the OpenSSH client configs that manifests use (spec.sshConfig), with their Includes and
// Include folders, and names the manifest files that read a path that changed: they are loaded
// again like an edited manifest (DesiredState compares what the config reads now with before).
import { watch, type FSWatcher } from "chokidar";
import { dirname, resolve } from "node:path";

export class ConfigWatcher {
  private readonly onManifest: (manifest: string) => void;
  private watcher: FSWatcher | undefined;
  /** Watched path → the manifest files that read it. */
  private readers = new Map<string, Set<string>>();
  private closed = false;

  constructor(onManifest: (manifest: string) => void) {
    this.onManifest = onManifest;
  }

  /** What each manifest file read now; watches exactly those paths. */
  update(readsByManifest: ReadonlyMap<string, readonly string[]>): void {
    if (this.closed) return;
    const readers = new Map<string, Set<string>>();
    for (const [manifest, paths] of readsByManifest) {
      for (const path of paths) {
        const set = readers.get(path) ?? new Set<string>();
        set.add(manifest);
        readers.set(path, set);
      }
    }
    const before = new Set(this.readers.keys());
    this.readers = readers;
    const added = [...readers.keys()].filter((path) => !before.has(path));
    const removed = [...before].filter((path) => !readers.has(path));
    if (added.length === 0 && removed.length === 0) return;
    if (!this.watcher) {
      if (added.length === 0) return;
      // Files that do not exist yet (an Include to be written) are watched too: chokidar reports their 'add'.
      this.watcher = watch(added, { ignoreInitial: true, depth: 0 });
      this.watcher.on("all", (_event, path) => this.changed(resolve(path)));
      this.watcher.on("error", () => undefined);
      return;
    }
    if (added.length > 0) this.watcher.add(added);
    if (removed.length > 0) this.watcher.unwatch(removed);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.watcher?.close();
  }

  private changed(path: string): void {
    // An event on a file in a listed Include folder concerns the readers of that folder too.
    const manifests = new Set([...(this.readers.get(path) ?? []), ...(this.readers.get(dirname(path)) ?? [])]);
    for (const manifest of manifests) this.onManifest(manifest);
  }
}
