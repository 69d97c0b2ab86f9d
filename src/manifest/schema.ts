// The JSON Schema, compiled once at module load. It is the single source of validation and of
// defaults (ajv fills them in), so editors and tunnelctl agree on what a manifest means.
import { readFileSync } from "node:fs";
import { Ajv2020, type ErrorObject } from "ajv/dist/2020.js";
import type { RawTunnel } from "./raw.ts";

/** schemas/tunnel.schema.json; two levels up from both src/manifest and dist/manifest. */
export const TUNNEL_SCHEMA_URL = new URL("../../schemas/tunnel.schema.json", import.meta.url);

/** The schema as written (for `tunnelctl schema`). */
export const tunnelSchemaText: string = readFileSync(TUNNEL_SCHEMA_URL, "utf8");

const ajv = new Ajv2020({
  allErrors: true, // every problem in one pass: an operator fixes a file once, not once per error
  verbose: true, // errors carry the data and schema, for "(got …)" and our message annotations
  useDefaults: true,
  strictTypes: false, // durations are `type: [integer, string]` on purpose: flat errors, no oneOf
});
// Message annotations that editors (VS Code, yaml-language-server) show too; no validation effect.
ajv.addKeyword({ keyword: "errorMessage", schemaType: "string" });
ajv.addKeyword({ keyword: "patternErrorMessage", schemaType: "string" });

const validate = ajv.compile<RawTunnel>(JSON.parse(tunnelSchemaText) as object);

export type SchemaResult = { ok: true; value: RawTunnel } | { ok: false; errors: ErrorObject[] };

/** Validates one document's data; fills in defaults in place (the data is ours, from toJS). */
export function validateTunnelData(data: unknown): SchemaResult {
  if (validate(data)) return { ok: true, value: data };
  return { ok: false, errors: [...(validate.errors ?? [])] };
}
