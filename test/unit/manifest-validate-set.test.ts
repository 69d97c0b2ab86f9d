import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { checkConflicts, localBindsOverlap, type LocalForwardSpec, type Tunnel } from "../../src/manifest/index.ts";

let nextLine = 1;
function tunnel(name: string, file: string, binds: Array<[string, number]>, extra: { index?: number; suspend?: boolean } = {}): Tunnel {
  const line = nextLine;
  nextLine += 10;
  const local: LocalForwardSpec[] = binds.map(([bindAddress, localPort]) => ({
    bindAddress,
    localPort,
    remoteHost: "target",
    remotePort: 80,
    connectTimeout: 30_000,
  }));
  return {
    name,
    labels: {},
    file,
    index: extra.index ?? 0,
    generation: "00000000",
    spec: {
      host: "bastion",
      port: 22,
      username: "u",
      auth: { agent: true },
      hostKey: { knownHostsFile: "/h/.ssh/known_hosts", fingerprints: [], policy: "strict" },
      keepalive: { interval: 15_000, countMax: 3 },
      reconnect: { minDelay: 1000, maxDelay: 60_000 },
      suspend: extra.suspend ?? false,
      forwards: { local, remote: [] },
    },
    positions: { name: { line, column: 9 }, localForwards: local.map((_, i) => ({ line: line + 2 + i, column: 9 })) },
  };
}
const display = (file: string): string => file.replace("/dir/", "");

describe("checkConflicts", () => {
  it("everything distinct: no duplicates, no conflicts", () => {
    const set = [tunnel("a", "/dir/a.yaml", [["127.0.0.1", 8080]]), tunnel("b", "/dir/b.yaml", [["127.0.0.1", 8081], ["127.0.0.2", 8080]])];
    assert.deepEqual(checkConflicts(set, display), { duplicates: [], conflicts: [] });
  });

  it("reports a duplicate name on the later file, naming the owner's position", () => {
    const first = tunnel("db", "/dir/a.yaml", []);
    const second = tunnel("db", "/dir/b.yaml", []);
    const { duplicates } = checkConflicts([second, first], display);
    assert.equal(duplicates.length, 1);
    assert.equal(duplicates[0]?.tunnel, second);
    assert.equal(duplicates[0]?.owner, first);
    assert.equal(
      duplicates[0]?.error.toString(),
      `b.yaml:${second.positions.name?.line}:9: metadata.name: tunnel name "db" is already used at a.yaml:${first.positions.name?.line}:9`,
    );
  });

  it("orders documents of one file by index", () => {
    const later = tunnel("db", "/dir/a.yaml", [], { index: 1 });
    const earlier = tunnel("db", "/dir/a.yaml", [], { index: 0 });
    assert.equal(checkConflicts([later, earlier], display).duplicates[0]?.tunnel, later);
  });

  it("0.0.0.0 overlaps a specific address: the first file keeps the port", () => {
    const any = tunnel("public", "/dir/a.yaml", [["0.0.0.0", 8080]]);
    const loopback = tunnel("private", "/dir/b.yaml", [["127.0.0.1", 9090], ["127.0.0.1", 8080]]);
    const { conflicts } = checkConflicts([loopback, any], display);
    assert.equal(conflicts.length, 1);
    assert.deepEqual(
      [conflicts[0]?.tunnel.name, conflicts[0]?.forwardIndex, conflicts[0]?.owner.name, conflicts[0]?.ownerForwardIndex],
      ["private", 1, "public", 0],
    );
    assert.equal(
      conflicts[0]?.error.toString(),
      `b.yaml:${loopback.positions.localForwards[1]?.line}:9: spec.forwards.local[1]: 127.0.0.1:8080 conflicts with 0.0.0.0:8080 ` +
        `of tunnel "public" (a.yaml:${any.positions.localForwards[0]?.line}:9), which keeps it`,
    );
  });

  it("the running tunnel keeps the port, whatever the file order", () => {
    const newcomer = tunnel("new", "/dir/a.yaml", [["0.0.0.0", 8080]]);
    const running = tunnel("old", "/dir/z.yaml", [["127.0.0.1", 8080]]);
    const { conflicts } = checkConflicts([newcomer, running], display, { isRunning: (t) => t === running });
    assert.equal(conflicts.length, 1);
    assert.equal(conflicts[0]?.tunnel, newcomer);
    assert.equal(conflicts[0]?.owner, running);
  });

  it("the running tunnel keeps its name against a new file", () => {
    const newcomer = tunnel("db", "/dir/a.yaml", []);
    const running = tunnel("db", "/dir/z.yaml", []);
    const { duplicates } = checkConflicts([newcomer, running], display, { isRunning: (t) => t === running });
    assert.equal(duplicates[0]?.tunnel, newcomer);
  });

  it("a listener that is bound now beats a running tunnel that wants the port after an edit", () => {
    // Both run; "edited" just changed its forward to the port "holder" is listening on.
    const edited = tunnel("edited", "/dir/a.yaml", [["127.0.0.1", 8080]]);
    const holder = tunnel("holder", "/dir/b.yaml", [["127.0.0.1", 8080]]);
    const { conflicts } = checkConflicts([edited, holder], display, {
      isRunning: () => true,
      holdsLocal: (t, forward) => t === holder && forward.localPort === 8080,
    });
    assert.equal(conflicts[0]?.tunnel, edited);
    assert.equal(conflicts[0]?.owner, holder);
  });

  it("a tunnel that lost its name claims no ports", () => {
    const owner = tunnel("db", "/dir/a.yaml", []);
    const duplicate = tunnel("db", "/dir/b.yaml", [["127.0.0.1", 8080]]);
    const other = tunnel("web", "/dir/c.yaml", [["127.0.0.1", 8080]]);
    const result = checkConflicts([owner, duplicate, other], display);
    assert.equal(result.duplicates.length, 1);
    assert.deepEqual(result.conflicts, []);
  });

  it("a suspended tunnel listens on nothing, so it claims no ports", () => {
    const suspended = tunnel("a", "/dir/a.yaml", [["127.0.0.1", 8080]], { suspend: true });
    const active = tunnel("b", "/dir/b.yaml", [["127.0.0.1", 8080]]);
    assert.deepEqual(checkConflicts([suspended, active], display).conflicts, []);
  });

  it("reports every losing forward, sorted by file", () => {
    const owner = tunnel("owner", "/dir/a.yaml", [["::", 1], ["::", 2]]);
    const c = tunnel("c", "/dir/c.yaml", [["10.0.0.1", 2]]);
    const b = tunnel("b", "/dir/b.yaml", [["::1", 1], ["127.0.0.1", 2]]);
    const { conflicts } = checkConflicts([c, owner, b], display);
    assert.deepEqual(
      conflicts.map((conflict) => `${conflict.tunnel.name}[${conflict.forwardIndex}]`),
      ["b[0]", "b[1]", "c[0]"],
    );
  });
});

