// The controller: watcher hints → desired state → a work queue keyed by tunnel name → reconcile
// (observe, plan, apply) → status files. The reconciler receives a name, never an event.
import { homedir } from "node:os";
import { resolve } from "node:path";
import type { Logger } from "pino";
import { formatDuration } from "../manifest/duration.ts";
import type { Tunnel, TunnelSpec } from "../manifest/types.ts";
import { plan } from "../reconcile/plan.ts";
import { buildTunnelStatus, phaseOf } from "../status/build.ts";
import { parseStatusDocs } from "../status/serialize.ts";
import type { LocalForwardObservation, RemoteForwardObservation, TunnelObservation, TunnelStatusDoc } from "../status/types.ts";
import { StatusWriter, statusPathFor } from "../status/writer.ts";
import { readFile } from "node:fs/promises";
import { setImmediate as nextTurn } from "node:timers/promises";
import { DesiredState, type LoadOptions, type NameRecord } from "./desired-state.ts";
import { Dialer } from "../ssh/dial/dialer.ts";
import { HandshakeLimiter } from "./handshake-limiter.ts";
import { WorkQueue } from "./queue.ts";
import { TunnelRuntime } from "./tunnel-runtime.ts";
import type { Controller, ControllerOptions, TunnelSnapshot } from "./types.ts";
import { ConfigWatcher } from "./config-watcher.ts";
import { DirectoryWatcher, listManifests } from "./watcher.ts";

export const DEFAULT_RESYNC_MS = 30_000;
export const DEFAULT_STATUS_INTERVAL_MS = 10_000;
/** Past chokidar's 50 ms change throttle. */
const TRAILING_READ_MS = 75;
/** Files per slice of the counter refresh (see refreshCounters()). */
const REFRESH_SLICE = 100;
/** Files per slice of a rescan (see rescan()). */
const RESCAN_SLICE = 100;
/** Status documents are confirmed (confirmedAt) every this many status intervals. */
const CONFIRM_EVERY_INTERVALS = 3;

export async function startController(options: ControllerOptions): Promise<Controller> {
  const controller = new TunnelController(options);
  await controller.start();
  return controller;
}

class TunnelController implements Controller {
  readonly started: Promise<void>;
  private markStarted!: () => void;
  private readonly dir: string;
  private readonly log: Logger;
  private readonly options: ControllerOptions;
  private readonly desired: DesiredState;
  private readonly runtimes = new Map<string, TunnelRuntime>();
  private readonly queue: WorkQueue;
  private readonly writer: StatusWriter;
  /** One for all tunnels: handshakes are limited per server, and hop sessions are shared. */
  private readonly dialer: Dialer;
  private readonly watcher: DirectoryWatcher;
  /** The ssh configs that manifests read (spec.sshConfig): an edit loads those manifests again. */
  private readonly configWatcher = new ConfigWatcher((manifest) => this.hintFile(manifest));
  private readonly lastStatus = new Map<string, TunnelStatusDoc[]>();
  private readonly statusFiles = new Set<string>();
  /** Per manifest file, the counters its status was last refreshed for. */
  private readonly lastCounters = new Map<string, string>();
  private refreshing = false;
  /** The manifest file whose status last listed each tunnel name. */
  private readonly statusFileOf = new Map<string, string>();
  private fileChain = Promise.resolve();
  private readonly pendingFiles = new Set<string>();
  private readonly finalFiles = new Set<string>();
  private readonly trailing = new Map<string, NodeJS.Timeout>();
  private rescanPending = false;
  private treeMoved = false;
  private timers: NodeJS.Timeout[] = [];
  private stopping = false;
  private isLoaded = false;
  /** Set for the final status of a clean shutdown. */
  private finished = false;
  private stopped: Promise<void> | undefined;
  /** Every status document carries this: when this controller last confirmed it (see refreshCountersPass). */
  private confirmedAtMs = Date.now();
  private readonly confirmIntervalMs: number;

