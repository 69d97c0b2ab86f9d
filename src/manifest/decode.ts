// Bytes → text, refusing what is not a manifest before the YAML parser sees it: files over the
// size cap, binary files (NUL), UTF-16 and other non-UTF-8 encodings. Errors carry a position.
import { Buffer, isUtf8 } from "node:buffer";
import { ManifestError, START_OF_FILE } from "./errors.ts";
import type { SourcePosition } from "./types.ts";

/** Manifests are small; a bigger file is a mistake (or an attack) and is not parsed. */
export const MAX_MANIFEST_BYTES = 1024 * 1024;

export type DecodeResult = { text: string; error?: never } | { text?: never; error: ManifestError };

export function tooLargeError(displayPath: string, size: number, maxBytes: number): ManifestError {
  return new ManifestError(
    displayPath,
    START_OF_FILE,
    `file is too large: ${formatBytes(size)} (manifests are limited to ${formatBytes(maxBytes)})`,
  );
}

/** Checks and decodes a manifest's bytes (a string is checked for size and NUL only). */
export function decodeManifest(displayPath: string, input: string | Uint8Array, maxBytes: number): DecodeResult {
  if (typeof input === "string") {
    const size = Buffer.byteLength(input, "utf8");
    if (size > maxBytes) return { error: tooLargeError(displayPath, size, maxBytes) };
    const nul = input.indexOf("\0");
    if (nul >= 0) return { error: binaryError(displayPath, positionInText(input, nul)) };
    // A BOM is not content; editors hide it, so columns must not count it.
    return { text: input.startsWith("\uFEFF") ? input.slice(1) : input };
  }
  if (input.length > maxBytes) return { error: tooLargeError(displayPath, input.length, maxBytes) };
  if ((input[0] === 0xff && input[1] === 0xfe) || (input[0] === 0xfe && input[1] === 0xff)) {
    return { error: new ManifestError(displayPath, START_OF_FILE, "file is UTF-16 encoded: manifests must be UTF-8") };
  }
  // A NUL anywhere means binary, which says more than "invalid UTF-8" at its first odd byte.
  const nul = input.indexOf(0);
  if (nul >= 0) return { error: binaryError(displayPath, positionInBytes(input, nul)) };
  const invalid = firstInvalidUtf8(input);
  if (invalid >= 0) {
    const byte = (input[invalid] ?? 0).toString(16).toUpperCase().padStart(2, "0");
    return {
      error: new ManifestError(
        displayPath,
        positionInBytes(input, invalid),
        `invalid UTF-8 (byte 0x${byte}): manifests must be UTF-8 text`,
      ),
    };
  }
  // TextDecoder drops a leading BOM, for the same reason as above.
  return { text: new TextDecoder("utf-8").decode(input) };
}

function binaryError(displayPath: string, position: SourcePosition): ManifestError {
  return new ManifestError(displayPath, position, "file contains a NUL byte: binary files are not manifests");
}

/** Offset of the first byte that does not start or continue a valid UTF-8 sequence, or -1. */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  if (isUtf8(bytes)) return -1;
  let i = 0;
  while (i < bytes.length) {
    const lead = bytes[i] ?? 0;
    const length = lead < 0x80 ? 1 : lead >= 0xc2 && lead <= 0xdf ? 2 : lead >= 0xe0 && lead <= 0xef ? 3 : lead >= 0xf0 && lead <= 0xf4 ? 4 : 0;
    if (length === 0) return i;
    // The second byte's range excludes overlong forms and surrogates (RFC 3629 table).
    const low = lead === 0xe0 ? 0xa0 : lead === 0xf0 ? 0x90 : 0x80;
    const high = lead === 0xed ? 0x9f : lead === 0xf4 ? 0x8f : 0xbf;
    for (let k = 1; k < length; k++) {
      const byte = bytes[i + k];
      if (byte === undefined) return i;
      const ok = k === 1 ? byte >= low && byte <= high : byte >= 0x80 && byte <= 0xbf;
      if (!ok) return i;
    }
    i += length;
  }
  return -1;
}

/** 1-based line and column (in UTF-16 units, like the YAML parser's) of a byte offset. */
function positionInBytes(bytes: Uint8Array, offset: number): SourcePosition {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset; i++) {
    if (bytes[i] === 0x0a) {
      line++;
      lineStart = i + 1;
    }
  }
  // Non-fatal decoding: invalid bytes before the offset count as one replacement character each.
  const prefix = new TextDecoder("utf-8").decode(bytes.subarray(lineStart, offset));
  return { line, column: prefix.length + 1 };
}

function positionInText(text: string, offset: number): SourcePosition {
  const before = text.slice(0, offset);
  const lineStart = before.lastIndexOf("\n") + 1;
  const bom = text.startsWith("\uFEFF") && lineStart === 0 ? 1 : 0;
  return { line: before.split("\n").length, column: offset - lineStart - bom + 1 };
}

function formatBytes(size: number): string {
  // Two decimals, so a file just over the cap does not read as "1 MiB (limited to 1 MiB)".
  const trim = (value: number): string => value.toFixed(2).replace(/\.?0+$/, "");
  if (size >= 1024 * 1024) return `${trim(size / (1024 * 1024))} MiB`;
  if (size >= 1024) return `${trim(size / 1024)} KiB`;
  return `${size} bytes`;
}
