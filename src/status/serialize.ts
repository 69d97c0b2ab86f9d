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
  const document = new Document(doc);
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
