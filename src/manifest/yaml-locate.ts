// Field path → offset in the YAML source, so schema errors can say file:line:column. Aliases
// are followed (the fix belongs where the anchored content is written).
import { isAlias, isMap, isScalar, isSeq, type Document, type Node } from "yaml";
import type { FieldPath } from "./field-path.ts";

/**
 * Offset of the node at `path` (its key when `at` is "key"), or of the deepest existing
 * ancestor when the path leaves the document (e.g. a field filled in by a default).
 */
export function locateField(doc: Document.Parsed, path: FieldPath, at: "key" | "value"): number {
  let node: unknown = doc.contents;
  let offset = startOf(node) ?? doc.range[0];
  for (const [i, segment] of path.entries()) {
    node = resolveAlias(doc, node);
    let keyOffset: number | undefined;
    if (isMap(node)) {
      const pair = node.items.find((item) => isScalar(item.key) && String(item.key.value) === String(segment));
      if (pair === undefined) break;
      keyOffset = startOf(pair.key);
      node = pair.value;
    } else if (isSeq(node) && typeof segment === "number") {
      node = node.items[segment];
    } else {
      break;
    }
    const last = i === path.length - 1;
    if (last && at === "key" && keyOffset !== undefined) return keyOffset;
    // `port:` with nothing after it: the key is where the reader looks.
    const valueOffset = isEmptyScalar(node) ? undefined : startOf(node);
    offset = valueOffset ?? keyOffset ?? offset;
    if (valueOffset === undefined) break;
  }
  return offset;
}

/** The YAML node at `path` (aliases followed), or undefined. */
export function nodeAt(doc: Document.Parsed, path: FieldPath): unknown {
  let node: unknown = doc.contents;
  for (const segment of path) {
    node = resolveAlias(doc, node);
    if (isMap(node)) {
      node = node.items.find((item) => isScalar(item.key) && String(item.key.value) === String(segment))?.value;
    } else if (isSeq(node) && typeof segment === "number") {
      node = node.items[segment];
    } else {
      return undefined;
    }
  }
  return resolveAlias(doc, node);
}

function resolveAlias(doc: Document.Parsed, node: unknown): unknown {
  return isAlias(node) ? node.resolve(doc) : node;
}

function isEmptyScalar(node: unknown): boolean {
  return isScalar(node) && node.value === null && node.range !== undefined && node.range !== null && node.range[0] === node.range[1];
}

function startOf(node: unknown): number | undefined {
  const range = (node as Node | null | undefined)?.range;
  return range === undefined || range === null ? undefined : range[0];
}
