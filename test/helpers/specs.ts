// Normalised specs for the pure-core tests (plan, diff): one place for the defaults.
import type { LocalForwardSpec, RemoteForwardSpec, TunnelSpec } from "../../src/manifest/types.ts";

export function localSpec(localPort: number, overrides: Partial<LocalForwardSpec> = {}): LocalForwardSpec {
  return { bindAddress: "127.0.0.1", localPort, remoteHost: "remote-machine", remotePort: 80, connectTimeout: 30000, ...overrides };
}

export function remoteSpec(remotePort: number, overrides: Partial<RemoteForwardSpec> = {}): RemoteForwardSpec {
  return { bindAddress: "127.0.0.1", remotePort, localHost: "local-machine", localPort: 80, ...overrides };
}

export function tunnelSpec(forwards: { local?: LocalForwardSpec[]; remote?: RemoteForwardSpec[] } = {}, overrides: Partial<TunnelSpec> = {}): TunnelSpec {
  return {
    host: "bastion.example.com",
    port: 22,
    username: "deploy",
    auth: { privateKeyFile: "/home/deploy/.ssh/id_ed25519" },
    hostKey: { knownHostsFile: "/home/deploy/.ssh/known_hosts", fingerprints: [], policy: "strict" },
    keepalive: { interval: 15000, countMax: 3 },
    reconnect: { minDelay: 1000, maxDelay: 60000 },
    suspend: false,
    forwards: { local: forwards.local ?? [], remote: forwards.remote ?? [] },
    ...overrides,
  };
}
