import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { LocalForwardSpec, RemoteForwardSpec, TunnelSpec } from "../../src/manifest/types.ts";
import { localSpec, remoteSpec, tunnelSpec } from "../helpers/specs.ts";
import { localForwardId, remoteForwardId, sessionKey } from "../../src/reconcile/forward-id.ts";
import { DuplicateForwardError, plan } from "../../src/reconcile/plan.ts";
import type { Action, DesiredTunnel, ObservedTunnel } from "../../src/reconcile/types.ts";

const local = localSpec;
const remote = remoteSpec;

/** A live, connected session opened with `spec`'s session fields, carrying these forwards. */
function connected(
  spec: TunnelSpec,
  forwards: { local?: LocalForwardSpec[]; remote?: RemoteForwardSpec[] } = {},
): ObservedTunnel {
  return { sessionKey: sessionKey(spec), sessionState: "Connected", local: forwards.local ?? [], remote: forwards.remote ?? [] };
}

const nothingOpen: ObservedTunnel = { sessionKey: undefined, sessionState: "Closed", local: [], remote: [] };

/** `open-session`, `close-local local/127.0.0.1:8080`: what an action does, in one line. */
function summarize(action: Action): string {
  switch (action.type) {
    case "open-session":
    case "replace-session":
    case "close-session":
      return action.type;
    case "open-local":
    case "update-local":
    case "close-local":
      return `${action.type} ${localForwardId(action.forward)}`;
    case "open-remote":
    case "update-remote":
    case "close-remote":
      return `${action.type} ${remoteForwardId(action.forward)}`;
  }
}

const base = tunnelSpec();

interface PlanCase {
  name: string;
  desired: DesiredTunnel;
  actual: ObservedTunnel;
  want: string[];
}

