// /readyz and /healthz bodies, as pure functions of the controller's snapshot (Kubernetes'
// `?verbose` style: one line per check, [+] passed, [-] failed, then the verdict).
import type { TunnelSnapshot } from "../controller/types.ts";

export interface Verdict {
  ok: boolean;
  body: string;
}

/**
 * Ready once the first full load is done and every managed, valid, unsuspended tunnel is Ready.
 * Invalid tunnels (their last valid version may still run) and suspended ones are listed but not
 * counted: an operator's edit in flight must not take a node out of service.
 */
export function readiness(loaded: boolean, tunnels: readonly TunnelSnapshot[]): Verdict {
  const lines: string[] = [loaded ? "[+]initial-load ok" : "[-]initial-load: the manifest directory is still being read"];
  let ok = loaded;
  for (const t of [...tunnels].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (t.phase === "Invalid" || t.phase === "Suspended") {
      lines.push(`[+]tunnel/${t.name} not checked: ${t.phase}`);
    } else if (t.phase === "Ready") {
      lines.push(`[+]tunnel/${t.name} ok`);
    } else {
      ok = false;
      const why = [t.ready.reason, t.ready.message].filter((part) => part !== "").join(": ");
      lines.push(`[-]tunnel/${t.name}: ${t.phase}${why === "" ? "" : `: ${oneLine(why)}`}`);
    }
  }
  lines.push(ok ? "readyz check passed" : "readyz check failed");
  return { ok, body: `${lines.join("\n")}\n` };
}

/** Alive: the controller's loop runs (this answer itself proves the event loop turns). */
export function liveness(alive: boolean): Verdict {
  return alive
    ? { ok: true, body: "[+]loop ok\n[+]watcher ok\nhealthz check passed\n" }
    : { ok: false, body: "[+]loop ok\n[-]watcher: not running (starting or stopping)\nhealthz check failed\n" };
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").slice(0, 300);
}
