// Per-forward connection accounting. Bytes are read off the sockets (bytesRead/bytesWritten) when
// asked, so the data path pays nothing per chunk. "In" is what the connecting client sent toward
// the target; "out" is what came back to it.
import type { Socket } from "node:net";

export interface ForwardCounters {
  activeConnections: number;
  totalConnections: number;
  failedConnections: number;
  bytesIn: number;
  bytesOut: number;
}

export class ForwardStats {
  private total = 0;
  private failed = 0;
  private refused = 0;
  private closedIn = 0;
  private closedOut = 0;
  private readonly live = new Map<Socket, boolean>(); // socket → is the client side (bytesRead = in)

  connectionFailed(): void {
    this.failed++;
  }

  /** A SOCKS request for a destination that `allow` does not let through (dynamic forwards). */
  destinationRefused(): void {
    this.refused++;
  }

  get refusedDestinations(): number {
    return this.refused;
  }

  /** Count a live socket. `clientSide`: the socket faces the connecting client (local forwards). */
  track(socket: Socket, clientSide = true): void {
    this.total++;
    this.live.set(socket, clientSide);
  }

  /** Forget a live socket and add its bytes to the totals. */
  untrack(socket: Socket): void {
    const clientSide = this.live.get(socket);
    if (clientSide === undefined) return;
    this.live.delete(socket);
    if (clientSide) {
      this.closedIn += socket.bytesRead;
      this.closedOut += socket.bytesWritten;
    } else {
      this.closedIn += socket.bytesWritten;
      this.closedOut += socket.bytesRead;
    }
  }

  /**
   * Append what identifies the counters' current values to `out` (for "did anything move?"
   * checks): the connection counts, and the bytes only while connections are live — bytes of
   * closed connections only change when one closes, which the counts already show.
   */
  appendSignature(out: number[]): void {
    out.push(this.live.size, this.total, this.failed, this.refused, this.closedIn, this.closedOut);
    for (const [socket] of this.live) out.push(socket.bytesRead, socket.bytesWritten);
  }

  snapshot(): ForwardCounters {
    let bytesIn = this.closedIn;
    let bytesOut = this.closedOut;
    for (const [socket, clientSide] of this.live) {
      bytesIn += clientSide ? socket.bytesRead : socket.bytesWritten;
      bytesOut += clientSide ? socket.bytesWritten : socket.bytesRead;
    }
    return { activeConnections: this.live.size, totalConnections: this.total, failedConnections: this.failed, bytesIn, bytesOut };
  }
}
