// Limit simultaneous SSH handshakes per server. A stock sshd (MaxStartups 10:30:100) starts
// dropping unauthenticated connections beyond 10; a cold start of many tunnels must queue.

export const DEFAULT_HANDSHAKES_PER_SERVER = 8;

export class HandshakeLimiter {
  private readonly limit: number;
  private readonly active = new Map<string, number>();
  private readonly waiting = new Map<string, Array<() => void>>();

  constructor(limit = DEFAULT_HANDSHAKES_PER_SERVER) {
    this.limit = limit;
  }

  /** Run `fn` once fewer than `limit` handshakes to `server` are under way. */
  async run<T>(server: string, fn: () => Promise<T>): Promise<T> {
    await this.acquire(server);
    try {
      return await fn();
    } finally {
      this.release(server);
    }
  }

  private acquire(server: string): Promise<void> {
    const n = this.active.get(server) ?? 0;
    if (n < this.limit) {
      this.active.set(server, n + 1);
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const queue = this.waiting.get(server) ?? [];
      queue.push(resolve);
      this.waiting.set(server, queue);
    });
  }

  private release(server: string): void {
    const next = this.waiting.get(server)?.shift();
    if (next) {
      next(); // the slot passes straight to the next waiter
      return;
    }
    this.waiting.delete(server);
    const n = (this.active.get(server) ?? 1) - 1;
    if (n === 0) this.active.delete(server);
    else this.active.set(server, n);
  }
}
