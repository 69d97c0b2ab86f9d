// One manifest file → its Tunnel documents, each valid (a normalised Tunnel) or with every
// problem found, as file:line:column errors. The steps: decode bytes, parse YAML, check
// structure, convert with an alias cap, validate against the schema, normalise, check rules
// the schema cannot state. A document that fails a step is not taken further.
import { open } from "node:fs/promises";
import { userInfo } from "node:os";
import path from "node:path";
import { isMap, isScalar, LineCounter, parseAllDocuments, type Document } from "yaml";
import { decodeManifest, MAX_MANIFEST_BYTES, tooLargeError } from "./decode.ts";
import { compareManifestErrors, ManifestError, START_OF_FILE } from "./errors.ts";
import type { FieldIssue, FieldPath } from "./field-path.ts";
import { normaliseTunnel } from "./normalise.ts";
import { applySshConfig } from "./ssh-config.ts";
import { digestReads, type SshConfigIo, type SshConfigRead } from "../ssh-config/load.ts";
import { validateTunnelData } from "./schema.ts";
import { describeSchemaErrors } from "./schema-messages.ts";
import { checkInvalidDocument, checkTunnelSpec } from "./semantic.ts";
import type { SourcePosition, Tunnel } from "./types.ts";
import { parserProblems, structureProblems, toPlainData, type YamlProblem } from "./yaml-checks.ts";
import { locateField, nodeAt } from "./yaml-locate.ts";

/** A directory holds many files, a file a few tunnels; past this a file is generated junk. */
export const MAX_DOCUMENTS_PER_FILE = 1000;
/** Past this, a document's errors are summarised: nobody reads 60,000 lines of status. */
export const MAX_ERRORS_PER_DOCUMENT = 100;

export interface LoadOptions {
  /** How errors name the file (relative to the cwd or the watched dir); default: `file` as given. */
  displayPath?: string;
  /** What `~` expands to: the controller's home directory. */
  homeDir: string;
  /** Size cap; default MAX_MANIFEST_BYTES (1 MiB). */
  maxBytes?: number;
  /** The user ssh would log in as when a spec.sshConfig names none (default: the controller's). */
  localUser?: string;
  /** How spec.sshConfig files are read (default: the file system, synchronously). */
  sshConfigIo?: SshConfigIo;
}

export interface LoadedDocument {
  /** Position among the file's non-empty documents (0-based), the order of the status file. */
  index: number;
  /** Present when the document is valid. */
  tunnel?: Tunnel;
  /** metadata.name as written, when it is a string, even if the document is invalid. */
  name?: string;
  errors: ManifestError[];
  /** What spec.sshConfig read (files and folders, even when it failed): the document depends on them. */
  sshConfig?: { reads: SshConfigRead[]; digest: string };
}

export interface LoadResult {
  documents: LoadedDocument[];
  /** Every error of the file in source order: file-level ones (size, encoding) and each document's. */
  errors: ManifestError[];
}

/** Loads manifest text already in memory. Pure apart from reading the schema at module load, and the
 * OpenSSH client config of a document with spec.sshConfig (through `sshConfigIo`). */
export function loadManifestText(file: string, text: string | Uint8Array, options: LoadOptions): LoadResult {
  const displayPath = options.displayPath ?? file;
  const decoded = decodeManifest(displayPath, text, options.maxBytes ?? MAX_MANIFEST_BYTES);
  if (decoded.error !== undefined) return { documents: [], errors: [decoded.error] };

  const lineCounter = new LineCounter();
  // uniqueKeys: false because structureProblems() finds duplicate keys in linear time.
  const parsed = parseAllDocuments(decoded.text, { lineCounter, prettyErrors: true, uniqueKeys: false, version: "1.2" });
  const positionAt = (offset: number): SourcePosition => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  const errorAt = (offset: number, message: string): ManifestError => new ManifestError(displayPath, positionAt(offset), message);

  // A file named as something else that is not a manifest (`validate README.md`): one clear
  // error, not a parser dump per line. A *.yaml file is meant as a manifest: its errors are listed.
  const broken = parsed.some((doc) => doc.errors.length > 0);
  if (!/\.ya?ml$/i.test(file) && parsed.length > 0 && (broken || !parsed.some(looksLikeTunnel))) {
    const why = broken ? "it is not valid YAML" : "no document has apiVersion, kind, metadata or spec";
    return { documents: [], errors: [new ManifestError(displayPath, START_OF_FILE, `not a tunnelctl manifest: ${why} (manifests are *.yaml or *.yml files)`)] };
  }

  // A stream with no documents can still carry errors (e.g. a stray directive).
  const streamErrors = "empty" in parsed ? parserProblems(parsed).map((problem) => errorAt(problem.offset, problem.message)) : [];
  const context: DocumentContext = {
    absoluteFile: path.resolve(file),
    homeDir: options.homeDir,
    localUser: options.localUser ?? localUserName(),
    sshConfigIo: options.sshConfigIo,
    positionAt,
    errorAt,
  };
  const nonEmpty = parsed.filter((doc) => !isEmptyDocument(doc));
  const documents = nonEmpty.slice(0, MAX_DOCUMENTS_PER_FILE).map((doc, index) => loadDocument(doc, index, context));
  const firstUnloaded = nonEmpty[MAX_DOCUMENTS_PER_FILE];
  const tooMany = firstUnloaded === undefined
    ? []
    : [errorAt(firstUnloaded.range[0], `too many documents in one file (more than ${MAX_DOCUMENTS_PER_FILE}): the rest are not loaded`)];
  return { documents, errors: [...streamErrors, ...documents.flatMap((doc) => doc.errors), ...tooMany] };
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
  localUser: string;
  sshConfigIo: SshConfigIo | undefined;
  positionAt: (offset: number) => SourcePosition;
  errorAt: (offset: number, message: string) => ManifestError;
}