  constructor(options: ControllerOptions) {
    this.options = options;
    this.dir = resolve(options.dir);
    this.log = options.logger;
    this.dialer = new Dialer({ gate: new HandshakeLimiter(options.handshakesPerServer) });
    this.started = new Promise((r) => (this.markStarted = r));
    this.desired = new DesiredState({
      dir: this.dir,
      homeDir: options.homeDir ?? homedir(),
      holdsLocal: (name, forward) => this.runtimes.get(name)?.forwards.localListening(forward) ?? false,
      emptyConfirmMs: TRAILING_READ_MS,
    });
    // Many at once: a reconcile holds its slot through the SSH handshake, and handshakes are
    // limited per server by the HandshakeLimiter, not here (16 made a 1,000-tunnel cold start idle).
    this.queue = new WorkQueue((name) => this.timedReconcile(name), {
      concurrency: 64,
      onError: (name, err) => this.log.error({ tunnel: name, err }, "reconcile failed"),
    });
    this.confirmIntervalMs = CONFIRM_EVERY_INTERVALS * (options.statusIntervalMs ?? DEFAULT_STATUS_INTERVAL_MS);
    this.writer = new StatusWriter({ statusInterval: options.statusIntervalMs ?? DEFAULT_STATUS_INTERVAL_MS, now: Date.now });
    this.watcher = new DirectoryWatcher(this.dir, {
      file: (path) => this.hintFile(path),
      rescan: (moved) => this.hintRescan(moved),
    });
  }

  async start(): Promise<void> {
    await this.watcher.start();
    await this.rescan();
    const resyncMs = this.options.resyncMs ?? DEFAULT_RESYNC_MS;
    const resync = setInterval(() => this.periodicResync(), resyncMs);
    // Counters refresh at most every status interval; the writer skips unchanged files.
    const counters = setInterval(() => void this.refreshCounters(), Math.max(250, Math.min(this.options.statusIntervalMs ?? DEFAULT_STATUS_INTERVAL_MS, 5000)));
    resync.unref();
    counters.unref();
    this.timers.push(resync, counters);
    this.isLoaded = true;
    this.markStarted();
    this.log.info({ dir: this.dir, tunnels: this.desired.names.size }, "controller started");
  }

  /** SIGHUP: rescan, and retry every tunnel and forward waiting in backoff now (a fix tunnelctl cannot see, such as a key file's mode). */
  resync(): void {
    if (this.stopping) return;
    let retried = 0;
    for (const [name, runtime] of this.runtimes) {
      if (!runtime.backingOff) continue;
      runtime.retryNow();
      this.queue.add(name);
      retried++;
    }
    this.log.info({ retried }, "backoff cleared: retrying now");
    this.hintRescan();
    this.periodicResync();
  }

  private periodicResync(): void {
    if (this.stopping) return;
    this.log.debug("resync");
    void this.watcher.check();
    for (const name of this.desired.names.keys()) this.queue.addLow(name);
  }

  get loaded(): boolean {
    return this.isLoaded;
  }

  alive(): boolean {
    return this.isLoaded && !this.stopping && this.watcher.running;
  }

  queueDepth(): number {
    return this.queue.size;
  }

  snapshot(): TunnelSnapshot[] {
    const out: TunnelSnapshot[] = [];
    for (const record of this.desired.names.values()) {
      if (record.running === undefined ? !this.noSelector() : !this.selected(record.running)) continue;
      const observation = this.observation(record, this.desired.display(record.file));
      if (this.finished) observation.stopped = true;
      // The same pure function the status file's phase and Ready condition come from.
      const { phase, ready } = phaseOf(observation);
      out.push({ name: record.name, manifest: observation.manifest, phase, ready: { ...ready, lastTransitionTime: "" }, observation });
    }
    return out;
  }

  manifestErrors(): Map<string, number> {
    const out = new Map<string, number>();
    for (const record of this.desired.files.values()) {
      out.set(record.display, record.fileErrors.length + record.documents.reduce((n, d) => n + d.errors.length, 0));
    }
    return out;
  }

  phases(): Map<string, string> {
    const out = new Map<string, string>();
    for (const docs of this.lastStatus.values()) for (const d of docs) if (d.metadata.name) out.set(d.metadata.name, d.status.phase);
    return out;
  }

