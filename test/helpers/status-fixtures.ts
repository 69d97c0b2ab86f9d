// Observations for status tests: the SPEC §4 example, field by field. Each test overrides only
// what it is about.
import type {
  LocalForwardObservation,
  RemoteForwardObservation,
  SessionObservation,
  TunnelObservation,
} from "../../src/status/types.ts";

export const T0 = "2025-03-01T10:00:00.000Z";

export function localObservation(overrides: Partial<LocalForwardObservation> = {}): LocalForwardObservation {
  return {
    bindAddress: "127.0.0.1",
    localPort: 8080,
    remoteHost: "remote-machine",
    remotePort: 80,
    connectTimeout: 30000,
    state: "Active",
    message: "",
    activeConnections: 2,
    totalConnections: 41,
    failedConnections: 0,
    bytesIn: 123,
    bytesOut: 456,
    ...overrides,
  };
}

export function remoteObservation(overrides: Partial<RemoteForwardObservation> = {}): RemoteForwardObservation {
  return {
    bindAddress: "127.0.0.1",
    remotePort: 8080,
    boundPort: 8080,
    localHost: "local-machine",
    localPort: 80,
    state: "Active",
    message: "",
    activeConnections: 0,
    totalConnections: 3,
    bytesIn: 0,
    bytesOut: 0,
    ...overrides,
  };
}

export function sessionObservation(overrides: Partial<SessionObservation> = {}): SessionObservation {
  return {
    state: "Connected",
    serverVersion: "SSH-2.0-OpenSSH_9.2p1",
    hostKeyFingerprint: "SHA256:abc",
    connectedSince: T0,
    reconnects: 0,
    lastError: "",
    ...overrides,
  };
}

/** The SPEC §4 example, as an observation. */
export function observation(overrides: Partial<TunnelObservation> = {}): TunnelObservation {
  return {
    name: "db-bastion",
    manifest: "db.yaml",
    generation: "3f9a1c2e",
    errors: [],
    suspended: false,
    session: sessionObservation(),
    local: [localObservation()],
    remote: [remoteObservation()],
    ...overrides,
  };
}
