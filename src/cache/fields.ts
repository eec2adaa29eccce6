/**
 * The header representation every cache module shares, and the few RFC 9110
 * field-syntax helpers they all need (lists, quoted strings, HTTP-dates,
 * delta-seconds).
 *
 * Headers are a plain record of lower-case field name → field lines, the
 * shape of Node's `IncomingMessage.headersDistinct`, so the proxy can hand
 * its parsed headers over without copying, and tests can write them inline.
 */

/** Lower-case field name → the field's lines, in the order received. */
export type Fields = Readonly<Record<string, readonly string[] | undefined>>;

/** The field lines of `name` (lower-case); empty when the field is absent. */
export function fieldLines(fields: Fields, name: string): readonly string[] {
  return Object.hasOwn(fields, name) ? (fields[name] ?? []) : [];
}

/** True when at least one line of `name` was received (even an empty one). */
export function hasField(fields: Fields, name: string): boolean {
  return Object.hasOwn(fields, name) && (fields[name]?.length ?? 0) > 0;
}

/** The members of a list-based field across all its lines (RFC 9110 §5.6.1): trimmed, empty members dropped, commas inside quoted strings kept. */
export function listMembers(fields: Fields, name: string): string[] {
  const out: string[] = [];
  for (const line of fieldLines(fields, name)) out.push(...splitList(line));
  return out;
}

/** Splits one list-based field value at commas that are not inside a quoted string (RFC 9110 §5.6.1, §5.6.4), trimming OWS and dropping empty members. */
export function splitList(value: string): string[] {
  const out: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (quoted) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) quoted = false;
    } else if (c === 0x22) {
      quoted = true;
    } else if (c === 0x2c /* , */) {
      pushTrimmed(out, value.slice(start, i));
      start = i + 1;
    }
  }
  pushTrimmed(out, value.slice(start));
  return out;
}

function pushTrimmed(out: string[], member: string): void {
  const t = member.trim();
  if (t !== '') out.push(t);
}

/** `tchar` of RFC 9110 §5.6.2. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export function isToken(s: string): boolean {
  return TOKEN.test(s);
}

/** Removes the quotes and backslash escapes of a quoted-string (RFC 9110 §5.6.4); undefined when `s` is not one. */
export function unquote(s: string): string | undefined {
  if (s.length < 2 || s[0] !== '"' || s[s.length - 1] !== '"') return undefined;
  let out = '';
  for (let i = 1; i < s.length - 1; i++) {
    let ch = s[i]!;
    if (ch === '\\') {
      i++;
      if (i >= s.length - 1) return undefined;
      ch = s[i]!;
    } else if (ch === '"') {
      return undefined;
    }
    out += ch;
  }
  return out;
}

/**
 * The largest delta-seconds a cache must represent: RFC 9111 §1.2.2 says a
 * larger value, or an overflowing computation, is taken as 2^31.
 */
export const DELTA_SECONDS_MAX = 2 ** 31;

/**
 * Parses delta-seconds (RFC 9111 §1.2.2: `1*DIGIT`). Anything else (sign,
 * decimal point, spaces, empty) is invalid and gives undefined; what invalid
 * means is up to the field (stale for max-age, ignored for Age). Values above
 * 2^31 are clamped to 2^31 as §1.2.2 requires.
 */
export function parseDeltaSeconds(s: string): number | undefined {
  if (!/^[0-9]+$/.test(s)) return undefined;
  // Compare by length first so that a 400-digit value does not become Infinity or lose precision.
  const digits = s.replace(/^0+(?=.)/, '');
  if (digits.length > 10) return DELTA_SECONDS_MAX;
  return Math.min(Number(digits), DELTA_SECONDS_MAX);
}

const MONTHS: Readonly<Record<string, number>> = {
  Jan: 0, Feb: 1, Mar: 2, Apr: 3, May: 4, Jun: 5, Jul: 6, Aug: 7, Sep: 8, Oct: 9, Nov: 10, Dec: 11,
};
const IMF_FIXDATE = /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{2}) ([A-Z][a-z]{2}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
const RFC850_DATE = /^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (\d{2})-([A-Z][a-z]{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
const ASCTIME_DATE = /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ([A-Z][a-z]{2}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/;

/**
 * Parses an HTTP-date (RFC 9110 §5.6.7) into ms since the epoch. All three
 * formats are accepted, as recipients must; anything else (including `0`,
 * `-1`, and the many forms `Date.parse` would guess at) is undefined.
 * `nowMs` resolves rfc850's two-digit year: a year more than 50 years in the
 * future is taken as the past century, as §5.6.7 requires.
 */
export function parseHttpDate(value: string, nowMs = 0): number | undefined {
  const s = value.trim();
  let m = IMF_FIXDATE.exec(s);
  if (m) return build(Number(m[3]), m[2]!, Number(m[1]), m[4]!, m[5]!, m[6]!);
  m = RFC850_DATE.exec(s);
  if (m) {
    const nowYear = new Date(nowMs).getUTCFullYear();
    let year = Math.floor(nowYear / 100) * 100 + Number(m[3]);
    if (year > nowYear + 50) year -= 100;
    return build(year, m[2]!, Number(m[1]), m[4]!, m[5]!, m[6]!);
  }
  m = ASCTIME_DATE.exec(s);
  if (m) return build(Number(m[6]), m[1]!, Number(m[2]!.trim()), m[3]!, m[4]!, m[5]!);
  return undefined;
}

function build(year: number, month: string, day: number, h: string, min: string, sec: string): number | undefined {
  const mon = MONTHS[month];
  if (mon === undefined) return undefined;
  const hours = Number(h);
  const minutes = Number(min);
  const seconds = Number(sec);
  // 60 is allowed for a leap second; it rolls into the next minute.
  if (day < 1 || day > 31 || hours > 23 || minutes > 59 || seconds > 60) return undefined;
  const t = Date.UTC(year, mon, day, hours, minutes, seconds);
  // Reject 31 Feb and friends, which Date.UTC would roll over silently.
  if (new Date(t).getUTCDate() !== day && seconds !== 60) return undefined;
  return t;
}

/** Formats ms since the epoch as an IMF-fixdate, the only form senders may generate. */
export function formatHttpDate(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toUTCString();
}

/** The single date of a singleton date field: the first line parsed, undefined when absent or invalid. */
export function dateField(fields: Fields, name: string, nowMs = 0): number | undefined {
  const first = fieldLines(fields, name)[0];
  return first === undefined ? undefined : parseHttpDate(first, nowMs);
}
