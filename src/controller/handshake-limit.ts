// How many SSH handshakes to have under way at once to one server: a pure AIMD rule. Servers cap
// unauthenticated connections differently (OpenSSH MaxStartups 10 by default, dropbear 5 per
// client address) and drop those over the cap. A loss halves the limit, at most once per burst,
// and remembers how many were under way when the lost one started: the server's cap is below
// that, and the limit stays one further below it (the server notices a finished handshake a
// little after we do: dropbear's listener learns of an authenticated child through a pipe; held at
// its cap, 1 cold start in 8 lost one more handshake). Each round of successes (as many as the limit) grows the
// limit by one up to that ceiling; a long run of successes at the ceiling probes one higher.

export interface HandshakeLimitOptions {
  /** The limit to start from, and the most it ever grows to. */
  max: number;
  /** Never below this. */
  min: number;
  /** Successes in a row at the ceiling before trying one more. */
  probeAfter: number;
}

export const DEFAULT_HANDSHAKE_LIMIT: HandshakeLimitOptions = { max: 8, min: 1, probeAfter: 100 };

export interface HandshakeLimitState {
  limit: number;
  /** Highest limit known not to lose handshakes (max until a loss says otherwise). */
  ceiling: number;
  /** Successes since the limit or ceiling last moved. */
  successes: number;
  /** Bumped at every decrease: a handshake started before it belongs to the burst already answered. */
  epoch: number;
}

export function initialHandshakeLimit(options: HandshakeLimitOptions = DEFAULT_HANDSHAKE_LIMIT): HandshakeLimitState {
  return { limit: options.max, ceiling: options.max, successes: 0, epoch: 0 };
}

/** A handshake (through authentication) succeeded. */
export function afterHandshakeSuccess(state: HandshakeLimitState, options: HandshakeLimitOptions = DEFAULT_HANDSHAKE_LIMIT): HandshakeLimitState {
  const successes = state.successes + 1;
  if (state.limit < state.ceiling && successes >= state.limit) return { ...state, limit: state.limit + 1, successes: 0 };
  if (state.limit >= state.ceiling && state.ceiling < options.max && successes >= options.probeAfter) {
    return { ...state, limit: state.ceiling + 1, ceiling: state.ceiling + 1, successes: 0 };
  }
  return { ...state, successes };
}

/**
 * The server dropped a handshake before authentication. `underWay`: handshakes under way when it
 * started, itself included; `startedInEpoch`: the state's epoch then.
 */
export function afterHandshakeLost(
  state: HandshakeLimitState,
  lost: { underWay: number; startedInEpoch: number },
  options: HandshakeLimitOptions = DEFAULT_HANDSHAKE_LIMIT,
): HandshakeLimitState {
  // A loss with nothing else under way says nothing about the server's cap (a restart, a blip).
  const ceiling = lost.underWay > 1 ? clamp(Math.min(state.ceiling, lost.underWay - 2), options) : state.ceiling;
  if (lost.startedInEpoch !== state.epoch) {
    // Part of a burst already answered: only what it says about the ceiling counts.
    return { ...state, ceiling, limit: Math.min(state.limit, ceiling) };
  }
  return { limit: Math.min(clamp(Math.floor(state.limit / 2), options), ceiling), ceiling, successes: 0, epoch: state.epoch + 1 };
}

function clamp(n: number, options: HandshakeLimitOptions): number {
  return Math.max(options.min, Math.min(options.max, n));
}
