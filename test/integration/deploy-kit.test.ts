// The deployment kit (issue 19), checked by reading it: every tunnelctl command line under
// deploy/ parses with tunnelctl's own option parser (each flag real, each value valid), probes and
// scrape settings point at the port and paths the metrics server serves, every tunnel manifest
// embedded there validates, and the systemd unit passes `systemd-analyze verify` without a word.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { parseAllDocuments } from "yaml";
import { buildProgram, type CommandHandlers } from "../../src/cli/program.ts";
import type { RunOptions } from "../../src/cli/run.ts";
import { loadManifestText } from "../../src/manifest/index.ts";
import { splitListenAddress } from "../../src/metrics/http.ts";
import { REPO_ROOT } from "../helpers/cli.ts";

const DEPLOY = path.join(REPO_ROOT, "deploy");
const SERVED_PATHS = { liveness: "/healthz", readiness: "/readyz", metrics: "/metrics" };

/** Parse a tunnelctl argument list as the CLI would; returns the run options (or throws the usage error). */
async function parseRun(args: string[]): Promise<RunOptions> {
  let captured: RunOptions | undefined;
  const none = async (): Promise<number> => 0;
  const handlers: CommandHandlers = { run: async (o) => ((captured = o), 0), validate: none, get: none, schema: none, demo: none, diff: none };
  const errors: string[] = [];
  const program = buildProgram(handlers, { out: () => undefined, err: (t) => errors.push(t) }, () => undefined);
  try {
    await program.parseAsync(args, { from: "user" });
  } catch (err) {
    throw new Error(`tunnelctl ${args.join(" ")}: ${errors.join("") || String(err)}`);
  }
  assert.ok(captured, `tunnelctl ${args.join(" ")}: not a run command`);
  return captured;
}

interface Container {
  name: string;
  image?: string;
  args?: string[];
  command?: string[];
  env?: Array<{ name: string }>;
  ports?: Array<{ name?: string; containerPort: number }>;
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
}

function kubernetesDocs(): Array<{ file: string; doc: Record<string, any> }> {
  const dir = path.join(DEPLOY, "kubernetes");
  return readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .flatMap((file) =>
      parseAllDocuments(readFileSync(path.join(dir, file), "utf8")).map((d) => {
        assert.deepEqual(d.errors, [], `${file}: YAML errors`);
        return { file, doc: d.toJS() as Record<string, any> };
      }),
    );
}

