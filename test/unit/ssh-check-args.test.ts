// The library checks its arguments with the same typed errors as everything else (issue 16):
// reason InvalidArgument and a message naming the field and the value, before anything connects.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { connect, InvalidArgumentError, type ConnectOptions } from "../../src/index.ts";
import { normalizeLocal, normalizeRemote } from "../../src/ssh/session.ts";

const base: ConnectOptions = { username: "deploy", auth: { agent: "/nonexistent.sock" } };
const local = { localPort: 8080, remoteHost: "db", remotePort: 5432 };
const remote = { remotePort: 9000, localHost: "127.0.0.1", localPort: 3000 };

function rejects(fn: () => unknown, message: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof InvalidArgumentError, String(err));
    assert.equal(err.reason, "InvalidArgument");
    assert.equal(err.message, message);
    return true;
  });
}

describe("library argument checks", () => {
  const cases: Array<[string, () => unknown, string]> = [
    ["local port above 65535", () => normalizeLocal({ ...local, localPort: 70000 }), "Invalid localPort: must be a whole number from 1 to 65535 (got 70000)"],
    ["local port 0", () => normalizeLocal({ ...local, localPort: 0 }), "Invalid localPort: must be a whole number from 1 to 65535 (got 0)"],
    ["fractional remote port", () => normalizeLocal({ ...local, remotePort: 80.5 }), "Invalid remotePort: must be a whole number from 1 to 65535 (got 80.5)"],
    ["empty remote host", () => normalizeLocal({ ...local, remoteHost: "" }), 'Invalid remoteHost: must be a host name or address (got "")'],
    ["negative connect timeout", () => normalizeLocal({ ...local, connectTimeout: -1 }), "Invalid connectTimeout: must be a whole number of milliseconds from 0 to 2147483647 (got -1)"],
    ["a port given as a string", () => normalizeRemote({ ...remote, localPort: "3000" as unknown as number }), 'Invalid localPort: must be a whole number from 1 to 65535 (got "3000")'],
    ["remote port -1", () => normalizeRemote({ ...remote, remotePort: -1 }), "Invalid remotePort: must be a whole number from 0 to 65535 (got -1)"],
  ];
  for (const [name, fn, message] of cases) it(name, () => rejects(fn, message));

  it("remote port 0 (the server chooses) is fine", () => {
    assert.equal(normalizeRemote({ ...remote, remotePort: 0 }).remotePort, 0);
  });

  it("connect() rejects bad options before connecting, naming the forward", async () => {
    await assert.rejects(connect("127.0.0.1", { ...base, port: 70000 }), { name: "InvalidArgumentError", message: "Invalid port: must be a whole number from 1 to 65535 (got 70000)" });
    await assert.rejects(connect("", base), { reason: "InvalidArgument", message: 'Invalid host: must be a host name or address (got "")' });
    await assert.rejects(
      connect("127.0.0.1", { ...base, portForwardLocal: [local, { ...local, localPort: 70000 }] }),
      { reason: "InvalidArgument", message: "Invalid portForwardLocal[1].localPort: must be a whole number from 1 to 65535 (got 70000)" },
    );
  });
});
