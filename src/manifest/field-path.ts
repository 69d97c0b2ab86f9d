// Field paths inside one manifest document: how problems are addressed before they get a
// line and column ("spec.forwards.local[0].localPort").

/** Map keys are strings, list indexes numbers. */
export type FieldPath = ReadonlyArray<string | number>;

/** A problem with one field; load.ts turns `path` + `at` into file:line:column. */
export interface FieldIssue {
  path: FieldPath;
  /** Point at the key of the last path element (unknown or forbidden field) or at its value. */
  at: "key" | "value";
  message: string;
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** `spec.forwards.local[0].localPort`, `metadata.labels["app.kubernetes.io/name"]`; "" for the root. */
export function formatFieldPath(path: FieldPath): string {
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else if (IDENTIFIER.test(segment)) out += out === "" ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

/**
 * A JSON Pointer (ajv's `instancePath`) as a field path. The data decides whether a segment
 * is a list index, so a map key "0" stays a string.
 */
export function pointerToFieldPath(pointer: string, data: unknown): Array<string | number> {
  if (pointer === "") return [];
  const path: Array<string | number> = [];
  let node = data;
  for (const raw of pointer.slice(1).split("/")) {
    const segment = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (Array.isArray(node) && /^(0|[1-9][0-9]*)$/.test(segment)) {
      path.push(Number(segment));
      node = node[Number(segment)];
    } else {
      path.push(segment);
      node = isRecord(node) ? node[segment] : undefined;
    }
  }
  return path;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
