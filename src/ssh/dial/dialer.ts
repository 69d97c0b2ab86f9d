// Dialing: "a connection to this route". Direct routes are one TCP connection; jump routes open
// hop 1 over TCP, each next hop through a direct-tcpip channel of the previous one, and the target
// last. Every hop is a full SshConnection (host-key check, auth, keepalive) and every handshake
// goes through the per-server gate (the handshake limiter), counted against that hop's server.
//
// Hop sessions are shared (when `shareHops`): tunnels whose routes start with the same hops ride
// one session per hop, as OpenSSH ControlMaster users do. A hop session lives while anything rides
// it, and when it dies every connection through it is closed with that hop's error.
import type { Duplex } from "node:stream";
import { SshConnection } from "../connection.ts";
import { ConnectionError, formatHostPort, type TunnelError } from "../errors.ts";
import { hopError, unreachableThrough } from "./hop-error.ts";
import { hopChainKey, hopLabel, type Endpoint, type HopInfo, type Route } from "./route.ts";

/** Limits handshakes per server ("host:port"); HandshakeLimiter is one. */
export interface HandshakeGate {
  run<T>(server: string, fn: () => Promise<T>): Promise<T>;
}

export interface DialerOptions {
  gate?: HandshakeGate | undefined;
  /** Routes with the same leading hops share the hop sessions (default true). */
  shareHops?: boolean | undefined;
}

export interface Dialed {
  connection: SshConnection;
  /** The hops it runs through, in order; [] for a direct connection. */
  via: HopInfo[];
}

interface HopSession {
  key: string;
  index: number;
  endpoint: Endpoint;
  /** The session to the hop before (it carries this one); none for hop 1. */
  previous?: HopSession | undefined;
  /** Whoever rides this session: sessions of the next hop, and target connections. */
  riders: number;
  opening: Promise<SshConnection>;
  connection?: SshConnection;
  /** Why it closed, named after the hop; set once it has. */
  lost?: TunnelError;
  /** Target connections riding it, to close with the hop's error when it dies. */
  passengers: Set<SshConnection>;
}

const ungated: HandshakeGate = { run: (_server, fn) => fn() };

/** Carries an error through the gate that is not the server's doing (see Dialer.handshake). */
class NotTheServer {
  readonly error: unknown;
  constructor(error: unknown) {
    this.error = error;
  }
}

export class Dialer {
  private readonly gate: HandshakeGate;
  private readonly share: boolean;
  private readonly hops = new Map<string, HopSession>();
  private unshared = 0;

  constructor(options: DialerOptions = {}) {
    this.gate = options.gate ?? ungated;
    this.share = options.shareHops ?? true;
  }

  /** Open a connection to the route's target; rejects with a typed error naming the hop that failed. */
  async dial(route: Route): Promise<Dialed> {
    const last = route.hops.length > 0 ? await this.acquire(route.hops, route.hops.length - 1) : undefined;
    try {
      const target = route.target;
      const where = formatHostPort(target.host, target.port ?? 22);
      let sock: Duplex | undefined;
      let connection: SshConnection;
      try {
        connection = await this.handshake(target, async () => (sock = last ? await this.channelTo(last, where, target) : undefined), last);
      } catch (err) {
        // A hop that died under the handshake is the news, not the broken pipe it left.
        throw (last && this.lostOnTheWay(last)) ?? err;
      }
      if (last) this.board(last, connection, sock!);
      return { connection, via: last ? viaOf(last) : [] };
    } catch (err) {
      if (last) this.release(last);
      throw err;
    }
  }

  /** A session to hops[0..index], opened or shared; the caller rides it until release(). */
  private async acquire(hops: readonly Endpoint[], index: number): Promise<HopSession> {
    const key = this.share ? hopChainKey(hops, index) : `${++this.unshared}`;
    const existing = this.hops.get(key);
    if (existing && !existing.lost) {
      existing.riders++;
      await existing.opening; // a failed open rejects every rider (and removed itself)
      return existing;
    }
    const endpoint = hops[index]!;
    const hop: HopSession = { key, index, endpoint, riders: 1, opening: undefined as never, passengers: new Set() };
    hop.opening = this.openHop(hop, hops);
    this.hops.set(key, hop);
    hop.opening.catch(() => {
      if (this.hops.get(key) === hop) this.hops.delete(key);
    });
    return hop.opening.then(() => hop);
  }

