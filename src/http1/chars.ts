/**
 * Byte classification tables for the HTTP/1.1 codec (RFC 9110 §5.6.2 tokens,
 * §5.5 field values, RFC 3986 authority characters). One `Uint8Array(256)`
 * lookup per character beats a regex per header line by a wide margin, and
 * latin1 strings never hold a code unit above 0xff, so `TABLE[s.charCodeAt(i)]`
 * is always in range (NaN past the end of the string reads `undefined`, falsy).
 */

export const HT = 0x09;
export const LF = 0x0a;
export const CR = 0x0d;
export const SP = 0x20;
export const DQUOTE = 0x22;
export const COLON = 0x3a;
export const SEMI = 0x3b;
export const COMMA = 0x2c;
export const SLASH = 0x2f;
export const EQUALS = 0x3d;
export const BACKSLASH = 0x5c;

function table(accept: (c: number) => boolean): Uint8Array {
  const t = new Uint8Array(256);
  for (let c = 0; c < 256; c++) t[c] = accept(c) ? 1 : 0;
  return t;
}

function isAlnum(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

/** tchar: `!#$%&'*+-.^_`|~`, DIGIT, ALPHA (RFC 9110 §5.6.2). */
export const TOKEN: Uint8Array = table((c) => isAlnum(c) || "!#$%&'*+-.^_`|~".includes(String.fromCharCode(c)));

/** Field-value characters: VCHAR, obs-text, SP, HT (RFC 9110 §5.5). Everything else (NUL, CR, LF, other controls, DEL) is rejected. */
export const VALUE: Uint8Array = table((c) => c === HT || (c >= SP && c !== 0x7f));

/** Request-target characters: visible ASCII only (0x21-0x7e); whitespace, controls and non-ASCII are rejected. */
export const TARGET: Uint8Array = table((c) => c >= 0x21 && c <= 0x7e);

/** Host header / authority characters: unreserved, pct-encoded, sub-delims, ":" and IP-literal brackets (RFC 3986 §3.2). */
export const HOST: Uint8Array = table((c) => isAlnum(c) || "-._~%!$&'()*+,;=:[]".includes(String.fromCharCode(c)));

/** Hex digit value, or 255 for a non-hex byte. */
export const HEX: Uint8Array = (() => {
  const t = new Uint8Array(256).fill(255);
  for (let c = 0; c < 10; c++) t[0x30 + c] = c;
  for (let c = 0; c < 6; c++) {
    t[0x41 + c] = 10 + c;
    t[0x61 + c] = 10 + c;
  }
  return t;
})();

/** Whether `s` is a non-empty token (header names, methods). For callers that build heads from non-parsed input. */
export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) if (TOKEN[s.charCodeAt(i)] !== 1) return false;
  return true;
}

/** Whether `s` is a safe field value (no CR, LF, NUL or other controls; code units ≤ 0xff). */
export function isFieldValue(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (VALUE[s.charCodeAt(i)] !== 1) return false;
  return true;
}

/**
 * ASCII case-insensitive comparison of `s[from..to)` with `lower` (lowercase letters, digits, `-`).
 * Only for already validated tokens or field values: `| 0x20` would equate CR with `-`.
 */
export function eqLower(s: string, from: number, to: number, lower: string): boolean {
  if (to - from !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) {
    if ((s.charCodeAt(from + i) | 0x20) !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/**
 * `buf[start..end)` decoded as latin1 (one byte = one code unit, so string
 * indices equal byte offsets). `toString('latin1')` measured within noise of
 * the undocumented `latin1Slice` it forwards to (bench/micro/http1-parse.ts),
 * so the documented API is used.
 */
export function latin1(buf: Buffer, start: number, end: number): string {
  return buf.toString('latin1', start, end);
}
