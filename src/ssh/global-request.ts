// Global requests (tcpip-forward, cancel-tcpip-forward, keepalive@openssh.com,
// no-more-sessions@openssh.com) that always end: in an answer, in SSH_MSG_UNIMPLEMENTED, or at a
// deadline.
//
// ssh2 keeps one FIFO of callbacks for the global requests a client sends and shifts it on every
// REQUEST_SUCCESS / REQUEST_FAILURE. A server may answer a request it does not implement with
// SSH_MSG_UNIMPLEMENTED instead (RFC 4253 §11.4, naming the request's sequence number). ssh2 only
// logs that: the request never settles, and every later answer goes to the callback before its
// own (a keepalive's answer settles a tcpip-forward, and so on). trackGlobalRequests() notes the
// sequence number of every global request ssh2 sends on a connection and, on UNIMPLEMENTED, takes
// exactly that request's callback out of the FIFO and settles it with an UnimplementedError. For a
// keepalive that is an answer, as for OpenSSH's ServerAlive: the server is alive.
import { createRequire } from "node:module";
import type { Client } from "ssh2";

const require = createRequire(import.meta.url);
type MessageHandler = (proto: ProtocolInternals, payload: Buffer) => void;
const MESSAGE_HANDLERS = require("ssh2/lib/protocol/handlers.js") as Array<MessageHandler | undefined>;
const MSG_UNIMPLEMENTED = 3;
const HOOK = Symbol.for("tunnelctl.onUnimplemented");
const PENDING = Symbol.for("tunnelctl.pendingGlobalRequests");

interface ProtocolInternals {
  [HOOK]?: (seqno: number) => void;
  [PENDING]?: readonly unknown[];
  _cipher?: { outSeqno: number };
  _queue?: unknown[];
  _handlers: Record<string, ((...args: unknown[]) => void) | undefined>;
  [method: string]: unknown;
}

interface ClientInternals {
  _protocol?: ProtocolInternals;
  _callbacks?: Array<(err: unknown, data?: unknown) => void>;
}

/** The server answered SSH_MSG_UNIMPLEMENTED: it does not know this request. */
export class UnimplementedError extends Error {
  override readonly name = "UnimplementedError";
}

// Patched once, for every connection: the original still runs (it logs), then the connection's hook.
const originalUnimplemented = MESSAGE_HANDLERS[MSG_UNIMPLEMENTED];
if (!(originalUnimplemented as { tunnelctl?: boolean } | undefined)?.tunnelctl) {
  const handler: MessageHandler & { tunnelctl?: boolean } = (proto, payload) => {
    originalUnimplemented?.(proto, payload);
    if (payload.length >= 5) proto[HOOK]?.(payload.readUInt32BE(1));
  };
  handler.tunnelctl = true;
  MESSAGE_HANDLERS[MSG_UNIMPLEMENTED] = handler;
}

/** Methods of ssh2's Protocol that send a global request, and where their wantReply argument is (-1: always wants one). */
const SENDERS: Record<string, number> = {
  ping: -1,
  tcpipForward: 2,
  cancelTcpipForward: 2,
  openssh_streamLocalForward: 1,
  openssh_cancelStreamLocalForward: 1,
  openssh_noMoreSessions: 0,
  openssh_hostKeysProve: -1,
};

/**
 * Keep ssh2's answers to global requests in step with the requests, UNIMPLEMENTED included. Call
 * right after `client.connect()` (the protocol object exists from then on).
 */
export function trackGlobalRequests(client: Client): void {
  const internals = client as unknown as ClientInternals;
  const proto = internals._protocol;
  if (!proto) return;
  // Sequence numbers of the requests awaiting an answer, in the order of ssh2's callbacks;
  // undefined when a request was queued behind a key exchange (its number is not known yet).
  const pending: Array<number | undefined> = [];
  proto[PENDING] = pending;
  for (const [method, wantReplyAt] of Object.entries(SENDERS)) {
    const send = proto[method];
    if (typeof send !== "function") continue;
    proto[method] = function (this: ProtocolInternals, ...args: unknown[]) {
      if (wantReplyAt < 0 || args[wantReplyAt] === true) pending.push(proto._queue ? undefined : proto._cipher?.outSeqno);
      return (send as (...a: unknown[]) => unknown).apply(this, args);
    };
  }
  for (const answer of ["REQUEST_SUCCESS", "REQUEST_FAILURE"]) {
    const handle = proto._handlers[answer];
    proto._handlers[answer] = (...args: unknown[]) => {
      pending.shift();
      handle?.(...args);
    };
  }
  proto[HOOK] = (seqno: number) => {
    let index = pending.indexOf(seqno);
    if (index < 0 && pending.length > 0 && pending[0] === undefined) index = 0;
    if (index < 0) return; // not one of ours (a channel message, say)
    pending.splice(index, 1);
    const callback = internals._callbacks?.splice(index, 1)[0];
    callback?.(new UnimplementedError(`the server does not implement this request (SSH_MSG_UNIMPLEMENTED for packet ${seqno})`));
  };
  client.once("close", () => {
    pending.length = 0;
  });
}

/**
 * Global requests sent on this connection and not answered yet (tracked ones only: see
 * trackGlobalRequests). A request of our own sent while one the server may never answer is
 * pending would take that one's answer (ssh2 matches answers by order): wait until this is 0.
 */
export function pendingGlobalRequests(client: Client): number {
  return (client as unknown as ClientInternals)._protocol?.[PENDING]?.length ?? 0;
}

export type GlobalAnswer<T> =
  | { outcome: "success"; value: T }
  | { outcome: "failure"; error: Error }
  | { outcome: "unimplemented"; error: UnimplementedError }
  | { outcome: "timeout" };

/**
 * Send one global request through `send` (an ssh2 method, given a callback) and settle on the
 * first of: the answer, UNIMPLEMENTED, `timeoutMs`. A late answer is ignored (its place in ssh2's
 * FIFO stays taken, so later answers still reach their own requests). Throws what `send` throws
 * synchronously (ssh2: "Not connected").
 */
export function sendGlobalRequest<T>(
  send: (callback: (err: Error | null | undefined, value?: T) => void) => void,
  timeoutMs: number,
  /** Told about an answer that arrives after the deadline (to undo what it did on the server). */
  onLate?: (answer: GlobalAnswer<T>) => void,
): Promise<GlobalAnswer<T>> {
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (answer: GlobalAnswer<T>): void => {
      if (done) {
        if (answer.outcome !== "timeout") onLate?.(answer);
        return;
      }
      done = true;
      clearTimeout(timer);
      resolve(answer);
    };
    const timer = setTimeout(() => finish({ outcome: "timeout" }), timeoutMs);
    try {
      send((err, value) => {
        if (err instanceof UnimplementedError) finish({ outcome: "unimplemented", error: err });
        else if (err) finish({ outcome: "failure", error: err });
        else finish({ outcome: "success", value: value as T });
      });
    } catch (err) {
      done = true;
      clearTimeout(timer);
      reject(err instanceof Error ? err : new Error(String(err)));
    }
  });
}
