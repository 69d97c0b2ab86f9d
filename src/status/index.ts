// Status files: build the document (pure), serialize it, persist it (compare before write).
export type * from "./types.ts";
export { CONFLICT_CONDITION, INVALID_CONDITION, buildStatusDocs, buildTunnelStatus } from "./build.ts";
export { StatusParseError, parseStatusDocs, serializeStatusDocs } from "./serialize.ts";
export {
  StatusPathError,
  StatusWriteError,
  StatusWriter,
  statusPathFor,
  type StatusWriterOptions,
} from "./writer.ts";
