// Finding files under a directory the way the controller does (SPEC §2): recursive, names or
// folders starting with "." skipped (this also skips a ConfigMap's "..data" revision folders),
// symlinks followed (a ConfigMap's visible files are symlinks), each real folder visited once.
import { readdir, realpath, stat } from "node:fs/promises";
import path from "node:path";

export const isManifestName = (name: string): boolean => /\.ya?ml$/.test(name);
export const isStatusName = (name: string): boolean => name.endsWith(".status");

/** Files under `dir` whose name passes `accept`, sorted by path. */
export async function findFiles(dir: string, accept: (name: string) => boolean): Promise<string[]> {
  const found: string[] = [];
  const visited = new Set<string>();
  const walk = async (folder: string): Promise<void> => {
    const real = await realpath(folder);
    if (visited.has(real)) return; // a symlink loop, or two links to one folder
    visited.add(real);
    const entries = await readdir(folder, { withFileTypes: true });
    for (const entry of entries) {
      if (entry.name.startsWith(".")) continue;
      const full = path.join(folder, entry.name);
      const kind = entry.isSymbolicLink() ? await kindOf(full) : entry.isDirectory() ? "dir" : entry.isFile() ? "file" : "other";
      if (kind === "dir") await walk(full);
      else if (kind === "file" && accept(entry.name)) found.push(full);
    }
  };
  await walk(dir);
  return found.sort();
}

/** What a symlink points at; a dangling link is "other" (skipped, like a file that is not there). */
async function kindOf(file: string): Promise<"dir" | "file" | "other"> {
  try {
    const target = await stat(file);
    return target.isDirectory() ? "dir" : target.isFile() ? "file" : "other";
  } catch {
    return "other";
  }
}

/** How a path is shown: relative to the cwd when it is inside it, else as an absolute path. */
export function displayPathOf(file: string, cwd = process.cwd()): string {
  const absolute = path.resolve(file);
  const relative = path.relative(cwd, absolute);
  const outside = relative === ".." || relative.startsWith(`..${path.sep}`) || path.isAbsolute(relative);
  return relative === "" || outside ? absolute : relative;
}

/** "no such file or directory" rather than "ENOENT: no such file or directory, stat 'x'". */
export function describeFsError(err: unknown): string {
  const code = typeof err === "object" && err !== null && "code" in err ? String(err.code) : "";
  const known: Record<string, string> = {
    ENOENT: "no such file or directory",
    EACCES: "permission denied",
    ENOTDIR: "not a directory",
    ELOOP: "too many levels of symbolic links",
  };
  return known[code] ?? (err instanceof Error ? err.message : String(err));
}
