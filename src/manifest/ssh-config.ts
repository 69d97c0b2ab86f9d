// spec.sshConfig: fill what the manifest leaves out from the OpenSSH client config, as ssh would
// (HostName, Port, User, IdentityFile, IdentitiesOnly, IdentityAgent, ProxyJump, UserKnownHostsFile,
// StrictHostKeyChecking, ServerAliveInterval/CountMax, ConnectTimeout). Works on the schema-valid
// document before normalisation; `written` is the spec as written, before the schema's defaults,
// so a field the manifest sets always wins and a default never hides a config value.
import path from "node:path";
import { SshConfigError } from "../ssh-config/errors.ts";
import { loadSshConfig, nodeSshConfigIo, recordingIo, type LoadedSshConfig, type SshConfigIo, type SshConfigRead } from "../ssh-config/load.ts";
import type { JumpTarget } from "../ssh-config/proxy-jump.ts";
import { resolveHost, type HostSettings } from "../ssh-config/resolve.ts";
import type { FieldIssue, FieldPath } from "./field-path.ts";
import { expandPath } from "./normalise.ts";
import type { RawAuth, RawHostKey, RawTunnel } from "./raw.ts";

/** More hops than this from ProxyJump chains is a loop the alias check did not catch, or a mistake. */
export const MAX_CONFIG_HOPS = 16;

export interface SshConfigOptions {
  homeDir: string;
  /** The user ssh would log in as when nothing names one (the controller's user). */
  localUser: string;
  io?: SshConfigIo | undefined;
}

type RawSpec = RawTunnel["spec"];
type RawHop = NonNullable<RawSpec["jump"]>[number];
/** What the manifest wrote, before defaults: only presence is read from it. */
type Written = Partial<Record<keyof RawSpec, unknown>> & { jump?: Array<Partial<Record<keyof RawHop, unknown>>> };

export interface AppliedSshConfig {
  spec: RawSpec;
  /** Every file read and folder listed: the manifest depends on them. */
  reads: SshConfigRead[];
  issues: FieldIssue[];
}

/** The config file a spec names: `true` = ~/.ssh/config; a path like any other manifest path. */
export function sshConfigPath(value: string | true, manifestFile: string, homeDir: string): string {
  return value === true ? path.join(homeDir, ".ssh", "config") : expandPath(value, homeDir, path.dirname(manifestFile));
}