function loadDocument(doc: Document.Parsed, index: number, context: DocumentContext): LoadedDocument {
  const nameNode = nodeAt(doc, ["metadata", "name"]);
  const written = isScalar(nameNode) && typeof nameNode.value === "string" ? nameNode.value : undefined;
  // After a YAML error the parser's recovery can make a whole later document into the "name"
  // (an unclosed quote): a name is believed there only if it looks like one.
  const name = written !== undefined && (doc.errors.length === 0 || PLAUSIBLE_NAME.test(written)) ? written : undefined;

  let sshConfig: LoadedDocument["sshConfig"];
  const finish = (problems: YamlProblem[], issues: FieldIssue[] = [], tunnel?: Tunnel): LoadedDocument => {
    // Only the listed errors are located (a lookup each): a generated file can have 60,000.
    const listed = Math.min(problems.length + issues.length, MAX_ERRORS_PER_DOCUMENT);
    const errors = [
      ...problems.slice(0, listed).map((problem) => context.errorAt(problem.offset, problem.message)),
      ...issues
        .slice(0, Math.max(0, listed - problems.length))
        .map((issue) => context.errorAt(locateField(doc, issue.path, issue.at), issue.message)),
    ].sort(compareManifestErrors);
    const unlisted = problems.length + issues.length - listed;
    if (unlisted > 0) errors.push(context.errorAt(doc.range[0], `${unlisted} more errors in this document are not listed`));
    const loaded: LoadedDocument = { index, errors };
    if (name !== undefined) loaded.name = name;
    if (sshConfig !== undefined) loaded.sshConfig = sshConfig;
    if (tunnel !== undefined && errors.length === 0) loaded.tunnel = tunnel;
    return loaded;
  };

  const yamlProblems = parserProblems(doc);
  // Warnings alone (unknown tags) leave a sound tree: report them and keep checking.
  if (doc.errors.length > 0) return finish(yamlProblems);
  const structural = structureProblems(doc);
  if (structural.length > 0) return finish([...yamlProblems, ...structural]);
  const converted = toPlainData(doc);
  if (converted.problem !== undefined) return finish([...yamlProblems, converted.problem]);

  // With spec.sshConfig, what the manifest wrote (before the schema's defaults) must win over the config.
  const writtenSpec = usesSshConfig(converted.data) ? (structuredClone(converted.data) as { spec: Record<string, unknown> }).spec : undefined;
  const validated = validateTunnelData(converted.data);
  if (!validated.ok) return finish(yamlProblems, [...describeSchemaErrors(validated.errors, converted.data), ...checkInvalidDocument(converted.data)]);
  let raw = validated.value;
  if (writtenSpec !== undefined) {
    const applied = applySshConfig(raw.spec, writtenSpec, context.absoluteFile, { homeDir: context.homeDir, localUser: context.localUser, io: context.sshConfigIo });
    sshConfig = { reads: applied.reads, digest: digestReads(applied.reads) };
    if (applied.issues.length > 0) return finish(yamlProblems, applied.issues);
    raw = { ...raw, spec: applied.spec };
  }
  const positionOf = (fieldPath: FieldPath): SourcePosition => context.positionAt(locateField(doc, fieldPath, "value"));
  const normalised = normaliseTunnel(raw, { file: context.absoluteFile, index, homeDir: context.homeDir, positionOf });
  if (normalised.tunnel === undefined) return finish(yamlProblems, normalised.issues);
  return finish(yamlProblems, checkTunnelSpec(normalised.tunnel.spec, raw.spec), normalised.tunnel);
}

function usesSshConfig(data: unknown): boolean {
  const spec = (data as { spec?: { sshConfig?: unknown } } | null)?.spec;
  return typeof spec === "object" && spec !== null && spec.sshConfig !== undefined && spec.sshConfig !== false;
}

function localUserName(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? "";
  }
}

const PLAUSIBLE_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** A document with at least one top-level key of a Tunnel (any case): a manifest, however broken. */
function looksLikeTunnel(doc: Document.Parsed): boolean {
  if (!isMap(doc.contents)) return false;
  return doc.contents.items.some((item) => isScalar(item.key) && typeof item.key.value === "string" && TUNNEL_KEYS.has(item.key.value.toLowerCase()));
}
const TUNNEL_KEYS = new Set(["apiversion", "kind", "metadata", "spec"]);

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