describe("deploy/", () => {
  it("every Kubernetes workload runs a valid tunnelctl command, probes and scrape settings match what is served", async () => {
    const workloads = kubernetesDocs().filter(({ doc }) => ["DaemonSet", "Deployment"].includes(doc["kind"]));
    assert.ok(workloads.length >= 3, "a DaemonSet, a Deployment and a git-sync Deployment");
    for (const { file, doc } of workloads) {
      const pod = doc["spec"]["template"];
      const containers = pod["spec"]["containers"] as Container[];
      const ctl = containers.find((c) => c.image?.startsWith("tunnelctl"));
      assert.ok(ctl?.args, `${file}: a tunnelctl container with args`);
      // $(VAR) is expanded by Kubernetes from the container's env: only declared variables.
      const args = ctl.args.map((a) =>
        a.replace(/\$\((\w+)\)/g, (_, v: string) => {
          assert.ok(ctl.env?.some((e) => e.name === v), `${file}: $(${v}) is not in the container's env`);
          return "worker-1";
        }),
      );
      const options = await parseRun(args);
      assert.ok(options.metricsAddress, `${file}: --metrics-address`);
      const { port } = splitListenAddress(options.metricsAddress);
      const named = (p: string | number): number => (typeof p === "number" ? p : ctl.ports!.find((x) => x.name === p)!.containerPort);
      assert.equal(named(ctl.livenessProbe!.httpGet!.port), port, `${file}: liveness port`);
      assert.equal(ctl.livenessProbe!.httpGet!.path, SERVED_PATHS.liveness);
      assert.equal(named(ctl.readinessProbe!.httpGet!.port), port, `${file}: readiness port`);
      assert.equal(ctl.readinessProbe!.httpGet!.path, SERVED_PATHS.readiness);
      const annotations = pod["metadata"]["annotations"] as Record<string, string>;
      assert.equal(Number(annotations["prometheus.io/port"]), port, `${file}: scrape port`);
      assert.equal(annotations["prometheus.io/path"], SERVED_PATHS.metrics);
      // DIR is inside a mounted volume; the status directory is a writable one.
      const mounts = ctl.volumeMounts ?? [];
      assert.ok(mounts.some((m) => options.dir === m.mountPath || options.dir.startsWith(`${m.mountPath}/`)), `${file}: DIR ${options.dir} is mounted`);
      assert.ok(mounts.some((m) => m.mountPath === options.statusDir && m.readOnly !== true), `${file}: --status-dir is a writable mount`);
      // The key file the manifests name is where the key volume is mounted.
      assert.ok(mounts.some((m) => m.mountPath === "/var/run/tunnelctl-ssh"), `${file}: the SSH key volume`);
      const secret = (pod["spec"]["volumes"] as Array<Record<string, any>>).find((v) => v["secret"]);
      assert.equal(secret?.["secret"]["defaultMode"], 0o400, `${file}: the key Secret is mode 0400`);
    }
  });

  it("the Service and ServiceMonitor scrape the metrics port's /metrics", () => {
    const docs = kubernetesDocs();
    const service = docs.find(({ doc }) => doc["kind"] === "Service")!.doc;
    const monitor = docs.find(({ doc }) => doc["kind"] === "ServiceMonitor")!.doc;
    const port = (service["spec"]["ports"] as Array<Record<string, any>>)[0]!;
    assert.equal(port["targetPort"], "metrics");
    assert.equal(monitor["spec"]["endpoints"][0]["port"], port["name"]);
    assert.equal(monitor["spec"]["endpoints"][0]["path"], SERVED_PATHS.metrics);
    assert.deepEqual(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"]);
  });

  it("every tunnel manifest in a ConfigMap validates, and the DaemonSet's selector label is on it", () => {
    const maps = kubernetesDocs().filter(({ doc }) => doc["kind"] === "ConfigMap");
    let manifests = 0;
    for (const { file, doc } of maps) {
      for (const [key, text] of Object.entries(doc["data"] as Record<string, string>)) {
        if (!key.endsWith(".yaml")) continue;
        const result = loadManifestText(`/etc/tunnelctl/manifests/${key}`, text, { homeDir: "/home/node", displayPath: `${file}:${key}` });
        assert.deepEqual(result.errors.map(String), [], `${file}: ${key}`);
        for (const d of result.documents) assert.ok(d.tunnel?.labels["node"], `${file}: ${key}: a node label for --selector node=...`);
        manifests++;
      }
    }
    assert.ok(manifests > 0);
  });

  it("the Dockerfile's command parses, and it exposes the metrics port", async () => {
    const text = readFileSync(path.join(DEPLOY, "container", "Dockerfile"), "utf8");
    const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(text)![1]!) as string[];
    const entrypoint = JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(text)![1]!) as string[];
    assert.deepEqual(entrypoint.slice(1, 3), nodeFlags(), "the launcher's node flags");
    const options = await parseRun(cmd);
    assert.equal(splitListenAddress(options.metricsAddress!).port, Number(/^EXPOSE (\d+)$/m.exec(text)![1]));
    assert.match(text, /^FROM node:20-slim AS build$/m);
    assert.match(text, /^USER node$/m, "non-root");
    assert.match(text, /npm prune --omit=dev/, "production dependencies only");
  });

  it("the systemd unit's command parses, keeps the node flags, and systemd-analyze verify says nothing", async (t) => {
    const unit = path.join(DEPLOY, "systemd", "tunnelctl.service");
    const exec = /^ExecStart=(.*)$/m.exec(readFileSync(unit, "utf8"))![1]!.split(/\s+/);
    assert.equal(exec[0], "/usr/bin/node", "node by absolute path");
    assert.deepEqual(exec.slice(1, 3), nodeFlags());
    const script = exec.findIndex((a) => a.endsWith("/bin/tunnelctl.js"));
    await parseRun(exec.slice(script + 1));
    if (!existsSync("/usr/bin/systemd-analyze")) {
      t.skip("no systemd-analyze here");
      return;
    }
    // It exits 0 on unknown keys: any line that names the unit is a complaint.
    const verify = spawnSync("/usr/bin/systemd-analyze", ["verify", unit], { encoding: "utf8" });
    const complaints = `${verify.stdout}${verify.stderr}`.split("\n").filter((l) => l.includes("tunnelctl.service"));
    assert.deepEqual(complaints, []);
    assert.equal(verify.status, 0);
  });
});

/** The flags bin/tunnelctl.js starts node with (src/cli/node-flags.ts). */
function nodeFlags(): string[] {
  const launcher = readFileSync(path.join(REPO_ROOT, "bin", "tunnelctl.js"), "utf8");
  return /exec node (--\S+) (--\S+) "\$0"/.exec(launcher)!.slice(1, 3);
}
