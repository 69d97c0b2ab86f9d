// A Tunnel document as the schema guarantees it once ajv has filled in the defaults: durations
// are still as written (ms or "30s") and paths still as written (~, relative).

export type RawDuration = number | string;

export interface RawTunnel {
  apiVersion: "tunnelctl/v1";
  kind: "Tunnel";
  metadata: { name: string; labels: Record<string, string> };
  spec: {
    host: string;
    port: number;
    username: string;
    auth: {
      privateKeyFile?: string;
      passphraseFile?: string;
      passphraseEnv?: string;
      agent?: boolean | string;
      passwordFile?: string;
      passwordEnv?: string;
    };
    hostKey: { knownHostsFile: string; fingerprints: string[]; policy: "strict" | "accept-new" | "insecure-accept-any" };
    keepalive: { interval: RawDuration; countMax: number };
    reconnect: { minDelay: RawDuration; maxDelay: RawDuration };
    suspend: boolean;
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
