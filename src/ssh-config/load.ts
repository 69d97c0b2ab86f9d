// Reading an OpenSSH client config: the file, its Includes (spliced in place, as ssh reads them),
// and where every directive came from (file and line), for errors. Parsing is the ssh-config
// package's; the file system is passed in (`SshConfigIo`), so tests and the manifest loader
// choose how files are read, and every file and folder read is recorded for change detection.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import SSHConfig, { glob, LineType, type Line } from "ssh-config";
import { SshConfigError } from "./errors.ts";
import { expandTilde } from "./tokens.ts";

/** OpenSSH's READCONF_MAX_DEPTH. */
const MAX_INCLUDE_DEPTH = 16;

export interface SshConfigIo {
  /** Throws (ENOENT, EACCES, ...) like readFileSync. */
  readFile(file: string): string;
  /** Names in a folder; throws like readdirSync. */
  readDir(dir: string): string[];
}

export const nodeSshConfigIo: SshConfigIo = {
  readFile: (file) => readFileSync(file, "utf8"),
  readDir: (dir) => readdirSync(dir),
};

export interface LoadedSshConfig {
  /** The config file (its Includes are in `config`). */
  file: string;
  /** The config as ssh sees it: Includes replaced by what they include. */
  config: SSHConfig;
  /** Where a directive of `config` was written. */
  where(line: Line): { file: string; line: number };
}

export interface SshConfigRead {
  kind: "file" | "dir";
  path: string;
  /** The text, or the folder's sorted names joined by "\n"; undefined when missing. */
  content: string | undefined;
}

/** One hash over what was read: the same reads and contents give the same digest. */
export function digestReads(reads: readonly SshConfigRead[]): string {
  const hash = createHash("sha256");
  for (const read of reads) hash.update(`${read.kind}\0${read.path}\0${read.content ?? "\u0001missing"}\0`);
  return hash.digest("hex");
}

/** `io` that records every file read and folder listed (missing ones too), for change detection. */
export function recordingIo(io: SshConfigIo): { io: SshConfigIo; reads: SshConfigRead[] } {
  const reads: SshConfigRead[] = [];
  const record = <T>(kind: SshConfigRead["kind"], path: string, read: () => T, show: (value: T) => string): T => {
    try {
      const value = read();
      reads.push({ kind, path, content: show(value) });
      return value;
    } catch (err) {
      reads.push({ kind, path, content: undefined });
      throw err;
    }
  };
  return {
    reads,
    io: {
      readFile: (file) => record("file", file, () => io.readFile(file), (text) => text),
      readDir: (dir) => record("dir", dir, () => io.readDir(dir), (names) => [...names].sort().join("\n")),
    },
  };
}

/** Read the same things again and say whether anything differs. */
export function readsChanged(reads: readonly SshConfigRead[], io: SshConfigIo = nodeSshConfigIo): boolean {
  const again = recordingIo(io);
  for (const read of reads) {
    try {
      if (read.kind === "file") again.io.readFile(read.path);
      else again.io.readDir(read.path);
    } catch {
      // recorded as missing
    }
  }
  return digestReads(again.reads) !== digestReads(reads);
}

