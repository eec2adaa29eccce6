/**
 * Strict IP address text parsing and formatting shared by the PROXY protocol
 * codec and the CIDR matcher.
 *
 * Every address is held as 16 bytes: IPv6 as is, IPv4 as an IPv4-mapped IPv6
 * address (`::ffff:a.b.c.d`, RFC 4291 §2.5.5.2). Node reports IPv4 clients of
 * a dual-stack listener in that form, so one representation lets
 * `10.0.0.0/8` match both `10.1.2.3` and `::ffff:10.1.2.3` without a
 * special case.
 *
 * Grammar (strict, so a header or config value means one thing only):
 * - IPv4: four decimal parts 0..255 separated by dots, no leading zeros
 *   (`010.0.0.1` is refused: inet_aton would read it as octal, RFC 6943 §3.1.1).
 * - IPv6: RFC 4291 §2.2: eight groups of 1 to 4 hex digits, at most one `::`,
 *   optionally ending in a dotted IPv4 address. A zone (`fe80::1%eth0`) is
 *   accepted only where the caller allows it (addresses of local sockets).
 *
 * Formatting follows RFC 5952: lowercase, leading zeros dropped, the longest
 * run (first on a tie) of two or more zero groups as `::`, and IPv4-mapped
 * addresses as `::ffff:a.b.c.d` (§5).
 */

/** Byte offset where an IPv4 address sits inside its mapped form. */
const V4_OFFSET = 12;

/** Whether `bytes` (16) is an IPv4-mapped IPv6 address `::ffff:0:0/96`. */
export function isV4Mapped(bytes: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return false;
  return bytes[10] === 0xff && bytes[11] === 0xff;
}

/**
 * Parses dotted-decimal IPv4 text in `text[start, end)` into `out[at..at+4)`.
 * Returns false on anything but exactly four parts 0..255 without leading zeros.
 */
function parseV4Into(text: string, start: number, end: number, out: Uint8Array, at: number): boolean {
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = start; i <= end; i++) {
    const c = i === end ? 0x2e /* virtual final dot */ : text.charCodeAt(i);
    if (c === 0x2e) {
      if (digits === 0 || part > 3) return false;
      out[at + part] = value;
      part++;
      value = 0;
      digits = 0;
      continue;
    }
    if (c < 0x30 || c > 0x39) return false;
    if (digits > 0 && value === 0) return false; // leading zero
    value = value * 10 + (c - 0x30);
    digits++;
    if (value > 255) return false;
  }
  return part === 4;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

/** Parses IPv6 text in `text[start, end)` into the 16 bytes of `out`. */
function parseV6Into(text: string, start: number, end: number, out: Uint8Array): boolean {
  const groups: number[] = [];
  let gap = -1; // index in `groups` where `::` stands
  let i = start;
  if (end - start < 2) return false;
  if (text.charCodeAt(i) === 0x3a /* : */) {
    if (text.charCodeAt(i + 1) !== 0x3a) return false; // a lone leading ':'
    gap = 0;
    i += 2;
    if (i === end) return fillV6(groups, gap, out);
  }
  for (;;) {
    // One group: hex digits, or a trailing dotted IPv4 address.
    let value = 0;
    let digits = 0;
    const groupStart = i;
    while (i < end) {
      const h = hexValue(text.charCodeAt(i));
      if (h < 0) break;
      value = (value << 4) | h;
      digits++;
      i++;
    }
    if (i < end && text.charCodeAt(i) === 0x2e /* . */) {
      if (groups.length > 6) return false;
      const v4 = new Uint8Array(4);
      if (!parseV4Into(text, groupStart, end, v4, 0)) return false;
      groups.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      return fillV6(groups, gap, out);
    }
    if (digits === 0 || digits > 4) return false;
    groups.push(value);
    if (groups.length > 8) return false;
    if (i === end) return fillV6(groups, gap, out);
    if (text.charCodeAt(i) !== 0x3a) return false;
    i++;
    if (i < end && text.charCodeAt(i) === 0x3a) {
      if (gap >= 0) return false; // a second '::'
      gap = groups.length;
      i++;
      if (i === end) return fillV6(groups, gap, out);
    } else if (i === end) {
      return false; // a trailing single ':'
    }
  }
}

function fillV6(groups: readonly number[], gap: number, out: Uint8Array): boolean {
  if (gap < 0 ? groups.length !== 8 : groups.length > 7) return false;
  out.fill(0);
  const tail = gap < 0 ? 0 : groups.length - gap;
  for (let g = 0; g < groups.length; g++) {
    const slot = gap >= 0 && g >= gap ? 8 - tail + (g - gap) : g;
    out[slot * 2] = groups[g]! >> 8;
    out[slot * 2 + 1] = groups[g]! & 0xff;
  }
  return true;
}

/** What {@link parseIp} recognised. */
export type IpFamily = 'IPv4' | 'IPv6';

/**
 * Parses an IPv4 or IPv6 address into `out` (16 bytes, IPv4 mapped).
 * Returns the family written, or undefined when `text` is not an address.
 *
 * @param allowZone - accept and ignore an IPv6 zone (`%eth0`), as on local socket addresses.
 */
export function parseIp(text: string, out: Uint8Array, allowZone = false): IpFamily | undefined {
  let end = text.length;
  if (text.includes(':')) {
    const zone = text.indexOf('%');
    if (zone >= 0) {
      if (!allowZone || zone === end - 1) return undefined;
      end = zone;
    }
    return parseV6Into(text, 0, end, out) ? 'IPv6' : undefined;
  }
  out.fill(0, 0, 10);
  out[10] = 0xff;
  out[11] = 0xff;
  return parseV4Into(text, 0, end, out, V4_OFFSET) ? 'IPv4' : undefined;
}

/** Dotted-decimal text of the IPv4 address in `bytes[at..at+4)`. */
export function formatV4(bytes: Uint8Array, at: number): string {
  return `${bytes[at]}.${bytes[at + 1]}.${bytes[at + 2]}.${bytes[at + 3]}`;
}

/** RFC 5952 text of 16 address bytes (IPv4-mapped addresses as `::ffff:a.b.c.d`). */
export function formatV6(bytes: Uint8Array, at = 0): string {
  // Longest run of zero groups, at least two long (§4.2.2), first on a tie (§4.2.3).
  let bestStart = -1;
  let bestLength = 1;
  let runStart = -1;
  for (let g = 0; g <= 8; g++) {
    const zero = g < 8 && bytes[at + g * 2] === 0 && bytes[at + g * 2 + 1] === 0;
    if (zero && runStart < 0) runStart = g;
    if (!zero && runStart >= 0) {
      if (g - runStart > bestLength) {
        bestStart = runStart;
        bestLength = g - runStart;
      }
      runStart = -1;
    }
  }
  const mapped = isV4Mapped(at === 0 ? bytes : bytes.subarray(at, at + 16));
  if (mapped) return `::ffff:${formatV4(bytes, at + V4_OFFSET)}`;
  let text = '';
  for (let g = 0; g < 8; g++) {
    if (g === bestStart) {
      text += '::';
      g += bestLength - 1;
      continue;
    }
    if (text.length > 0 && !text.endsWith(':')) text += ':';
    text += (((bytes[at + g * 2]! << 8) | bytes[at + g * 2 + 1]!) >>> 0).toString(16);
  }
  return text;
}
