// Sizes in manifests and on the command line: a number of bytes, or a string with a binary unit
// ("512KiB", "16MiB", "1.5GiB"). The grammar is the schema's `$defs/size`; this turns either into bytes.

const UNIT_BYTES = { KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 } as const;
const SIZE_PATTERN = /^([0-9]+(?:\.[0-9]+)?)(KiB|MiB|GiB)$/;

/** Bytes for a size, within [min, max]. Throws a RangeError naming the bad value. */
export function parseSize(value: number | string, min: number, max: number): number {
  let bytes: number;
  if (typeof value === "number") {
    if (!Number.isInteger(value) || value < 0) throw new RangeError(`size ${value} must be a whole, non-negative number of bytes`);
    bytes = value;
  } else {
    const match = SIZE_PATTERN.exec(value);
    if (match?.[1] === undefined || match[2] === undefined) {
      throw new RangeError(`invalid size ${JSON.stringify(value)}: expected bytes or a number with a unit KiB, MiB or GiB (e.g. "16MiB")`);
    }
    bytes = Math.round(Number(match[1]) * UNIT_BYTES[match[2] as keyof typeof UNIT_BYTES]);
  }
  if (bytes < min || bytes > max) throw new RangeError(`size ${typeof value === "string" ? JSON.stringify(value) : value} is out of range: from ${formatSize(min)} to ${formatSize(max)}`);
  return bytes;
}

/** "16MiB", "1.5GiB", "512KiB" or bytes: the shortest exact form. */
export function formatSize(bytes: number): string {
  for (const unit of ["GiB", "MiB", "KiB"] as const) {
    const amount = bytes / UNIT_BYTES[unit];
    if (amount >= 1 && Number.isInteger(amount * 100)) return `${amount}${unit}`;
  }
  return String(bytes);
}
