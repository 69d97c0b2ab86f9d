// A Tunnel document as the schema guarantees it once ajv has filled in the defaults: durations
// are still as written (ms or "30s") and paths still as written (~, relative).

export type RawDuration = number | string;
export type RawSize = number | string;

export interface RawAuth {
  privateKeyFile?: string;
  passphraseFile?: string;
  passphraseEnv?: string;
  agent?: boolean | string;
  passwordFile?: string;
  passwordEnv?: string;
}

export interface RawHostKey {
  knownHostsFile: string;
  fingerprints: string[];
  policy: "strict" | "accept-new" | "insecure-accept-any";
}

export interface RawTunnel {
  apiVersion: "tunnelctl/v1";
  kind: "Tunnel";
  metadata: { name: string; labels: Record<string, string> };
  spec: {
    host: string;
    port: number;
    username: string;
    auth: RawAuth;
    hostKey: RawHostKey;
    keepalive: { interval: RawDuration; countMax: number };
    reconnect: { minDelay: RawDuration; maxDelay: RawDuration };
    transport: { maxWindow: RawSize };
    suspend: boolean;
    /** spec.sshConfig: a path, or true for ~/.ssh/config. */
    sshConfig?: string | boolean;
    /** Not in the schema: ConnectTimeout from the ssh config, in ms. */
    connectTimeout?: number;
    jump?: Array<{
      host: string;
      port: number;
      username?: string;
      auth?: RawAuth;
      hostKey?: RawHostKey;
    }>;
    forwards: {
      local: Array<{
        bindAddress: string;
        localPort?: number;
        remoteHost?: string;
        remotePort?: number;
        connectTimeout: RawDuration;
        localPath?: string;
        mode?: string;
        remotePath?: string;
      }>;
      remote: Array<{ bindAddress: string; remotePort?: number; localHost?: string; localPort?: number; remotePath?: string; localPath?: string }>;
      dynamic: Array<{ bindAddress: string; localPort: number; connectTimeout: RawDuration; allow?: string[] }>;
    };
  };
}
