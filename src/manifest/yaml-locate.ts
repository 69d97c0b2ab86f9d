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
    const child = step(doc, node, segment);
    if (child === undefined) break;
    if (i === path.length - 1 && at === "key" && child.keyOffset !== undefined) return child.keyOffset;
    node = child.node;
    // `port:` with nothing after it: the key is where the reader looks.
    const valueOffset = isEmptyScalar(node) ? undefined : startOf(node);
    offset = valueOffset ?? child.keyOffset ?? offset;
    if (valueOffset === undefined) break;
  }
  return offset;
}

/** The YAML node at `path` (aliases followed), or undefined. */
export function nodeAt(doc: Document.Parsed, path: FieldPath): unknown {
  let node: unknown = doc.contents;
  for (const segment of path) {
    const child = step(doc, node, segment);
    if (child === undefined) return undefined;
    node = child.node;
  }
  return isAlias(node) ? node.resolve(doc) : node;
}

/** One step down: a map's value by key (keys compare as strings, like in the data), or a list item. */
function step(doc: Document.Parsed, parent: unknown, segment: string | number): { node: unknown; keyOffset?: number } | undefined {
  const resolved = isAlias(parent) ? parent.resolve(doc) : parent;
  if (isMap(resolved)) {
    const pair = resolved.items.find((item) => isScalar(item.key) && String(item.key.value) === String(segment));
    if (pair === undefined) return undefined;
    const keyOffset = startOf(pair.key);
    return keyOffset === undefined ? { node: pair.value } : { node: pair.value, keyOffset };
  }
  if (isSeq(resolved) && typeof segment === "number" && segment < resolved.items.length) {
    return { node: resolved.items[segment] };
  }
  return undefined;
}

function isEmptyScalar(node: unknown): boolean {
  return isScalar(node) && node.value === null && node.range !== undefined && node.range !== null && node.range[0] === node.range[1];
}

function startOf(node: unknown): number | undefined {
  const range = (node as Node | null | undefined)?.range;
  return range === undefined || range === null ? undefined : range[0];
}
