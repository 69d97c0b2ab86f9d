// What the manifests ask for: the loaded files, and per tunnel name the version that should run
// (the last valid one), the errors of the current version, and the local forwards it loses to
// another tunnel. Loading a file re-reads only that file; names are then resolved again across
// what the change can affect (see resolve()), and only the names whose record changed are returned.
import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { relative } from "node:path";
import { checkConflicts, loadManifestText, type LoadedDocument, type LocalForwardSpec, type Tunnel } from "../manifest/index.ts";
import { readsChanged, type SshConfigRead } from "../ssh-config/load.ts";

export interface FileRecord {
  file: string;
  display: string;
  hash: string;
  documents: LoadedDocument[];
  /** Errors of the whole file (size, encoding, YAML stream) when it yields no document. */
  fileErrors: string[];
  /** What its documents' spec.sshConfig read: the file is loaded again when any of it changes. */
  sshConfigReads?: SshConfigRead[];
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

export interface LoadOptions {
  /** An emptied file that had tunnels is judged on the next look (an in-place save truncates first). */
  deferEmpty?: boolean;
  /**
   * Skip reading a file whose inode, size, mtime and ctime are what they were when it was last
   * read, if it had been left alone for a second before that read (so a write in the same
   * timestamp tick cannot hide). For the periodic resync: a stat instead of a read per file.
   */
  trustStat?: boolean;
}

export interface DesiredStateOptions {
  dir: string;
  homeDir: string;
  /** Is this local forward of this tunnel listening now? The running owner keeps a port. */
  holdsLocal: (name: string, forward: LocalForwardSpec) => boolean;
  /**
   * An emptied file that had tunnels is believed only when it read empty at least this long
   * before as well, with no content read in between (default 75 ms; see readOne).
   */
  emptyConfirmMs?: number;
  now?: () => number;
}

export class DesiredState {
  readonly files = new Map<string, FileRecord>();
  readonly names = new Map<string, NameRecord>();
  /** Errors of a valid document that lost its name to another tunnel. */
  readonly duplicateErrors = new Map<Tunnel, string>();
  private readonly options: DesiredStateOptions;
  /** Indexes that keep a change's resolve proportional to the change, not to the fleet. */
  private readonly byFile = new Map<string, NameRecord[]>();
  /** Files with a document that carries the name (valid or not). */
  private readonly filesByName = new Map<string, Set<string>>();
  /** Names whose running version binds the local port (any address). */
  private readonly namesByPort = new Map<number, Set<string>>();
  /** Position of each file in `files` (Map order: a file deleted and added again goes last). */
  private readonly fileOrder = new Map<string, number>();
  private nextFileOrder = 0;
  /** Names of the documents a load replaced or added, since the last resolve. */
  private readonly touched = new Set<string>();
  /** When each file that had tunnels was first read empty, since its last content. */
  private readonly emptySince = new Map<string, number>();
  /** Files read empty but not believed yet: the caller looks again (takeUnconfirmedEmpty). */
  private readonly unconfirmedEmpty = new Set<string>();
  /** Files whose documents read an ssh config (spec.sshConfig). */
  private readonly sshConfigUsers = new Set<string>();
  /** What stat said of each file when it was last read (see LoadOptions.trustStat). */
  private readonly statKeys = new Map<string, { key: string; settled: boolean }>();

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
  async loadFile(file: string, options: LoadOptions = {}): Promise<{ names: Set<string>; files: Set<string> }> {
    return this.loadFiles([file], options);
  }

  /** Re-read several files, then resolve once (a rescan costs O(files), not O(files²)). */
  async loadFiles(files: Iterable<string>, options: LoadOptions = {}): Promise<{ names: Set<string>; files: Set<string> }> {
    const changed = new Set<string>();
    for (const file of files) if (await this.readOne(file, options)) changed.add(file);
    return changed.size === 0 ? { names: new Set(), files: new Set() } : this.resolve(changed);
  }

  /** The file is gone: its tunnels are pruned. */
  removeFile(file: string): { names: Set<string>; files: Set<string> } {
    if (!this.deleteFile(file)) return { names: new Set(), files: new Set() };
    return this.resolve(new Set([file]));
  }

