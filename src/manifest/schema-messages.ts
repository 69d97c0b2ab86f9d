// ajv errors → messages for people: the field path, what is wrong, and the value that made it
// wrong ("spec.forwards.local[0].localPort: must be <= 65535 (got 70000)"). Noise from anyOf is
// folded into one message, and values under spec.auth are never echoed (they may be secrets).
import type { ErrorObject } from "ajv/dist/2020.js";
import { formatFieldPath, pointerToFieldPath, type FieldIssue, type FieldPath } from "./field-path.ts";

export function describeSchemaErrors(errors: readonly ErrorObject[], data: unknown): FieldIssue[] {
  // anyOf/oneOf report every failed branch, then themselves; keep only the summary.
  const combinators = errors.filter((error) => error.keyword === "anyOf" || error.keyword === "oneOf");
  const isBranchNoise = (error: ErrorObject): boolean =>
    combinators.some(
      (combinator) =>
        error !== combinator &&
        error.schemaPath.startsWith(`${combinator.schemaPath}/`) &&
        error.instancePath.startsWith(combinator.instancePath),
    );

  const issues: FieldIssue[] = [];
  const seen = new Set<string>();
  for (const error of errors) {
    // "propertyNames" only summarises the key error that precedes it.
    // "if" only says its then/else failed: the error inside that branch says what is wrong.
    if (error.keyword === "propertyNames" || error.keyword === "if" || isBranchNoise(error)) continue;
    const issue = describeSchemaError(error, pointerToFieldPath(error.instancePath, data));
    const key = `${issue.at} ${JSON.stringify(issue.path)} ${issue.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    issues.push(issue);
  }
  return issues;
}

function describeSchemaError(error: ErrorObject, path: FieldPath): FieldIssue {
  const params = error.params as Record<string, unknown>;
  const where = formatFieldPath(path);
  const prefix = where === "" ? "" : `${where}: `;

  switch (error.keyword) {
    case "required":
      return { path, at: "value", message: `${prefix}missing required field ${quote(params["missingProperty"])}` };
    case "additionalProperties": {
      const field = String(params["additionalProperty"]);
      const known = Object.keys(schemaProperty(error.parentSchema, "properties") ?? {});
      return { path: [...path, field], at: "key", message: `${prefix}unknown field ${quote(field)}${suggest(field, known)}` };
    }
    case "dependentRequired":
      return {
        path,
        at: "value",
        message: `${prefix}${quote(params["property"])} needs ${quote(params["missingProperty"])}`,
      };
  }

  // A bad map key (propertyNames): point at the key and name it.
  if (error.propertyName !== undefined) {
    return {
      path: [...path, error.propertyName],
      at: "key",
      message: `${prefix}invalid key ${quote(error.propertyName)}: ${ruleText(error, params)}`,
    };
  }
  // A field that must not exist at all (`not: {}`): inline secrets. Point at the key, never the value.
  if (error.keyword === "not" && isEmptySchema(error.schema) && path.length > 0) {
    return { path, at: "key", message: `${prefix}${ruleText(error, params)}` };
  }
  const got = showsValue(error, path) ? describeValue(error.data) : undefined;
  const allowed = error.keyword === "const" ? [params["allowedValue"]] : error.keyword === "enum" && Array.isArray(params["allowedValues"]) ? params["allowedValues"] : [];
  const hint = got === undefined ? "" : suggestValue(error.data, allowed);
  const message = `${where === "" ? "document: " : prefix}${ruleText(error, params)}${got === undefined ? "" : ` (got ${got}${hint})`}`;
  return { path, at: "value", message };
}

/** What the rule demands, in words; the schema's own annotations win where it has them. */
function ruleText(error: ErrorObject, params: Record<string, unknown>): string {
  const schema = error.parentSchema;
  const custom = stringProperty(schema, "errorMessage");
  switch (error.keyword) {
    case "type":
      return custom ?? `must be ${typeWords(params["type"])}`;
    case "minimum":
    case "maximum":
    case "exclusiveMinimum":
    case "exclusiveMaximum":
      return `must be ${String(params["comparison"])} ${String(params["limit"])}`;
    case "minLength":
      return params["limit"] === 1 ? "must not be empty" : `must be at least ${String(params["limit"])} characters long`;
    case "maxLength":
      return `must be at most ${String(params["limit"])} characters long`;
    case "pattern":
      return stringProperty(schema, "patternErrorMessage") ?? `must match the pattern ${String(params["pattern"])}`;
    case "enum": {
      const allowed = Array.isArray(params["allowedValues"]) ? params["allowedValues"] : [];
      return `must be one of ${allowed.map(quote).join(", ")}`;
    }
    case "const":
      return `must be ${quote(params["allowedValue"])}`;
    case "uniqueItems":
      return `must not repeat an item (items ${String(Math.min(Number(params["i"]), Number(params["j"])))} and ${String(Math.max(Number(params["i"]), Number(params["j"])))} are the same)`;
    case "minItems":
      return `must have at least ${String(params["limit"])} items`;
    case "maxItems":
      return `must have at most ${String(params["limit"])} items`;
    default:
      return custom ?? error.message ?? `fails the "${error.keyword}" rule`;
  }
}

/** "(got …)" helps with everything except secrets and whole mappings. */
function showsValue(error: ErrorObject, path: FieldPath): boolean {
  if (path[0] === "spec" && path[1] === "auth") return false;
  return !["not", "anyOf", "oneOf", "uniqueItems", "minItems", "maxItems"].includes(error.keyword);
}

export function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "string") {
    const shown = value.length > 60 ? `${value.slice(0, 57)}...` : value;
    return `${JSON.stringify(shown)}${value.length > 60 ? `, ${value.length} characters` : ""}`;
  }
  return String(value);
}

const TYPE_WORDS: Record<string, string> = {
  object: "a mapping",
  array: "a list",
  string: "a string",
  integer: "an integer",
  number: "a number",
  boolean: "true or false",
  null: "null",
};

function typeWords(type: unknown): string {
  const types = Array.isArray(type) ? type.map(String) : String(type).split(",");
  return types.map((name) => TYPE_WORDS[name] ?? name).join(" or ");
}

/**
 * Names people bring from elsewhere (ssh_config, other tunnel tools) for fields that are called
 * something else here; offered only where the suggested field exists.
 */
const SYNONYMS: Record<string, string> = {
  hostname: "host",
  server: "host",
  address: "host",
  user: "username",
  login: "username",
  identityfile: "privateKeyFile",
  keyfile: "privateKeyFile",
  key: "privateKeyFile",
  privatekey: "privateKeyFile",
  knownhosts: "knownHostsFile",
  userknownhostsfile: "knownHostsFile",
  fingerprint: "fingerprints",
  stricthostkeychecking: "policy",
  bind: "bindAddress",
  bindhost: "bindAddress",
  listen: "localPort",
  port: "localPort",
  target: "remoteHost",
  timeout: "connectTimeout",
  retry: "reconnect",
  labels: "labels",
};

/** ` (did you mean "remotePort"?)` for a near miss: case slips, typos, a known synonym, a longer or shorter form. */
function suggest(field: string, known: readonly string[]): string {
  if (field === "<<") return " (YAML merge keys are not supported: repeat the fields, or use an alias for a whole value)";
  const best = closest(field, known);
  return best === undefined ? "" : ` (did you mean ${quote(best)}?)`;
}

/** ` (did you mean "Tunnel"?)` when a string value is a near miss of an allowed one. */
function suggestValue(value: unknown, allowed: readonly unknown[]): string {
  if (typeof value !== "string") return "";
  const best = closest(value, allowed.filter((candidate): candidate is string => typeof candidate === "string"), false);
  // "tunnelctl/v2" is another version, not a typo of "tunnelctl/v1".
  const digitsOnly = best !== undefined && best.replace(/[0-9]/g, "") === value.replace(/[0-9]/g, "");
  return best === undefined || digitsOnly ? "" : `; did you mean ${quote(best)}?`;
}

function closest(field: string, known: readonly string[], synonyms = true): string | undefined {
  const lower = field.toLowerCase();
  const synonym = synonyms ? SYNONYMS[lower] : undefined;
  if (synonym !== undefined && known.includes(synonym)) return synonym;
  let best: string | undefined;
  let bestDistance = Math.min(2, Math.floor(field.length / 3));
  for (const candidate of known) {
    const distance = editDistance(field.toLowerCase(), candidate.toLowerCase());
    if (distance <= bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

function quote(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}

function isEmptySchema(schema: unknown): boolean {
  return typeof schema === "object" && schema !== null && Object.keys(schema).length === 0;
}

function schemaProperty(schema: unknown, name: string): Record<string, unknown> | undefined {
  if (typeof schema !== "object" || schema === null) return undefined;
  const value = (schema as Record<string, unknown>)[name];
  return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : undefined;
}

function stringProperty(schema: unknown, name: string): string | undefined {
  if (typeof schema !== "object" || schema === null) return undefined;
  const value = (schema as Record<string, unknown>)[name];
  return typeof value === "string" ? value : undefined;
}
