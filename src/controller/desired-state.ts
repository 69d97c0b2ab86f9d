// What the manifests ask for: the loaded files, and per tunnel name the version that should run
// (the last valid one), the errors of the current version, and the local forwards it loses to
// another tunnel. Loading a file re-reads only that file; names are then resolved again across
// all files in memory (cheap: no I/O), and only the names whose record changed are returned.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { relative } from "node:path";
import { checkConflicts, loadManifestText, type LoadedDocument, type LocalForwardSpec, type Tunnel } from "../manifest/index.ts";

export interface FileRecord {
  file: string;
  display: string;
  hash: string;
  documents: LoadedDocument[];
  /** Errors of the whole file (size, encoding, YAML stream) when it yields no document. */
  fileErrors: string[];
}

export interface NameRecord {
  name: string;
  /** The file and document that own the name now. */
  file: string;
  index: number;
  /** The version that should run: the current one when valid, else the last valid one. */
  running: Tunnel | undefined;
  /** Errors of the current version (empty when valid): status phase Invalid. */
  errors: string[];
  /** Local forwards (by index in running.spec.forwards.local) lost to another tunnel. */
  conflicts: Map<number, string>;
}

export interface DesiredStateOptions {
  dir: string;
  homeDir: string;
  /** Is this local forward of this tunnel listening now? The running owner keeps a port. */
  holdsLocal: (name: string, forward: LocalForwardSpec) => boolean;
}

export class DesiredState {
  readonly files = new Map<string, FileRecord>();
  names = new Map<string, NameRecord>();
  private readonly options: DesiredStateOptions;

  constructor(options: DesiredStateOptions) {
    this.options = options;
  }

  display(file: string): string {
    return relative(this.options.dir, file) || file;
  }

  /**
   * Re-read one file. Returns the names whose desired state changed and the files whose status
   * must be rewritten; both empty when the content did not change.
   */
  async loadFile(file: string, options: { deferEmpty?: boolean } = {}): Promise<{ names: Set<string>; files: Set<string> }> {
    return this.loadFiles([file], options);
  }

  /** Re-read several files, then resolve names once (a rescan costs O(files), not O(files²)). */
  async loadFiles(files: Iterable<string>, options: { deferEmpty?: boolean } = {}): Promise<{ names: Set<string>; files: Set<string> }> {
    const changed = new Set<string>();
    for (const file of files) if (await this.readOne(file, options)) changed.add(file);
    return changed.size === 0 ? { names: new Set(), files: new Set() } : this.resolve(changed);
  }

  /** The file is gone: its tunnels are pruned. */
  removeFile(file: string): { names: Set<string>; files: Set<string> } {
    if (!this.files.delete(file)) return { names: new Set(), files: new Set() };
    return this.resolve(new Set([file]));
  }

