/**
 * Schemas for the scalar values of the config file: durations, sizes,
 * addresses, names, paths, regexes, hash keys. Each is a factory so every key
 * gets its own description and examples (zod attaches metadata per schema
 * instance).
 *
 * Error messages say what was expected and never quote the input: the loader
 * appends `, got <value>` itself, showing `${VAR}` instead of values that came
 * from the environment.
 */
import { z } from 'zod';
import { BYTE_SIZE_EXPECTED, BYTE_SIZE_PATTERN, checkByteCount, formatByteSize, MAX_BYTES, parseByteSize } from './byte-size.ts';
import { DURATION_EXPECTED, DURATION_PATTERN, formatDuration, parseDuration } from './duration.ts';
import { isIPv4, isIPv6 } from 'node:net';
import { parseHostHeader, parseHostPort, parseHostname } from './hostport.ts';
import { failed, parsed, type Parsed } from './parsed.ts';
import type { HashKey, HostPort, StatusRange } from './types.ts';
import { headerNameProblem, headerValueProblem, type EditSide } from '../filter/edits.ts';

/** Documentation attached to a key: shown in the JSON Schema and docs/config.md. */
export interface KeyDoc {
  readonly description: string;
  readonly examples?: readonly unknown[];
  /**
   * The default to show, for a key whose default the schema computes from other
   * keys (so it cannot be a plain zod default). Documentation only.
   */
  readonly shownDefault?: unknown;
}

function meta(doc: KeyDoc, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    description: doc.description,
    ...(doc.examples ? { examples: [...doc.examples] } : {}),
    ...(doc.shownDefault === undefined ? {} : { default: doc.shownDefault }),
    ...extra,
  };
}

/** A string schema whose text is converted by `parse`; a failed parse becomes an issue with its message. */
function parsedString<T>(
  expected: string | ((input: unknown) => string),
  parse: (text: string) => Parsed<T>,
  doc: KeyDoc,
  extra?: Record<string, unknown>,
) {
  return z
    .string({ error: typeof expected === 'string' ? expected : (issue) => expected(issue.input) })
    .meta(meta(doc, extra))
    .transform((text, ctx): T => {
      const result = parse(text);
      if (result.ok) return result.value;
      ctx.issues.push({ code: 'custom', message: result.message, input: text });
      return z.NEVER;
    });
}

/**
 * A JSON Schema pattern (a hint for editors; the loader checks precisely) that
 * also accepts any text containing `${`, which is interpolated before checking.
 */
function editorPattern(pattern: string): string {
  return `\\$\\{|^(${pattern})$`;
}

/** JSON Schema pattern for `host:port`. */
export const HOST_PORT_PATTERN = editorPattern('(\\[[0-9A-Fa-f:.%a-zA-Z]+\\]|[^:\\[\\]]+):[0-9]{1,5}');
/** JSON Schema pattern for a hash key. */
export const HASH_KEY_PATTERN = editorPattern('client-ip|path|(header|cookie|query):.+');
/** JSON Schema pattern for a duration. */
export const DURATION_SCHEMA_PATTERN = editorPattern(DURATION_PATTERN);
/** JSON Schema pattern for a size written as text (`32KiB`). */
export const BYTE_SIZE_SCHEMA_PATTERN = editorPattern(BYTE_SIZE_PATTERN);
/** JSON Schema pattern for a percentage written as text (`50%`). */
export const PERCENT_PATTERN = editorPattern('\\d+%?');
/** JSON Schema pattern for a list of status codes and ranges (`200,204,300-399`). */
export const STATUS_LIST_PATTERN = editorPattern('\\d+(-\\d+)?( *, *\\d+(-\\d+)?)*');
/** JSON Schema pattern for an IP address or CIDR (`10.0.0.0/8`, `::1`). */
export const CIDR_PATTERN = editorPattern('[0-9A-Fa-f:.]+(/[0-9]{1,3})?');
/** Names of listeners, pools, routes and backends: usable in metrics labels and URLs. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const TOKEN_PATTERN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const METHOD_PATTERN = /^[A-Z][A-Z0-9-]*$/;
const HOST_MATCH_PATTERN = /^(\*\.)?[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?$/;

/** A duration (`500ms`, `5s`, `1m`, `1h`, `1d`) resolved to milliseconds, greater than 0 (or at least `min`). */
export function duration(doc: KeyDoc, min?: { readonly ms: number; readonly why: string }) {
  const check = min === undefined ? positiveDuration : (text: string) => atLeast(text, min.ms, min.why);
  return parsedString(durationExpected, check, doc, { pattern: DURATION_SCHEMA_PATTERN });
}

