// Status file persistence: compare before writing (controllerutil.CreateOrUpdate), write
// atomically (temp file + rename), and refresh traffic counters at most every statusInterval.
// State changes are written at once; a change that touches only counters, within statusInterval
// of the last write, is remembered and written when due (flushDue / nextDueIn) or forced (flush).
import { mkdir, readFile, unlink } from "node:fs/promises";
import path from "node:path";
import writeFileAtomic from "write-file-atomic";
import { serializeStatusDocs } from "./serialize.ts";
import type { ForwardCounters, TunnelStatusDoc } from "./types.ts";

export class StatusWriteError extends Error {
  override name = "StatusWriteError";
  readonly path: string;
  constructor(message: string, filePath: string, options?: ErrorOptions) {
    super(message, options);
    this.path = filePath;
  }
}

export class StatusPathError extends Error {
  override name = "StatusPathError";
}

export interface StatusWriterOptions {
  /** Minimum ms between two writes that change only counters (--status-interval). */
  statusInterval: number;
  /** Milliseconds clock (Date.now in production, a fake one in tests). */
  now: () => number;
}

/** What this writer knows the file holds. */
interface FileRecord {
  text: string;
  /** The text with every counter zeroed, or undefined when the text came from disk, not from us. */
  shape: string | undefined;
  /** When we last wrote it; -Infinity when we found it on disk already up to date. */
  writtenAt: number;
  /** A counter-only update held back by statusInterval. */
  deferred?: { text: string; shape: string };
}

export class StatusWriter {
  readonly #statusInterval: number;
  readonly #now: () => number;
  readonly #files = new Map<string, FileRecord>();
  /** Per-path promise chain: operations on one file never interleave. */
  readonly #queues = new Map<string, Promise<unknown>>();

  constructor(options: StatusWriterOptions) {
    if (!(options.statusInterval >= 0)) {
      throw new RangeError(`Cannot use status interval ${options.statusInterval}: expected a number of ms >= 0`);
    }
    this.#statusInterval = options.statusInterval;
    this.#now = options.now;
  }

  /**
   * Writes `docs` to `filePath` unless the file already holds them. A change of counters only,
   * less than statusInterval after the last write, is deferred (returns false; see nextDueIn).
   * Resolves true when the file was written.
   */
  write(filePath: string, docs: readonly TunnelStatusDoc[]): Promise<boolean> {
    return this.#put(filePath, docs, false);
  }

  /** Writes `docs` now if the file does not hold them, whatever statusInterval says (shutdown). */
  flush(filePath: string, docs: readonly TunnelStatusDoc[]): Promise<boolean> {
    return this.#put(filePath, docs, true);
  }

