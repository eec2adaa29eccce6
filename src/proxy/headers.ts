/**
 * Header rewriting between the two sides of the proxy (RFC 9110 §7.6.1).
 *
 * Hop-by-hop headers describe one connection and must not be forwarded:
 * Connection and every header it names, Keep-Alive, TE, Trailer,
 * Transfer-Encoding (each side frames its own body: usher writes the framing
 * header itself), Upgrade (outside an upgrade), HTTP2-Settings and the
 * Proxy-* family. Requests also lose underscore look-alikes of the fields
 * usher treats specially (`Transfer_Encoding`). Everything else passes
 * through in order and with its original case.
 *
 * Works on flat raw header lists ([name, value, name, value, ...]) and writes
 * the header block straight into one string, so a request allocates no
 * intermediate arrays or objects here.
 */

/**
 * Lowercase names that never cross the proxy (HTTP/2 uses the same list: RFC
 * 9113 §8.2.2). HTTP2-Settings belongs to the h2c upgrade (RFC 9113 §3.1
 * deprecated it; RFC 7540 §3.2.1 made it connection-specific), which usher
 * never forwards.
 */
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
  'http2-settings',
]);

/** What {@link classify} says about a header name. */
const OTHER = 0;
/** Hop-by-hop: Connection, Keep-Alive, TE, Trailer, Transfer-Encoding, Upgrade, Proxy-Connection, Proxy-Authenticate, Proxy-Authorization, HTTP2-Settings. */
const HOP = 1;
const CONTENT_LENGTH = 2;
const HOST = 3;
const X_FORWARDED_FOR = 4;
/** X-Forwarded-Proto and X-Forwarded-Host: usher sets its own. */
const X_FORWARDED_SET = 5;
/** X-Request-Id: usher writes the request's own, both ways. */
const X_REQUEST_ID = 6;
/**
 * A name that is one of the fields above, or X-Real-IP, once `_` is read as
 * `-` (`Transfer_Encoding`, `x_forwarded_for`, `CONTENT_LENGTH`). CGI, PHP,
 * WSGI and Rack turn both spellings into the same variable (`HTTP_X_FORWARDED_FOR`),
 * so such a backend would read it as the field usher decided framing on, removed
 * or wrote itself. Dropped from requests; passed in responses (clients don't fold).
 */
const LOOKALIKE = 7;

/**
 * `kind` when `name` equals `lower` case-insensitively, {@link LOOKALIKE}
 * when it does only with its `_` read as `-`, else {@link OTHER}. The caller
 * has matched the lengths. A mismatch usually shows at the first character,
 * so ordinary names cost what `eqLower` (http1/chars.ts) cost; the `_` test runs only on a
 * character that already failed. `| 0x20` lowercases letters and leaves `-`
 * and digits alone; no token character other than `_` folds onto `-`.
 */
function named(name: string, lower: string, kind: number): number {
  let folded = false;
  for (let i = 0; i < lower.length; i++) {
    const c = name.charCodeAt(i);
    const l = lower.charCodeAt(i);
    if ((c | 0x20) === l) continue;
    if (c !== 0x5f || l !== 0x2d) return OTHER;
    folded = true;
  }
  return folded ? LOOKALIKE : kind;
}

/**
 * Which of the names this module cares about `name` is, case-insensitively,
 * without lowercasing it: a switch on the length rules out most names at
 * once (Server, Date, Content-Type, Accept...), and the rest are compared in
 * place. `toLowerCase()` allocated a string for every mixed-case name, on
 * every request and response. Names without `-` (Host, TE, Trailer, Upgrade,
 * Connection, Expect, Forwarded) have no underscore look-alike.
 */
function classify(name: string): number {
  switch (name.length) {
    case 2:
      return named(name, 'te', HOP);
    case 4:
      return named(name, 'host', HOST);
    case 7:
      return named(name, 'trailer', HOP) || named(name, 'upgrade', HOP);
    case 9:
      // Passed as sent (usher does not set it), but a look-alike is still a spoof of it.
      return named(name, 'x-real-ip', OTHER);
    case 10:
      return named(name, 'connection', HOP) || named(name, 'keep-alive', HOP);
    case 12:
      return named(name, 'x-request-id', X_REQUEST_ID);
    case 14:
      return named(name, 'content-length', CONTENT_LENGTH) || named(name, 'http2-settings', HOP);
    case 15:
      return named(name, 'x-forwarded-for', X_FORWARDED_FOR);
    case 16:
      return named(name, 'proxy-connection', HOP) || named(name, 'x-forwarded-host', X_FORWARDED_SET);
    case 17:
      return named(name, 'transfer-encoding', HOP) || named(name, 'x-forwarded-proto', X_FORWARDED_SET);
    case 18:
      return named(name, 'proxy-authenticate', HOP);
    case 19:
      return named(name, 'proxy-authorization', HOP);
    default:
      return OTHER;
  }
}

/**
 * Whether a request field named `name` is an underscore look-alike of a
 * field usher treats specially (see {@link LOOKALIKE}), for header lists
 * built elsewhere (the h2c upstream request).
 */