describe("localBindsOverlap", () => {
  const cases: Array<[string, string, boolean]> = [
    ["127.0.0.1", "127.0.0.1", true],
    ["127.0.0.1", "127.0.0.2", false],
    ["0.0.0.0", "127.0.0.1", true],
    ["0.0.0.0", "0.0.0.0", true],
    ["0.0.0.0", "::1", false], // different family
    ["::", "127.0.0.1", true], // Node listens dual-stack on ::
    ["::", "::1", true],
    ["::", "0.0.0.0", true],
    ["::1", "::1", true],
    ["::1", "0:0:0:0:0:0:0:1", true], // same address, written differently
    ["::1", "fe80::1", false],
    ["::ffff:127.0.0.1", "127.0.0.1", true], // IPv4-mapped is the IPv4 address
    ["::ffff:127.0.0.1", "0.0.0.0", true],
    ["localhost", "127.0.0.1", true],
    ["localhost", "::1", true],
    ["localhost", "LOCALHOST", true],
    ["localhost", "0.0.0.0", true],
    ["localhost", "10.0.0.1", false],
    ["FE80::1", "fe80::1", true],
  ];
  for (const [a, b, overlap] of cases) {
    it(`${a} ${overlap ? "overlaps" : "does not overlap"} ${b}`, () => {
      assert.equal(localBindsOverlap({ bindAddress: a, localPort: 80 }, { bindAddress: b, localPort: 80 }), overlap);
      assert.equal(localBindsOverlap({ bindAddress: b, localPort: 80 }, { bindAddress: a, localPort: 80 }), overlap);
    });
  }
  it("different ports never overlap", () => {
    assert.equal(localBindsOverlap({ bindAddress: "::", localPort: 80 }, { bindAddress: "::", localPort: 81 }), false);
  });
});