const cases: PlanCase[] = [
  {
    name: "everything matches: nothing to do",
    desired: tunnelSpec({ local: [local(8080)], remote: [remote(9000), remote(0, { bindAddress: "0.0.0.0" })] }),
    actual: connected(base, { local: [local(8080)], remote: [remote(9000), remote(0, { bindAddress: "0.0.0.0" })] }),
    want: [],
  },
  {
    name: "no forwards, session up: nothing to do",
    desired: tunnelSpec(),
    actual: connected(base),
    want: [],
  },
  {
    name: "no session: open it, then every forward (ports sorted as numbers)",
    desired: tunnelSpec({ local: [local(10000), local(8080)], remote: [remote(9000)] }),
    actual: nothingOpen,
    want: ["open-session", "open-local local/127.0.0.1:8080", "open-local local/127.0.0.1:10000", "open-remote remote/127.0.0.1:9000"],
  },
  {
    name: "no session, no forwards: just the session",
    desired: tunnelSpec(),
    actual: nothingOpen,
    want: ["open-session"],
  },
  {
    name: "forward added: open it, the session stays",
    desired: tunnelSpec({ local: [local(8080), local(8081)] }),
    actual: connected(base, { local: [local(8080)] }),
    want: ["open-local local/127.0.0.1:8081"],
  },
  {
    name: "forward removed: close it",
    desired: tunnelSpec({ remote: [remote(9000)] }),
    actual: connected(base, { remote: [remote(9000), remote(9001)] }),
    want: ["close-remote remote/127.0.0.1:9001"],
  },
  {
    name: "local target changed: update in place",
    desired: tunnelSpec({ local: [local(8080, { remoteHost: "db" })] }),
    actual: connected(base, { local: [local(8080)] }),
    want: ["update-local local/127.0.0.1:8080"],
  },
  {
    name: "local remotePort changed: update in place",
    desired: tunnelSpec({ local: [local(8080, { remotePort: 5432 })] }),
    actual: connected(base, { local: [local(8080)] }),
    want: ["update-local local/127.0.0.1:8080"],
  },
  {
    name: "local connectTimeout changed: update in place",
    desired: tunnelSpec({ local: [local(8080, { connectTimeout: 5000 })] }),
    actual: connected(base, { local: [local(8080)] }),
    want: ["update-local local/127.0.0.1:8080"],
  },
  {
    name: "remote target changed: update in place",
    desired: tunnelSpec({ remote: [remote(9000, { localHost: "127.0.0.1", localPort: 3000 })] }),
    actual: connected(base, { remote: [remote(9000)] }),
    want: ["update-remote remote/127.0.0.1:9000"],
  },
  {
    name: "bind address changed is a new identity: close the old, open the new",
    desired: tunnelSpec({ local: [local(8080, { bindAddress: "0.0.0.0" })] }),
    actual: connected(base, { local: [local(8080)] }),
    want: ["close-local local/127.0.0.1:8080", "open-local local/0.0.0.0:8080"],
  },
  {
    name: "mixed change: closes (local, remote), then updates, then opens; each sorted",
    desired: tunnelSpec({
      local: [local(9000), local(8080, { remoteHost: "new" }), local(7000)],
      remote: [remote(2222), remote(1111, { localPort: 81 })],
    }),
    actual: connected(base, {
      local: [local(8080), local(8443), local(3000)],
      remote: [remote(1111), remote(5555)],
    }),
    want: [
      "close-local local/127.0.0.1:3000",
      "close-local local/127.0.0.1:8443",
      "close-remote remote/127.0.0.1:5555",
      "update-local local/127.0.0.1:8080",
      "update-remote remote/127.0.0.1:1111",
      "open-local local/127.0.0.1:7000",
      "open-local local/127.0.0.1:9000",
      "open-remote remote/127.0.0.1:2222",
    ],
  },
  {
    name: "IPv6 bind addresses get bracketed ids",
    desired: tunnelSpec({ local: [local(8080, { bindAddress: "::1" })] }),
    actual: connected(base),
    want: ["open-local local/[::1]:8080"],
  },
  {
    name: "session-level change: replace-session, forwards unchanged",
    desired: tunnelSpec({ local: [local(8080)] }, { host: "new-bastion.example.com" }),
    actual: connected(base, { local: [local(8080)] }),
    want: ["replace-session"],
  },
  {
    name: "session-level change with forward changes: replace-session, then the diff against actual",
    desired: tunnelSpec({ local: [local(8080, { remoteHost: "db" }), local(8081)] }, { username: "other" }),
    actual: connected(base, { local: [local(8080)], remote: [remote(9000)] }),
    want: ["replace-session", "close-remote remote/127.0.0.1:9000", "update-local local/127.0.0.1:8080", "open-local local/127.0.0.1:8081"],
  },
  {
    name: "keepalive change replaces the session",
    desired: tunnelSpec({}, { keepalive: { interval: 5000, countMax: 2 } }),
    actual: connected(base),
    want: ["replace-session"],
  },
  {
    name: "session change while still connecting: replace-session",
    desired: tunnelSpec({}, { port: 2222 }),
    actual: { ...connected(base), sessionState: "Connecting" },
    want: ["replace-session"],
  },
  {
    name: "reconnect delays are not session-level: nothing to do",
    desired: tunnelSpec({}, { reconnect: { minDelay: 10, maxDelay: 20 } }),
    actual: connected(base),
    want: [],
  },
  {
    name: "session connecting with the same fields: wait, nothing to do",
    desired: tunnelSpec({ local: [local(8080)] }),
    actual: { ...connected(base, { local: [local(8080)] }), sessionState: "Connecting" },
    want: [],
  },
  {
    name: "session in backoff: open-session again; the listener still bound stays, the remote forward reopens",
    desired: tunnelSpec({ local: [local(8080)], remote: [remote(9000)] }),
    actual: { ...connected(base, { local: [local(8080)] }), sessionState: "Backoff" },
    want: ["open-session", "open-remote remote/127.0.0.1:9000"],
  },
  {
    name: "session closed (it died): open-session",
    desired: tunnelSpec(),
    actual: { ...connected(base), sessionState: "Closed" },
    want: ["open-session"],
  },
  {
    name: "suspend: close every forward, then the session",
    desired: tunnelSpec({ local: [local(8080)], remote: [remote(9000)] }, { suspend: true }),
    actual: connected(base, { local: [local(8080), local(443)], remote: [remote(9000)] }),
    want: ["close-local local/127.0.0.1:443", "close-local local/127.0.0.1:8080", "close-remote remote/127.0.0.1:9000", "close-session"],
  },
  {
    name: "suspend with nothing open: nothing to do",
    desired: tunnelSpec({ local: [local(8080)] }, { suspend: true }),
    actual: nothingOpen,
    want: [],
  },
  {
    name: "manifest removed: close every forward, then the session",
    desired: undefined,
    actual: connected(base, { local: [local(8080)], remote: [remote(0)] }),
    want: ["close-local local/127.0.0.1:8080", "close-remote remote/127.0.0.1:0", "close-session"],
  },
  {
    name: "manifest removed while in backoff: release the bound listener and the session",
    desired: undefined,
    actual: { ...connected(base, { local: [local(8080)] }), sessionState: "Backoff" },
    want: ["close-local local/127.0.0.1:8080", "close-session"],
  },
  {
    name: "manifest removed, session already closed: nothing to do",
    desired: undefined,
    actual: { ...connected(base), sessionState: "Closed" },
    want: [],
  },
  {
    name: "remote port 0: identity (bindAddress, 0) matches the observed 0",
    desired: tunnelSpec({ remote: [remote(0)] }),
    actual: connected(base, { remote: [remote(0)] }),
    want: [],
  },
  {
    name: "remote port 0 with a new target: update in place, the allocated port is kept",
    desired: tunnelSpec({ remote: [remote(0, { localPort: 3000 })] }),
    actual: connected(base, { remote: [remote(0)] }),
    want: ["update-remote remote/127.0.0.1:0"],
  },
  {
    name: "remote port 0 → fixed port: new identity, close and open",
    desired: tunnelSpec({ remote: [remote(9000)] }),
    actual: connected(base, { remote: [remote(0)] }),
    want: ["close-remote remote/127.0.0.1:0", "open-remote remote/127.0.0.1:9000"],
  },
];