function atLeast(text: string, minMs: number, why: string): Parsed<number> {
  const result = parseDuration(text);
  if (result.ok && result.value < minMs) return failed(`duration must be at least ${formatDuration(minMs)} (${why})`);
  return result;
}

function durationExpected(input: unknown): string {
  return typeof input === 'number' ? `${DURATION_EXPECTED} (the unit is required)` : DURATION_EXPECTED;
}

function positiveDuration(text: string): Parsed<number> {
  const result = parseDuration(text);
  if (result.ok && result.value === 0) return failed('duration must be greater than 0');
  return result;
}

/** A listener's `host:port`; port 0 asks the OS for a free port. */
export function bindAddress(doc: KeyDoc) {
  return parsedString<HostPort>('expected host:port', (text) => parseHostPort(text, { allowPortZero: true }), doc, { pattern: HOST_PORT_PATTERN });
}

/** A backend's `host:port`. */
export function backendAddress(doc: KeyDoc) {
  return parsedString<HostPort>('expected host:port', (text) => parseHostPort(text), doc, { pattern: HOST_PORT_PATTERN });
}

/** A listener, pool or route name: usable in metrics labels and URLs. */
export function name(what: string, doc: KeyDoc) {
  return z
    .string({ error: `expected a ${what} name` })
    .regex(NAME_PATTERN, { error: `${what} names start with a letter or digit and contain only letters, digits, "_", "." and "-" (at most 63)` })
    .meta(meta(doc));
}

/** A URL path: starts with `/`, no query or fragment. */
export function urlPath(doc: KeyDoc) {
  return parsedString('expected a path starting with "/"', checkPath, doc);
}

