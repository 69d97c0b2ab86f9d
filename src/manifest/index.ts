// The manifest module: YAML files → validated, normalised Tunnels with file:line:column errors.
export type * from "./types.ts";
export { loadManifestFile, loadManifestText } from "./load.ts";
export type { LoadedDocument, LoadOptions, LoadResult } from "./load.ts";
export { checkConflicts } from "./validate-set.ts";
export type { BindConflict, ClaimPriority, DuplicateName, SetCheckResult } from "./validate-set.ts";
export { formatBind, localBindsOverlap } from "./binds.ts";
export type { LocalBind } from "./binds.ts";
export { ManifestError, compareManifestErrors } from "./errors.ts";
export { MAX_DURATION_MS, formatDuration, parseDuration } from "./duration.ts";
export { MAX_MANIFEST_BYTES } from "./decode.ts";
export { TUNNEL_SCHEMA_URL, tunnelSchemaText } from "./schema.ts";
export { expandPath, generationOf } from "./normalise.ts";
