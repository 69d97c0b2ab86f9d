// Receive-window autotuning for forwarded channels (issue 20), as a pure function. A forwarded
// connection moves at most one window per round trip: ssh2 (like OpenSSH for -L/-R) keeps 2 MiB
// and tops it up only below half, so a long link starves. Like TCP receive autotuning (Linux's
// tcp_rcv_space_adjust), the window grows when it is the bottleneck — within one round trip the
// reader took at least half the window the peer could use — doubling (as slow start does) up to
// what the round trip can use, a per-channel cap and a process-wide budget; once grown it is topped
// up early. What counts is what the reader took (a momentary push-back from a bursty link is no
// stall), and the caller never asks while the reader is pushing back.

/** ssh2's (and OpenSSH's) window for a forwarded channel: where every channel starts. */
export const BASE_WINDOW = 2 * 1024 * 1024;
/** Per-channel cap by default (OpenSSH peers buffer at most 16 MB per channel). */
export const DEFAULT_MAX_WINDOW = 16 * 1024 * 1024;
/** Process-wide budget for growth above BASE_WINDOW, by default. */
export const DEFAULT_WINDOW_BUDGET = 256 * 1024 * 1024;
/**
 * The fastest a single forwarded connection goes (bytes/ms ≈ 512 MiB/s; 517 MB/s measured on
 * loopback here): a window beyond this rate × RTT buys nothing. A window grows only where that is
 * at least twice the base window (RTT ≥ 8 ms): on a LAN or in a metro area it stays at 2 MiB, even
 * when a busy event loop makes a loopback round trip look like a few milliseconds.
 */
export const MAX_RATE_BYTES_PER_MS = 512 * 1024;
/**
 * What the kernel's socket buffers can take from a local reader that never reads before Node sees
 * backpressure (4 MiB measured on loopback here, half as much again for margin): a channel grows
 * only after it delivered more than this, so a stalled reader is never mistaken for a fast one.
 */
export const SOCKET_BUFFER_ALLOWANCE = 6 * 1024 * 1024;

export interface WindowState {
  /** The window we currently let the peer fill (what top-ups restore). */
  target: number;
  /** What the peer may still send before it must wait for us (channel.incoming.window). */
  remaining: number;
  /** Bytes the reader holds in the channel's buffer, not yet taken (they count against the window). */
  buffered: number;
  /** Bytes the reader took since the measurement began. */
  consumed: number;
  /**
   * The window the peer could use during this measurement: the target, or the one before it when
   * the window grew as the measurement began (the growth reaches the link a round trip later).
   */
  periodWindow: number;
  /** Milliseconds since the measurement began. */
  elapsedMs: number;
  /** Bytes the reader took over the channel's life. */
  delivered: number;
  /** The session's round-trip time; undefined until measured (then the window stays put). */
  rttMs: number | undefined;
  /** Bytes of growth budget the process has left. */
  budgetLeft: number;
  /** Per-channel cap. */
  max: number;
}

export interface WindowDecision {
  /** The new target (≥ the old one; BASE_WINDOW until growth pays). */
  target: number;
  /** Bytes to grant the peer now (a WINDOW_ADJUST), 0 for none. */
  adjust: number;
  /** The measurement is complete (a round trip passed): start a new one. */
  restart: boolean;
  /** For the next measurement: the window the peer can use during it. */
  periodWindow: number;
}

/**
 * Called when a packet arrived while the reader keeps up. After one round trip of measurement:
 * grow (double, within the caps) when the reader took at least half the window the peer could use
 * in it. On a long link the window is kept nearly full (topped up at ¾), never past `target`
 * counting what the reader still holds: a window is a promise to buffer that much.
 */
export function decideWindow(s: WindowState): WindowDecision {
  let target = s.target;
  const rtt = s.rttMs;
  const restart = rtt !== undefined && s.elapsedMs >= rtt;
  if (restart && s.delivered > SOCKET_BUFFER_ALLOWANCE) {
    // Bytes per round trip, for a measurement that ran longer than one (an idle spell).
    const perRoundTrip = (s.consumed * rtt) / Math.max(s.elapsedMs, rtt);
    if (perRoundTrip >= s.periodWindow / 2) {
      const useful = Math.ceil(MAX_RATE_BYTES_PER_MS * rtt);
      const wanted = longLink(rtt) ? Math.min(s.max, useful, target * 2) : target;
      const grantable = target + Math.max(0, s.budgetLeft);
      target = Math.max(target, Math.min(wanted, grantable));
    }
  }
  const periodWindow = target > s.target ? s.target : restart ? target : s.periodWindow;
  const eager = target > BASE_WINDOW || (rtt !== undefined && longLink(rtt) && s.max > BASE_WINDOW);
  return { target, adjust: topUp(target, s.remaining, s.buffered, eager), restart, periodWindow };
}

/** A round trip where a window bigger than the base can pay: 512 MiB/s × RTT ≥ 2 × BASE_WINDOW. */
export function longLink(rttMs: number): boolean {
  return MAX_RATE_BYTES_PER_MS * rttMs >= 2 * BASE_WINDOW;
}

/**
 * The WINDOW_ADJUST a window of `target` needs now. `eager` (a grown window, or any window on a
 * long link): refilled once under ¾, counting what the reader still holds; otherwise none (ssh2's
 * own top-up, below half, applies: on a LAN nothing changes).
 */
export function topUp(target: number, remaining: number, buffered: number, eager = target > BASE_WINDOW): number {
  if (!eager) return 0;
  const promised = remaining + buffered;
  return promised < (target * 3) / 4 ? target - promised : 0;
}

/** The process-wide budget for window growth: a window is a promise to buffer that much. */
export class WindowBudget {
  #total: number;
  #left: number;
  constructor(total: number) {
    this.#total = total;
    this.#left = total;
  }
  get total(): number {
    return this.#total;
  }
  get left(): number {
    return this.#left;
  }
  /** Change the total (the `run --window-budget` flag); growth already granted stays granted. */
  resize(total: number): void {
    this.#left += total - this.#total;
    this.#total = total;
  }
  /** Take `bytes` (growth granted to one channel). */
  take(bytes: number): void {
    this.#left -= bytes;
  }
  /** Give back what a channel held above the base window when it closes. */
  release(bytes: number): void {
    this.#left += bytes;
  }
}