function checkPath(text: string): Parsed<string> {
  if (!text.startsWith('/')) return failed('expected a path starting with "/"');
  if (/[?#\s]/.test(text)) return failed('paths must not contain "?", "#" or whitespace (match query parameters with "query")');
  return parsed(text);
}

/** A JavaScript regular expression source, checked to compile. */
export function regex(doc: KeyDoc) {
  return parsedString('expected a regular expression', (text) => compiles(text), doc, { format: 'regex' });
}

function compiles(source: string): Parsed<string> {
  try {
    new RegExp(source);
    return parsed(source);
  } catch (error) {
    const reason = error instanceof Error ? error.message.slice(error.message.lastIndexOf(': ') + 2) : 'invalid';
    return failed(`invalid regular expression: ${reason}`);
  }
}

/** A match value: exact text, or a regular expression after `~`. */
export function matchValue(doc: KeyDoc) {
  return parsedString('expected a string (quote numbers and booleans, e.g. "1")', checkMatchValue, doc);
}

function checkMatchValue(text: string): Parsed<string> {
  if (!text.startsWith('~')) return parsed(text);
  const result = compiles(text.slice(1));
  return result.ok ? parsed(text) : failed(`${result.message} (after "~")`);
}

/** An HTTP method: an uppercase token. */
export function method(doc: KeyDoc) {
  return z
    .string({ error: 'expected an HTTP method' })
    .regex(METHOD_PATTERN, { error: 'expected an uppercase HTTP method such as "GET"' })
    .meta(meta(doc));
}

/** A Host to match: exact hostname or `*.example.com`; compared case-insensitively, stored lowercase. */
export function hostMatch(doc: KeyDoc) {
  return parsedString('expected a hostname or "*.domain"', checkHostMatch, doc);
}

function checkHostMatch(text: string): Parsed<string> {
  if (text.startsWith('[') && text.endsWith(']')) return parsed(text.toLowerCase());
  if (!HOST_MATCH_PATTERN.test(text) || text.length > 253) {
    return failed('expected a hostname such as "api.example.com" or a wildcard such as "*.example.com" (no port)');
  }
  return parsed(text.toLowerCase());
}

/**
 * A TLS server name to match (the SNI of a ClientHello): exact name or
 * `*.example.com`. Stored lowercase without a trailing dot. SNI carries names
 * only, never IP addresses (RFC 6066 §3), so addresses are refused.
 */
export function serverNameMatch(doc: KeyDoc) {
  return parsedString('expected a server name or "*.domain"', (text) => checkServerName(text, true), doc);
}

/** A TLS server name to send (SNI): a hostname, no wildcard, no port, no IP address. Stored lowercase. */
export function serverName(doc: KeyDoc) {
  return parsedString('expected a server name such as "api.internal"', (text) => checkServerName(text, false), doc);
}

function checkServerName(text: string, wildcard: boolean): Parsed<string> {
  const example = wildcard ? 'a server name such as "db.example.com" or a wildcard such as "*.example.com"' : 'a server name such as "api.internal"';
  if (isIPv4(text) || isIPv6(text.replace(/^\[(.*)\]$/, '$1'))) return failed(`expected ${example}: TLS SNI carries names, never IP addresses`);
  if ((!wildcard && text.startsWith('*.')) || !HOST_MATCH_PATTERN.test(text) || text.length > 253) {
    return failed(`expected ${example} (no port)`);
  }
  const lower = text.toLowerCase();
  return parsed(lower.endsWith('.') ? lower.slice(0, -1) : lower);
}

/** A host to put in a URL: a hostname, an IPv4 address or an IPv6 address in brackets; no port. Stored lowercase. */
export function urlHost(doc: KeyDoc) {
  return parsedString('expected a host name such as "www.example.com"', parseHostname, doc);
}

/**
 * An IP address or CIDR (`10.0.0.0/8`, `127.0.0.1`, `2001:db8::/32`, `::1/128`).
 * A bare address is one host (/32 or /128). Host bits after the prefix are
 * allowed (`10.1.2.3/8` is `10.0.0.0/8`). Stored as written, IPv6 lowercase.
 */
export function cidr(doc: KeyDoc) {
  return parsedString(CIDR_EXPECTED, parseCidr, doc, { pattern: CIDR_PATTERN });
}

const CIDR_EXPECTED = 'expected an IP address or CIDR such as "10.0.0.0/8", "127.0.0.1" or "::1/128"';

/**
 * Check an IP address or CIDR.
 *
 * @example parseCidr('10.0.0.0/8')  // { ok: true, value: '10.0.0.0/8' }
 * @example parseCidr('10.0.0.0/33') // { ok: false, message: 'an IPv4 prefix length is 0 to 32' }
 */
export function parseCidr(text: string): Parsed<string> {
  const slash = text.indexOf('/');
  const address = slash === -1 ? text : text.slice(0, slash);
  const family = isIPv4(address) ? 4 : isIPv6(address) && !address.includes('%') ? 6 : 0;
  if (family === 0) {
    if (address.startsWith('[')) return failed(`${CIDR_EXPECTED} (no brackets around IPv6 addresses)`);
    if (address.includes('%')) return failed(`${CIDR_EXPECTED} (without a "%zone")`);
    return failed(CIDR_EXPECTED);
  }
  if (slash !== -1) {
    const bits = text.slice(slash + 1);
    const max = family === 4 ? 32 : 128;
    if (!/^(0|[1-9][0-9]{0,2})$/.test(bits) || Number(bits) > max) return failed(`an IPv${family} prefix length is 0 to ${max}, written after "/"`);
  }
  return parsed(family === 6 ? text.toLowerCase() : text);
}

/** A file path; relative paths are resolved against the config file's directory by the loader. */
export function filePath(doc: KeyDoc) {
  return z.string({ error: 'expected a file path' }).min(1, { error: 'expected a file path' }).meta(meta(doc));
}

/** A header name (an HTTP token), stored lowercase as Node.js presents request headers. */
export function headerName() {
  return z
    .string()
    .regex(TOKEN_PATTERN, { error: 'header names are HTTP tokens: letters, digits and !#$%&\'*+.^_`|~-' })
    .transform((text) => text.toLowerCase());
}

/** A cookie name (an HTTP token, case-sensitive). */
export function cookieName(doc?: KeyDoc) {
  const schema = z
    .string({ error: 'expected a cookie name' })
    .regex(TOKEN_PATTERN, { error: 'cookie names are HTTP tokens: letters, digits and !#$%&\'*+.^_`|~-' });
  return doc ? schema.meta(meta(doc)) : schema;
}

/** A query parameter name: any non-empty text. */
export function queryName() {
  return z.string().min(1, { error: 'query parameter names must not be empty' });
}

/** `client-ip`, `path`, `header:NAME`, `cookie:NAME` or `query:NAME`. */
export function hashKey(doc: KeyDoc) {
  return parsedString<HashKey>(HASH_KEY_EXPECTED, parseHashKey, doc, { pattern: HASH_KEY_PATTERN });
}

const HASH_KEY_EXPECTED = 'expected client-ip, path, header:NAME, cookie:NAME or query:NAME';

function parseHashKey(text: string): Parsed<HashKey> {
  if (text === 'client-ip' || text === 'path') return parsed({ kind: text });
  const colon = text.indexOf(':');
  const kind = text.slice(0, colon);
  const keyName = text.slice(colon + 1);
  if (colon === -1 || keyName === '' || (kind !== 'header' && kind !== 'cookie' && kind !== 'query')) return failed(HASH_KEY_EXPECTED);
  if (kind !== 'query' && !TOKEN_PATTERN.test(keyName)) return failed(`${kind} names in a hash key are HTTP tokens`);
  return parsed({ kind, name: kind === 'header' ? keyName.toLowerCase() : keyName });
}

/** An integer in [min, max] with the one message for every way it can be wrong. */
export function integerIn(key: string, min: number, max: number, doc: KeyDoc) {
  const message = `${key} must be an integer in [${min}, ${max}]`;
  return z
    .number({ error: message })
    .int({ error: message })
    .min(min, { error: message })
    .max(max, { error: message })
    .meta(meta(doc));
}

/**
 * A whole percentage in [min, max], written as a number (`50`) or as text
 * (`"50%"`; `"50"` too, so `${VAR}` works). Resolves to the number.
 */
export function percentIn(key: string, min: number, max: number, doc: KeyDoc) {
  const message = `${key} must be a whole percentage in [${min}, ${max}], written like 50 or "50%"`;
  const asNumber = z.number({ error: message }).int({ error: message }).min(min, { error: message }).max(max, { error: message });
  const asText = z
    .string({ error: message })
    .meta({ pattern: PERCENT_PATTERN })
    .transform((text, ctx): number => {
      const match = /^(\d{1,3})%?$/.exec(text.trim());
      const value = match === null ? Number.NaN : Number(match[1]);
      if (value >= min && value <= max) return value;
      ctx.issues.push({ code: 'custom', message, input: text });
      return z.NEVER;
    });
  return z.union([asNumber, asText], { error: message }).meta(meta(doc));
}

/**
 * A size in [min, max] bytes (max defaults to the largest size), written as a
 * number of bytes (`32768`) or as text with a binary unit (`"32KiB"`; digits
 * alone too, so `${VAR}` works). Resolves to bytes. Range errors name the key
 * and show the range in units and in bytes.
 */
export function byteSize(key: string, min: number, max: number | undefined, doc: KeyDoc) {
  const high = max ?? MAX_BYTES;
  const range = `${key} must be a size from ${formatByteSize(min)} to ${formatByteSize(high)} (${min} to ${high} bytes)`;
  const inRange = (result: Parsed<number>): Parsed<number> => (result.ok && (result.value < min || result.value > high) ? failed(range) : result);
  // Numbers: the metadata gives editors the integer type and range; `checkByteCount`
  // words each way it can be wrong (a zod `.int()` would report a fraction as a type error).
  const asNumber = z
    .number({ error: BYTE_SIZE_EXPECTED })
    .meta({ type: 'integer', minimum: min, maximum: high })
    .transform((value, ctx): number => {
      const result = inRange(checkByteCount(value));
      if (result.ok) return result.value;
      ctx.issues.push({ code: 'custom', message: result.message, input: value });
      return z.NEVER;
    });
  const asText = z
    .string({ error: BYTE_SIZE_EXPECTED })
    .meta({ pattern: BYTE_SIZE_SCHEMA_PATTERN })
    .transform((text, ctx): number => {
      const result = inRange(parseByteSize(text));
      if (result.ok) return result.value;
      ctx.issues.push({ code: 'custom', message: result.message, input: text });
      return z.NEVER;
    });
  return z.union([asNumber, asText], { error: BYTE_SIZE_EXPECTED }).meta(meta(doc));
}

/** Lowest and highest HTTP status code. */
const STATUS_MIN = 100;
const STATUS_MAX = 599;
const STATUS_EXPECTED = `expected a status code such as 200, or codes and ranges such as "200,204,300-399" (codes ${STATUS_MIN}–${STATUS_MAX})`;

/**
 * Accepted HTTP statuses: one code (`200`), or text listing codes and
 * inclusive ranges separated by commas (`"200,204,300-399"`). Resolves to
 * ranges: `[[200, 200], [204, 204], [300, 399]]`.
 */
export function statusRanges(doc: KeyDoc) {
  const asNumber = z
    .number({ error: STATUS_EXPECTED })
    .int({ error: STATUS_EXPECTED })
    .min(STATUS_MIN, { error: `status codes must be in [${STATUS_MIN}, ${STATUS_MAX}]` })
    .max(STATUS_MAX, { error: `status codes must be in [${STATUS_MIN}, ${STATUS_MAX}]` })
    .transform((code): StatusRange[] => [[code, code]]);
  const asText = z
    .string({ error: STATUS_EXPECTED })
    .meta({ pattern: STATUS_LIST_PATTERN })
    .transform((text, ctx): StatusRange[] => {
      const result = parseStatusRanges(text);
      if (result.ok) return result.value;
      ctx.issues.push({ code: 'custom', message: result.message, input: text });
      return z.NEVER;
    });
  return z.union([asNumber, asText], { error: STATUS_EXPECTED }).meta(meta(doc));
}

/**
 * Parse `"200,204,300-399"` into inclusive ranges.
 *
 * @example parseStatusRanges('200, 300-399') // { ok: true, value: [[200, 200], [300, 399]] }
 */
export function parseStatusRanges(text: string): Parsed<StatusRange[]> {
  const ranges: StatusRange[] = [];
  for (const part of text.split(',')) {
    const match = /^\s*(\d{1,3})\s*(?:-\s*(\d{1,3})\s*)?$/.exec(part);
    if (match === null) return failed(STATUS_EXPECTED);
    const low = Number(match[1]);
    const high = match[2] === undefined ? low : Number(match[2]);
    if (low < STATUS_MIN || high > STATUS_MAX || high < STATUS_MIN || low > STATUS_MAX) {
      return failed(`status codes must be in [${STATUS_MIN}, ${STATUS_MAX}]`);
    }
    if (low > high) return failed('a status range is written low-high, e.g. "300-399"');
    ranges.push([low, high]);
  }
  return parsed(ranges);
}

/** Text the response body must contain, or a regular expression after `~` it must match (anywhere). */
export function bodyMatch(doc: KeyDoc) {
  return parsedString('expected a string (quote numbers and booleans, e.g. "1")', checkBodyMatch, doc);
}

function checkBodyMatch(text: string): Parsed<string> {
  if (text === '') return failed('expected text the body must contain; leave the key out to accept any body');
  return checkMatchValue(text);
}

/** A Host header value: a hostname or IP address, optionally with `:port`. */
export function hostHeader(doc: KeyDoc) {
  return parsedString('expected a host name such as "health.internal"', parseHostHeader, doc);
}

/**
 * A secret (an HMAC key, a bearer token): at least 16 characters. Marked
 * `writeOnly` in the JSON Schema; messages never show its value (the reporter
 * checks that mark), only its `${VAR}` template or its length.
 */
export function secret(key: string, doc: KeyDoc) {
  return z
    .string({ error: 'expected a string' })
    .min(16, { error: `${key} must be at least 16 characters` })
    .meta(meta(doc, { writeOnly: true }));
}

/** A string with documentation. */
export function text(doc: KeyDoc, expected = 'expected a string') {
  return z.string({ error: expected }).meta(meta(doc));
}

/** true or false, with documentation. */
export function flag(doc: KeyDoc) {
  return z.boolean({ error: 'expected true or false' }).meta(meta(doc));
}

/**
 * Metadata key marking an alternative the loader accepts but the JSON Schema
 * (editors, docs/config.md) leaves out: names registered in code.
 */
export const CODE_ONLY = 'x-usher-code-only';

/** Attach documentation to any schema (objects, lists, records). */
export function documented<T extends z.ZodType>(schema: T, doc: KeyDoc): T {
  return schema.meta(meta(doc));
}

/** A header name a filter may edit on `side` (checked by `filter/edits.ts`): kept as written. */
export function editableHeaderName(side: EditSide, doc?: KeyDoc) {
  return parsedString<string>('expected a header name', (text) => {
    const problem = headerNameProblem(text, side);
    return problem === undefined ? parsed(text) : failed(problem);
  }, doc ?? { description: 'A header name.' });
}

/** A header value: text without control characters. */
export function headerValueText(doc: KeyDoc) {
  return parsedString<string>('expected a header value (quote numbers and booleans, e.g. "1")', (text) => {
    const problem = headerValueProblem(text);
    return problem === undefined ? parsed(text) : failed(problem);
  }, doc);
}

/** An `http://host[:port]/path` URL (plain HTTP: the auth service is expected next to usher). */
export function httpUrl(doc: KeyDoc) {
  return parsedString<string>('expected an http:// URL such as "http://127.0.0.1:9000/auth"', (text) => {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      return failed('expected an http:// URL such as "http://127.0.0.1:9000/auth"');
    }
    if (url.protocol !== 'http:') return failed('only http:// URLs are supported (the auth service is expected on a trusted network, next to usher)');
    if (url.username !== '' || url.password !== '' || url.hash !== '') return failed('the URL must not carry credentials or a #fragment');
    return parsed(text);
  }, doc);
}

/** A filter module: a path to a `.ts` or `.js` file, relative to the config file's directory or absolute. */
export function modulePath(doc: KeyDoc) {
  return parsedString<string>('expected a path such as "./filters/tenant.ts"', (text) => {
    if (!/^(\.{1,2}\/|\/)/.test(text)) return failed('a filter module is a file path starting with "./", "../" or "/" (packages are not supported yet)');
    if (!/\.(ts|mts|js|mjs)$/.test(text)) return failed('a filter module is a .ts, .mts, .js or .mjs file');
    return parsed(text);
  }, doc);
}
