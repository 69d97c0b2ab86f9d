// Receive-window autotuning for forwarded channels (issue 20), as a pure function. A forwarded
// connection moves at most one window per round trip: ssh2 (like OpenSSH for -L/-R) keeps 2 MiB
// and tops it up only below half, so a long link starves. Like TCP receive autotuning, the window
// grows when it is the bottleneck — the peer nearly ran dry while our reader kept up — up to what
// the round trip can use, a per-channel cap and a process-wide budget, and once grown it is
// topped up early. It never grows while the reader is backpressured (the caller only asks then).

/** ssh2's (and OpenSSH's) window for a forwarded channel: where every channel starts. */
export const BASE_WINDOW = 2 * 1024 * 1024;
/** Per-channel cap by default (OpenSSH peers buffer at most 16 MB per channel). */
export const DEFAULT_MAX_WINDOW = 16 * 1024 * 1024;
/** Process-wide budget for growth above BASE_WINDOW, by default. */
export const DEFAULT_WINDOW_BUDGET = 256 * 1024 * 1024;
/**
 * The fastest a single forwarded connection goes here (bytes/ms ≈ 1 GiB/s): a window beyond
 * twice this rate × RTT buys nothing, so on a LAN (RTT ≪ 1 ms) the window never grows.
 */
export const MAX_RATE_BYTES_PER_MS = 1024 * 1024;

export interface WindowState {
  /** The window we currently let the peer fill (what top-ups restore). */
  target: number;
  /** What the peer may still send before it must wait for us (channel.incoming.window). */
  remaining: number;
  /** Milliseconds since the window was last grown or since the channel opened. */
  sinceGrowthMs: number;
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
}

/**
 * Called when data arrived and the reader took it without backpressure. Grows the window when the
 * peer used nearly all of it within about a round trip (the window, not our reader, limited the
 * transfer) and a bigger window can still pay at this RTT; tops a grown window up at ¾ full.
 */
export function decideWindow(s: WindowState): WindowDecision {
  let target = s.target;
  const rtt = s.rttMs;
  if (rtt !== undefined && s.remaining <= target / 8 && s.sinceGrowthMs <= 2 * rtt + 10) {
    const useful = Math.max(BASE_WINDOW, Math.ceil(2 * MAX_RATE_BYTES_PER_MS * rtt));
    const wanted = Math.min(s.max, useful, target * 2);
    const grantable = target + Math.max(0, s.budgetLeft);
    target = Math.max(target, Math.min(wanted, grantable));
  }
  // At the base window ssh2's own top-up (below half) applies; a grown one is kept nearly full.
  const threshold = target > BASE_WINDOW ? (target * 3) / 4 : target / 2;
  const adjust = s.remaining < threshold ? target - s.remaining : 0;
  return { target, adjust: target > BASE_WINDOW ? adjust : 0 };
}

/** The process-wide budget for window growth: a window is a promise to buffer that much. */
export class WindowBudget {
  #left: number;
  constructor(total: number) {
    this.#left = total;
  }
  get left(): number {
    return this.#left;
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
