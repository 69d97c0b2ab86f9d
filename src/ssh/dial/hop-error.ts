// Errors that happen on a jump host are reported as that hop's: `hop 2 (bastion-b:22):
// HostKeyMismatch Host key for …`. The error keeps its class and reason (a HostKeyError stays one,
// the status reason stays HostKeyMismatch); only the message says where.
import { ConnectionError, TunnelError, messageOf } from "../errors.ts";
import { hopLabel, type Endpoint } from "./route.ts";


/** `err` as hop `index`'s error. Our errors are fresh per attempt, so the message is rewritten in place. */
export function hopError(index: number, hop: Pick<Endpoint, "host" | "port">, err: unknown): TunnelError {
  const label = hopLabel(index, hop);
  if (err instanceof TunnelError) {
    if (!err.message.startsWith("hop ")) err.message = `${label}: ${err.reason} ${err.message}`;
    return err;
  }
  return new ConnectionError("Unknown", `${label}: ${messageOf(err)}`, { cause: err });
}

/**
 * A hop could not open a channel to the next server (`what`: "hop 2 (b:22)" or the target's
 * host:port): say why in the words a direct connection would use (sshd passes on "Connection
 * refused", "Name or service not known", …).
 */
export function unreachableThrough(what: string, from: string, err: unknown): TunnelError {
  const detail = err instanceof Error && err.cause instanceof Error ? err.cause.message : messageOf(err);
  const reason: ConstructorParameters<typeof ConnectionError>[0] = /refused/i.test(detail)
    ? "ConnectionRefused"
    : /not known|resolve|no address/i.test(detail)
      ? "HostUnresolvable"
      : "ConnectionLost";
  return new ConnectionError(reason, `${what}: ${reason} ${from} cannot reach it: ${detail}`, { cause: err });
}