  #put(filePath: string, docs: readonly TunnelStatusDoc[], force: boolean): Promise<boolean> {
    const text = serializeStatusDocs(docs);
    const shape = serializeStatusDocs(docs.map(zeroCounters));
    return this.#enqueue(filePath, async () => {
      const record = this.#files.get(filePath) ?? (await this.#readFromDisk(filePath));
      if (record?.text === text) {
        delete record.deferred;
        return false;
      }
      const countersOnly = record?.shape === shape;
      if (!force && record !== undefined && countersOnly && this.#now() - record.writtenAt < this.#statusInterval) {
        record.deferred = { text, shape };
        return false;
      }
      await this.#writeFile(filePath, text, shape);
      return true;
    });
  }

  /**
   * Ms until a deferred counter update of `filePath` is due (0: due now), or undefined when none
   * is deferred. Without a path: the soonest over all files — when to call flushDue next.
   */
  nextDueIn(filePath?: string): number | undefined {
    const now = this.#now();
    let soonest: number | undefined;
    for (const [recordPath, record] of this.#files) {
      if (record.deferred === undefined || (filePath !== undefined && recordPath !== filePath)) continue;
      const dueIn = Math.max(0, record.writtenAt + this.#statusInterval - now);
      soonest = soonest === undefined ? dueIn : Math.min(soonest, dueIn);
    }
    return soonest;
  }

  /** Writes every deferred counter update that is due. Resolves the paths written. */
  async flushDue(): Promise<string[]> {
    const now = this.#now();
    const due = [...this.#files]
      .filter(([, record]) => record.deferred !== undefined && now - record.writtenAt >= this.#statusInterval)
      .map(([filePath]) => filePath);
    const written = await Promise.all(
      due.map((filePath) =>
        this.#enqueue(filePath, async () => {
          const deferred = this.#files.get(filePath)?.deferred;
          if (deferred === undefined) return false; // superseded by a write meanwhile
          await this.#writeFile(filePath, deferred.text, deferred.shape);
          return true;
        }),
      ),
    );
    return due.filter((_, index) => written[index] === true);
  }

  /**
   * Forget what every file was last known to hold (the tree they were in was swapped): the next
   * write of each compares against the disk again.
   */
  forgetAll(): void {
    this.#files.clear();
  }

  /** Deletes the status file (a missing file is fine) and forgets it. */
  remove(filePath: string): Promise<void> {
    return this.#enqueue(filePath, async () => {
      this.#files.delete(filePath);
      try {
        await unlink(filePath);
      } catch (error) {
        if (errorCode(error) !== "ENOENT") {
          throw new StatusWriteError(`Cannot remove status file ${filePath}: ${errorMessage(error)}`, filePath, {
            cause: error,
          });
        }
      }
    });
  }

  async #readFromDisk(filePath: string): Promise<FileRecord | undefined> {
    let text: string;
    try {
      text = await readFile(filePath, "utf8");
    } catch (error) {
      const code = errorCode(error);
      if (code === "ENOENT" || code === "ENOTDIR") return undefined; // nothing there: the write reports why
      throw new StatusWriteError(`Cannot read status file ${filePath}: ${errorMessage(error)}`, filePath, { cause: error });
    }
    // Remembered as what the file holds; its shape is unknown, so any difference writes at once.
    const record: FileRecord = { text, shape: undefined, writtenAt: -Infinity };
    this.#files.set(filePath, record);
    return record;
  }

  async #writeFile(filePath: string, text: string, shape: string): Promise<void> {
    try {
      await mkdir(path.dirname(filePath), { recursive: true });
      // Atomic (temp file + rename: a reader never sees half a file) but not fsynced: a status
      // file is an observation the controller rewrites on start, and an fsync per write made a
      // 1,000-tunnel cold start wait on the disk 2,000 times (status writes are sequential).
      await writeFileAtomic(filePath, text, { fsync: false });
    } catch (error) {
      throw new StatusWriteError(`Cannot write status file ${filePath}: ${errorMessage(error)}`, filePath, {
        cause: error,
      });
    }
    this.#files.set(filePath, { text, shape, writtenAt: this.#now() });
  }

  #enqueue<T>(filePath: string, operation: () => Promise<T>): Promise<T> {
    const previous = this.#queues.get(filePath) ?? Promise.resolve();
    const result = previous.then(operation, operation);
    const settled = result.then(
      () => undefined,
      () => undefined,
    );
    this.#queues.set(filePath, settled);
    void settled.then(() => {
      if (this.#queues.get(filePath) === settled) this.#queues.delete(filePath);
    });
    return result;
  }
}

/**
 * Where the status of `manifestFile` goes: `FILE.status` beside it, or under `statusDir` with the
 * same path relative to `watchDir` (SPEC §4, --status-dir).
 */
export function statusPathFor(manifestFile: string, options: { watchDir: string; statusDir?: string }): string {
  if (options.statusDir === undefined) return `${manifestFile}.status`;
  const relative = path.relative(path.resolve(options.watchDir), path.resolve(manifestFile));
  if (relative === "" || relative.startsWith("..") || path.isAbsolute(relative)) {
    throw new StatusPathError(`Cannot place status of ${manifestFile}: it is not inside ${options.watchDir}`);
  }
  return path.join(options.statusDir, `${relative}.status`);
}

/**
 * The document with every traffic counter set to 0 and no confirmation time: equal shapes ⇒ only
 * counters (or the heartbeat) differ, and the write may wait for statusInterval.
 */
function zeroCounters(doc: TunnelStatusDoc): TunnelStatusDoc {
  const zero: ForwardCounters = { activeConnections: 0, totalConnections: 0, bytesIn: 0, bytesOut: 0 };
  return {
    ...doc,
    status: {
      ...doc.status,
      confirmedAt: "",
      forwards: {
        local: doc.status.forwards.local.map((forward) => ({ ...forward, ...zero, failedConnections: 0 })),
        remote: doc.status.forwards.remote.map((forward) => ({ ...forward, ...zero })),
        ...(doc.status.forwards.dynamic ? { dynamic: doc.status.forwards.dynamic.map((forward) => ({ ...forward, ...zero, failedConnections: 0, refusedConnections: 0 })) } : {}),
      },
    },
  };
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function errorCode(error: unknown): string | undefined {
  return error !== null && typeof error === "object" && "code" in error && typeof error.code === "string"
    ? error.code
    : undefined;
}