/** Load `file` and its Includes; throws SshConfigError naming the file and line of any problem. */
export function loadSshConfig(file: string, homeDir: string, io: SshConfigIo = nodeSshConfigIo): LoadedSshConfig {
  const positions = new WeakMap<Line, { file: string; line: number }>();

  const readConfigFile = (name: string, required: boolean): Line[] | undefined => {
    let text: string;
    try {
      text = io.readFile(name);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (!required && code === "ENOENT") return undefined; // ssh skips an Include that matches nothing
      throw new SshConfigError(name, 0, `cannot read: ${code ?? (err as Error).message}`, { cause: err });
    }
    let parsed: SSHConfig;
    try {
      parsed = SSHConfig.parse(text);
    } catch (err) {
      throw new SshConfigError(name, 0, `cannot parse: ${(err as Error).message}`, { cause: err });
    }
    locate(parsed, text, name, positions);
    return [...parsed];
  };

  const expand = (lines: Line[], file: string, depth: number, inSection: boolean): Line[] => {
    const out: Line[] = [];
    for (const line of lines) {
      if (line.type !== LineType.DIRECTIVE) {
        out.push(line);
        continue;
      }
      if (/^include$/i.test(line.param)) {
        const at = positions.get(line)?.line ?? 0;
        if (depth >= MAX_INCLUDE_DEPTH) throw new SshConfigError(file, at, `Include nested more than ${MAX_INCLUDE_DEPTH} deep (an Include loop?)`);
        for (const target of includeTargets(valuesOf(line), file, at, homeDir, io)) {
          const included = readConfigFile(target, false);
          if (!included) continue;
          const expanded = expand(included, target, depth + 1, inSection);
          if (inSection && expanded.some((l) => l.type === LineType.DIRECTIVE && "config" in l)) {
            throw new SshConfigError(file, at, `Include inside a Host or Match block of a file with its own Host or Match blocks (${target}) is not supported`);
          }
          out.push(...expanded);
        }
        continue;
      }
      if ("config" in line) line.config.splice(0, line.config.length, ...expand([...line.config], file, depth, true));
      out.push(line);
    }
    return out;
  };

  const top = readConfigFile(file, true)!;
  const config = new SSHConfig();
  config.push(...expand(top, file, 0, false));
  return { file, config, where: (line) => positions.get(line) ?? { file, line: 0 } };
}

/** The values of a directive, unquoted (`Include a b "c d"` → a, b, c d). */
export function valuesOf(line: { value: string | Array<{ val: string }> }): string[] {
  return typeof line.value === "string" ? [line.value] : line.value.map((part) => part.val);
}

/**
 * Files an Include names, in order: `~` expanded, relative paths in ~/.ssh (as ssh does for a user
 * config), `*` and `?` in the last component matched against the folder, sorted like glob(3).
 */
function includeTargets(patterns: string[], file: string, line: number, homeDir: string, io: SshConfigIo): string[] {
  return patterns.flatMap((pattern) => {
    let expanded: string;
    try {
      expanded = expandTilde(pattern, homeDir);
    } catch (err) {
      throw new SshConfigError(file, line, `Include ${(err as Error).message}`);
    }
    const full = path.isAbsolute(expanded) ? expanded : path.join(homeDir, ".ssh", expanded);
    const dir = path.dirname(full);
    const base = path.basename(full);
    if (/[*?[]/.test(dir)) throw new SshConfigError(file, line, `Include ${pattern}: wildcards are supported in the file name only`);
    if (!/[*?]/.test(base)) return [full];
    let names: string[];
    try {
      names = [...io.readDir(dir)].sort();
    } catch {
      return []; // a folder that is not there includes nothing
    }
    return names.filter((name) => !name.startsWith(".") && glob(base, name)).map((name) => path.join(dir, name));
  });
}

/**
 * Give every directive of `parsed` its line in `text`. The parser keeps no positions, but its
 * directives are the file's directive lines in order (ssh_config has no continuation lines), so
 * the n-th directive is the n-th line that is neither blank nor a comment.
 */
function locate(parsed: SSHConfig, text: string, file: string, positions: WeakMap<Line, { file: string; line: number }>): void {
  const lines: Array<{ keyword: string; line: number }> = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const trimmed = raw.trimStart();
    if (trimmed === "" || trimmed.startsWith("#")) return;
    lines.push({ keyword: (/^[^\s=]+/.exec(trimmed)?.[0] ?? "").toLowerCase(), line: index + 1 });
  });
  let next = 0;
  const walk = (config: readonly Line[]): boolean => {
    for (const line of config) {
      if (line.type !== LineType.DIRECTIVE) continue;
      const at = lines[next++];
      if (!at || at.keyword !== line.param.toLowerCase()) return false; // positions stay unknown (line 0)
      positions.set(line, { file, line: at.line });
      if ("config" in line && !walk(line.config)) return false;
    }
    return true;
  };
  walk(parsed);
}
