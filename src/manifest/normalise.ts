// A schema-valid document → Tunnel: durations in milliseconds, paths made absolute
// (~ → the controller's home, relative → the manifest's folder), a generation hash.
// Defaults are already in place (ajv applies the schema's). Pure: no file system, no env.
import { createHash } from "node:crypto";
import path from "node:path";
import { parseDuration } from "./duration.ts";
import { parseSize } from "./size.ts";
import { formatFieldPath, type FieldIssue, type FieldPath } from "./field-path.ts";
import type { RawDuration, RawSize, RawTunnel } from "./raw.ts";
import type { AuthSpec, HopSpec, HostKeySpec, LocalForwardSpec, RemoteForwardSpec, SourcePosition, Tunnel, TunnelSpec } from "./types.ts";
import { canonicalJson } from "./canonical-json.ts";
import { localForwardPath } from "./forward-paths.ts";

export interface NormaliseContext {
  /** Absolute path of the manifest file. */
  file: string;
  index: number;
  homeDir: string;
  positionOf: (path: FieldPath) => SourcePosition;
}

export type NormaliseResult = { tunnel: Tunnel; issues?: never } | { tunnel?: never; issues: FieldIssue[] };

export function normaliseTunnel(raw: RawTunnel, context: NormaliseContext): NormaliseResult {
  const issues: FieldIssue[] = [];
  // Durations are the one thing the schema cannot fully check: "9999h" matches the pattern.
  const duration = (value: RawDuration, at: FieldPath): number => {
    try {
      return parseDuration(value);
    } catch (error) {
      issues.push({ path: at, at: "value", message: `${formatFieldPath(at)}: ${(error as Error).message}` });
      return 0;
    }
  };
  // A receive window below ssh2's fixed 2 MiB cannot be had; above 1 GiB no link needs.
  const size = (value: RawSize, at: FieldPath): number => {
    try {
      return parseSize(value, 2 * 1024 * 1024, 1024 ** 3);
    } catch (error) {
      issues.push({ path: at, at: "value", message: `${formatFieldPath(at)}: ${(error as Error).message}` });
      return 0;
    }
  };
  const baseDir = path.dirname(context.file);
  const resolvePath = (value: string): string => expandPath(value, context.homeDir, baseDir);
  const { spec } = raw;
  const auth = normaliseAuth(spec.auth, resolvePath);
  const hostKey = normaliseHostKey(spec.hostKey, resolvePath);

  const normalised: TunnelSpec = {
    host: spec.host,
    port: spec.port,
    username: spec.username,
    auth,
    hostKey,
    keepalive: {
      interval: duration(spec.keepalive.interval, ["spec", "keepalive", "interval"]),
      countMax: spec.keepalive.countMax,
    },
    reconnect: {
      minDelay: duration(spec.reconnect.minDelay, ["spec", "reconnect", "minDelay"]),
      maxDelay: duration(spec.reconnect.maxDelay, ["spec", "reconnect", "maxDelay"]),
    },
    transport: { maxWindow: size(spec.transport.maxWindow, ["spec", "transport", "maxWindow"]) },
    suspend: spec.suspend,
    forwards: {
      local: [
        ...spec.forwards.local.map((forward, i): LocalForwardSpec => {
          // The schema has made sure each side is a port or a path, never both.
          const out: LocalForwardSpec = {
            bindAddress: forward.localPath !== undefined ? "" : forward.bindAddress,
            localPort: forward.localPort ?? 0,
            remoteHost: forward.remoteHost ?? "",
            remotePort: forward.remotePort ?? 0,
            connectTimeout: duration(forward.connectTimeout, ["spec", "forwards", "local", i, "connectTimeout"]),
          };
          if (forward.localPath !== undefined) {
            out.localPath = resolvePath(forward.localPath);
            out.mode = forward.mode !== undefined ? parseInt(forward.mode, 8) : 0o600;
          }
          if (forward.remotePath !== undefined) out.remotePath = forward.remotePath;
          return out;
        }),
        // Dynamic forwards listen in the same local port space: after the local ones (see types.ts).
        ...spec.forwards.dynamic.map((forward, i) => ({
          bindAddress: forward.bindAddress,
          localPort: forward.localPort,
          remoteHost: "",
          remotePort: 0,
          connectTimeout: duration(forward.connectTimeout, ["spec", "forwards", "dynamic", i, "connectTimeout"]),
          socks: forward.allow !== undefined ? { allow: [...forward.allow] } : {},
        })),
      ],
      remote: spec.forwards.remote.map((forward): RemoteForwardSpec => {
        const out: RemoteForwardSpec = {
          bindAddress: forward.remotePath !== undefined ? "" : forward.bindAddress,
          remotePort: forward.remotePort ?? 0,
          localHost: forward.localHost ?? "",
          localPort: forward.localPort ?? 0,
        };
        if (forward.remotePath !== undefined) out.remotePath = forward.remotePath;
        if (forward.localPath !== undefined) out.localPath = resolvePath(forward.localPath);
        return out;
      }),
    },
  };
  // Absent rather than empty: a tunnel without hops keeps the generation it always had.
  if (spec.jump !== undefined && spec.jump.length > 0) {
    normalised.jump = spec.jump.map((hop): HopSpec => ({
      host: hop.host,
      port: hop.port,
      username: hop.username ?? spec.username,
      auth: hop.auth ? normaliseAuth(hop.auth, resolvePath) : auth,
      // A pin names one server's key: a hop inherits where keys are looked up and the policy only.
      hostKey: hop.hostKey ? normaliseHostKey(hop.hostKey, resolvePath) : { ...hostKey, fingerprints: [] },
    }));
  }
  if (spec.connectTimeout !== undefined) normalised.connectTimeout = spec.connectTimeout;
  if (issues.length > 0) return { issues };

  const name = raw.metadata.name;
  const labels = { ...raw.metadata.labels };
  return {
    tunnel: {
      name,
      labels,
      spec: normalised,
      file: context.file,
      index: context.index,
      generation: generationOf(name, labels, normalised),
      positions: {
        name: context.positionOf(["metadata", "name"]),
        localForwards: normalised.forwards.local.map((_, i) => context.positionOf(localForwardPath(normalised, i))),
      },
    },
  };
}