  /** Files read empty whose emptiness is not believed yet: look at them again a little later. */
  takeUnconfirmedEmpty(): string[] {
    const files = [...this.unconfirmedEmpty];
    this.unconfirmedEmpty.clear();
    return files;
  }

  /** Per manifest file that uses spec.sshConfig, the config files and folders it read. */
  sshConfigPaths(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const file of this.sshConfigUsers) {
      const reads = this.files.get(file)?.sshConfigReads ?? [];
      out.set(file, [...new Set(reads.map((read) => read.path))]);
    }
    return out;
  }

  /** Names owned by `file`, in document order. */
  namesOf(file: string): NameRecord[] {
    return this.byFile.get(file) ?? [];
  }

  /** Read one file into `files`; true when what it holds changed (or it is gone). */
  private async readOne(file: string, options: LoadOptions): Promise<boolean> {
    let bytes: Buffer;
    let seen: { key: string; settled: boolean } | undefined;
    try {
      const readAtNs = BigInt(Date.now()) * 1_000_000n;
      const info = await stat(file, { bigint: true });
      const key = `${info.ino}:${info.size}:${info.mtimeNs}:${info.ctimeNs}`;
      const known = this.statKeys.get(file);
      // A manifest that reads an ssh config depends on more than its own stat.
      if (options.trustStat && known?.key === key && known.settled && this.files.has(file) && !this.files.get(file)?.sshConfigReads) return false;
      seen = { key, settled: info.ctimeNs < readAtNs - 1_000_000_000n };
      bytes = await readFile(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENOTDIR") return this.deleteFile(file);
      // Unreadable (EACCES, EISDIR, ...): the file is Invalid, its running tunnels keep running.
      const hash = `unreadable:${code ?? "error"}`;
      if (this.files.get(file)?.hash === hash) return false;
      const display = this.display(file);
      const documents = this.files.get(file)?.documents ?? [];
      this.setFile({ file, display, hash, documents, fileErrors: [`${display}:1:1: cannot read the file: ${code ?? String(err)}`] });
      return true;
    }
    // An in-place save truncates first: an empty file that had tunnels is believed only when an
    // earlier look, long enough ago, saw it empty too. A single look can land between the
    // truncate and the write of the *next* save (a trailing re-read of the previous one, while
    // chokidar throttles the new event away): believed, it tore the tunnel down for a moment.
    if (bytes.length === 0 && (this.files.get(file)?.documents.length ?? 0) > 0) {
      const now = (this.options.now ?? Date.now)();
      const since = this.emptySince.get(file);
      if (since === undefined) this.emptySince.set(file, now);
      if (options.deferEmpty || since === undefined || now - since < (this.options.emptyConfirmMs ?? 75)) {
        this.unconfirmedEmpty.add(file);
        return false;
      }
    } else this.emptySince.delete(file);
    const hash = createHash("sha256").update(bytes).digest("hex");
    if (seen) this.statKeys.set(file, seen);
    const previous = this.files.get(file);
    if (previous?.hash === hash && !(previous.sshConfigReads && readsChanged(previous.sshConfigReads))) return false;
    const display = this.display(file);
    const loaded = loadManifestText(file, bytes, { displayPath: display, homeDir: this.options.homeDir });
    const record: FileRecord = {
      file,
      display,
      hash,
      documents: loaded.documents,
      // Errors that belong to no document (size, encoding, stream, too many documents).
      fileErrors: loaded.errors.filter((e) => !loaded.documents.some((d) => d.errors.includes(e))).map(String),
    };
    const reads = loaded.documents.flatMap((doc) => doc.sshConfig?.reads ?? []);
    if (reads.length > 0) record.sshConfigReads = reads;
    this.setFile(record);
    return true;
  }

  private setFile(record: FileRecord): void {
    this.forgetNames(this.files.get(record.file));
    if (!this.fileOrder.has(record.file)) this.fileOrder.set(record.file, this.nextFileOrder++);
    this.files.set(record.file, record);
    if (record.sshConfigReads) this.sshConfigUsers.add(record.file);
    else this.sshConfigUsers.delete(record.file);
    for (const doc of record.documents) {
      if (doc.name === undefined) continue;
      this.touched.add(doc.name);
      addTo(this.filesByName, doc.name, record.file);
    }
  }

  private deleteFile(file: string): boolean {
    const record = this.files.get(file);
    if (!record) return false;
    this.forgetNames(record);
    this.files.delete(file);
    this.sshConfigUsers.delete(file);
    this.fileOrder.delete(file);
    this.statKeys.delete(file);
    this.emptySince.delete(file);
    return true;
  }

  private forgetNames(record: FileRecord | undefined): void {
    for (const doc of record?.documents ?? []) {
      if (doc.name === undefined) continue;
      this.touched.add(doc.name);
      removeFrom(this.filesByName, doc.name, record!.file);
    }
  }

  /**
   * Resolve names and local-port conflicts again for what the changed files can affect, and
   * report what changed. A name's owner depends only on the documents that carry the name; a
   * port's owner only on the tunnels that bind that port. So the work is: the names the changed
   * files carry (and carried), the files that carry those names, the ports those names bind (and
   * bound), and the tunnels on those ports — never the whole fleet (test/unit/controller-desired-
   * state.test.ts checks it against resolving everything, over random edit sequences).
   */
  private resolve(changedFiles: Set<string>): { names: Set<string>; files: Set<string> } {
    const previous = this.names;
    const affected = new Set(this.touched);
    this.touched.clear();
    for (const file of changedFiles) for (const record of this.byFile.get(file) ?? []) affected.add(record.name);

    // Every file that carries an affected name or ran one, in `files` order.
    const relevant = new Set<string>();
    for (const name of affected) {
      for (const file of this.filesByName.get(name) ?? []) relevant.add(file);
      const prev = previous.get(name);
      if (prev) relevant.add(prev.file);
    }
    const files = [...relevant]
      .flatMap((f) => {
        const record = this.files.get(f);
        return record ? [record] : [];
      })
      .sort((a, b) => this.fileOrder.get(a.file)! - this.fileOrder.get(b.file)!);

    // Who owns each affected name: the running owner keeps it, then file order.
    const owner = (t: Tunnel): boolean => {
      const p = previous.get(t.name);
      return p !== undefined && p.file === t.file && p.index === t.index;
    };
    const valid = files.flatMap((f) => f.documents.flatMap((d) => (d.tunnel && affected.has(d.tunnel.name) ? [d.tunnel] : [])));
    const { duplicates } = checkConflicts(valid, (f) => this.display(f), { isRunning: owner });
    const lost = new Map<Tunnel, string>(duplicates.map((d) => [d.tunnel, d.error.toString()]));

    const next = new Map<string, NameRecord>();
    for (const record of files) {
      if (record.fileErrors.length > 0) continue; // a broken file runs nothing new
      for (const doc of record.documents) {
        if (doc.tunnel && affected.has(doc.tunnel.name) && !lost.has(doc.tunnel)) {
          next.set(doc.tunnel.name, { name: doc.tunnel.name, file: record.file, index: doc.index, running: doc.tunnel, errors: [], conflicts: new Map() });
        }
      }
    }
    for (const record of files) {
      const broken = record.fileErrors.length > 0;
      for (const doc of record.documents) {
        if ((doc.tunnel && !broken) || doc.name === undefined || !affected.has(doc.name) || next.has(doc.name)) continue;
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
        for (const prev of this.byFile.get(record.file) ?? []) {
          if (affected.has(prev.name) && !next.has(prev.name)) next.set(prev.name, { ...prev, errors: allErrors, conflicts: new Map() });
        }
      }
    }

    // Local ports: every port an affected name binds or bound, and every tunnel on those ports.
    const ports = new Set<number>();
    const addPorts = (t: Tunnel | undefined): void => {
      for (const f of t?.spec.forwards.local ?? []) ports.add(f.localPort);
    };
    for (const name of affected) {
      addPorts(previous.get(name)?.running);
      addPorts(next.get(name)?.running);
    }
    const neighbours = new Set<string>();
    for (const port of ports) for (const name of this.namesByPort.get(port) ?? []) if (!affected.has(name)) neighbours.add(name);
    const claimants = [...next.values(), ...[...neighbours].map((n) => previous.get(n)!)].flatMap((r) => (r.running ? [r.running] : []));
    const { conflicts } = checkConflicts(claimants, (f) => this.display(f), {
      holdsLocal: (t, forward) => this.options.holdsLocal(t.name, forward),
    });
    for (const name of neighbours) {
      // A neighbour keeps what it had on other ports; the affected ports are decided again below.
      const prev = previous.get(name)!;
      const kept = [...prev.conflicts].filter(([i]) => !ports.has(prev.running!.spec.forwards.local[i]!.localPort));
      next.set(name, { ...prev, conflicts: new Map(kept) });
    }
    for (const c of conflicts) {
      if (ports.has(c.tunnel.spec.forwards.local[c.forwardIndex]!.localPort)) next.get(c.tunnel.name)?.conflicts.set(c.forwardIndex, c.error.toString());
    }

    // Apply: every record looked at is replaced (new positions, same meaning or not); only the
    // ones whose meaning changed are reported.
    const names = new Set<string>();
    const statusFiles = new Set<string>(changedFiles);
    const refile = new Set<string>();
    const replaced = new Set([...affected, ...neighbours]);
    for (const name of replaced) {
      const prev = previous.get(name);
      const record = next.get(name);
      if (!prev || !record || !sameRecord(prev, record)) {
        names.add(name);
        if (prev) statusFiles.add(prev.file);
        if (record) statusFiles.add(record.file);
      }
      if (prev) {
        refile.add(prev.file);
        for (const f of prev.running?.spec.forwards.local ?? []) removeFrom(this.namesByPort, f.localPort, name);
      }
      if (record) {
        refile.add(record.file);
        for (const f of record.running?.spec.forwards.local ?? []) addTo(this.namesByPort, f.localPort, name);
        this.names.set(name, record);
      } else this.names.delete(name);
    }
    const replacedByFile = new Map<string, NameRecord[]>();
    for (const name of replaced) {
      const record = this.names.get(name);
      if (!record) continue;
      const list = replacedByFile.get(record.file);
      if (list) list.push(record);
      else replacedByFile.set(record.file, [record]);
    }
    for (const file of refile) {
      const list = (this.byFile.get(file) ?? []).filter((r) => !replaced.has(r.name));
      list.push(...(replacedByFile.get(file) ?? []));
      list.sort((a, b) => a.index - b.index || (a.name < b.name ? -1 : 1));
      if (list.length > 0) this.byFile.set(file, list);
      else this.byFile.delete(file);
    }
    // Documents that lost a duplicate name report it in their own file.
    for (const tunnel of [...this.duplicateErrors.keys()]) if (affected.has(tunnel.name)) this.duplicateErrors.delete(tunnel);
    for (const [tunnel, error] of lost) {
      this.duplicateErrors.set(tunnel, error);
      statusFiles.add(tunnel.file);
    }
    return { names, files: statusFiles };
  }
}

function addTo<K, V>(index: Map<K, Set<V>>, key: K, value: V): void {
  const set = index.get(key);
  if (set) set.add(value);
  else index.set(key, new Set([value]));
}

function removeFrom<K, V>(index: Map<K, Set<V>>, key: K, value: V): void {
  const set = index.get(key);
  if (!set) return;
  set.delete(value);
  if (set.size === 0) index.delete(key);
}

function sameRecord(a: NameRecord, b: NameRecord): boolean {
  if (a.file !== b.file || a.index !== b.index) return false;
  if (a.running?.generation !== b.running?.generation || a.running?.file !== b.running?.file) return false;
  if (a.errors.join("\n") !== b.errors.join("\n")) return false;
  if (a.conflicts.size !== b.conflicts.size) return false;
  for (const [k, v] of a.conflicts) if (b.conflicts.get(k) !== v) return false;
  return true;
}
