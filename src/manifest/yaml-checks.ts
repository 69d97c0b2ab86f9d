// The YAML layer: parser errors and warnings as problems with offsets, the structural checks
// the parser does not do (or does slowly): nesting depth, alias use, complex and duplicate keys,
// and the conversion to plain data with a cap on alias expansion.
import { isAlias, isCollection, isMap, isScalar, type Document, type YAMLError } from "yaml";

/** A YAML-level problem at an offset in the source. */
export interface YamlProblem {
  offset: number;
  message: string;
}

/** Real manifests nest about five deep; far deeper is junk, and the parser's recursion has limits. */
export const MAX_NESTING_DEPTH = 64;
/** toJS resolves each alias by scanning the document: quadratic (20,000 aliases took 6.7 s). */
export const MAX_ALIASES = 1000;
/** Expansions allowed per anchor by toJS; past it, a "billion laughs" document is refused. */
export const MAX_ALIAS_EXPANSIONS = 100;

/**
 * Parser errors and warnings of a document, or of a stream without documents (unknown tags are
 * warnings in the library, errors here).
 */
export function parserProblems(source: Pick<Document.Parsed, "errors" | "warnings">): YamlProblem[] {
  return [...source.errors, ...source.warnings].map((error) => ({
    offset: error.pos[0],
    message: describeParserError(error),
  }));
}

function describeParserError(error: YAMLError): string {
  // prettyErrors appends " at line L, column C:" and a source excerpt: the position is reported
  // separately, and the excerpt could carry a secret into a status file.
  const bare = error.message.replace(/ at line \d+, column \d+(:\n[\s\S]*)?$/, "");
  if (error.code === "TAG_RESOLVE_FAILED") {
    return `${bare.replace(/^Unresolved tag: /, "unknown tag ")}: custom tags are not supported`;
  }
  if (bare.startsWith("Maximum call stack size exceeded")) {
    return `nesting too deep (more than ${MAX_NESTING_DEPTH} levels)`;
  }
  return bare;
}

/** Limits the parser does not enforce; checked before any conversion that could blow up. */
export function structureProblems(doc: Document.Parsed): YamlProblem[] {
  const problems: YamlProblem[] = [];
  const defined = new Set<string>();
  let aliases = 0;
  // Iterative walk in document order: the input decides the depth, not our stack.
  const stack: Array<{ node: unknown; depth: number; closes?: string }> = [{ node: doc.contents, depth: 1 }];
  const open = new Set<string>();
  for (let entry = stack.pop(); entry !== undefined; entry = stack.pop()) {
    const { node, depth, closes } = entry;
    if (closes !== undefined) {
      open.delete(closes);
      continue;
    }
    if (isAlias(node)) {
      aliases++;
      const offset = node.range?.[0] ?? 0;
      if (aliases > MAX_ALIASES) {
        problems.push({ offset, message: `too many aliases (more than ${MAX_ALIASES})` });
        break;
      }
      if (!defined.has(node.source)) {
        problems.push({ offset, message: `unknown alias *${node.source}: define the anchor &${node.source} before using it` });
      } else if (open.has(node.source)) {
        problems.push({ offset, message: `alias *${node.source} is inside the node it refers to` });
      }
      continue;
    }
    if (!isScalar(node) && !isCollection(node)) continue;
    const anchor = node.anchor;
    if (anchor !== undefined) defined.add(anchor);
    if (!isCollection(node)) continue;
    if (depth > MAX_NESTING_DEPTH) {
      problems.push({ offset: node.range?.[0] ?? 0, message: `nesting too deep (more than ${MAX_NESTING_DEPTH} levels)` });
      break;
    }
    if (anchor !== undefined) {
      // An alias to an anchor that is still open would make the data contain itself.
      open.add(anchor);
      stack.push({ node: undefined, depth, closes: anchor });
    }
    const children: unknown[] = [];
    if (isMap(node)) {
      // Duplicate keys are found here, in linear time: the parser's uniqueKeys check compares
      // every key with every other (60,000 keys took 14 s). Keys compare as the strings they
      // become in the data, so `1` and "1" collide too.
      const keys = new Set<string>();
      for (const pair of node.items) {
        if (isCollection(pair.key)) {
          problems.push({ offset: pair.key.range?.[0] ?? 0, message: "keys must be plain values, not lists or mappings" });
        } else {
          if (isScalar(pair.key)) {
            const key = String(pair.key.value);
            if (keys.has(key)) problems.push({ offset: pair.key.range?.[0] ?? 0, message: `duplicate key ${JSON.stringify(key)}` });
            keys.add(key);
          }
          children.push(pair.key);
        }
        children.push(pair.value);
      }
    } else {
      children.push(...node.items);
    }
    for (let i = children.length - 1; i >= 0; i--) stack.push({ node: children[i], depth: depth + 1 });
  }
  return problems;
}

/** Plain data for the schema, refusing alias bombs. */
export function toPlainData(doc: Document.Parsed): { data: unknown; problem?: never } | { data?: never; problem: YamlProblem } {
  try {
    return { data: doc.toJS({ maxAliasCount: MAX_ALIAS_EXPANSIONS }) as unknown };
  } catch (error) {
    const offset = firstAliasOffset(doc) ?? doc.range[0];
    const message = error instanceof Error && /alias count/i.test(error.message)
      ? `too many alias expansions (limit ${MAX_ALIAS_EXPANSIONS} per anchor): refusing a possible alias bomb`
      : `cannot convert the document: ${error instanceof Error ? error.message : String(error)}`;
    return { problem: { offset, message } };
  }
}

function firstAliasOffset(doc: Document.Parsed): number | undefined {
  let found: number | undefined;
  const stack: unknown[] = [doc.contents];
  while (stack.length > 0 && found === undefined) {
    const node = stack.pop();
    if (isAlias(node)) found = node.range?.[0];
    else if (isMap(node)) for (const pair of [...node.items].reverse()) stack.push(pair.value, pair.key);
    else if (isCollection(node)) for (const item of [...node.items].reverse()) stack.push(item);
  }
  return found;
}