export function isUnderscoreLookalike(name: string): boolean {
  return classify(name) === LOOKALIKE;
}

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
  for (let i = 0; i < connectionTokens.length; i++) {
    const token = connectionTokens[i];
    if (token !== 'keep-alive' && token !== 'close' && token !== 'upgrade') return true;
  }
  return false;
}

/**
 * The header block to send upstream for one request, as `Name: value\r\n`
 * lines: hop-by-hop headers removed, Host kept as the client sent it,
 * X-Forwarded-For appended to, X-Forwarded-Proto and X-Forwarded-Host set by
 * usher (a client's own copies are not trusted), X-Request-Id usher's (which
 * is the client's when it was valid), and underscore look-alikes of any of
 * these (and of X-Real-IP) dropped. Other names with `_` pass: applications
 * use them, and only a look-alike can be confused with what usher decided.
 * nginx drops every name with `_` by default (`underscores_in_headers off`);
 * Envoy passes them all by default (`headers_with_underscores_action: ALLOW`).
 */
export function upstreamRequestHeaderLines(
  raw: readonly string[],
  connectionTokens: readonly string[],
  info: ForwardingInfo,
  edits?: RequestEdits,
): string {
  const checkNamed = namesHeaders(connectionTokens);
  const drops = edits !== undefined && edits.headers.removed.length > 0;
  let lines = '';
  let forwardedFor: string | undefined;
  let host: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    const kind = classify(name);
    if (kind === HOP || kind === CONTENT_LENGTH || kind === LOOKALIKE || (checkNamed && connectionTokens.includes(name.toLowerCase()))) continue;
    if (kind === X_FORWARDED_FOR) {
      forwardedFor = forwardedFor === undefined ? value : `${forwardedFor}, ${value}`;
      continue;
    }
    if (kind === X_FORWARDED_SET || kind === X_REQUEST_ID) continue;
    if (drops && edits.headers.drops(name)) continue;
    if (kind === HOST) {
      host = value;
      // A filter's new Host replaces the field in place; X-Forwarded-Host keeps the client's.
      if (edits?.hostEdited === true) {
        lines += `${name}: ${edits.host}\r\n`;
        continue;
      }
    }
    lines += `${name}: ${value}\r\n`;
  }
  if (edits !== undefined) lines += editedLines(edits, host === undefined);
  lines += `x-forwarded-for: ${forwardedFor === undefined ? info.clientIp : `${forwardedFor}, ${info.clientIp}`}\r\n`;
  lines += `x-forwarded-proto: ${info.proto}\r\n`;
  if (host !== undefined) lines += `x-forwarded-host: ${host}\r\n`;
  lines += `x-request-id: ${info.requestId}\r\n`;
  return lines;
}

/**
 * A route's filter edits to a request head (`filter/run.ts`), as the builders
 * read them: names whose received fields are dropped, fields added, and a new
 * Host. Undefined on routes without filters.
 */
export interface RequestEdits {
  readonly headers: { readonly removed: readonly string[]; readonly added: readonly string[]; drops(name: string): boolean };
  readonly hostEdited: boolean;
  readonly host: string | undefined;
}

/** The fields a filter added, and its Host when the request had none to replace. */
function editedLines(edits: RequestEdits, noHost: boolean): string {
  let lines = edits.hostEdited && noHost ? `host: ${edits.host}\r\n` : '';
  const added = edits.headers.added;
  for (let i = 0; i < added.length; i += 2) lines += `${added[i]}: ${added[i + 1]}\r\n`;
  return lines;
}

/**
 * The header block to send downstream for one response, as `Name: value\r\n`
 * lines: hop-by-hop headers removed, and X-Request-Id (the caller writes the
 * request's own, so an echo from the backend would duplicate it). The caller
 * adds framing and Connection; Content-Length passes through only when
 * `keepContentLength` (a HEAD response, where it describes a body that is not
 * sent; never for 204 or 304, RFC 9110 §8.6). Underscore names pass: only
 * requests lose look-alikes.
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
    const kind = classify(name);
    if (kind === HOP || kind === X_REQUEST_ID || (checkNamed && connectionTokens.includes(name.toLowerCase()))) continue;
    if (kind === CONTENT_LENGTH) {
      if (!keepContentLength || sawLength) continue;
      sawLength = true;
    }
    lines += `${name}: ${raw[i + 1]!}\r\n`;
  }
  return lines;
}

/** Client IP as a plain address: IPv4-mapped IPv6 (`::ffff:1.2.3.4`) is shown as IPv4. */
export function clientAddress(remote: string | undefined): string {
  if (remote === undefined) return '';
  return remote.startsWith('::ffff:') && remote.includes('.') ? remote.slice(7) : remote;
}

/** The first value of header `name` (lowercase) in a raw list, or undefined. */
export function headerValue(raw: readonly string[], name: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === name.length && raw[i]!.toLowerCase() === name) return raw[i + 1];
  }
  return undefined;
}
