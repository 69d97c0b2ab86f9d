// Limit simultaneous SSH handshakes per server, adaptively (handshake-limit.ts decides how many).
// A stock sshd (MaxStartups 10:30:100) starts dropping unauthenticated connections beyond 10,
// dropbear beyond 5 per client address; a cold start of many tunnels must queue.
import { ConnectionError } from "../ssh/errors.ts";
import {
  DEFAULT_HANDSHAKE_LIMIT,
  afterHandshakeLost,
  afterHandshakeSuccess,
  initialHandshakeLimit,
  type HandshakeLimitOptions,
  type HandshakeLimitState,
} from "./handshake-limit.ts";

export const DEFAULT_HANDSHAKES_PER_SERVER = DEFAULT_HANDSHAKE_LIMIT.max;

interface ServerSlots {
  active: number;
  /** Each resolved with the number under way once it is started, itself included. */
  waiting: Array<(underWay: number) => void>;
  state: HandshakeLimitState;
}

export class HandshakeLimiter {
  private readonly options: HandshakeLimitOptions;
  private readonly servers = new Map<string, ServerSlots>();

  /** `limit`: the most handshakes at once per server (the start, and the ceiling of growth). */
  constructor(limit: number | Partial<HandshakeLimitOptions> = DEFAULT_HANDSHAKES_PER_SERVER) {
    this.options = { ...DEFAULT_HANDSHAKE_LIMIT, ...(typeof limit === "number" ? { max: limit } : limit) };
  }

  /** The limit now in force for `server`. */
  limitFor(server: string): number {
    return this.servers.get(server)?.state.limit ?? this.options.max;
  }

  /**
   * Run `fn` once fewer than the limit of handshakes to `server` are under way. A rejection with
   * ConnectionLost (the server dropped the connection before we were in) lowers the limit; a
   * success lets it grow back.
   */
  async run<T>(server: string, fn: () => Promise<T>): Promise<T> {
    const slots = this.slotsFor(server);
    const underWay = await this.acquire(slots);
    const started = { underWay, startedInEpoch: slots.state.epoch };
    try {
      const result = await fn();
      slots.state = afterHandshakeSuccess(slots.state, this.options);
      return result;
    } catch (err) {
      if (err instanceof ConnectionError && err.reason === "ConnectionLost") slots.state = afterHandshakeLost(slots.state, started, this.options);
      throw err;
    } finally {
      this.release(server, slots);
    }
  }

  private slotsFor(server: string): ServerSlots {
    let slots = this.servers.get(server);
    if (!slots) {
      slots = { active: 0, waiting: [], state: initialHandshakeLimit(this.options) };
      this.servers.set(server, slots);
    }
    return slots;
  }

  private acquire(slots: ServerSlots): Promise<number> {
    if (slots.active < slots.state.limit && slots.waiting.length === 0) {
      slots.active++;
      return Promise.resolve(slots.active);
    }
    return new Promise((resolve) => slots.waiting.push(resolve));
  }

  private release(server: string, slots: ServerSlots): void {
    slots.active--;
    while (slots.active < slots.state.limit && slots.waiting.length > 0) {
      slots.active++;
      slots.waiting.shift()!(slots.active);
    }
    // A server with nothing under way and a full limit needs no memory.
    if (slots.active === 0 && slots.state.limit === this.options.max && slots.state.ceiling === this.options.max) this.servers.delete(server);
  }
}
