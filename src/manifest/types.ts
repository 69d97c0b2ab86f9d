// The manifest model after validation and normalisation: defaults applied, durations in
// milliseconds, paths expanded (~ → home, relative → manifest folder). Raw YAML never leaves
// src/manifest; everything else sees these types.

export type HostKeyPolicy = "strict" | "accept-new" | "insecure-accept-any";

export interface LocalForwardSpec {
  bindAddress: string; // default 127.0.0.1
  localPort: number; // 1..65535
  remoteHost: string;
  remotePort: number; // 1..65535
  connectTimeout: number; // ms, default 30000
  /**
   * Set for a dynamic forward (spec.forwards.dynamic, ssh -D): a SOCKS proxy whose connections name
   * their own destination; remoteHost is "" and remotePort 0. Dynamic forwards share the local
   * port space, so they live in forwards.local after the manifest's own local forwards.
   */
  socks?: { allow?: string[] };
  /** Listen on this unix socket instead (then bindAddress is "" and localPort 0). Absolute. */
  localPath?: string;
  /** The localPath socket's file mode (default 0o600). */
  mode?: number;
  /** Connect to this unix socket on the server instead (then remoteHost is "" and remotePort 0). */
  remotePath?: string;
}

export interface RemoteForwardSpec {
  bindAddress: string; // default 127.0.0.1 (on the server)
  remotePort: number; // 0..65535, 0 = server chooses
  localHost: string;
  localPort: number; // 1..65535
  /** The server listens on this unix socket instead (then bindAddress is "" and remotePort 0). */
  remotePath?: string;
  /** Forward to this unix socket here instead (then localHost is "" and localPort 0). Absolute. */
  localPath?: string;
}

/** Authentication methods. Only references to secrets, never the secrets themselves. */
export interface AuthSpec {
  privateKeyFile?: string; // absolute after normalisation
  passphraseFile?: string;
  passphraseEnv?: string;
  agent?: boolean | string; // true = $SSH_AUTH_SOCK, string = socket path
  passwordFile?: string;
  passwordEnv?: string;
}

export interface HostKeySpec {
  knownHostsFile: string; // absolute; default ~/.ssh/known_hosts
  fingerprints: string[]; // "SHA256:..." pins; default []
  policy: HostKeyPolicy; // default strict
}

/**
 * One jump host (OpenSSH ProxyJump). username/auth/hostKey left out in the manifest are the
 * tunnel's (hostKey: its knownHostsFile and policy; fingerprint pins name one server's key and are
 * not inherited).
 */
export interface HopSpec {
  host: string;
  port: number; // default 22
  username: string;
  auth: AuthSpec;
  hostKey: HostKeySpec;
}

export interface TunnelSpec {
  host: string;
  port: number; // default 22
  username: string;
  auth: AuthSpec;
  hostKey: HostKeySpec;
  keepalive: { interval: number; countMax: number }; // default 15000 ms, 3
  reconnect: { minDelay: number; maxDelay: number }; // default 1000 ms, 60000 ms
  /** Always set by the normaliser (default 16 MiB; 2 MiB = OpenSSH's fixed window); optional for specs built in code. */
  transport?: { maxWindow: number };
  suspend: boolean; // default false
  forwards: { local: LocalForwardSpec[]; remote: RemoteForwardSpec[] };
  /** Jump hosts in order: hop 1 over TCP, each next one (and the target) through the previous. Absent = direct. */
  jump?: HopSpec[];
  /** ms allowed for TCP connect + handshake + auth, per hop and target (ConnectTimeout from spec.sshConfig); default 20000. */
  connectTimeout?: number;
}

/** One position in a manifest file, 1-based line and column. */
export interface SourcePosition {
  line: number;
  column: number;
}

export interface Tunnel {
  name: string;
  labels: Record<string, string>;
  spec: TunnelSpec;
  /** Absolute path of the manifest file. */
  file: string;
  /** Index of the YAML document inside the file (0-based). */
  index: number;
  /** Short stable hash of the normalised spec (status `observedGeneration`). */
  generation: string;
  /** Where things are in the file, for cross-file error messages (conflicts, duplicate names). */
  positions: {
    name?: SourcePosition;
    /** Keyed by forwards.local index. */
    localForwards: SourcePosition[];
  };
}

/** An error that points into a manifest file. `toString()` gives `file:line:column: message`. */
export interface ManifestErrorInfo {
  file: string;
  line: number;
  column: number;
  message: string;
}
