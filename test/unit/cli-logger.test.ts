// Log lines carry errors readably: a real Error with its message and stack, the controller's
// `{ message }` summaries as just the message (not `type: "Object"` and an empty stack).
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { describe, it } from "node:test";
import { pino } from "pino";
import pretty from "pino-pretty";
import { serializeErr } from "../../src/cli/logger.ts";
import { AuthError } from "../../src/ssh/errors.ts";

function prettyLine(fields: Record<string, unknown>): string {
  let out = "";
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      out += chunk.toString();
      done();
    },
  });
  const stream = pretty({ sync: true, destination: sink, colorize: false });
  pino({ serializers: { err: serializeErr } }, stream).warn(fields, "connect failed");
  return out;
}

describe("log serializers", () => {
  it("a summary { message } prints its message, no type Object, no empty stack", () => {
    const text = prettyLine({ err: { message: "Authentication to 127.0.0.1:22 as deploy refused by the server" } });
    assert.match(text, /"message": "Authentication to 127\.0\.0\.1:22 as deploy refused by the server"/);
    assert.doesNotMatch(text, /"type": "Object"/);
    assert.doesNotMatch(text, /stack/);
  });

  it("a real Error keeps its type, message, reason and stack", () => {
    const text = prettyLine({ err: new AuthError("Authentication refused") });
    assert.match(text, /"type": "AuthError"/);
    assert.match(text, /"message": "Authentication refused"/);
    assert.match(text, /"stack":[\s\S]*cli-logger\.test\.ts/);
    assert.deepEqual(serializeErr({ message: "m", reason: "AuthFailed", secret: "x" }), { message: "m", reason: "AuthFailed" });
  });
});