describe("plan", () => {
  for (const { name, desired, actual, want } of cases) {
    test(name, () => {
      assert.deepEqual(plan(desired, actual).map(summarize), want);
    });
  }

  test("the table covers every action type", () => {
    const seen = new Set(cases.flatMap(({ desired, actual }) => plan(desired, actual).map((action) => action.type)));
    const all: Array<Action["type"]> = [
      "open-session",
      "replace-session",
      "close-session",
      "open-local",
      "update-local",
      "close-local",
      "open-remote",
      "update-remote",
      "close-remote",
    ];
    assert.deepEqual([...seen].sort(), [...all].sort());
  });

  test("updates carry the desired forward, closes carry the observed one", () => {
    const desired = tunnelSpec({ local: [local(8080, { remoteHost: "db", connectTimeout: 5 })] });
    const open = local(9999, { remoteHost: "old" });
    const actions = plan(desired, connected(base, { local: [local(8080), open] }));
    assert.deepEqual(actions, [
      { type: "close-local", forward: open },
      { type: "update-local", forward: local(8080, { remoteHost: "db", connectTimeout: 5 }) },
    ]);
  });

  test("is deterministic whatever the input order", () => {
    const forwards = [local(3), local(1), local(2), local(1, { bindAddress: "0.0.0.0" })];
    const reversed = [...forwards].reverse();
    assert.deepEqual(plan(tunnelSpec({ local: forwards }), nothingOpen), plan(tunnelSpec({ local: reversed }), nothingOpen));
  });

  test("does not mutate its inputs", () => {
    const desired = tunnelSpec({ local: [local(2), local(1)] });
    const actual = connected(base, { local: [local(4), local(3)] });
    const before = structuredClone({ desired, actual });
    plan(desired, actual);
    assert.deepEqual({ desired, actual }, before);
  });

  test("duplicate identities are a bug upstream: DuplicateForwardError", () => {
    const desired = tunnelSpec({ local: [local(8080), local(8080, { remoteHost: "other" })] });
    assert.throws(() => plan(desired, nothingOpen), (error: unknown) => {
      assert.ok(error instanceof DuplicateForwardError);
      assert.equal(error.name, "DuplicateForwardError");
      assert.equal(error.forwardId, "local/127.0.0.1:8080");
      assert.match(error.message, /Duplicate forward local\/127\.0\.0\.1:8080 in desired state/);
      return true;
    });
  });
});
