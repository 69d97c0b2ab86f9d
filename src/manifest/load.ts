// One manifest file → its Tunnel documents, each valid (a normalised Tunnel) or with every
// problem found, as file:line:column errors. The steps: decode bytes, parse YAML, check
// structure, convert with an alias cap, validate against the schema, normalise, check rules
// the schema cannot state. A document that fails a step is not taken further.
import { open } from "node:fs/promises";
import path from "node:path";
import { LineCounter, parseAllDocuments, type Document } from "yaml";
import { decodeManifest, MAX_MANIFEST_BYTES, tooLargeError } from "./decode.ts";
import { compareManifestErrors, ManifestError } from "./errors.ts";
import type { FieldIssue, FieldPath } from "./field-path.ts";
import { normaliseTunnel } from "./normalise.ts";
import { validateTunnelData } from "./schema.ts";
import { describeSchemaErrors } from "./schema-messages.ts";
import { checkTunnelSpec } from "./semantic.ts";
import type { SourcePosition, Tunnel } from "./types.ts";
import { parserProblems, structureProblems, toPlainData, type YamlProblem } from "./yaml-checks.ts";
import { locateField, nodeAt } from "./yaml-locate.ts";

export interface LoadOptions {
  /** How errors name the file (relative to the cwd or the watched dir); default: `file` as given. */
  displayPath?: string;
  /** What `~` expands to: the controller's home directory. */
  homeDir: string;
  /** Size cap; default MAX_MANIFEST_BYTES (1 MiB). */
  maxBytes?: number;
}

export interface LoadedDocument {
  /** Position among the file's non-empty documents (0-based), the order of the status file. */
  index: number;
  /** Present when the document is valid. */
  tunnel?: Tunnel;
  /** metadata.name as written, when it is a string, even if the document is invalid. */
  name?: string;
  errors: ManifestError[];
}

export interface LoadResult {
  documents: LoadedDocument[];
  /** Every error of the file in source order: file-level ones (size, encoding) and each document's. */
  errors: ManifestError[];
}

/** Loads manifest text already in memory. Pure apart from reading the schema at module load. */
export function loadManifestText(file: string, text: string | Uint8Array, options: LoadOptions): LoadResult {
  const displayPath = options.displayPath ?? file;
  const decoded = decodeManifest(displayPath, text, options.maxBytes ?? MAX_MANIFEST_BYTES);
  if (decoded.error !== undefined) return { documents: [], errors: [decoded.error] };

  const lineCounter = new LineCounter();
  const parsed = parseAllDocuments(decoded.text, { lineCounter, prettyErrors: true, uniqueKeys: true, version: "1.2" });
  const positionAt = (offset: number): SourcePosition => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  const errorAt = (offset: number, message: string): ManifestError => new ManifestError(displayPath, positionAt(offset), message);

  // A stream with no documents can still carry errors (e.g. a stray directive).
  const streamErrors = "empty" in parsed ? parserProblems(parsed).map((problem) => errorAt(problem.offset, problem.message)) : [];
  const context: DocumentContext = { absoluteFile: path.resolve(file), homeDir: options.homeDir, positionAt, errorAt };
  const documents = parsed
    .filter((doc) => !isEmptyDocument(doc))
    .map((doc, index) => loadDocument(doc, index, context));
  return { documents, errors: [...streamErrors, ...documents.flatMap((doc) => doc.errors)] };
}

/**
 * Reads and loads a manifest file, reading at most the size cap. File system errors (ENOENT,
 * EACCES, EISDIR) reject as they are: a file that vanished is the caller's news, not a manifest error.
 */
export async function loadManifestFile(file: string, options: LoadOptions): Promise<LoadResult> {
  const maxBytes = options.maxBytes ?? MAX_MANIFEST_BYTES;
  const handle = await open(file, "r");
  try {
    const { size } = await handle.stat();
    if (size > maxBytes) return { documents: [], errors: [tooLargeError(options.displayPath ?? file, size, maxBytes)] };
    // One byte more than the cap: a file that grew since stat() is still caught.
    const buffer = new Uint8Array(maxBytes + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length === buffer.length) break;
    }
    return loadManifestText(file, buffer.subarray(0, length), options);
  } finally {
    await handle.close();
  }
}

interface DocumentContext {
  absoluteFile: string;
  homeDir: string;
  positionAt: (offset: number) => SourcePosition;
  errorAt: (offset: number, message: string) => ManifestError;
}

function loadDocument(doc: Document.Parsed, index: number, context: DocumentContext): LoadedDocument {
  const nameNode = nodeAt(doc, ["metadata", "name"]);
  const nameValue = typeof nameNode === "object" && nameNode !== null && "value" in nameNode ? nameNode.value : undefined;
  const result: LoadedDocument = { index, errors: [] };
  if (typeof nameValue === "string") result.name = nameValue;

  const fromProblems = (problems: YamlProblem[]): ManifestError[] =>
    problems.map((problem) => context.errorAt(problem.offset, problem.message)).sort(compareManifestErrors);
  const fromIssues = (issues: FieldIssue[]): ManifestError[] =>
    issues.map((issue) => context.errorAt(locateField(doc, issue.path, issue.at), issue.message)).sort(compareManifestErrors);

  const yamlProblems = parserProblems(doc, doc);
  // Warnings alone (unknown tags) leave a sound tree: report them and keep checking.
  if (doc.errors.length > 0) return { ...result, errors: fromProblems(yamlProblems) };
  const structural = structureProblems(doc);
  if (structural.length > 0) return { ...result, errors: fromProblems([...yamlProblems, ...structural]) };
  const converted = toPlainData(doc);
  if (converted.problem !== undefined) return { ...result, errors: fromProblems([...yamlProblems, converted.problem]) };

  const validated = validateTunnelData(converted.data);
  if (!validated.ok) {
    return { ...result, errors: [...fromProblems(yamlProblems), ...fromIssues(describeSchemaErrors(validated.errors, converted.data))].sort(compareManifestErrors) };
  }
  const positionOf = (fieldPath: FieldPath): SourcePosition => context.positionAt(locateField(doc, fieldPath, "value"));
  const normalised = normaliseTunnel(validated.value, { file: context.absoluteFile, index, homeDir: context.homeDir, positionOf });
  const issues = normalised.tunnel === undefined ? normalised.issues : checkTunnelSpec(normalised.tunnel.spec, validated.value.spec);
  const errors = [...fromProblems(yamlProblems), ...fromIssues(issues)].sort(compareManifestErrors);
  if (errors.length === 0 && normalised.tunnel !== undefined) result.tunnel = normalised.tunnel;
  return { ...result, errors };
}

/** `---` with nothing after it (or only comments): not a Tunnel, not an error. */
function isEmptyDocument(doc: Document.Parsed): boolean {
  const contents = doc.contents;
  return (
    doc.errors.length === 0 &&
    doc.warnings.length === 0 &&
    (contents === null ||
      ("value" in contents && contents.value === null && contents.range[0] === contents.range[1] && contents.tag === undefined))
  );
}
