// Child processes of the benchmark: spawned with a pipe on stdin (they exit when it closes),
// stopped by pid with a deadline, and all of them killed if the harness itself goes away.
import { spawn, type ChildProcess } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const TAIL_CHARS = 64 * 1024;

export interface Child {
  name: string;
  proc: ChildProcess;
  pid: number;
  /** The last 64 KiB of stdout + stderr. */
  tail(): string;
  /** Resolves with the first stdout line that parses as JSON and satisfies `accept`. */
  nextJson<T>(accept: (v: T) => boolean, timeoutMs: number): Promise<T>;
  /** Resolves when a stdout line contains `text` (from now on, or already seen when `seen`). */
  waitLine(text: string, timeoutMs: number): Promise<number>;
  exited: Promise<number | null>;
  /** SIGTERM (or `signal`), then SIGKILL after `graceMs`. Resolves the time it took to exit (ms). */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number>;
}

const live = new Set<Child>();
const exitHooks = new Set<() => void>();

/** Run `fn` (synchronous) if the harness exits or is interrupted before the hook is removed. */
export function atExit(fn: () => void): () => void {
  exitHooks.add(fn);
  return () => exitHooks.delete(fn);
}

function killAll(): void {
  for (const hook of exitHooks) {
    try {
      hook();
    } catch {
      // best effort
    }
  }
  for (const child of live) {
    try {
      process.kill(child.pid, "SIGKILL");
    } catch {
      // gone already
    }
  }
}
process.on("exit", killAll);
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    killAll();
    process.exit(130);
  });
}

export function spawnChild(name: string, command: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Child {
  const proc = spawn(command, args, {
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, ...options.env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  if (proc.pid === undefined) throw new Error(`Cannot start ${name}: ${command} ${args.join(" ")}`);
  let out = "";
  let partial = "";
  const lineWaiters = new Set<(line: string) => void>();
  const onText = (text: string): void => {
    out = (out + text).slice(-TAIL_CHARS);
  };
  proc.stdout!.setEncoding("utf8").on("data", (d: string) => {
    onText(d);
    const lines = (partial + d).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) for (const w of [...lineWaiters]) w(line);
  });
  proc.stderr!.setEncoding("utf8").on("data", onText);
  proc.stdin!.on("error", () => undefined);
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  const child: Child = {
    name,
    proc,
    pid: proc.pid,
    tail: () => out,
    exited,
    nextJson<T>(accept: (v: T) => boolean, timeoutMs: number): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => {
          lineWaiters.delete(onLine);
          reject(new Error(`${name}: no expected output within ${timeoutMs} ms:\n${out.slice(-4000)}`));
        }, timeoutMs);
        const onLine = (line: string): void => {
          let value: T;
          try {
            value = JSON.parse(line) as T;
          } catch {
            return;
          }
          if (!accept(value)) return;
          clearTimeout(timer);
          lineWaiters.delete(onLine);
          resolve(value);
        };
        lineWaiters.add(onLine);
        void exited.then((code) => {
          if (lineWaiters.delete(onLine)) {
            clearTimeout(timer);
            reject(new Error(`${name} exited (${code}) before the expected output:\n${out.slice(-4000)}`));
          }
        });
      });
    },
    waitLine(text: string, timeoutMs: number): Promise<number> {
      const t0 = Date.now();
      return new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => {
          lineWaiters.delete(onLine);
          reject(new Error(`${name}: no line with "${text}" within ${timeoutMs} ms:\n${out.slice(-4000)}`));
        }, timeoutMs);
        const onLine = (line: string): void => {
          if (!line.includes(text)) return;
          clearTimeout(timer);
          lineWaiters.delete(onLine);
          resolve(Date.now() - t0);
        };
        lineWaiters.add(onLine);
        void exited.then((code) => {
          if (lineWaiters.delete(onLine)) {
            clearTimeout(timer);
            reject(new Error(`${name} exited (${code}) before printing "${text}":\n${out.slice(-4000)}`));
          }
        });
      });
    },
    async stop(signal: NodeJS.Signals = "SIGTERM", graceMs = 10_000): Promise<number> {
      const t0 = Date.now();
      if (proc.exitCode === null && proc.signalCode === null) {
        try {
          process.kill(proc.pid!, signal);
        } catch {
          // gone
        }
        const timer = setTimeout(() => {
          try {
            process.kill(proc.pid!, "SIGKILL");
          } catch {
            // gone
          }
        }, graceMs);
        await exited;
        clearTimeout(timer);
      }
      proc.stdin!.destroy();
      live.delete(child);
      return Date.now() - t0;
    },
  };
  live.add(child);
  void exited.then(() => live.delete(child));
  return child;
}

/** A bench helper script (target-server.ts, relay.ts, embedded-ssh.ts) under tsx. */
export function spawnScript(name: string, script: string, args: string[] = [], nodeArgs: readonly string[] = []): Child {
  return spawnChild(name, process.execPath, [...nodeArgs, "--import", "tsx", join(ROOT, "bench", script), ...args]);
}
