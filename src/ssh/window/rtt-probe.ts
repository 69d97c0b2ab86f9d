// The session's round-trip time, measured as OpenSSH's ServerAlive measures liveness: a global
// request `keepalive@openssh.com` with want-reply, pushed onto ssh2's callback FIFO exactly as
// ssh2's own keepalive does (client._callbacks + client._protocol.ping()). Any answer counts
// (servers answer it with REQUEST_FAILURE; SSH_MSG_UNIMPLEMENTED settles it through
// sendGlobalRequest). The estimate is the smallest of the recent samples, as BBR's min_rtt: under
// load a reply queues behind data, and the window must be sized for the path, not for the queue.
import type { Client } from "ssh2";
import { pendingGlobalRequests, sendGlobalRequest } from "../global-request.ts";

/**
 * When the probes go out after the connection is ready, ms; then every PROBE_INTERVAL_MS. Several
 * early ones: a busy event loop inflates single samples (a loopback round trip of 0.2 ms measured
 * 2 ms at a connect under load), and the minimum needs a quiet one.
 */
const FIRST_PROBES_MS = [0, 250, 500, 1000, 2000, 3000, 5000];
const PROBE_INTERVAL_MS = 10_000;
/** How soon to look again when another global request is still unanswered. */
const BUSY_RETRY_MS = 250;
/** Samples kept for the minimum (≈ the last two minutes). */
const SAMPLES = 12;

interface ClientInternals {
  _protocol?: { ping?: () => void };
  _callbacks?: Array<(hadError: unknown) => void>;
}

export class RttProbe {
  #samples: number[] = [];
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #probes = 0;
  readonly #client: ClientInternals;
  readonly #ssh2: Client;
  readonly #timeoutMs: number;

  constructor(client: Client, timeoutMs: number) {
    this.#client = client as unknown as ClientInternals;
    this.#ssh2 = client;
    this.#timeoutMs = timeoutMs;
    this.#schedule();
  }

  /** The round-trip time estimate, ms (undefined until a probe was answered). */
  get rttMs(): number | undefined {
    return this.#samples.length === 0 ? undefined : Math.min(...this.#samples);
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  #schedule(): void {
    if (this.#stopped) return;
    const next = FIRST_PROBES_MS[this.#probes];
    const delay = next === undefined ? PROBE_INTERVAL_MS : next - (FIRST_PROBES_MS[this.#probes - 1] ?? 0);
    this.#timer = setTimeout(() => void this.#probe(), delay);
    this.#timer.unref();
  }

  async #probe(): Promise<void> {
    if (this.#stopped) return;
    if (pendingGlobalRequests(this.#ssh2) > 0) {
      // ssh2 matches answers to requests by order: a probe behind a request the server never
      // answers (some do not, see global-request.ts) would take that answer. Wait for a quiet moment.
      this.#timer = setTimeout(() => void this.#probe(), BUSY_RETRY_MS);
      this.#timer.unref();
      return;
    }
    this.#probes++;
    const internals = this.#client;
    const ping = internals._protocol?.ping;
    const callbacks = internals._callbacks;
    if (typeof ping !== "function" || !Array.isArray(callbacks)) return; // no probe: the window stays put
    const start = performance.now();
    try {
      const answer = await sendGlobalRequest<void>((cb) => {
        callbacks.push(() => cb(null));
        try {
          ping.call(internals._protocol);
        } catch (err) {
          callbacks.pop();
          throw err;
        }
      }, this.#timeoutMs);
      if (answer.outcome !== "timeout") this.#add(performance.now() - start);
    } catch {
      return; // not connected: the connection's 'close' stops us
    }
    this.#schedule();
  }

  #add(ms: number): void {
    this.#samples.push(ms);
    if (this.#samples.length > SAMPLES) this.#samples.shift();
  }
}
