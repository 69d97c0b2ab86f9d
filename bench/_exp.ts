import { connect as netConnect } from "node:net";
import { readFileSync } from "node:fs";
import ssh2 from "ssh2";
import { startSshd, destroySshd, freePort } from "../test/helpers/sshd.ts";
import { spawnScript } from "./lib/children.ts";
import { echoOnce } from "./lib/client.ts";
import { splice } from "../src/ssh/splice.ts";

const sshd = await startSshd();
const targets = spawnScript("targets", "target-server.ts");
const { port: targetPort } = await targets.nextJson<{ port: number }>((v) => typeof v.port === "number", 20000);
let trace: string[] = [];
const t0 = performance.now();
const client = new ssh2.Client();
const sock = netConnect({ host: "127.0.0.1", port: sshd.port });
sock.setNoDelay(true);
await new Promise<void>((resolve) => {
  client.on("ready", () => resolve());
  client.connect({ sock, username: sshd.username, privateKey: readFileSync(sshd.clientKeyFile), hostVerifier: () => true,
    debug: (s: string) => trace.push(`${(performance.now() - t0).toFixed(2)} ${s}`) });
});
const rport = await freePort();
client.on("tcp connection", (info, accept, reject) => {
  const s = netConnect({ host: "127.0.0.1", port: targetPort, allowHalfOpen: true });
  s.setNoDelay(true);
  s.once("connect", () => {
    trace.push(`${(performance.now() - t0).toFixed(2)} target connected`);
    const ch = accept();
    if (process.env.NO_AUTODESTROY) {
      (ch as any)._readableState.autoDestroy = false;
      (ch as any)._writableState.autoDestroy = false;
    }
    ch.once("close", () => trace.push(`${(performance.now() - t0).toFixed(2)} channel close event`));
    splice(s, ch, () => trace.push(`${(performance.now() - t0).toFixed(2)} splice closed`));
  });
  s.on("error", () => reject());
});
await new Promise<void>((r, j) => client.forwardIn("127.0.0.1", rport, (e) => (e ? j(e) : r())));
const lat: number[] = [];
for (let i = 0; i < 200; i++) {
  trace = [];
  const start = performance.now() - t0;
  const ms = await echoOnce(rport, 5000);
  lat.push(ms);
  await new Promise((r) => setTimeout(r, 2));
  if ((ms > 30 && i < 40) || i === 5) {
    console.log(`--- connection ${i}: ${ms.toFixed(1)} ms (started at ${start.toFixed(2)})`);
    console.log(trace.filter((l) => !/Handshake/.test(l)).join("\n"));
  }
}
lat.sort((a, b) => a - b);
console.log(`p50 ${lat[100]!.toFixed(2)} p99 ${lat[197]!.toFixed(2)} stalls ${lat.filter((x) => x > 30).length}/200`);
client.end();
await targets.stop();
await destroySshd(sshd);
