// What an OpenSSH client config says about one host, as tunnelctl can use it. The settings come
// from the ssh-config package's compute() (first value wins, Host patterns with !negation, Match);
// this module picks the directives tunnelctl honours, expands their tokens, and refuses the ones
// that would change how the connection is made but that tunnelctl cannot honour.
import { glob, LineType, type Line } from "ssh-config";
import { SshConfigError } from "./errors.ts";
import type { LoadedSshConfig } from "./load.ts";
import { valuesOf } from "./load.ts";
import { parseProxyJump, type JumpTarget } from "./proxy-jump.ts";
import { expandTokens, type TokenValues } from "./tokens.ts";

export type StrictHostKeyChecking = "strict" | "accept-new" | "insecure-accept-any";

/** The settings for one host; a field is absent when the config does not set it. */
export interface HostSettings {
  /** HostName, or the name asked for. */
  hostName: string;
  port?: number;
  user?: string;
  /** IdentityFile, in order, expanded and absolute. */
  identityFiles: string[];
  identitiesOnly?: boolean;
  /** IdentityAgent: "none", true ($SSH_AUTH_SOCK) or a socket path. */
  identityAgent?: "none" | true | string;
  /** ProxyJump: [] for `none`. */
  proxyJump?: JumpTarget[];
  /** Where ProxyJump was set, for errors about the chain it makes. */
  proxyJumpAt?: { file: string; line: number };
  /** UserKnownHostsFile (the first one), expanded and absolute. */
  userKnownHostsFile?: string;
  strictHostKeyChecking?: StrictHostKeyChecking;
  /** ServerAliveInterval in ms (0 = off). */
  serverAliveInterval?: number;
  serverAliveCountMax?: number;
  /** ConnectTimeout in ms. */
  connectTimeout?: number;
}

export interface ResolveContext {
  homeDir: string;
  localUser: string;
  /** Values the manifest sets itself: they win, and tokens (%p, %r) expand to them. */
  port?: number | undefined;
  user?: string | undefined;
}

/** Directives that change how the connection is made and that tunnelctl cannot honour. */
const UNSUPPORTED: Record<string, string> = {
  proxycommand: "tunnelctl runs no commands: use ProxyJump or spec.jump",
  localcommand: "tunnelctl runs no commands",
  remotecommand: "tunnelctl opens no shell or command on the server",
  certificatefile: "certificate authentication is not supported yet: use a key",
  knownhostscommand: "tunnelctl runs no commands: use UserKnownHostsFile",
};

/** The settings for `alias`; throws SshConfigError naming the file, line and directive. */
export function resolveHost(loaded: LoadedSshConfig, alias: string, context: ResolveContext): HostSettings {
  refuseMatchExec(loaded);
  refuseUnknownAlias(loaded, alias);
  const computed = loaded.config.compute(alias, { ignoreCase: true, matchExec: false });
  const first = (key: string): string | undefined => {
    const value = computed[key];
    return Array.isArray(value) ? value[0] : value;
  };
  const at = (key: string): { file: string; line: number } => {
    const line = firstApplying(loaded.config, key, alias);
    return line ? loaded.where(line) : { file: "(ssh config)", line: 0 };
  };
  const fail = (key: string, message: string): never => {
    const where = at(key);
    throw new SshConfigError(where.file, where.line, message);
  };

  for (const [key, why] of Object.entries(UNSUPPORTED)) {
    const value = first(key);
    if (value === undefined || value.toLowerCase() === "none") continue;
    // ProxyJump and ProxyCommand: whichever comes first wins (ssh_config(5)).
    if (key === "proxycommand" && first("proxyjump") !== undefined && isBefore(loaded, firstApplying(loaded.config, "proxyjump", alias), firstApplying(loaded.config, key, alias))) continue;
    const line = firstApplying(loaded.config, key, alias);
    fail(key, `${line?.type === LineType.DIRECTIVE ? line.param : key} is not supported (${why})`);
  }

  const number = (key: string, min: number, max: number): number | undefined => {
    const value = first(key);
    if (value === undefined) return undefined;
    const parsed = /^\d+$/.test(value) ? Number(value) : NaN;
    if (!(parsed >= min && parsed <= max)) fail(key, `${key}: must be a number from ${min} to ${max} (got "${value}")`);
    return parsed;
  };
  const port = context.port ?? number("port", 1, 65535);
  const user = context.user ?? first("user");
  const rawHostName = first("hostname");
  const tokens: TokenValues = { host: alias, alias, port: port ?? 22, user: user ?? context.localUser, localUser: context.localUser, homeDir: context.homeDir };
  const expand = (key: string, value: string): string => {
    try {
      return expandTokens(value, tokens);
    } catch (err) {
      return fail(key, `${key} ${value}: ${(err as Error).message}`);
    }
  };
  const hostName = rawHostName === undefined ? alias : expand("hostname", rawHostName);
  tokens.host = hostName;
  const absolute = (value: string): string => (value.startsWith("/") ? value : `${context.homeDir}/${value}`);

  const settings: HostSettings = { hostName, identityFiles: [] };
  if (port !== undefined) settings.port = port;
  if (user !== undefined) settings.user = user;
  const identityFiles = computed["identityfile"];
  settings.identityFiles = (Array.isArray(identityFiles) ? identityFiles : identityFiles === undefined ? [] : [identityFiles]).map((file) => absolute(expand("identityfile", file)));
  const identitiesOnly = first("identitiesonly");
  if (identitiesOnly !== undefined) settings.identitiesOnly = yesNo(identitiesOnly) ?? fail("identitiesonly", `IdentitiesOnly: must be yes or no (got "${identitiesOnly}")`);
  const agent = first("identityagent");
  if (agent !== undefined) {
    settings.identityAgent = agent.toLowerCase() === "none" ? "none" : /^\$?SSH_AUTH_SOCK$/.test(agent) ? true : absolute(expand("identityagent", agent));
  }
  const proxyJump = first("proxyjump");
  if (proxyJump !== undefined) {
    try {
      settings.proxyJump = parseProxyJump(proxyJump);
    } catch (err) {
      fail("proxyjump", `ProxyJump: ${(err as Error).message}`);
    }
    settings.proxyJumpAt = at("proxyjump");
  }
  const knownHosts = first("userknownhostsfile");
  if (knownHosts !== undefined && knownHosts.toLowerCase() !== "none") settings.userKnownHostsFile = absolute(expand("userknownhostsfile", knownHosts));
  const strict = first("stricthostkeychecking");
  if (strict !== undefined) {
    const policy = hostKeyPolicy(strict);
    if (!policy) fail("stricthostkeychecking", `StrictHostKeyChecking: must be yes, ask, accept-new, no or off (got "${strict}")`);
    settings.strictHostKeyChecking = policy!;
  }
  const interval = number("serveraliveinterval", 0, 2_147_483);
  if (interval !== undefined) settings.serverAliveInterval = interval * 1000;
  const countMax = number("serveralivecountmax", 1, 1000);
  if (countMax !== undefined) settings.serverAliveCountMax = countMax;
  const timeout = number("connecttimeout", 1, 2_147_483);
  if (timeout !== undefined) settings.connectTimeout = timeout * 1000;
  return settings;
}