  /** Idempotent: every caller waits for the same shutdown. */
  stop(): Promise<void> {
    this.stopped ??= this.shutdown();
    return this.stopped;
  }

  private async shutdown(): Promise<void> {
    this.stopping = true;
    for (const t of this.timers) clearInterval(t);
    for (const t of this.trailing.values()) clearTimeout(t);
    await this.watcher.close();
    await this.configWatcher.close();
    await this.queue.stop();
    await this.fileChain;
    await Promise.all([...this.runtimes.values()].map((r) => r.shutdown().catch(() => undefined)));
    this.finished = true;
    this.confirmedAtMs = Date.now();
    await this.writeAllStatus(true);
    this.log.info("controller stopped");
  }

  // ---- desired state ----

  /**
   * Read the file now, and once more a little after the *last* hint: chokidar drops every
   * 'change' within 50 ms of the one it reported (leading-edge throttle), so the end of a
   * truncate-then-write save, or a fix saved right after a bad edit, can arrive unannounced.
   * Timed from the first hint of a burst instead, a write just after that read was lost until
   * the next resync. The second read costs a hash when nothing changed.
   */
  private hintFile(path: string): void {
    const file = resolve(path);
    this.pendingFiles.add(file);
    this.drainHints();
    this.lookAgain(file);
  }

  /** Read `file` once more TRAILING_READ_MS from now (a later call moves the time). */
  private lookAgain(file: string): void {
    clearTimeout(this.trailing.get(file));
    const timer = setTimeout(() => {
      this.trailing.delete(file);
      this.finalFiles.add(file);
      this.drainHints();
    }, TRAILING_READ_MS);
    timer.unref();
    this.trailing.set(file, timer);
  }

  private hintRescan(moved = false): void {
    this.rescanPending = true;
    if (moved) this.treeMoved = true;
    this.drainHints();
  }

  /** File loads run one after another; bursts of hints for one file coalesce. */
  private drainHints(): void {
    this.fileChain = this.fileChain.then(async () => {
      if (this.stopping) return;
      if (this.rescanPending) {
        this.rescanPending = false;
        const moved = this.treeMoved;
        this.treeMoved = false;
        // DIR now resolves elsewhere (git-sync, a recreated DIR): the status files we remember
        // were in the old tree. Forget them and write every status file of the new tree, also
        // for files whose content did not change (a byte-identical new revision).
        if (moved) this.writer.forgetAll();
        await this.rescan();
        if (moved) await this.writeAllStatus();
      }
      await this.loadHinted();
    });
  }

  private async loadHinted(): Promise<void> {
    const files = [...this.pendingFiles];
    const finals = [...this.finalFiles];
    this.pendingFiles.clear();
    this.finalFiles.clear();
    for (const file of files) await this.loadFile(file, { deferEmpty: true });
    for (const file of finals) await this.loadFile(file);
  }

  /**
   * Every file again, in path order (the order that breaks ties between files), a slice at a
   * time with the files the watcher named meanwhile loaded between slices: an edit made while a
   * big directory is rescanned (~150 ms at 1,000 files) does not wait for the whole rescan.
   */
  private async rescan(): Promise<void> {
    const found = new Set(await listManifests(this.dir));
    const gone = [...this.desired.files.keys()].filter((file) => !found.has(file));
    const all = [...gone, ...found].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (let i = 0; i < all.length; i += RESCAN_SLICE) {
      if (this.stopping) return;
      await this.loadFiles(all.slice(i, i + RESCAN_SLICE), { trustStat: true });
      if (this.pendingFiles.size > 0 || this.finalFiles.size > 0) await this.loadHinted();
    }
  }

  private async loadFile(file: string, options: LoadOptions = {}): Promise<void> {
    await this.loadFiles([file], options);
  }

