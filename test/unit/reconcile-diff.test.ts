import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { LocalForwardSpec, TunnelSpec } from "../../src/manifest/types.ts";
import { localSpec, tunnelSpec } from "../helpers/specs.ts";
import { diffTunnels, observedFromSpec, type ActualEntry, type DesiredEntry } from "../../src/reconcile/diff.ts";

const local = (localPort: number, remotePort = 80): LocalForwardSpec => localSpec(localPort, { remoteHost: "db", remotePort });
const spec = (overrides: Partial<TunnelSpec> = {}): TunnelSpec => tunnelSpec({ local: [local(8080)] }, overrides);
const want = (entries: Record<string, TunnelSpec>): Map<string, DesiredEntry> => new Map(Object.entries(entries).map(([n, s]) => [n, { spec: s, manifest: `${n}.yaml` }]));
const have = (entries: Record<string, TunnelSpec>): Map<string, ActualEntry> => new Map(Object.entries(entries).map(([n, s]) => [n, { observed: observedFromSpec(s), manifest: `${n}.yaml` }]));
const summary = (changes: ReturnType<typeof diffTunnels>) => changes.map((c) => [c.name, c.change, c.actions.map((a) => a.type)]);

describe("diffTunnels", () => {
  const table: Array<{ name: string; desired: Map<string, DesiredEntry>; actual: Map<string, ActualEntry>; want: unknown }> = [
    { name: "everything matches: do nothing", desired: want({ a: spec() }), actual: have({ a: spec() }), want: [["a", "unchanged", []]] },
    { name: "a new tunnel is created", desired: want({ a: spec() }), actual: have({}), want: [["a", "create", ["open-session", "open-local"]]] },
    { name: "a removed tunnel is deleted", desired: want({}), actual: have({ a: spec() }), want: [["a", "delete", ["close-local", "close-session"]]] },
    {
      name: "a session-level change replaces the session, forwards in place",
      desired: want({ a: spec({ username: "other", forwards: { local: [local(8080, 81)], remote: [] } }) }),
      actual: have({ a: spec() }),
      want: [["a", "update", ["replace-session", "update-local"]]],
    },
    {
      name: "a jump host added is a session-level change (make-before-break)",
      desired: want({ a: spec({ jump: [{ host: "jump", port: 22, username: "j", auth: { agent: true }, hostKey: { knownHostsFile: "/k", fingerprints: [], policy: "strict" } }] }) }),
      actual: have({ a: spec() }),
      want: [["a", "update", ["replace-session"]]],
    },
    {
      name: "suspending tears down; reconnect delays alone change nothing that runs",
      desired: want({ a: spec({ suspend: true }), b: spec({ reconnect: { minDelay: 5, maxDelay: 10 } }) }),
      actual: have({ a: spec(), b: spec() }),
      want: [["a", "update", ["close-local", "close-session"]], ["b", "unchanged", []]],
    },
    {
      name: "a dynamic forward's allow list changes in place; a local forward turned dynamic on its port is closed and opened",
      desired: want({ a: spec({ forwards: { local: [{ ...local(8080), remoteHost: "", remotePort: 0, socks: { allow: ["*.internal:*"] } }, { ...local(1080), remoteHost: "", remotePort: 0, socks: { allow: ["10.0.0.0/8:*"] } }], remote: [] } }) }),
      actual: have({ a: spec({ forwards: { local: [local(8080), { ...local(1080), remoteHost: "", remotePort: 0, socks: {} }], remote: [] } }) }),
      want: [["a", "update", ["close-local", "update-local", "open-local"]]],
    },
  ];
  for (const row of table) it(row.name, () => assert.deepEqual(summary(diffTunnels(row.desired, row.actual)), row.want));
});
