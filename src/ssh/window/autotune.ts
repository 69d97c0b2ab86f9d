// The mechanism under decideWindow(): a hook on one ssh2 channel instance, shaped like the option
// it could be upstream (a per-channel "window policy" called where ssh2 decides its own top-up).
//
// ssh2 1.17's CHANNEL_DATA handler subtracts the packet from `channel.incoming.window`, calls
// `channel.push(data)` and, when push returned true and the window is at or below 1 MiB, tops it
// up to 2 MiB (`windowAdjust`, lib/Channel.js); `_read` does the same once a backpressured reader
// drains. We wrap the instance's `push` (runs after the subtraction, before ssh2's own check) and
// `_read`, and send extra CHANNEL_WINDOW_ADJUSTs through `_protocol.channelWindowAdjust` when the
// policy grows or refills the window. ssh2's top-up never shrinks a larger window (its amount is
// ≤ 0 there), so the two never fight. All of this touches ssh2 internals: it runs only on the
// pinned ssh2 version whose internals were checked; anywhere else autotuning is off and ssh2's
// fixed window applies unchanged (never a broken data path).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { Duplex } from "node:stream";
import { BASE_WINDOW, DEFAULT_MAX_WINDOW, DEFAULT_WINDOW_BUDGET, SOCKET_BUFFER_ALLOWANCE, WindowBudget, decideWindow, refillsEarly, topUp } from "./policy.ts";

const require = createRequire(import.meta.url);

/** The ssh2 version whose window internals this hook was written and tested against. */
export const PINNED_SSH2_VERSION = "1.17.0";

interface ChannelInternals {
  incoming?: { window?: unknown };
  outgoing?: { id?: unknown; state?: unknown };
  _client?: { _protocol?: { channelWindowAdjust?: unknown } };
  push?: unknown;
  _read?: unknown;
}

/** Why autotuning cannot run with the installed ssh2, or undefined when it can. */
function checkSsh2(): string | undefined {
  try {
    const version = (require("ssh2/package.json") as { version?: string }).version;
    if (version !== PINNED_SSH2_VERSION) return `ssh2 ${version ?? "unknown"} is not the pinned ${PINNED_SSH2_VERSION}`;
    const channelModule = require("ssh2/lib/Channel.js") as { MAX_WINDOW?: unknown; WINDOW_THRESHOLD?: unknown; Channel?: { prototype?: Record<string, unknown> } };
    if (channelModule.MAX_WINDOW !== BASE_WINDOW || channelModule.WINDOW_THRESHOLD !== BASE_WINDOW / 2) {
      return "ssh2's channel window constants are not the expected 2 MiB / 1 MiB";
    }
    if (typeof channelModule.Channel?.prototype?._read !== "function") return "ssh2's Channel has no _read";
    return undefined;
  } catch (err) {
    return `ssh2's internals could not be read (${(err as Error).message})`;
  }
}

/**
 * What a local reader that never reads can hide in the kernel before Node sees backpressure: the
 * most our socket's send buffer autotunes to (tcp_wmem max) plus the reader's receive buffer as it
 * starts (tcp_rmem default), plus 512 KiB for Node's own buffer and margin. 4.6 MiB on a stock
 * Linux (4 MiB + 128 KiB: 3.97 MiB measured); SOCKET_BUFFER_ALLOWANCE where /proc cannot be read.
 * A host tuned for bigger buffers gets a bigger allowance, so a stalled reader still never grows.
 */
export function kernelSocketAllowance(read: (path: string) => string = (path) => readFileSync(path, "utf8")): number {
  try {
    const wmemMax = Number(read("/proc/sys/net/ipv4/tcp_wmem").trim().split(/\s+/)[2]);
    const rmemDefault = Number(read("/proc/sys/net/ipv4/tcp_rmem").trim().split(/\s+/)[1]);
    if (!(wmemMax > 0) || !(rmemDefault > 0)) return SOCKET_BUFFER_ALLOWANCE;
    return wmemMax + rmemDefault + 512 * 1024;
  } catch {
    return SOCKET_BUFFER_ALLOWANCE;
  }
}

const ssh2Problem = checkSsh2();
/** Read from /proc when the first channel is tuned (not at import: `validate`, `get`, `diff` never need it). */
let allowance: number | undefined;
const budget = new WindowBudget(DEFAULT_WINDOW_BUDGET);
const windows = new WeakMap<object, ChannelWindow>();
let channelProblem: string | undefined;

/** Why receive-window autotuning is off in this process (undefined: it is on). */
export function autotuneDisabledReason(): string | undefined {
  return ssh2Problem ?? channelProblem;
}

/** Set the process-wide budget for window growth (bytes above the base window, all channels together). */
export function setWindowBudget(bytes: number): void {
  budget.resize(bytes);
}

/** The process-wide budget: its total and what open channels hold of it now. */
export function windowBudgetUsage(): { total: number; used: number } {
  return { total: budget.total, used: budget.total - budget.left };
}

export interface TuneOptions {
  /** The session's round-trip time now, ms (undefined until measured). */
  rttMs: () => number | undefined;
  /** Per-channel cap, bytes (BASE_WINDOW or less: never grow). */
  maxWindow?: number | undefined;
}

const channelOfSocket = new WeakMap<object, object>();
/** A waiting chunk whose buffer is larger than itself by more than this is copied out of it. */
const COMPACT_SLACK = 1024;