/**
 * StrictHostKeyChecking → host-key policy: yes and ask (tunnelctl cannot ask) → strict; accept-new;
 * no/off → insecure-accept-any (what ssh does with them: connect whatever the key).
 */
export function hostKeyPolicy(value: string): StrictHostKeyChecking | undefined {
  switch (value.toLowerCase()) {
    case "yes":
    case "ask":
      return "strict";
    case "accept-new":
      return "accept-new";
    case "no":
    case "off":
      return "insecure-accept-any";
    default:
      return undefined;
  }
}

function yesNo(value: string): boolean | undefined {
  const lower = value.toLowerCase();
  return lower === "yes" ? true : lower === "no" ? false : undefined;
}

/**
 * A name that no Host block names (other than `Host *`) and that does not look like a host name
 * (no dot, not an address, not localhost) is a typo in an alias, not a server: say so, with the
 * aliases there are, instead of trying to resolve it.
 */
function refuseUnknownAlias(loaded: LoadedSshConfig, alias: string): void {
  if (/[.:]/.test(alias) || alias === "localhost") return;
  const hostPatterns = flatten(loaded.config).flatMap((line) =>
    line.type === LineType.DIRECTIVE && "config" in line && /^host$/i.test(line.param) ? [valuesOf(line)] : [],
  );
  if (hostPatterns.some((patterns) => patterns.some((p) => p !== "*") && glob(patterns, alias))) return;
  const known = hostPatterns.flat().filter((p) => !/[*?!]/.test(p));
  const list = known.length === 0 ? "it has no Host aliases" : `its aliases: ${known.slice(0, 10).join(", ")}${known.length > 10 ? ", …" : ""}`;
  throw new SshConfigError(loaded.file, 0, `"${alias}" is not a Host alias here and not a host name (${list})`);
}

/** `Match exec` runs a command to decide: tunnelctl runs none, and guessing could pick other settings. */
function refuseMatchExec(loaded: LoadedSshConfig): void {
  for (const line of loaded.config) {
    if (line.type === LineType.DIRECTIVE && /^match$/i.test(line.param) && valuesOf(line).some((v) => v.toLowerCase() === "exec")) {
      const where = loaded.where(line);
      throw new SshConfigError(where.file, where.line, "Match exec is not supported (tunnelctl runs no commands)");
    }
  }
}

/**
 * The first directive `key` (lowercase) that applies to `alias`: at the top, in a Host block
 * whose patterns match, or in a Match block (compute() decided those). For positions only.
 */
function firstApplying(config: readonly Line[], key: string, alias: string): Line | undefined {
  for (const line of config) {
    if (line.type !== LineType.DIRECTIVE) continue;
    if (line.param.toLowerCase() === key) return line;
    if (!("config" in line)) continue;
    const isHost = /^host$/i.test(line.param);
    if (isHost && !glob(valuesOf(line), alias)) continue;
    const found = line.config.find((inner) => inner.type === LineType.DIRECTIVE && inner.param.toLowerCase() === key);
    if (found) return found;
  }
  return undefined;
}

/** `a` comes before `b` in the config as ssh reads it (Includes spliced in). */
function isBefore(loaded: LoadedSshConfig, a: Line | undefined, b: Line | undefined): boolean {
  if (!a || !b) return a !== undefined;
  const flat = flatten(loaded.config);
  return flat.indexOf(a) < flat.indexOf(b);
}

function flatten(config: readonly Line[]): Line[] {
  return config.flatMap((line) => (line.type === LineType.DIRECTIVE && "config" in line ? [line, ...flatten(line.config)] : [line]));
}
