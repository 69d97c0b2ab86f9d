import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { HopSpec, TunnelSpec } from "../../src/manifest/types.ts";
import {
  compareForwardKeys,
  describeForwardId,
  localForwardId,
  remoteForwardId,
  sessionKey,
} from "../../src/reconcile/forward-id.ts";

function tunnelSpec(overrides: Partial<TunnelSpec> = {}): TunnelSpec {
  return {
    host: "bastion.example.com",
    port: 22,
    username: "deploy",
    auth: { privateKeyFile: "/home/deploy/.ssh/id_ed25519", agent: true },
    hostKey: { knownHostsFile: "/home/deploy/.ssh/known_hosts", fingerprints: ["SHA256:a", "SHA256:b"], policy: "strict" },
    keepalive: { interval: 15000, countMax: 3 },
    reconnect: { minDelay: 1000, maxDelay: 60000 },
    suspend: false,
    forwards: { local: [], remote: [] },
    ...overrides,
  };
}

function hop(host: string, hostKey: Partial<HopSpec["hostKey"]> = {}): HopSpec {
  return {
    host,
    port: 22,
    username: "deploy",
    auth: { agent: true },
    hostKey: { knownHostsFile: "/home/deploy/.ssh/known_hosts", fingerprints: ["SHA256:a", "SHA256:b"], policy: "strict", ...hostKey },
  };
}

describe("forward ids", () => {
  const cases: Array<{ name: string; got: string; want: string }> = [
    { name: "local IPv4", got: localForwardId({ bindAddress: "127.0.0.1", localPort: 8080 }), want: "local/127.0.0.1:8080" },
    { name: "local IPv6 is bracketed", got: localForwardId({ bindAddress: "::1", localPort: 8080 }), want: "local/[::1]:8080" },
    { name: "already bracketed stays as is", got: localForwardId({ bindAddress: "[::1]", localPort: 1 }), want: "local/[::1]:1" },
    { name: "local hostname", got: localForwardId({ bindAddress: "localhost", localPort: 22 }), want: "local/localhost:22" },
    { name: "remote", got: remoteForwardId({ bindAddress: "0.0.0.0", remotePort: 9000 }), want: "remote/0.0.0.0:9000" },
    { name: "remote port 0 keeps 0", got: remoteForwardId({ bindAddress: "127.0.0.1", remotePort: 0 }), want: "remote/127.0.0.1:0" },
    { name: "remote IPv6", got: remoteForwardId({ bindAddress: "::", remotePort: 0 }), want: "remote/[::]:0" },
    { name: "description", got: describeForwardId("local/127.0.0.1:8080"), want: "local 127.0.0.1:8080" },
  ];
  for (const { name, got, want } of cases) test(name, () => assert.equal(got, want));

  test("ports compare as numbers, kinds and addresses as strings", () => {
    const keys = [
      { kind: "remote" as const, bindAddress: "127.0.0.1", port: 1 },
      { kind: "local" as const, bindAddress: "127.0.0.1", port: 10000 },
      { kind: "local" as const, bindAddress: "0.0.0.0", port: 9 },
      { kind: "local" as const, bindAddress: "127.0.0.1", port: 8080 },
    ];
    assert.deepEqual(
      [...keys].sort(compareForwardKeys).map((key) => `${key.kind} ${key.bindAddress}:${key.port}`),
      ["local 0.0.0.0:9", "local 127.0.0.1:8080", "local 127.0.0.1:10000", "remote 127.0.0.1:1"],
    );
  });
});