  /** Re-read files (one resolve for all of them), queue the tunnels that changed, write status. */
  private async loadFiles(files: string[], options: LoadOptions = {}): Promise<void> {
    let changed;
    try {
      changed = await this.desired.loadFiles(files, options);
      // An emptied file is believed on a later look only (DesiredState.readOne): make sure there is one.
      for (const file of this.desired.takeUnconfirmedEmpty()) if (!this.stopping) this.lookAgain(file);
    } catch (err) {
      this.log.error({ files: files.map((f) => this.desired.display(f)), err }, "cannot read manifests");
      return;
    }
    if (changed.files.size > 0) this.configWatcher.update(this.desired.sshConfigPaths());
    if (changed.names.size > 0) this.log.debug({ tunnels: [...changed.names] }, "manifests changed");
    for (const name of changed.names) this.queue.add(name);
    for (const f of changed.files) await this.writeFileStatus(f);
  }

  private selected(tunnel: Tunnel | undefined): boolean {
    const selector = this.options.selector;
    if (!selector || Object.keys(selector).length === 0) return true;
    if (!tunnel) return false;
    return Object.entries(selector).every(([k, v]) => tunnel.labels[k] === v);
  }

  /** The spec to converge to: the running version, minus local forwards lost to a conflict. */
  private effectiveSpec(record: NameRecord | undefined): TunnelSpec | undefined {
    if (!record?.running || !this.selected(record.running)) return undefined;
    const spec = record.running.spec;
    if (record.conflicts.size === 0) return spec;
    return { ...spec, forwards: { ...spec.forwards, local: spec.forwards.local.filter((_, i) => !record.conflicts.has(i)) } };
  }

  // ---- reconcile ----

  private async timedReconcile(name: string): Promise<{ requeueAfter?: number | undefined }> {
    const hook = this.options.onReconcile;
    if (!hook) return this.reconcile(name);
    const start = process.hrtime.bigint();
    const seconds = (): number => Number(process.hrtime.bigint() - start) / 1e9;
    try {
      const result = await this.reconcile(name);
      hook(result.requeueAfter !== undefined ? "requeue" : "success", seconds());
      return result;
    } catch (err) {
      hook("error", seconds());
      throw err;
    }
  }

  private async reconcile(name: string): Promise<{ requeueAfter?: number | undefined }> {
    if (this.stopping) return {};
    const record = this.desired.names.get(name);
    const spec = this.effectiveSpec(record);
    let runtime = this.runtimes.get(name);
    if (!runtime && !spec) {
      if (record) await this.writeFileStatus(record.file);
      return {};
    }
    if (!runtime) {
      runtime = new TunnelRuntime(name, {
        log: this.log.child({ tunnel: name }),
        dialer: this.dialer,
        random: Math.random,
        onChange: () => this.queue.add(name),
        onStatusChange: () => this.statusChanged(name),
      });
      this.runtimes.set(name, runtime);
    }
    const observed = await runtime.observe();
    const actions = plan(spec, observed);
    if (actions.length > 0) this.log.debug({ tunnel: name, actions: actions.map((a) => a.type) }, "reconcile");
    const requeueAfter = await runtime.apply(actions, spec, Date.now, record?.running?.generation);
    if (!spec && runtime.idle) this.runtimes.delete(name);
    // A pruned tunnel's status file goes only now, after its ports and session are closed.
    // Nothing done and the tunnel still wanted: its status has not changed (edits, conflicts and
    // errors write theirs when the file is loaded), so a resync costs no YAML.
    const statusFile = record?.file ?? this.statusFileOf.get(name);
    if (statusFile && (actions.length > 0 || !spec)) await this.writeFileStatus(statusFile);
    return { requeueAfter };
  }

  // ---- status ----

  private observation(record: NameRecord, display: string): TunnelObservation {
    const runtime = this.runtimes.get(record.name);
    const spec = record.running?.spec;
    const session = runtime?.session() ?? { state: "Closed" as const, serverVersion: "", hostKeyFingerprint: "", reconnects: 0, lastError: "" };
    const suspended = spec?.suspend ?? false;
    const lag = spec && runtime ? runtime.sessionLag(spec) : undefined;
    const local: LocalForwardObservation[] = spec ? (runtime ?? NO_RUNTIME).localObservations(spec.forwards.local, record.conflicts) : [];
    const remote: RemoteForwardObservation[] = spec ? (runtime ?? NO_RUNTIME).remoteObservations(spec.forwards.remote) : [];
    const observation: TunnelObservation = {
      name: record.name,
      manifest: display,
      // The generation that runs: while a session-level change fails, the old session's.
      generation: lag?.generation ?? record.running?.generation ?? "",
      errors: record.errors,
      suspended,
      session,
      local: suspended ? local.map(suspendedForward) : local,
      remote: suspended ? remote.map(suspendedForward) : remote,
    };
    if (lag?.failure) observation.notApplied = { generation: record.running?.generation ?? "", ...lag.failure };
    return observation;
  }

