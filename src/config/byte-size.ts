/**
 * Sizes in config: a whole number of bytes (`65536`), or a whole number and a
 * binary unit (`64KiB`, `10MiB`, `1GiB`), with an optional space between them.
 * Units are case-insensitive and all binary, as in nginx: `K` = `KiB` = 1024
 * bytes, `M` = `MiB`, `G` = `GiB`; `B` is bytes. `KB`, `MB` and `GB` are
 * rejected: they mean 1000 in some tools and 1024 in others. Fractions are
 * rejected (`1.5MiB`: write `1536KiB`), as are negative sizes and sizes above
 * 2^53 - 1 bytes.
 */
import { failed, parsed, type Parsed } from './parsed.ts';

const UNIT_BYTES: Readonly<Record<string, number>> = {
  '': 1,
  b: 1,
  k: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
};

/** The largest size: 2^53 - 1 bytes (about 8 PiB), the largest exact integer. */
export const MAX_BYTES = Number.MAX_SAFE_INTEGER;

/** Regex source (unanchored) for a size written as text, for JSON Schema. */
export const BYTE_SIZE_PATTERN = '\\d+ ?([BbKkMmGg]|[KkMmGg][Ii][Bb])?';

/** What a size looks like, for error messages. */
export const BYTE_SIZE_EXPECTED = 'expected a size such as 65536 (bytes), "64KiB", "10MiB" or "1GiB"';

const DECIMAL_UNITS = 'write KiB, MiB or GiB (binary units, 1 KiB = 1024 bytes)';
const NEGATIVE = 'a size cannot be negative';
const FRACTION = 'sizes are whole numbers; use a smaller unit instead of a fraction (1536KiB, not 1.5MiB)';
const FRACTIONAL_BYTES = 'sizes are whole numbers of bytes';
const TOO_BIG = `size must be at most ${MAX_BYTES} bytes (2^53 - 1, about 8 PiB)`;

/**
 * Parse a size into bytes.
 *
 * @example parseByteSize('32KiB') // { ok: true, value: 32768 }
 * @example parseByteSize('10 m')  // { ok: true, value: 10485760 }
 * @example parseByteSize('1MB')   // { ok: false, message: 'write KiB, MiB or GiB (binary units, 1 KiB = 1024 bytes)' }
 */
export function parseByteSize(text: string): Parsed<number> {
  const match = /^(-?)(\d+)(\.\d+)?(?: ?([A-Za-z]+))?$/.exec(text);
  if (match === null) return failed(BYTE_SIZE_EXPECTED);
  const [, sign, digits = '', fraction, unitText = ''] = match;
  const unit = unitText.toLowerCase();
  const size = UNIT_BYTES[unit];
  if (size === undefined) return failed(/^[kmg]b$/.test(unit) ? DECIMAL_UNITS : `${BYTE_SIZE_EXPECTED}; the units are B, KiB (or K), MiB (M) and GiB (G)`);
  if (sign === '-') return failed(NEGATIVE);
  if (fraction !== undefined) return failed(FRACTION);
  const bytes = BigInt(digits) * BigInt(size);
  if (bytes > BigInt(MAX_BYTES)) return failed(TOO_BIG);
  return parsed(Number(bytes));
}

/**
 * Check a size written as a number of bytes.
 *
 * @example checkByteCount(4096) // { ok: true, value: 4096 }
 * @example checkByteCount(-1)   // { ok: false, message: 'a size cannot be negative' }
 */
export function checkByteCount(value: number): Parsed<number> {
  if (!Number.isFinite(value)) return failed(BYTE_SIZE_EXPECTED);
  if (value < 0) return failed(NEGATIVE);
  if (!Number.isInteger(value)) return failed(FRACTIONAL_BYTES);
  if (value > MAX_BYTES) return failed(TOO_BIG);
  return parsed(value);
}

/** Format bytes in the largest unit that divides them exactly (`32768` → `32KiB`, `1000` → `1000B`). */
export function formatByteSize(bytes: number): string {
  for (const [unit, size] of [['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (bytes !== 0 && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return `${bytes}B`;
}
