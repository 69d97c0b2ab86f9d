// The demo directory: the client key and a Tunnel manifest that points at the embedded server.
// Rewritten on every start, because the ports and keys are new each time.
import { chmod, mkdir, rm, writeFile } from "node:fs/promises";
import { createServer, type AddressInfo } from "node:net";
import path from "node:path";
import { TUNNEL_SCHEMA_URL } from "../manifest/index.ts";

export const DEMO_MANIFEST = "demo.yaml";
export const DEMO_CLIENT_KEY = "client_ed25519";

export interface DemoSetup {
  dir: string;
  clientPrivateKey: string;
  sshPort: number;
  hostKeyFingerprint: string;
  /** Where the local forward listens (127.0.0.1). */
  localPort: number;
  /** The echo service, target of both forwards. */
  echoPort: number;
}

/** Writes the key (mode 600) and the manifest; returns the manifest's path. */
export async function writeDemoFiles(setup: DemoSetup): Promise<string> {
  const created = (await mkdir(setup.dir, { recursive: true })) !== undefined;
  // Keep the throwaway key out of git when the demo runs inside a checkout (`npm start`). Only in
  // a folder made here: an existing one is the user's, and so is its ignore policy.
  if (created) await writeFile(path.join(setup.dir, ".gitignore"), "# written by tunnelctl demo\n*\n");
  const keyFile = path.join(setup.dir, DEMO_CLIENT_KEY);
  await writeFile(keyFile, setup.clientPrivateKey, { mode: 0o600 });
  await chmod(keyFile, 0o600); // writeFile's mode applies only to a new file
  const manifest = path.join(setup.dir, DEMO_MANIFEST);
  // A status file left by an earlier demo describes servers that are gone.
  await rm(`${manifest}.status`, { force: true });
  await writeFile(manifest, demoManifest(setup));
  return manifest;
}

export function demoManifest(setup: DemoSetup): string {
  return `# yaml-language-server: $schema=${TUNNEL_SCHEMA_URL.href}
#
# Written by \`tunnelctl demo\` (and rewritten each time it starts). Edit it while the demo runs:
# add a forward, change a port, set suspend: true — tunnelctl converges without reconnecting.
apiVersion: tunnelctl/v1
kind: Tunnel
metadata:
  name: demo
  labels: {app: tunnelctl-demo}
spec:
  host: 127.0.0.1                 # the demo's embedded SSH server
  port: ${setup.sshPort}
  username: demo
  auth:
    privateKeyFile: ./${DEMO_CLIENT_KEY}   # relative to this file's folder
  hostKey:
    fingerprints: ["${setup.hostKeyFingerprint}"]
    policy: strict
  keepalive: {interval: 5s, countMax: 3}
  reconnect: {minDelay: 500ms, maxDelay: 5s}
  forwards:
    local:                        # like ssh -L: listen here, connect from the server
      - bindAddress: 127.0.0.1
        localPort: ${setup.localPort}
        remoteHost: 127.0.0.1     # the echo service
        remotePort: ${setup.echoPort}
    remote:                       # like ssh -R: the server listens, connections come back here
      - bindAddress: 127.0.0.1
        remotePort: 0             # 0: the server picks a port; the table shows it
        localHost: 127.0.0.1
        localPort: ${setup.echoPort}
`;
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
