// ProxyJump values, pure: `none`, or comma-separated `[user@]host[:port]` / `ssh://[user@]host[:port]`.

export interface JumpTarget {
  host: string;
  user?: string;
  port?: number;
}

/** [] for `none`; throws an Error naming the hop it cannot read. */
export function parseProxyJump(value: string): JumpTarget[] {
  if (value.trim().toLowerCase() === "none") return [];
  return value.split(",").map((raw) => parseJumpTarget(raw.trim()));
}

function parseJumpTarget(raw: string): JumpTarget {
  const text = raw.startsWith("ssh://") ? raw.slice("ssh://".length) : raw;
  const match = /^(?:([^@\s]+)@)?(\[[^\]]+\]|[^:@\s/[\]]+)(?::(\d{1,5}))?$/.exec(text);
  if (!match || match[2] === undefined) throw new Error(`cannot read the jump host "${raw}" (expected [user@]host[:port])`);
  const host = match[2].startsWith("[") ? match[2].slice(1, -1) : match[2];
  const target: JumpTarget = { host };
  if (match[1] !== undefined) target.user = match[1];
  if (match[3] !== undefined) {
    const port = Number(match[3]);
    if (port < 1 || port > 65535) throw new Error(`jump host "${raw}": port ${port} is out of range`);
    target.port = port;
  }
  return target;
}
