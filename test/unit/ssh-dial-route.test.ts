// Routes and hop errors: pure functions of the dial layer (src/ssh/dial/route.ts, hop-error.ts).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { TunnelSpec } from "../../src/manifest/types.ts";
import { AuthError, ConnectionError, HostKeyError, TargetError } from "../../src/ssh/errors.ts";
import { hopError, unreachableThrough } from "../../src/ssh/dial/hop-error.ts";
import { hopChainKey, hopLabel, routeOf, type Endpoint } from "../../src/ssh/dial/route.ts";

const hostKey = { knownHostsFile: "/k", fingerprints: [], policy: "strict" as const };

function spec(jump?: TunnelSpec["jump"]): TunnelSpec {
  return {
    host: "db.internal",
    port: 2222,
    username: "deploy",
    auth: { agent: true },
    hostKey,
    keepalive: { interval: 5000, countMax: 2 },
    reconnect: { minDelay: 1000, maxDelay: 60000 },
    suspend: false,
    forwards: { local: [], remote: [] },
    ...(jump ? { jump } : {}),
  };
}

const endpoint = (host: string, extra: Partial<Endpoint> = {}): Endpoint => ({ host, port: 22, username: "u", auth: { agent: true }, hostKey, ...extra });

describe("routeOf", () => {
  test("without jump: the target alone, direct", () => {
    const route = routeOf(spec());
    assert.deepEqual(route.hops, []);
    assert.deepEqual(route.target, { host: "db.internal", port: 2222, username: "deploy", auth: { agent: true }, hostKey, keepalive: { interval: 5000, countMax: 2 } });
  });

  test("hops in order, each with the tunnel's keepalive", () => {
    const route = routeOf(spec([
      { host: "a", port: 22, username: "jump", auth: { agent: true }, hostKey },
      { host: "b", port: 2200, username: "deploy", auth: { privateKeyFile: "/id" }, hostKey },
    ]));
    assert.deepEqual(route.hops.map((h) => `${h.username}@${h.host}:${h.port}`), ["jump@a:22", "deploy@b:2200"]);
    assert.deepEqual(route.hops.map((h) => h.keepalive), [{ interval: 5000, countMax: 2 }, { interval: 5000, countMax: 2 }]);
  });
});

describe("hopChainKey", () => {
  const a = endpoint("a");
  const b = endpoint("b");
  const cases: Array<{ name: string; left: string; right: string; same: boolean }> = [
    { name: "the same first hop", left: hopChainKey([a, b], 0), right: hopChainKey([a], 0), same: true },
    { name: "the same two hops", left: hopChainKey([a, b], 1), right: hopChainKey([endpoint("a"), endpoint("b")], 1), same: true },
    { name: "pins in another order", left: hopChainKey([endpoint("a", { hostKey: { fingerprints: ["x", "y"] } })], 0), right: hopChainKey([endpoint("a", { hostKey: { fingerprints: ["y", "x"] } })], 0), same: true },
    { name: "hop 2 behind another hop 1", left: hopChainKey([a, b], 1), right: hopChainKey([endpoint("c"), b], 1), same: false },
    { name: "another user on hop 1", left: hopChainKey([a], 0), right: hopChainKey([endpoint("a", { username: "v" })], 0), same: false },
    { name: "other credentials on hop 1", left: hopChainKey([a], 0), right: hopChainKey([endpoint("a", { auth: { privateKeyFile: "/id" } })], 0), same: false },
    { name: "another keepalive", left: hopChainKey([a], 0), right: hopChainKey([endpoint("a", { keepalive: { interval: 1, countMax: 1 } })], 0), same: false },
    { name: "port left out is 22", left: hopChainKey([a], 0), right: hopChainKey([{ ...a, port: undefined }], 0), same: true },
  ];
  for (const { name, left, right, same } of cases) test(`${name} → ${same ? "shared" : "separate"}`, () => assert.equal(left === right, same));
});

describe("hop errors", () => {
  test("hopLabel is 1-based and brackets IPv6", () => {
    assert.equal(hopLabel(0, { host: "bastion-a.example", port: 22 }), "hop 1 (bastion-a.example:22)");
    assert.equal(hopLabel(1, { host: "::1", port: 2222 }), "hop 2 ([::1]:2222)");
  });

  test("a hop's error keeps its class and reason; the message names the hop once", () => {
    const err = hopError(1, { host: "bastion-b.example", port: 22 }, new HostKeyError("HostKeyMismatch", "[bastion-b.example]:22", "SHA256:x", "does not match"));
    assert.ok(err instanceof HostKeyError);
    assert.equal(err.reason, "HostKeyMismatch");
    assert.equal(err.message, "hop 2 (bastion-b.example:22): HostKeyMismatch Host key for [bastion-b.example]:22 does not match (server presented SHA256:x)");
    assert.equal(hopError(2, { host: "c", port: 22 }, err).message, err.message, "named by the hop it happened on, not again by a later one");
    const auth = hopError(0, { host: "a", port: 22 }, new AuthError("Authentication to a:22 as u refused by the server"));
    assert.equal(auth.message, "hop 1 (a:22): AuthFailed Authentication to a:22 as u refused by the server");
  });

  test("anything else becomes a ConnectionError naming the hop", () => {
    const err = hopError(0, { host: "a", port: 22 }, new Error("boom"));
    assert.ok(err instanceof ConnectionError);
    assert.equal(err.message, "hop 1 (a:22): boom");
  });

  const unreachable: Array<{ detail: string; reason: string }> = [
    { detail: "Connection refused", reason: "ConnectionRefused" },
    { detail: "Name or service not known", reason: "HostUnresolvable" },
    { detail: "administratively prohibited: open failed", reason: "ConnectionLost" },
  ];
  for (const { detail, reason } of unreachable) {
    test(`a channel the hop could not open (${detail}) → ${reason}`, () => {
      const err = unreachableThrough("hop 2 (b:22)", "hop 1 (a:22)", new TargetError("b", 22, detail, { cause: new Error(detail) }));
      assert.equal(err.reason, reason);
      assert.equal(err.message, `hop 2 (b:22): ${reason} hop 1 (a:22) cannot reach it: ${detail}`);
    });
  }
});