function normaliseAuth(auth: RawTunnel["spec"]["auth"], resolvePath: (value: string) => string): AuthSpec {
  // Only the fields that are present: exactOptionalPropertyTypes, and a stable generation hash.
  const out: AuthSpec = {};
  if (auth.privateKeyFile !== undefined) out.privateKeyFile = resolvePath(auth.privateKeyFile);
  if (auth.passphraseFile !== undefined) out.passphraseFile = resolvePath(auth.passphraseFile);
  if (auth.passphraseEnv !== undefined) out.passphraseEnv = auth.passphraseEnv;
  if (auth.agent !== undefined) out.agent = typeof auth.agent === "string" ? resolvePath(auth.agent) : auth.agent;
  if (auth.passwordFile !== undefined) out.passwordFile = resolvePath(auth.passwordFile);
  if (auth.passwordEnv !== undefined) out.passwordEnv = auth.passwordEnv;
  return out;
}

function normaliseHostKey(hostKey: RawTunnel["spec"]["hostKey"], resolvePath: (value: string) => string): HostKeySpec {
  return { knownHostsFile: resolvePath(hostKey.knownHostsFile), fingerprints: [...hostKey.fingerprints], policy: hostKey.policy };
}

/** `~` and `~/x` → home; absolute stays; relative → against the manifest's folder. */
export function expandPath(value: string, homeDir: string, baseDir: string): string {
  if (value === "~") return path.resolve(homeDir);
  if (value.startsWith("~/")) return path.resolve(homeDir, value.slice(2));
  return path.resolve(baseDir, value);
}

/** First 8 hex digits of sha256 over canonical JSON of name, labels and the normalised spec. */
export function generationOf(name: string, labels: Record<string, string>, spec: TunnelSpec): string {
  return createHash("sha256").update(canonicalJson({ name, labels, spec })).digest("hex").slice(0, 8);
}
