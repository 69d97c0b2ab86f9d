// A work queue keyed by name, after controller-runtime's: one reconcile per key at a time,
// different keys in parallel (up to `concurrency`), bursts of adds coalesced into one run, and
// "check again after T" scheduling. A key added while it runs is run once more afterwards.

/** Background keys started per turn of the event loop. */
const LOW_PER_TURN = 8;

export type Reconcile = (key: string) => Promise<{ requeueAfter?: number | undefined } | void>;

export class WorkQueue {
  private readonly reconcile: Reconcile;
  private readonly concurrency: number;
  private readonly queued = new Set<string>(); // insertion-ordered: FIFO
  /** Background work (periodic resync): taken only when nothing else waits. */
  private readonly lowQueued = new Set<string>();
  private lowScheduled = false;
  private readonly running = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly onError: (key: string, err: unknown) => void;
  private stopped = false;
  private idleWaiters: Array<() => void> = [];

  constructor(reconcile: Reconcile, options: { concurrency?: number; onError: (key: string, err: unknown) => void }) {
    this.reconcile = reconcile;
    this.concurrency = options.concurrency ?? 16;
    this.onError = options.onError;
  }

  /** Reconcile `key` soon. Cancels a later scheduled run (this one covers it). */
  add(key: string): void {
    if (this.stopped) return;
    const scheduled = this.timers.get(key);
    if (scheduled) {
      clearTimeout(scheduled.timer);
      this.timers.delete(key);
    }
    if (this.running.has(key)) {
      this.dirty.add(key);
      return;
    }
    this.lowQueued.delete(key);
    this.queued.add(key);
    this.pump();
  }

  /** Reconcile `key` when nothing more urgent waits (a resync must not delay an edit). */
  addLow(key: string): void {
    if (this.stopped || this.queued.has(key) || this.running.has(key)) return;
    this.lowQueued.add(key);
    this.pump();
  }

  /** Reconcile `key` after `ms`, unless something sooner is already due. */
  addAfter(key: string, ms: number): void {
    if (this.stopped) return;
    if (this.queued.has(key) || this.lowQueued.has(key) || this.dirty.has(key)) return;
    const at = Date.now() + ms;
    const existing = this.timers.get(key);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, ms);
    timer.unref();
    this.timers.set(key, { at, timer });
  }

  /** Stop taking work and wait for what runs now to finish. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.queued.clear();
    this.lowQueued.clear();
    this.dirty.clear();
    await this.idle();
  }

  /** Resolves when nothing is queued or running. */
  idle(): Promise<void> {
    if (this.queued.size === 0 && this.lowQueued.size === 0 && this.running.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  get size(): number {
    return this.queued.size + this.lowQueued.size + this.running.size;
  }

  private pump(): void {
    while (this.running.size < this.concurrency && this.queued.size > 0) this.start(this.queued);
    // Background work starts a few keys per turn of the event loop, never in the same run of
    // microtasks: a reconcile that finds nothing to do never awaits I/O, so a thousand of them
    // started back to back held the loop ~40 ms and a file event waited behind them.
    if (this.lowQueued.size > 0 && this.queued.size === 0 && this.running.size < this.concurrency && !this.lowScheduled && !this.stopped) {
      this.lowScheduled = true;
      setImmediate(() => {
        this.lowScheduled = false;
        for (let n = 0; n < LOW_PER_TURN && this.queued.size === 0 && this.running.size < this.concurrency && this.lowQueued.size > 0; n++) {
          this.start(this.lowQueued);
        }
        this.pump();
      });
    }
  }

  private start(from: Set<string>): void {
    const key = from.values().next().value as string;
    from.delete(key);
    this.running.add(key);
    void this.runOne(key);
  }

  private async runOne(key: string): Promise<void> {
    let requeueAfter: number | undefined;
    try {
      const result = await this.reconcile(key);
      requeueAfter = result ? result.requeueAfter : undefined;
    } catch (err) {
      this.onError(key, err);
      requeueAfter = 1000;
    }
    this.running.delete(key);
    if (this.dirty.delete(key)) this.add(key);
    else if (requeueAfter !== undefined) this.addAfter(key, requeueAfter);
    this.pump();
    if (this.queued.size === 0 && this.lowQueued.size === 0 && this.running.size === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }
}
