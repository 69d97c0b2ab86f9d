// A long link on loopback for the WAN section: the userspace delay relay of the tests
// (test/helpers/delay-relay.ts) in a process of its own, so that its CPU is not the harness's.
// Usage: delay-relay.ts TARGET_PORT ONE_WAY_MS. Prints {"port": N}; exits when stdin closes.
import { startDelayRelay } from "../test/helpers/delay-relay.ts";

const targetPort = Number(process.argv[2]);
const oneWayMs = Number(process.argv[3]);
if (!Number.isInteger(targetPort) || targetPort <= 0 || !(oneWayMs >= 0)) {
  process.stderr.write("usage: delay-relay.ts TARGET_PORT ONE_WAY_MS\n");
  process.exit(2);
}
const relay = await startDelayRelay(targetPort, oneWayMs);
process.stdout.write(`${JSON.stringify({ port: relay.port })}\n`);
process.stdin.resume();
process.stdin.on("end", () => process.exit(0));
process.stdin.on("error", () => process.exit(0));
