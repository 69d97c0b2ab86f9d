// Receive-window autotuning for forwarded channels (issue 20), as a pure function. A forwarded
// connection moves at most one window per round trip: ssh2 (like OpenSSH for -L/-R) keeps 2 MiB
// and tops it up only below half, so a long link starves. Like TCP receive autotuning (Linux's
// tcp_rcv_space_adjust), the window grows when it is the bottleneck — within one round trip the
// reader took at least half the window the peer could use — doubling (as slow start does) up to
// what the round trip can use, a per-channel cap and a process-wide budget. What counts is what the
// reader took (a momentary push-back from a bursty link is no stall), and the caller never asks
// while the reader is pushing back.
//
// How a window is handed out is shaped by the peer that fills it, OpenSSH's sshd (9.2 measured
// here). sshd reads the forwarded socket ahead into a per-channel buffer as far as the window lets
// it whenever it cannot send at once, and grows that buffer 32 KiB at a time, copying all of it
// each time (sshbuf + recallocarray): 16 MiB of read-ahead costs it about a second of CPU, during
// which the channel crawls at a few MiB/s (seen with perf: ~470 reallocations, 0.5 → 15.8 MiB).
// Bursts of window are what let it fall behind, so:
//   - a grown window opens as data flows (each byte the reader takes opens one more, up to the
//     target: slow start's clocking), never as one jump of megabytes;
//   - it is topped up in small steps (once REFILL_STEP is consumed) rather than in quarters, which
//     keeps sshd's sending clocked by our reading and the window nearly full: at 100 ms, 8 s
//     transfers went from 81–94 to 104–130 MiB/s.
// sshd can still fall behind on a busy machine and pay that cost once per channel (the buffer
// keeps its size afterwards); a lower maxWindow bounds it.

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
 * backpressure, when the kernel's own limits cannot be read (4 MiB measured on loopback here, half
 * as much again for margin): a channel grows only after it delivered more than this, so a stalled
 * reader is never mistaken for a fast one. On Linux the caller derives it from tcp_wmem/tcp_rmem.
 */
export const SOCKET_BUFFER_ALLOWANCE = 6 * 1024 * 1024;
/** A window on a long link (or a grown one) is topped up once this much of it is consumed. */
export const REFILL_STEP = 256 * 1024;

export interface WindowState {
  /** The window this channel may grow to now (budget taken): `opened` rises toward it. */
  target: number;
  /** The window opened to the peer: what top-ups restore (≤ target; BASE_WINDOW at first). */
  opened: number;
  /** Bytes of the packet that just arrived and that the reader keeps up with (they open as much more). */
  arrived: number;
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
  /** Bytes a stalled reader's socket buffers can hide (SOCKET_BUFFER_ALLOWANCE, or the kernel's). */
  allowance: number;
}

export interface WindowDecision {
  /** The new target (≥ the old one; BASE_WINDOW until growth pays). */
  target: number;
  /** The window opened to the peer from now on (≤ target). */
  opened: number;
  /** Bytes to grant the peer now (a WINDOW_ADJUST), 0 for none. */
  adjust: number;
  /** The measurement is complete (a round trip passed): start a new one. */
  restart: boolean;
  /** For the next measurement: the window the peer can use during it. */
  periodWindow: number;
}

/**
 * Called when a packet arrived while the reader keeps up. After one round trip of measurement:
 * grow the target (double what is open, within the caps) when the reader took at least half the
 * window the peer could use in it. The opened window follows the target as data arrives. On a
 * long link it is kept nearly full (topped up every REFILL_STEP), never past `opened` counting
 * what the reader still holds: a window is a promise to buffer that much.
 */
export function decideWindow(s: WindowState): WindowDecision {
  let target = s.target;
  const rtt = s.rttMs;
  const restart = rtt !== undefined && s.elapsedMs >= rtt;
  if (restart && s.delivered > s.allowance) {
    // Bytes per round trip, for a measurement that ran longer than one (an idle spell).
    const perRoundTrip = (s.consumed * rtt) / Math.max(s.elapsedMs, rtt);
    if (perRoundTrip >= s.periodWindow / 2) {
      const useful = Math.ceil(MAX_RATE_BYTES_PER_MS * rtt);
      const wanted = longLink(rtt) ? Math.min(s.max, useful, s.opened * 2) : target;
      const grantable = target + Math.max(0, s.budgetLeft);
      target = Math.max(target, Math.min(wanted, grantable));
    }
  }
  // Slow start's clocking: each byte taken opens one more, so a grown window opens over a round trip.
  const opened = Math.max(s.opened, Math.min(target, s.opened + s.arrived));
  // The next measurement is judged against what is open now (what is opened during it reaches the
  // link about a round trip later).
  const periodWindow = restart ? s.opened : s.periodWindow;
  return { target, opened, adjust: topUp(opened, s.remaining, s.buffered, refillsEarly(opened, rtt, s.max)), restart, periodWindow };
}

/** Whether we top a window up ourselves (topUp's `eager`): once grown, or on a long link where it may grow. */
export function refillsEarly(opened: number, rttMs: number | undefined, max: number): boolean {
  return opened > BASE_WINDOW || (rttMs !== undefined && longLink(rttMs) && max > BASE_WINDOW);
}

/** A round trip where a window bigger than the base can pay: 512 MiB/s × RTT ≥ 2 × BASE_WINDOW. */
export function longLink(rttMs: number): boolean {
  return MAX_RATE_BYTES_PER_MS * rttMs >= 2 * BASE_WINDOW;
}

/**
 * The WINDOW_ADJUST a window of `opened` needs now. `eager` (a grown window, or any window on a
 * long link): refilled once REFILL_STEP of it is used, counting what the reader still holds;
 * otherwise none (ssh2's own top-up, below half, applies: on a LAN nothing changes).
 */
export function topUp(opened: number, remaining: number, buffered: number, eager = opened > BASE_WINDOW): number {
  if (!eager) return 0;
  const promised = remaining + buffered;
  return promised <= opened - REFILL_STEP ? opened - promised : 0;
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