  /** Build and write the status file of one manifest (all its tunnels, in document order). */
  private async writeFileStatus(file: string, force = false): Promise<void> {
    const path = statusPathFor(file, { watchDir: this.dir, ...(this.options.statusDir ? { statusDir: this.options.statusDir } : {}) });
    const record = this.desired.files.get(file);
    const observations: TunnelObservation[] = [];
    if (record) {
      const owners = this.desired.namesOf(file);
      if (record.documents.length === 0 && record.fileErrors.length > 0) {
        for (const owner of owners) if (this.selected(owner.running)) observations.push(this.observation(owner, record.display));
        if (observations.length === 0 && this.noSelector()) observations.push(invalidObservation("", record.display, record.fileErrors));
      }
      for (const doc of record.documents) {
        const owner = doc.name !== undefined ? this.desired.names.get(doc.name) : undefined;
        if (owner && owner.file === file && owner.index === doc.index) {
          if (this.selected(owner.running) || (owner.running === undefined && this.noSelector())) {
            observations.push(this.observation(owner, record.display));
          }
        } else if (this.noSelector() || this.selected(doc.tunnel)) {
          const dup = doc.tunnel ? this.desired.duplicateErrors.get(doc.tunnel) : undefined;
          observations.push(invalidObservation(doc.name ?? "", record.display, dup ? [dup] : doc.errors.map(String)));
        }
      }
      // Tunnels this file still runs that no document names any more (a YAML error swallowed
      // their document): listed too, with the file's errors, after the documents.
      const listed = new Set(observations.map((o) => o.name));
      const swallowed = owners.filter((o) => !listed.has(o.name) && o.running !== undefined && this.selected(o.running));
      if (swallowed.length > 0) {
        // They carry every error of the file: a nameless entry for the broken document adds nothing.
        observations.splice(0, observations.length, ...observations.filter((o) => o.name !== ""), ...swallowed.map((o) => this.observation(o, record.display)));
      }
    }
    if (observations.length === 0) {
      // Tunnels being torn down keep their status file until they are gone.
      const tearingDown = (this.lastStatus.get(path) ?? []).some((d) => this.runtimes.has(d.metadata.name));
      if (tearingDown) return;
      for (const d of this.lastStatus.get(path) ?? []) if (this.statusFileOf.get(d.metadata.name) === file) this.statusFileOf.delete(d.metadata.name);
      this.lastCounters.delete(file);
      if (this.statusFiles.delete(path)) {
        this.lastStatus.delete(path);
        await this.writer.remove(path).catch((err: unknown) => this.log.warn({ path, err }, "cannot remove status file"));
      }
      return;
    }
    const confirmed = { at: new Date(this.confirmedAtMs).toISOString(), interval: formatDuration(this.confirmIntervalMs) };
    for (const o of observations) {
      o.confirmed = confirmed;
      if (this.finished) o.stopped = true;
    }
    const previous = this.lastStatus.get(path) ?? (await this.readExistingStatus(path));
    const now = new Date().toISOString();
    const docs = observations.map((o) => buildTunnelStatus(o, previous.find((p) => p.metadata.name === o.name), now));
    // These counters are now in the status (written, or held back by the writer as due): the
    // periodic refresh has nothing to do for this file until they move. Without it, the first
    // refresh after a cold start serialised every status file again (~0.8 s at 1,000 tunnels).
    this.lastCounters.set(file, this.countersSignature(file));
    this.lastStatus.set(path, docs);
    for (const o of observations) if (o.name) this.statusFileOf.set(o.name, file);
    this.statusFiles.add(path);
    try {
      if (force) await this.writer.flush(path, docs);
      else await this.writer.write(path, docs);
    } catch (err) {
      this.log.warn({ path, err }, "cannot write status file");
    }
  }