describe("sessionKey", () => {
  const base = tunnelSpec();
  const changes: Array<{ name: string; spec: TunnelSpec; sameSession: boolean }> = [
    { name: "identical spec", spec: tunnelSpec(), sameSession: true },
    {
      name: "forwards changed",
      spec: tunnelSpec({
        forwards: {
          local: [{ bindAddress: "127.0.0.1", localPort: 1, remoteHost: "x", remotePort: 2, connectTimeout: 1 }],
          remote: [],
        },
      }),
      sameSession: true,
    },
    { name: "reconnect changed", spec: tunnelSpec({ reconnect: { minDelay: 5, maxDelay: 10 } }), sameSession: true },
    { name: "suspend changed", spec: tunnelSpec({ suspend: true }), sameSession: true },
    {
      name: "auth keys in another order",
      spec: tunnelSpec({ auth: { agent: true, privateKeyFile: "/home/deploy/.ssh/id_ed25519" } }),
      sameSession: true,
    },
    {
      name: "fingerprint pins in another order",
      spec: tunnelSpec({ hostKey: { ...base.hostKey, fingerprints: ["SHA256:b", "SHA256:a"] } }),
      sameSession: true,
    },
    { name: "host changed", spec: tunnelSpec({ host: "other.example.com" }), sameSession: false },
    { name: "port changed", spec: tunnelSpec({ port: 2222 }), sameSession: false },
    { name: "username changed", spec: tunnelSpec({ username: "root" }), sameSession: false },
    { name: "auth method added", spec: tunnelSpec({ auth: { ...base.auth, passwordEnv: "PW" } }), sameSession: false },
    { name: "host key policy changed", spec: tunnelSpec({ hostKey: { ...base.hostKey, policy: "accept-new" } }), sameSession: false },
    { name: "pin added", spec: tunnelSpec({ hostKey: { ...base.hostKey, fingerprints: ["SHA256:c"] } }), sameSession: false },
    { name: "keepalive changed", spec: tunnelSpec({ keepalive: { interval: 5000, countMax: 3 } }), sameSession: false },
    { name: "a jump host added", spec: tunnelSpec({ jump: [hop("bastion-a")] }), sameSession: false },
  ];
  const withHops = tunnelSpec({ jump: [hop("bastion-a"), hop("bastion-b")] });
  const chainChanges: Array<{ name: string; spec: TunnelSpec; sameSession: boolean }> = [
    { name: "the same hops", spec: tunnelSpec({ jump: [hop("bastion-a"), hop("bastion-b")] }), sameSession: true },
    { name: "a hop's pins in another order", spec: tunnelSpec({ jump: [hop("bastion-a"), hop("bastion-b", { fingerprints: ["SHA256:b", "SHA256:a"] })] }), sameSession: true },
    { name: "a hop removed", spec: tunnelSpec({ jump: [hop("bastion-a")] }), sameSession: false },
    { name: "hops in another order", spec: tunnelSpec({ jump: [hop("bastion-b"), hop("bastion-a")] }), sameSession: false },
    { name: "a hop's port changed", spec: tunnelSpec({ jump: [hop("bastion-a"), { ...hop("bastion-b"), port: 2222 }] }), sameSession: false },
    { name: "a hop's user changed", spec: tunnelSpec({ jump: [hop("bastion-a"), { ...hop("bastion-b"), username: "jump" }] }), sameSession: false },
    { name: "a hop's pin changed", spec: tunnelSpec({ jump: [hop("bastion-a"), hop("bastion-b", { fingerprints: ["SHA256:c"] })] }), sameSession: false },
  ];
  for (const { name, spec, sameSession } of chainChanges) {
    test(`jump: ${name} → ${sameSession ? "same" : "different"} session`, () => {
      assert.equal(sessionKey(spec) === sessionKey(withHops), sameSession);
    });
  }
  for (const { name, spec, sameSession } of changes) {
    test(`${name} → ${sameSession ? "same" : "different"} session`, () => {
      assert.equal(sessionKey(spec) === sessionKey(base), sameSession);
    });
  }

  test("does not reorder the caller's fingerprints", () => {
    const spec = tunnelSpec({ hostKey: { ...base.hostKey, fingerprints: ["SHA256:b", "SHA256:a"] } });
    sessionKey(spec);
    assert.deepEqual(spec.hostKey.fingerprints, ["SHA256:b", "SHA256:a"]);
  });
});