export function applySshConfig(spec: RawSpec, written: Written, manifestFile: string, options: SshConfigOptions): AppliedSshConfig {
  const { io, reads } = recordingIo(options.io ?? nodeSshConfigIo);
  const file = sshConfigPath(spec.sshConfig as string | true, manifestFile, options.homeDir);
  const issue = (at: FieldPath, err: unknown): AppliedSshConfig => {
    const where = at.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`)).join("");
    const message = err instanceof SshConfigError ? err.message : (err as Error).message;
    return { spec, reads, issues: [{ path: at, at: "value", message: `${where}: ${message}` }] };
  };
  let loaded: LoadedSshConfig;
  try {
    loaded = loadSshConfig(file, options.homeDir, io);
  } catch (err) {
    return issue(["spec", "sshConfig"], err);
  }
  const context = { homeDir: options.homeDir, localUser: options.localUser };

  let target: HostSettings;
  try {
    target = resolveHost(loaded, spec.host, { ...context, port: num(written.port), user: str(written.username) });
  } catch (err) {
    return issue(["spec", "sshConfig"], err);
  }
  const out: RawSpec = { ...spec, host: target.hostName };
  out.port = written.port !== undefined ? spec.port : (target.port ?? 22);
  out.username = written.username !== undefined ? spec.username : (target.user ?? options.localUser);
  if (written.auth === undefined) {
    const auth = authFrom(target);
    if (!auth) {
      return issue(["spec", "auth"], new Error(`missing: the manifest gives no auth and ${file} gives no IdentityFile for ${spec.host} (and IdentityAgent none)`));
    }
    out.auth = auth;
  }
  const writtenHostKey = (written.hostKey ?? {}) as Partial<Record<keyof RawHostKey, unknown>>;
  out.hostKey = {
    knownHostsFile: writtenHostKey.knownHostsFile !== undefined ? spec.hostKey.knownHostsFile : (target.userKnownHostsFile ?? spec.hostKey.knownHostsFile),
    fingerprints: spec.hostKey.fingerprints,
    policy: writtenHostKey.policy !== undefined ? spec.hostKey.policy : (target.strictHostKeyChecking ?? spec.hostKey.policy),
  };
  const writtenKeepalive = (written.keepalive ?? {}) as Record<string, unknown>;
  out.keepalive = {
    interval: writtenKeepalive.interval !== undefined ? spec.keepalive.interval : (target.serverAliveInterval ?? spec.keepalive.interval),
    countMax: writtenKeepalive.countMax !== undefined ? spec.keepalive.countMax : (target.serverAliveCountMax ?? spec.keepalive.countMax),
  };
  if (target.connectTimeout !== undefined) out.connectTimeout = target.connectTimeout;
  // A hop the config describes inherits what its own config does not say from the tunnel.
  const inherited = { auth: out.auth, hostKey: { ...out.hostKey, fingerprints: [] } };

  if (spec.jump !== undefined) {
    // The manifest's hops win over ProxyJump; each may be an alias of the same config.
    const hops: RawHop[] = [];
    for (const [index, hop] of spec.jump.entries()) {
      const hopWritten = written.jump?.[index] ?? {};
      try {
        const settings = resolveHost(loaded, hop.host, { ...context, port: num(hopWritten.port), user: str(hopWritten.username) });
        const resolved: RawHop = {
          host: settings.hostName,
          port: hopWritten.port !== undefined ? hop.port : (settings.port ?? 22),
          username: hop.username ?? settings.user ?? out.username,
          auth: hop.auth ?? authFrom(settings, false) ?? inherited.auth,
          hostKey: hop.hostKey ?? hopHostKey(settings, inherited.hostKey),
        };
        hops.push(resolved);
      } catch (err) {
        return issue(["spec", "jump", index, "host"], err);
      }
    }
    out.jump = hops;
  } else if (target.proxyJump !== undefined && target.proxyJump.length > 0) {
    try {
      out.jump = proxyJumpHops(loaded, target.proxyJump, [spec.host], target.proxyJumpAt, context, inherited);
    } catch (err) {
      return issue(["spec", "sshConfig"], err);
    }
  }
  return { spec: out, reads, issues: [] };
}

/**
 * The hops a ProxyJump list makes, as ssh builds them: the first hop is reached through its own
 * ProxyJump (recursively), the others as listed; a host met twice on the way is a loop. A hop
 * without user@ and without User logs in as the local user, as `ssh -J` does.
 */
function proxyJumpHops(
  loaded: LoadedSshConfig,
  targets: JumpTarget[],
  stack: string[],
  at: { file: string; line: number } | undefined,
  context: { homeDir: string; localUser: string },
  inherited: { auth: RawAuth; hostKey: RawHostKey },
): RawHop[] {
  const hops: RawHop[] = [];
  targets.forEach((jump, index) => {
    if (stack.includes(jump.host)) {
      throw new SshConfigError(at?.file ?? "(ssh config)", at?.line ?? 0, `ProxyJump loop: ${[...stack, jump.host].join(" → ")}`);
    }
    const settings = resolveHost(loaded, jump.host, { ...context, port: jump.port, user: jump.user });
    if (index === 0 && settings.proxyJump !== undefined && settings.proxyJump.length > 0) {
      hops.push(...proxyJumpHops(loaded, settings.proxyJump, [...stack, jump.host], settings.proxyJumpAt, context, inherited));
    }
    hops.push({
      host: settings.hostName,
      port: settings.port ?? 22,
      username: settings.user ?? context.localUser,
      auth: authFrom(settings, false) ?? inherited.auth,
      hostKey: hopHostKey(settings, inherited.hostKey),
    });
  });
  if (hops.length > MAX_CONFIG_HOPS) {
    throw new SshConfigError(at?.file ?? "(ssh config)", at?.line ?? 0, `ProxyJump makes more than ${MAX_CONFIG_HOPS} hops`);
  }
  return hops;
}

/**
 * Auth from IdentityFile (the first one), IdentitiesOnly and IdentityAgent. The agent is used when
 * the config names one, or (as ssh would) when it names no key and IdentitiesOnly is not yes;
 * `agentByDefault: false` leaves that default to the caller (a hop inherits the tunnel's auth).
 */
function authFrom(settings: HostSettings, agentByDefault = true): RawAuth | undefined {
  const auth: RawAuth = {};
  const [key] = settings.identityFiles;
  if (key !== undefined) auth.privateKeyFile = key;
  if (settings.identityAgent !== undefined && settings.identityAgent !== "none") auth.agent = settings.identityAgent;
  else if (settings.identityAgent === undefined && key === undefined && agentByDefault && settings.identitiesOnly !== true) auth.agent = true;
  return Object.keys(auth).length > 0 ? auth : undefined;
}

function hopHostKey(settings: HostSettings, inherited: RawHostKey): RawHostKey {
  return {
    knownHostsFile: settings.userKnownHostsFile ?? inherited.knownHostsFile,
    fingerprints: [],
    policy: settings.strictHostKeyChecking ?? inherited.policy,
  };
}

function num(value: unknown): number | undefined {
  return typeof value === "number" ? value : undefined;
}

function str(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}
