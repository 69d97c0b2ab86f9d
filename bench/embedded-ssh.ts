// SSH servers for the fleet runs (100 and 1,000 tunnels): tunnelctl's own embedded ssh2 Server
// (src/demo/embedded-server.ts), several per process, on loopback. One sshd per tunnel would cost
// ~10 MB and a fork + re-exec per session; this costs a few hundred KB per session.
// Usage: embedded-ssh.ts COUNT AUTHORIZED_PUBKEY_FILE
// Prints {"ports": [...], "hostPublicKey": "ssh-ed25519 AAAA..."}; exits when stdin closes.
import { readFileSync } from "node:fs";
import { startEmbeddedServer, type EmbeddedServer } from "../src/demo/embedded-server.ts";
import { generateKeyPair, publicKeyOf } from "../src/demo/keys.ts";

const count = Number(process.argv[2]);
const authorizedFile = process.argv[3];
if (!Number.isInteger(count) || count < 1 || !authorizedFile) {
  process.stderr.write("usage: embedded-ssh.ts COUNT AUTHORIZED_PUBKEY_FILE\n");
  process.exit(2);
}

const hostKey = generateKeyPair("tunnelctl-bench-host");
const authorizedKeys = readFileSync(authorizedFile, "utf8").split("\n");
let errors = 0;
const servers: EmbeddedServer[] = [];
for (let i = 0; i < count; i++) {
  servers.push(
    await startEmbeddedServer({
      hostKey: hostKey.privateKey,
      authorizedKeys,
      onError: () => {
        errors++;
      },
    }),
  );
}
process.stdout.write(`${JSON.stringify({ ports: servers.map((s) => s.port), hostPublicKey: publicKeyOf(hostKey.privateKey) })}\n`);
// A line on request: how many clients are connected, how many errors were reported.
process.stdin.setEncoding("utf8");
process.stdin.on("data", () => {
  process.stdout.write(`${JSON.stringify({ connections: servers.reduce((n, s) => n + s.connections, 0), errors })}\n`);
});
process.stdin.on("end", () => process.exit(0));
process.stdin.on("error", () => process.exit(0));