  /** Read one file into `files`; true when what it holds changed (or it is gone). */
  private async readOne(file: string, options: { deferEmpty?: boolean }): Promise<boolean> {
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENOTDIR") return this.files.delete(file);
      // Unreadable (EACCES, EISDIR, ...): the file is Invalid, its running tunnels keep running.
      const hash = `unreadable:${code ?? "error"}`;
      if (this.files.get(file)?.hash === hash) return false;
      const display = this.display(file);
      const documents = this.files.get(file)?.documents ?? [];
      this.files.set(file, { file, display, hash, documents, fileErrors: [`${display}:1:1: cannot read the file: ${code ?? String(err)}`] });
      return true;
    }
    // An in-place save truncates first: an empty file that had tunnels is judged on the next look.
    if (options.deferEmpty && bytes.length === 0 && (this.files.get(file)?.documents.length ?? 0) > 0) return false;
    const hash = createHash("sha256").update(bytes).digest("hex");
    if (this.files.get(file)?.hash === hash) return false;
    const display = this.display(file);
    const loaded = loadManifestText(file, bytes, { displayPath: display, homeDir: this.options.homeDir });
    this.files.set(file, {
      file,
      display,
      hash,
      documents: loaded.documents,
      // Errors that belong to no document (size, encoding, stream, too many documents).
      fileErrors: loaded.errors.filter((e) => !loaded.documents.some((d) => d.errors.includes(e))).map(String),
    });
    return true;
  }

  /** Names owned by `file`, in document order. */
  namesOf(file: string): NameRecord[] {
    return this.byFile.get(file) ?? [];
  }

  private byFile = new Map<string, NameRecord[]>();

  /** Resolve names and conflicts across all files again; report what changed. */
  private resolve(changedFiles: Set<string>): { names: Set<string>; files: Set<string> } {
    const previous = this.names;
    const owner = (t: Tunnel): boolean => {
      const p = previous.get(t.name);
      return p !== undefined && p.file === t.file && p.index === t.index;
    };
    const valid = [...this.files.values()].flatMap((f) => f.documents.flatMap((d) => (d.tunnel ? [d.tunnel] : [])));
    const { duplicates } = checkConflicts(valid, (f) => this.display(f), { isRunning: owner });
    const duplicateErrors = new Map<Tunnel, string>(duplicates.map((d) => [d.tunnel, d.error.toString()]));

    const next = new Map<string, NameRecord>();
    const files = new Set<string>(changedFiles);
    for (const record of this.files.values()) {
      if (record.fileErrors.length > 0) continue; // a broken file runs nothing new
      for (const doc of record.documents) {
        if (doc.tunnel && !duplicateErrors.has(doc.tunnel)) {
          next.set(doc.tunnel.name, { name: doc.tunnel.name, file: record.file, index: doc.index, running: doc.tunnel, errors: [], conflicts: new Map() });
        }
      }
    }
    for (const record of this.files.values()) {
      for (const doc of record.documents) {
        const broken = record.fileErrors.length > 0;
        if ((doc.tunnel && !broken) || doc.name === undefined || next.has(doc.name)) continue;
        // Invalid now: the last valid version from the same file keeps running.
        const prev = previous.get(doc.name);
        const running = prev && prev.file === record.file ? prev.running : undefined;
        const errors = [...record.fileErrors, ...doc.errors.map(String)];
        next.set(doc.name, { name: doc.name, file: record.file, index: doc.index, running, errors, conflicts: new Map() });
      }
      const allErrors = [...record.fileErrors, ...record.documents.flatMap((d) => d.errors.map(String))];
      if (allErrors.length > 0) {
        // A file with errors never deletes a tunnel (a document whose name cannot be read may be
        // it): every tunnel this file ran and no longer names keeps running, reported Invalid.
        for (const prev of previous.values()) {
          if (prev.file === record.file && !next.has(prev.name)) next.set(prev.name, { ...prev, errors: allErrors, conflicts: new Map() });
        }
      }
    }

    const running = [...next.values()].flatMap((r) => (r.running ? [r.running] : []));
    const { conflicts } = checkConflicts(running, (f) => this.display(f), {
      holdsLocal: (t, forward) => this.options.holdsLocal(t.name, forward),
    });
    for (const c of conflicts) next.get(c.tunnel.name)?.conflicts.set(c.forwardIndex, c.error.toString());

    const names = new Set<string>();
    for (const [name, record] of next) {
      const prev = previous.get(name);
      if (!prev || !sameRecord(prev, record)) {
        names.add(name);
        files.add(record.file);
        if (prev) files.add(prev.file);
      }
    }
    for (const [name, prev] of previous) {
      if (!next.has(name)) {
        names.add(name);
        files.add(prev.file);
      }
    }
    // Documents that lost a duplicate name report it in their own file.
    for (const d of duplicates) files.add(d.tunnel.file);
    this.names = next;
    this.byFile = new Map();
    for (const record of next.values()) {
      const list = this.byFile.get(record.file) ?? [];
      list.push(record);
      this.byFile.set(record.file, list);
    }
    for (const list of this.byFile.values()) list.sort((a, b) => a.index - b.index);
    this.duplicateErrors = duplicateErrors;
    return { names, files };
  }

  /** Errors of a valid document that lost its name to another tunnel. */
  duplicateErrors = new Map<Tunnel, string>();
}

function sameRecord(a: NameRecord, b: NameRecord): boolean {
  if (a.file !== b.file || a.index !== b.index) return false;
  if (a.running?.generation !== b.running?.generation || a.running?.file !== b.running?.file) return false;
  if (a.errors.join("\n") !== b.errors.join("\n")) return false;
  if (a.conflicts.size !== b.conflicts.size) return false;
  for (const [k, v] of a.conflicts) if (b.conflicts.get(k) !== v) return false;
  return true;
}
