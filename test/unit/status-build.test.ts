import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { buildStatusDocs, buildTunnelStatus } from "../../src/status/build.ts";
import type { TunnelStatusDoc } from "../../src/status/types.ts";
import { T0, localObservation, observation, remoteObservation } from "../helpers/status-fixtures.ts";

const t0 = T0;
const t1 = "2025-03-01T10:05:00.000Z";

describe("buildTunnelStatus", () => {
  test("a healthy tunnel gives the SPEC §4 document, field for field and in order", () => {
    const doc = buildTunnelStatus(observation(), undefined, t0);
    const want: TunnelStatusDoc = {
      apiVersion: "tunnelctl/v1",
      kind: "TunnelStatus",
      metadata: { name: "db-bastion", manifest: "db.yaml" },
      status: {
        observedGeneration: "3f9a1c2e",
        phase: "Ready",
        conditions: [
          { type: "Connected", status: "True", reason: "Connected", message: "", lastTransitionTime: t0 },
          { type: "Ready", status: "True", reason: "AllForwardsActive", message: "", lastTransitionTime: t0 },
        ],
        session: {
          state: "Connected",
          serverVersion: "SSH-2.0-OpenSSH_9.2p1",
          hostKeyFingerprint: "SHA256:abc",
          connectedSince: t0,
          reconnects: 0,
          lastError: "",
          configHash: "",
        },
        forwards: {
          local: [
            {
              bindAddress: "127.0.0.1",
              localPort: 8080,
              remoteHost: "remote-machine",
              remotePort: 80,
              connectTimeout: 30000,
              state: "Active",
              activeConnections: 2,
              totalConnections: 41,
              failedConnections: 0,
              bytesIn: 123,
              bytesOut: 456,
              message: "",
            },
          ],
          remote: [
            {
              bindAddress: "127.0.0.1",
              remotePort: 8080,
              boundPort: 8080,
              localHost: "local-machine",
              localPort: 80,
              state: "Active",
              activeConnections: 0,
              totalConnections: 3,
              bytesIn: 0,
              bytesOut: 0,
              message: "",
            },
          ],
        },
        errors: [],
      },
    };
    assert.deepEqual(doc, want);
    // deepEqual ignores key order; people read these files, so check it too.
    assert.deepEqual(Object.keys(doc), ["apiVersion", "kind", "metadata", "status"]);
    assert.deepEqual(Object.keys(doc.status), ["observedGeneration", "phase", "conditions", "session", "forwards", "errors"]);
    assert.deepEqual(Object.keys(doc.status.session), [
      "state",
      "serverVersion",
      "hostKeyFingerprint",
      "connectedSince",
      "reconnects",
      "lastError",
      "configHash",
    ]);
    assert.deepEqual(Object.keys(doc.status.conditions[0] ?? {}), ["type", "status", "reason", "message", "lastTransitionTime"]);
    assert.deepEqual(Object.keys(doc.status.forwards.local[0] ?? {}), [
      "bindAddress",
      "localPort",
      "remoteHost",
      "remotePort",
      "connectTimeout",
      "state",
      "activeConnections",
      "totalConnections",
      "failedConnections",
      "bytesIn",
      "bytesOut",
      "message",
    ]);
    assert.deepEqual(Object.keys(doc.status.forwards.remote[0] ?? {}), [
      "bindAddress",
      "remotePort",
      "boundPort",
      "localHost",
      "localPort",
      "state",
      "activeConnections",
      "totalConnections",
      "bytesIn",
      "bytesOut",
      "message",
    ]);
  });

  test("lastTransitionTime is kept from the previous document while status holds, moves on a flip", () => {
    const first = buildTunnelStatus(observation(), undefined, t0);
    const degraded = observation({
      local: [localObservation({ state: "Failed", reason: "PortInUse", message: "Cannot bind 127.0.0.1:8080: address in use" })],
    });
    const second = buildTunnelStatus(degraded, first, t1);
    assert.equal(second.status.phase, "Degraded");
    assert.deepEqual(second.status.conditions, [
      { type: "Connected", status: "True", reason: "Connected", message: "", lastTransitionTime: t0 },
      {
        type: "Ready",
        status: "False",
        reason: "ForwardFailed",
        message: "local 127.0.0.1:8080: PortInUse: Cannot bind 127.0.0.1:8080: address in use",
        lastTransitionTime: t1,
      },
    ]);
    assert.deepEqual(second.status.forwards.local[0]?.reason, "PortInUse");
    assert.deepEqual(Object.keys(second.status.forwards.local[0] ?? {}).slice(5, 7), ["state", "reason"]);
  });

  test("a conflict adds a Conflict condition naming the owner; it stays False once resolved", () => {
    const conflicted = observation({
      local: [
        localObservation({
          bindAddress: "0.0.0.0",
          state: "Conflict",
          reason: "Conflict",
          message: "127.0.0.1:8080 is held by tunnel web (web.yaml)",
          activeConnections: 0,
        }),
      ],
    });
    const first = buildTunnelStatus(conflicted, undefined, t0);
    assert.equal(first.status.phase, "Degraded");
    assert.deepEqual(first.status.conditions.map((condition) => condition.type), ["Connected", "Ready", "Conflict"]);
    assert.deepEqual(first.status.conditions[2], {
      type: "Conflict",
      status: "True",
      reason: "ForwardConflict",
      message: "local 0.0.0.0:8080: Conflict: 127.0.0.1:8080 is held by tunnel web (web.yaml)",
      lastTransitionTime: t0,
    });
    const resolved = buildTunnelStatus(observation(), first, t1);
    assert.equal(resolved.status.phase, "Ready");
    assert.deepEqual(resolved.status.conditions[2], {
      type: "Conflict",
      status: "False",
      reason: "NoConflict",
      message: "",
      lastTransitionTime: t1,
    });
  });

  test("errors make the phase Invalid and add an Invalid condition; what runs is still reported", () => {
    const errors = ["db.yaml:7:5: unknown field \"hots\"", "db.yaml:12:20: localPort must be <= 65535"];
    const doc = buildTunnelStatus(observation({ errors }), undefined, t0);
    assert.equal(doc.status.phase, "Invalid");
    assert.deepEqual(doc.status.errors, errors);
    assert.deepEqual(
      doc.status.conditions.map(({ type, status, reason }) => [type, status, reason]),
      [
        ["Connected", "True", "Connected"],
        ["Ready", "False", "ManifestInvalid"],
        ["Invalid", "True", "ManifestInvalid"],
      ],
    );
    assert.equal(doc.status.conditions[2]?.message, 'db.yaml:7:5: unknown field "hots" (and 1 more)');
    assert.equal(doc.status.forwards.local.length, 1, "the last valid version keeps running");

    const fixed = buildTunnelStatus(observation(), doc, t1);
    assert.deepEqual(fixed.status.conditions[2], {
      type: "Invalid",
      status: "False",
      reason: "ManifestValid",
      message: "",
      lastTransitionTime: t1,
    });
    assert.deepEqual(fixed.status.errors, []);
  });

  test("session down: Failed with the session's reason; connectedSince empty; unbound remote has no boundPort", () => {
    const doc = buildTunnelStatus(
      observation({
        session: {
          state: "Backoff",
          serverVersion: "",
          hostKeyFingerprint: "",
          reconnects: 3,
          lastError: "Host key for bastion.example.com does not match known_hosts",
          lastErrorReason: "HostKeyMismatch",
        },
        local: [],
        remote: [remoteObservation({ remotePort: 0, state: "Pending", activeConnections: 0, totalConnections: 0 })].map(
          ({ boundPort: _unbound, ...forward }) => forward,
        ),
      }),
      undefined,
      t0,
    );
    assert.equal(doc.status.phase, "Failed");
    assert.equal(doc.status.session.connectedSince, "");
    assert.equal(doc.status.session.reconnects, 3);
    assert.deepEqual(
      doc.status.conditions.map(({ type, status, reason }) => [type, status, reason]),
      [
        ["Connected", "False", "HostKeyMismatch"],
        ["Ready", "False", "HostKeyMismatch"],
      ],
    );
    assert.equal("boundPort" in (doc.status.forwards.remote[0] ?? {}), false);
    assert.equal(doc.status.forwards.remote[0]?.remotePort, 0);
  });

  test("a session through jump hosts lists them in session.via, after configHash; a direct one has no via", () => {
    const via = [
      { host: "bastion-a.example", port: 22, hostKeyFingerprint: "SHA256:aaa" },
      { host: "bastion-b.example", port: 2222, hostKeyFingerprint: "SHA256:bbb" },
    ];
    const base = observation();
    const session = buildTunnelStatus(observation({ session: { ...base.session, via } }), undefined, t0).status.session;
    assert.deepEqual(session.via, via);
    assert.deepEqual(Object.keys(session).slice(-2), ["configHash", "via"]);
    assert.equal("via" in buildTunnelStatus(base, undefined, t0).status.session, false);
    assert.equal("via" in buildTunnelStatus(observation({ session: { ...base.session, via: [] } }), undefined, t0).status.session, false);
  });

  test("remote port 0 reports the server's port in boundPort", () => {
    const doc = buildTunnelStatus(observation({ remote: [remoteObservation({ remotePort: 0, boundPort: 41234 })] }), undefined, t0);
    assert.equal(doc.status.forwards.remote[0]?.remotePort, 0);
    assert.equal(doc.status.forwards.remote[0]?.boundPort, 41234);
  });

  test("suspended", () => {
    const doc = buildTunnelStatus(
      observation({
        suspended: true,
        session: { state: "Closed", serverVersion: "", hostKeyFingerprint: "", reconnects: 0, lastError: "" },
        local: [],
        remote: [],
      }),
      undefined,
      t0,
    );
    assert.equal(doc.status.phase, "Suspended");
    assert.deepEqual(doc.status.conditions.map(({ reason }) => reason), ["Suspended", "Suspended"]);
  });

  test("condition types from an older file are dropped, the order is fixed", () => {
    const previous = buildTunnelStatus(observation(), undefined, t0);
    previous.status.conditions = [
      { type: "Legacy", status: "True", reason: "Old", message: "", lastTransitionTime: t0 },
      ...[...previous.status.conditions].reverse(),
    ];
    const doc = buildTunnelStatus(observation(), previous, t1);
    assert.deepEqual(doc.status.conditions.map(({ type, lastTransitionTime }) => [type, lastTransitionTime]), [
      ["Connected", t0],
      ["Ready", t0],
    ]);
  });

  test("Synced: False with the failure's reason while the latest spec is not applied, then True and kept", () => {
    const lagging = buildTunnelStatus(
      observation({ generation: "old00001", notApplied: { generation: "new00002", reason: "AuthFailed", message: "refused" } }),
      undefined,
      t0,
    );
    assert.equal(lagging.status.observedGeneration, "old00001");
    assert.equal(lagging.status.phase, "Degraded");
    const synced = lagging.status.conditions.find((c) => c.type === "Synced");
    assert.deepEqual(synced, {
      type: "Synced",
      status: "False",
      reason: "AuthFailed",
      message: "generation new00002 is not applied (the previous session keeps running): refused",
      lastTransitionTime: t0,
    });
    const applied = buildTunnelStatus(observation({ generation: "new00002" }), lagging, t1);
    assert.deepEqual(applied.status.conditions.find((c) => c.type === "Synced"), { type: "Synced", status: "True", reason: "Applied", message: "", lastTransitionTime: t1 });
    assert.equal(buildTunnelStatus(observation(), undefined, t0).status.conditions.find((c) => c.type === "Synced"), undefined, "never failed: no Synced condition");
  });

  test("does not modify the observation or the previous document", () => {
    const input = observation();
    const previous = buildTunnelStatus(observation(), undefined, t0);
    const snapshot = structuredClone({ input, previous });
    const doc = buildTunnelStatus(input, previous, t1);
    doc.status.errors.push("x");
    assert.deepEqual({ input, previous }, snapshot);
  });
});

describe("buildStatusDocs", () => {
  test("keeps manifest order and matches previous documents by name", () => {
    const web = observation({ name: "web" });
    const db = observation({ name: "db" });
    const previous = buildStatusDocs([db, web], undefined, t0);
    const docs = buildStatusDocs([web, db], previous, t1);
    assert.deepEqual(docs.map((doc) => doc.metadata.name), ["web", "db"]);
    assert.ok(docs.every((doc) => doc.status.conditions.every((condition) => condition.lastTransitionTime === t0)));
  });
});