  /** Write the status of `name`'s file now (in turn with file loads), for a change no reconcile makes. */
  private statusChanged(name: string): void {
    if (this.stopping) return;
    const file = this.desired.names.get(name)?.file ?? this.statusFileOf.get(name);
    if (file === undefined) return;
    this.fileChain = this.fileChain.then(() => this.writeFileStatus(file));
  }

  private noSelector(): boolean {
    return !this.options.selector || Object.keys(this.options.selector).length === 0;
  }

  /** After a restart, keep lastTransitionTime from the status file already there. */
  private async readExistingStatus(path: string): Promise<TunnelStatusDoc[]> {
    try {
      return parseStatusDocs(await readFile(path, "utf8"));
    } catch {
      return [];
    }
  }

  private async writeAllStatus(force = false): Promise<void> {
    for (const file of this.desired.files.keys()) await this.writeFileStatus(file, force);
  }

  /**
   * The periodic counter refresh: rebuild the status of a file only when the counters of its
   * tunnels moved (a cheap signature, no YAML), then write what the writer held back as due.
   */
  private async refreshCounters(): Promise<void> {
    if (this.stopping || this.refreshing) return;
    this.refreshing = true;
    try {
      await this.refreshCountersPass();
    } finally {
      this.refreshing = false;
    }
  }

  private async refreshCountersPass(): Promise<void> {
    let looked = 0;
    // The heartbeat: every confirm interval, every document is confirmed anew (a status file
    // that no running controller confirms any more is shown as stale by `get`).
    const confirm = Date.now() - this.confirmedAtMs >= this.confirmIntervalMs;
    if (confirm) this.confirmedAtMs = Date.now();
    for (const file of [...this.desired.files.keys()]) {
      // Let an edit in between: at 1,000 tunnels one pass held the event loop ~40 ms.
      if (++looked % REFRESH_SLICE === 0) await nextTurn();
      if (this.stopping) return;
      const signature = this.countersSignature(file);
      if (!confirm && this.lastCounters.get(file) === signature) continue;
      this.lastCounters.set(file, signature);
      await this.writeFileStatus(file);
    }
    await this.writer.flushDue().catch((err: unknown) => this.log.warn({ err }, "cannot write status files"));
  }

  private countersSignature(file: string): string {
    const parts: number[] = [];
    for (const record of this.desired.namesOf(file)) {
      this.runtimes.get(record.name)?.forwards.appendCountersSignature(parts);
      parts.push(-1);
    }
    return parts.join(",");
  }
}

function invalidObservation(name: string, manifest: string, errors: string[]): TunnelObservation {
  return {
    name,
    manifest,
    generation: "",
    errors,
    suspended: false,
    session: { state: "Closed", serverVersion: "", hostKeyFingerprint: "", reconnects: 0, lastError: "" },
    local: [],
    remote: [],
  };
}

/** A suspended tunnel's forwards wait for spec.suspend to be turned off, not for a session. */
function suspendedForward<T extends LocalForwardObservation | RemoteForwardObservation>(forward: T): T {
  if (forward.state !== "Pending") return forward;
  return { ...forward, reason: "Suspended", message: "suspended (spec.suspend is true): not listening" };
}

/** Observations of a tunnel that has no runtime yet: everything Pending. */
const NO_RUNTIME = {
  localObservations: (desired: TunnelSpec["forwards"]["local"], conflicts: Map<number, string>) =>
    desired.map((spec, i) => {
      const counters = { activeConnections: 0, totalConnections: 0, failedConnections: 0, bytesIn: 0, bytesOut: 0 };
      const conflict = conflicts.get(i);
      return conflict
        ? { ...spec, ...counters, state: "Conflict" as const, reason: "Conflict", message: conflict }
        : { ...spec, ...counters, state: "Pending" as const, message: "" };
    }),
  remoteObservations: (desired: TunnelSpec["forwards"]["remote"]) =>
    desired.map((spec) => ({ ...spec, activeConnections: 0, totalConnections: 0, bytesIn: 0, bytesOut: 0, state: "Pending" as const, message: "" })),
};
