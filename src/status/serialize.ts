// Status documents ↔ YAML text. Multi-document (`---` between documents, in manifest order),
// block style, no line folding (messages stay on one line). Key order is the order build.ts
// constructs, so unchanged status gives byte-identical text (the writer relies on it).
import { Document, Scalar, parse, parseAllDocuments, visit } from "yaml";
import type { TunnelStatusDoc } from "./types.ts";

export class StatusParseError extends Error {
  override name = "StatusParseError";
}

export function serializeStatusDocs(docs: readonly TunnelStatusDoc[]): string {
  return docs.map(serializeOne).join("---\n");
}

/** Parses a status file back (tests, `tunnelctl get`). Throws StatusParseError on anything else. */
export function parseStatusDocs(text: string, source = "status file"): TunnelStatusDoc[] {
  return parseAllDocuments(text).map((document, index) => {
    const [firstError] = document.errors;
    if (firstError !== undefined) {
      throw new StatusParseError(`Cannot parse ${source} document ${index + 1}: ${firstError.message}`, {
        cause: firstError,
      });
    }
    const value: unknown = document.toJS();
    if (!isStatusDoc(value)) {
      throw new StatusParseError(
        `Cannot read ${source} document ${index + 1}: expected apiVersion tunnelctl/v1, kind TunnelStatus`,
      );
    }
    return value;
  });
}

function serializeOne(doc: TunnelStatusDoc): string {
  const lines: string[] = [];
  return emitMap(doc as unknown as Record<string, unknown>, "", lines) ? `${lines.join("\n")}\n` : serializeWithDocument(doc);
}

/**
 * The yaml package's own rendering of a status document: the reference the direct emitter below
 * must match byte for byte (test/unit/status-serialize.test.ts), and its fallback.
 */
export function serializeWithDocument(doc: TunnelStatusDoc): string {
  return yamlText(doc);
}

/** Any value as the yaml package writes it, with our quoting rule for strings. */
function yamlText(value: unknown): string {
  const document = new Document(value);
  // The yaml package already quotes what YAML 1.2 would misread ("True", "0x1f", "null").
  // Also quote what a YAML 1.1 reader (PyYAML, older Go/Ruby libraries) would turn into a
  // boolean, number or timestamp: yes/no/on/off, 12:30, and every ISO 8601 time we write.
  visit(document, {
    Scalar(_key, node) {
      if (typeof node.value === "string" && !readsAsStringInYaml11(node.value)) node.type = Scalar.QUOTE_DOUBLE;
    },
  });
  return document.toString({ lineWidth: 0 });
}

// The direct emitter. Building a yaml Document per write was most of a cold start's status cost
// (every status file is serialised twice per write: the text, and its shape without counters).
// Status documents are maps, lists of maps and scalars, so the block layout is emitted here and
// each distinct string is rendered once by the yaml package and remembered. Anything else (a
// control character, a multi-line string, a list in a list, a fraction) takes the yaml path.
const SIMPLE_KEY = /^[A-Za-z][A-Za-z0-9]*$/;
// eslint-disable-next-line no-control-regex
const NEEDS_BLOCK = /[\u0000-\u001f\u007f\u2028\u2029\ufeff]/;

function emitMap(map: Record<string, unknown>, pad: string, lines: string[]): boolean {
  for (const key of Object.keys(map)) {
    const value = map[key];
    if (value === undefined) continue;
    if (!SIMPLE_KEY.test(key)) return false;
    if (Array.isArray(value)) {
      if (value.length === 0) lines.push(`${pad}${key}: []`);
      else {
        lines.push(`${pad}${key}:`);
        if (!emitSeq(value, `${pad}  `, lines)) return false;
      }
    } else if (value !== null && typeof value === "object") {
      if (Object.keys(value).length === 0) lines.push(`${pad}${key}: {}`);
      else {
        lines.push(`${pad}${key}:`);
        if (!emitMap(value as Record<string, unknown>, `${pad}  `, lines)) return false;
      }
    } else {
      const text = scalar(value);
      if (text === undefined) return false;
      lines.push(`${pad}${key}: ${text}`);
    }
  }
  return true;
}

function emitSeq(seq: unknown[], pad: string, lines: string[]): boolean {
  for (const item of seq) {
    if (item !== null && typeof item === "object" && !Array.isArray(item) && Object.keys(item).length > 0) {
      // The first key goes on the dash line: "- key: value", the rest under it.
      const first = lines.length;
      if (!emitMap(item as Record<string, unknown>, `${pad}  `, lines)) return false;
      if (lines.length === first) return false;
      lines[first] = `${pad}- ${lines[first]!.slice(pad.length + 2)}`;
    } else {
      if (item !== null && typeof item === "object") return false;
      const text = scalar(item);
      if (text === undefined) return false;
      lines.push(`${pad}- ${text}`);
    }
  }
  return true;
}

const rendered = new Map<string, string>();
const RENDERED_MAX = 10_000;

function scalar(value: unknown): string | undefined {
  if (value === null) return "null";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") return Number.isSafeInteger(value) ? String(value) : undefined;
  if (typeof value !== "string" || NEEDS_BLOCK.test(value)) return undefined;
  const known = rendered.get(value);
  if (known !== undefined) return known;
  const text = yamlText(value).slice(0, -1);
  if (text.includes("\n")) return undefined;
  if (rendered.size >= RENDERED_MAX) rendered.clear();
  rendered.set(value, text);
  return text;
}

// Status strings repeat (addresses, states, reasons, ""), and a YAML parse per string scalar per
// write was a third of a 1,000-tunnel controller's CPU: remember the answers.
const yaml11Verdicts = new Map<string, boolean>();
const YAML11_CACHE_MAX = 10_000;

function readsAsStringInYaml11(text: string): boolean {
  const known = yaml11Verdicts.get(text);
  if (known !== undefined) return known;
  let verdict: boolean;
  try {
    verdict = typeof parse(text, { version: "1.1", logLevel: "silent" }) === "string";
  } catch {
    verdict = false; // not a valid plain scalar: quoting is right anyway
  }
  if (yaml11Verdicts.size >= YAML11_CACHE_MAX) yaml11Verdicts.clear();
  yaml11Verdicts.set(text, verdict);
  return verdict;
}

function isStatusDoc(value: unknown): value is TunnelStatusDoc {
  if (value === null || typeof value !== "object") return false;
  const record = value as Record<string, unknown>;
  return (
    record["apiVersion"] === "tunnelctl/v1" &&
    record["kind"] === "TunnelStatus" &&
    typeof record["metadata"] === "object" &&
    typeof record["status"] === "object"
  );
}
