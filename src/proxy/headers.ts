/**
 * Header rewriting between the two sides of the proxy (RFC 9110 §7.6.1).
 *
 * Hop-by-hop headers describe one connection and must not be forwarded:
 * Connection and every header it names, Keep-Alive, TE, Trailer,
 * Transfer-Encoding (each side frames its own body: usher writes the framing
 * header itself), Upgrade (outside an upgrade) and the Proxy-* family.
 * Everything else passes through in order and with its original case.
 *
 * Works on flat raw header lists ([name, value, name, value, ...]) and writes
 * the header block straight into one string, so a request allocates no
 * intermediate arrays or objects here.
 */

/** Lowercase names that never cross the proxy (HTTP/2 uses the same list: RFC 9113 §8.2.2). */
export const hopByHop: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
]);

/** Connection tokens that name no header and need no second look. */
const plainConnectionTokens: ReadonlySet<string> = new Set(['keep-alive', 'close', 'upgrade']);

/** What the proxy knows about the downstream side when forwarding a request. */
export interface ForwardingInfo {
  readonly clientIp: string;
  /** `http` or `https`: the scheme the client used to reach usher. */
  readonly proto: string;
  /** The request's id (request-id.ts): replaces every `x-request-id` the client sent. */
  readonly requestId: string;
}

/** True when some Connection token names an end-to-end-looking header that must be dropped. */
function namesHeaders(connectionTokens: readonly string[]): boolean {
  for (const token of connectionTokens) if (!plainConnectionTokens.has(token)) return true;
  return false;
}

/**
 * The header block to send upstream for one request, as `Name: value\r\n`
 * lines: hop-by-hop headers removed, Host kept as the client sent it,
 * X-Forwarded-For appended to, X-Forwarded-Proto and X-Forwarded-Host set by
 * usher (a client's own copies are not trusted), X-Request-Id usher's (which
 * is the client's when it was valid).
 */
export function upstreamRequestHeaderLines(
  raw: readonly string[],
  connectionTokens: readonly string[],
  info: ForwardingInfo,
): string {
  const checkNamed = namesHeaders(connectionTokens);
  let lines = '';
  let forwardedFor: string | undefined;
  let host: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    const lower = name.toLowerCase();
    if (hopByHop.has(lower) || lower === 'content-length' || (checkNamed && connectionTokens.includes(lower))) continue;
    if (lower.startsWith('x-forwarded-')) {
      if (lower === 'x-forwarded-for') {
        forwardedFor = forwardedFor === undefined ? value : `${forwardedFor}, ${value}`;
        continue;
      }
      if (lower === 'x-forwarded-proto' || lower === 'x-forwarded-host') continue;
    } else if (lower === 'host') {
      host = value;
    } else if (lower === 'x-request-id') {
      continue;
    }
    lines += `${name}: ${value}\r\n`;
  }
  lines += `x-forwarded-for: ${forwardedFor === undefined ? info.clientIp : `${forwardedFor}, ${info.clientIp}`}\r\n`;
  lines += `x-forwarded-proto: ${info.proto}\r\n`;
  if (host !== undefined) lines += `x-forwarded-host: ${host}\r\n`;
  lines += `x-request-id: ${info.requestId}\r\n`;
  return lines;
}

/**
 * The header block to send downstream for one response, as `Name: value\r\n`
 * lines: hop-by-hop headers removed, and X-Request-Id (the caller writes the
 * request's own, so an echo from the backend would duplicate it). The caller
 * adds framing and Connection; Content-Length passes through only when
 * `keepContentLength` (HEAD and 304 responses, where it describes a body that
 * is not sent).
 */
export function downstreamResponseHeaderLines(
  raw: readonly string[],
  connectionTokens: readonly string[],
  keepContentLength: boolean,
): string {
  const checkNamed = namesHeaders(connectionTokens);
  let lines = '';
  let sawLength = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (hopByHop.has(lower) || (checkNamed && connectionTokens.includes(lower)) || lower === 'x-request-id') continue;
    if (lower === 'content-length') {
      if (!keepContentLength || sawLength) continue;
      sawLength = true;
    }
    lines += `${name}: ${raw[i + 1]!}\r\n`;
  }
  return lines;
}

/** Lowercase-name view of raw headers for routing and hash keys; repeated names are joined as arrays. */
export function headerRecord(raw: readonly string[]): Record<string, string | string[]> {
  const record: Record<string, string | string[]> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    const existing = record[name];
    if (existing === undefined) record[name] = value;
    else if (typeof existing === 'string') record[name] = [existing, value];
    else existing.push(value);
  }
  return record;
}

/** Client IP as a plain address: IPv4-mapped IPv6 (`::ffff:1.2.3.4`) is shown as IPv4. */
export function clientAddress(remote: string | undefined): string {
  if (remote === undefined) return '';
  return remote.startsWith('::ffff:') && remote.includes('.') ? remote.slice(7) : remote;
}

/**
 * The request's transfer codings as one normalised list, for re-framing
 * upstream. The parser already checked that `chunked` is last and every coding
 * is known; codings before it (`gzip, chunked`) are end-to-end and must reach
 * the backend. The common case, plain `chunked`, allocates nothing.
 */
export function transferCodings(rawHeaders: readonly string[]): string {
  let codings = '';
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.length !== 17 || rawHeaders[i]!.toLowerCase() !== 'transfer-encoding') continue;
    for (const coding of rawHeaders[i + 1]!.split(',')) {
      const token = coding.trim().toLowerCase();
      if (token !== '') codings = codings === '' ? token : `${codings}, ${token}`;
    }
  }
  return codings === '' ? 'chunked' : codings;
}

/** The first value of header `name` (lowercase) in a raw list, or undefined. */
export function headerValue(raw: readonly string[], name: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === name.length && raw[i]!.toLowerCase() === name) return raw[i + 1];
  }
  return undefined;
}