  private async openHop(hop: HopSession, hops: readonly Endpoint[]): Promise<SshConnection> {
    const previous = hop.index > 0 ? await this.acquire(hops, hop.index - 1) : undefined;
    hop.previous = previous;
    let connection: SshConnection;
    let sock: Duplex | undefined;
    try {
      const what = hopLabel(hop.index, hop.endpoint);
      connection = await this.handshake(hop.endpoint, async () => (sock = previous ? await this.channelTo(previous, what, hop.endpoint) : undefined), previous);
    } catch (err) {
      if (previous) this.release(previous);
      // A hop before this one that died is the news; else it is this hop's failure (named once).
      throw (previous && this.lostOnTheWay(previous)) ?? hopError(hop.index, hop.endpoint, err);
    }
    hop.connection = connection;
    connection.once("close", (err?: TunnelError) => {
      hop.lost = hopError(hop.index, hop.endpoint, err ?? closedError(hop.endpoint));
      if (this.hops.get(hop.key) === hop) this.hops.delete(hop.key);
      for (const passenger of hop.passengers) passenger.destroyWith(hop.lost);
      hop.passengers.clear();
    });
    if (previous) this.board(previous, connection, sock!);
    if (hop.riders === 0) void connection.close(); // everyone left while it opened
    return connection;
  }

  /** A direct-tcpip channel from `hop` to `endpoint`, to carry the next SSH connection. */
  private async channelTo(hop: HopSession, what: string, endpoint: Endpoint): Promise<Duplex> {
    const connection = hop.connection!;
    try {
      return await connection.openChannel("127.0.0.1", 0, endpoint.host, endpoint.port ?? 22);
    } catch (err) {
      throw this.lostOnTheWay(hop) ?? unreachableThrough(what, hopLabel(hop.index, hop.endpoint), err);
    }
  }

  /**
   * TCP connection (or a channel from the previous hop: `openSock`) + SSH handshake + auth, inside
   * the server's gate slot. The channel opens inside it too: opening one makes the hop connect to
   * the server, and sshd counts that connection as a startup from then on. A channel that cannot
   * open, or a hop that dies under the handshake, is not the server dropping us: the gate (which
   * learns its limit from ConnectionLost) does not see those errors.
   */
  private async handshake(endpoint: Endpoint, openSock: () => Promise<Duplex | undefined>, via: HopSession | undefined): Promise<SshConnection> {
    try {
      return await this.gate.run(formatHostPort(endpoint.host, endpoint.port ?? 22), async () => {
        let sock: Duplex | undefined;
        try {
          sock = await openSock();
        } catch (err) {
          throw new NotTheServer(err);
        }
        try {
          const opened = await SshConnection.open(endpoint, sock);
          // Keep the slot until sshd has stopped counting this connection as a startup: freed at
          // 'ready', the next handshake sometimes arrived while sshd still counted 10 and was dropped.
          await opened.settled;
          return opened;
        } catch (err) {
          const lost = via && this.lostOnTheWay(via);
          throw lost ? new NotTheServer(lost) : err;
        }
      });
    } catch (err) {
      throw err instanceof NotTheServer ? err.error : err;
    }
  }

  /** `connection` rides `hop` through `sock`: it goes down with the hop, and leaves when its channel closes. */
  private board(hop: HopSession, connection: SshConnection, sock: Duplex): void {
    hop.passengers.add(connection);
    // The server behind the channel hung up (the hop saw its TCP connection close and sent EOF):
    // ssh2 neither ends nor closes a stream it was given when it ends, so the channel (and the
    // session on it) would hang until a keepalive gave up. Close the channel: the hop answers with
    // its own close, and the session closes with it.
    sock.once("end", () => sock.destroy());
    sock.once("close", () => {
      hop.passengers.delete(connection);
      this.release(hop);
    });
  }

  private release(hop: HopSession): void {
    hop.riders--;
    if (hop.riders > 0) return;
    if (this.hops.get(hop.key) === hop) this.hops.delete(hop.key);
    if (hop.connection) void hop.connection.close();
  }

  /** The first hop of the chain ending at `hop` that has died, as its error. */
  private lostOnTheWay(hop: HopSession): TunnelError | undefined {
    for (let at: HopSession | undefined = hop; at; at = at.previous) {
      // The hop nearest to us that died is the cause; the ones after it died of it.
      if (!at.previous?.lost && !at.previous?.connection?.closed && (at.lost || at.connection?.closed)) {
        return at.lost ?? hopError(at.index, at.endpoint, closedError(at.endpoint));
      }
    }
    return undefined;
  }
}

function closedError(endpoint: Endpoint): TunnelError {
  return new ConnectionError("ConnectionLost", `Connection to ${formatHostPort(endpoint.host, endpoint.port ?? 22)} closed`);
}

function viaOf(last: HopSession): HopInfo[] {
  const via: HopInfo[] = [];
  for (let hop: HopSession | undefined = last; hop; hop = hop.previous) {
    via.unshift({ host: hop.endpoint.host, port: hop.endpoint.port ?? 22, hostKeyFingerprint: hop.connection?.hostKeyFingerprint ?? "" });
  }
  return via;
}
