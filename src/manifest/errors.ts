// An error that points into a manifest file. The message stays bare ("spec.port: must be an
// integer"); toString() adds the position, which is what status files and `validate` print.
import type { ManifestErrorInfo, SourcePosition } from "./types.ts";

export class ManifestError extends Error implements ManifestErrorInfo {
  override name = "ManifestError";
  readonly file: string;
  readonly line: number;
  readonly column: number;

  constructor(file: string, position: SourcePosition, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.file = file;
    this.line = position.line;
    this.column = position.column;
  }

  /** `file:line:column: message` */
  override toString(): string {
    return `${this.file}:${this.line}:${this.column}: ${this.message}`;
  }

  /** Plain data for logs and status files (an Error serialises to `{}` otherwise). */
  toJSON(): ManifestErrorInfo {
    return { file: this.file, line: this.line, column: this.column, message: this.message };
  }
}

/** Source order: by file, then line, then column. */
export function compareManifestErrors(a: ManifestErrorInfo, b: ManifestErrorInfo): number {
  if (a.file !== b.file) return a.file < b.file ? -1 : 1;
  return a.line - b.line || a.column - b.column;
}

/** Where file-level problems (size, encoding) are reported. */
export const START_OF_FILE: SourcePosition = { line: 1, column: 1 };