/** Remember which channel a local socket is joined to (splice), for windowOfSocket(). */
export function linkSocket(socket: object, channel: object): void {
  channelOfSocket.set(socket, channel);
}

/** The receive window of the channel joined to `socket`: what is opened to the peer, else ssh2's fixed 2 MiB. */
export function windowOfSocket(socket: object): number {
  const channel = channelOfSocket.get(socket);
  if (!channel) return 0; // not joined yet (waiting for its channel)
  return windows.get(channel)?.opened ?? BASE_WINDOW;
}

/** Adapt the receive window of `channel` (a direct-tcpip or forwarded-tcpip channel) from now on. */
export function tuneWindow(channel: Duplex, options: TuneOptions): void {
  const max = options.maxWindow ?? DEFAULT_MAX_WINDOW;
  if (ssh2Problem !== undefined || max <= BASE_WINDOW) return;
  const internals = channel as unknown as ChannelInternals;
  if (
    typeof internals.incoming?.window !== "number" ||
    typeof internals.outgoing?.id !== "number" ||
    typeof internals._client?._protocol?.channelWindowAdjust !== "function" ||
    typeof internals.push !== "function" ||
    typeof internals._read !== "function"
  ) {
    channelProblem ??= "an ssh2 channel lacks the window internals (incoming.window, outgoing.id, channelWindowAdjust)";
    return;
  }
  allowance ??= kernelSocketAllowance();
  windows.set(channel, new ChannelWindow(channel, options.rttMs, max, allowance));
}

type Internal = Duplex & {
  incoming: { window: number };
  outgoing: { id: number; state: string };
  _client: { _protocol: { channelWindowAdjust(id: number, amount: number): void } };
};

class ChannelWindow {
  /** What this channel may grow to (its share of the budget is taken). */
  target = BASE_WINDOW;
  /** What is opened to the peer: top-ups restore it; it follows target as data arrives. */
  opened = BASE_WINDOW;
  /** Bytes pushed to the reader over the channel's life (taken, or still in its buffer). */
  private received = 0;
  /** What the reader had taken when the measurement began. */
  private takenAtStart = 0;
  private since = performance.now();
  private periodWindow = BASE_WINDOW;
  private closed = false;
  private readonly channel: Internal;
  private readonly rttMs: () => number | undefined;
  private readonly max: number;
  private readonly allowance: number;

  constructor(channel: Duplex, rttMs: () => number | undefined, max: number, allowance: number) {
    this.channel = channel as Internal;
    this.rttMs = rttMs;
    this.max = max;
    this.allowance = allowance;
    const push = channel.push;
    const read = channel._read;
    channel.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
      // A chunk that will wait for a slow reader, when it is a slice of a larger buffer, is copied
      // out of it (ssh2 sometimes decrypts into the 64 KiB socket read): kept as a slice, it would
      // hold its whole parent, and a stalled reader's 16 MiB window cost ~24 MiB (measured).
      if (Buffer.isBuffer(chunk) && chunk.buffer.byteLength > chunk.length + COMPACT_SLACK && (channel.readableLength > 0 || channel.readableFlowing !== true)) {
        chunk = Buffer.from(chunk);
      }
      const taken = push.call(channel, chunk, encoding);
      if (Buffer.isBuffer(chunk)) this.arrived(chunk.length, taken);
      return taken;
    };
    channel._read = (size: number): void => {
      read.call(channel, size);
      this.refill();
    };
    channel.once("close", () => {
      this.closed = true;
      budget.release(this.target - BASE_WINDOW);
      this.target = BASE_WINDOW;
      this.opened = BASE_WINDOW;
    });
  }

  /** A packet arrived (ssh2 already took it off incoming.window) and was pushed to the reader. */
  private arrived(length: number, taken: boolean): void {
    if (this.closed) return;
    this.received += length;
    // The reader pushes back now: no decision (a grown window is still refilled, within its promise).
    if (!taken || this.channel.readableFlowing !== true) return this.refill();
    const now = performance.now();
    const buffered = this.channel.readableLength;
    const tookTotal = this.received - buffered;
    const d = decideWindow({
      target: this.target,
      opened: this.opened,
      arrived: length,
      remaining: this.channel.incoming.window,
      buffered,
      consumed: tookTotal - this.takenAtStart,
      periodWindow: this.periodWindow,
      elapsedMs: now - this.since,
      delivered: tookTotal,
      rttMs: this.rttMs(),
      budgetLeft: budget.left,
      max: this.max,
      allowance: this.allowance,
    });
    if (d.target > this.target) {
      budget.take(d.target - this.target);
      this.target = d.target;
    }
    this.opened = d.opened;
    if (d.restart) {
      this.takenAtStart = tookTotal;
      this.since = now;
    }
    this.periodWindow = d.periodWindow;
    this.grant(d.adjust);
  }

  /** The reader took data from the buffer: keep a grown window nearly full. */
  private refill(): void {
    if (this.closed) return;
    const eager = refillsEarly(this.opened, this.rttMs(), this.max);
    this.grant(topUp(this.opened, this.channel.incoming.window, this.channel.readableLength, eager));
  }

  private grant(amount: number): void {
    const channel = this.channel;
    if (amount <= 0 || channel.outgoing.state === "closed") return;
    channel.incoming.window += amount;
    channel._client._protocol.channelWindowAdjust(channel.outgoing.id, amount);
  }
}
