/**
 * Reads the server name (SNI) a TLS client asks for, from the first bytes it
 * sends, without terminating TLS: what `tls-passthrough` routes on (nginx
 * `ssl_preread`, HAProxy `req.ssl_sni`, Envoy `tls_inspector`).
 *
 * Structure walked (RFC 8446 §5.1 record layer, §4 handshake, §4.1.2
 * ClientHello; the same layout as TLS 1.2, RFC 5246 §7.4.1.2):
 *
 *   record:      type(1) = 22 handshake, legacy_record_version(2), length(2) <= 2^14
 *   handshake:   msg_type(1) = 1 client_hello, length(3)
 *   ClientHello: legacy_version(2), random(32), legacy_session_id<0..32>,
 *                cipher_suites<2..2^16-2>, legacy_compression_methods<1..2^8-1>,
 *                extensions<8..2^16-1> (absent in some TLS 1.2 hellos)
 *   server_name (RFC 6066 §3): extension type 0, ServerNameList<1..2^16-1> of
 *                name_type(1) = 0 host_name, HostName<1..2^16-1>
 *
 * Fragmentation: a ClientHello may be split over several handshake records
 * (RFC 8446 §5.1 allows it, and large hellos, e.g. with post-quantum key
 * shares or big PSK tickets, can exceed one record). usher reassembles it as
 * long as all the records it needs fit in {@link CLIENT_HELLO_MAX_BYTES}
 * (two full records); past that the input is refused, so one connection can
 * make usher buffer at most that much before routing. Zero-length records are
 * refused (§5.1 forbids zero-length handshake fragments), as is any
 * non-handshake record before the ClientHello is complete.
 *
 * Strictness: every length is checked against its container, extensions must
 * fill their block exactly, the server_name extension may appear once and
 * hold at most one host_name (RFC 6066 §3: "MUST NOT contain more than one
 * name of the same name_type"), and the host name must be 1..255 bytes of
 * letters, digits, `-`, `_` and `.` (it is returned lowercased, as DNS names
 * compare case-insensitively). Bytes after the ClientHello are not read.
 * Garbage yields `{ error }`; the function never throws.
 */

/** Most input bytes (record headers included) read to find a ClientHello: two full records. */
export const CLIENT_HELLO_MAX_BYTES = 2 * (5 + 16384);

/** Largest record payload, 2^14 (RFC 8446 §5.1). */
const MAX_RECORD_LENGTH = 16384;
const RECORD_HEADER = 5;
const CONTENT_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
const EXTENSION_SERVER_NAME = 0;
const NAME_TYPE_HOST_NAME = 0;

/** What {@link readServerName} found. */
export type ClientHelloResult =
  /** A complete, well-formed ClientHello; `serverName` is undefined when it carries no SNI. */
  | { readonly serverName: string | undefined }
  /** A valid beginning: more bytes are needed. */
  | 'incomplete'
  | { readonly error: string };

/**
 * Reads the SNI host name from the TLS ClientHello at the start of `buffer`.
 *
 * The result is not a bare string, so a client asking for the (valid, if
 * odd) name `incomplete` cannot be confused with the 'incomplete' answer.
 */
export function readServerName(buffer: Uint8Array): ClientHelloResult {
  const fragments: Uint8Array[] = [];
  let handshakeBytes = 0;
  let needed = -1; // total ClientHello message bytes, known once its 4-byte header is in
  let at = 0;
  for (;;) {
    if (needed >= 0 && handshakeBytes >= needed) break;
    if (buffer.length - at < RECORD_HEADER) {
      const error = checkPartialRecordHeader(buffer, at);
      if (error !== undefined) return { error };
      return at + RECORD_HEADER > CLIENT_HELLO_MAX_BYTES ? { error: tooLarge() } : 'incomplete';
    }
    const type = buffer[at]!;
    if (type !== CONTENT_HANDSHAKE) return { error: recordTypeError(buffer, at) };
    if (buffer[at + 1] !== 3 || buffer[at + 2]! > 4) {
      return { error: `TLS record version 0x${hex(buffer[at + 1]!)}${hex(buffer[at + 2]!)} is not 0x0300..0x0304` };
    }
    const length = (buffer[at + 3]! << 8) | buffer[at + 4]!;
    if (length === 0) return { error: 'zero-length TLS handshake record' };
    if (length > MAX_RECORD_LENGTH) return { error: `TLS record of ${length} bytes exceeds 2^14` };
    const end = at + RECORD_HEADER + length;
    if (end > CLIENT_HELLO_MAX_BYTES) return { error: tooLarge() };
    const available = Math.min(end, buffer.length);
    fragments.push(buffer.subarray(at + RECORD_HEADER, available));
    handshakeBytes += available - at - RECORD_HEADER;
    if (needed < 0 && handshakeBytes >= 4) {
      const head = firstBytes(fragments, 4);
      if (head[0] !== HANDSHAKE_CLIENT_HELLO) return { error: `first TLS handshake message is type ${head[0]}, not ClientHello (1)` };
      needed = 4 + ((head[1]! << 16) | (head[2]! << 8) | head[3]!);
      if (needed > 2 * MAX_RECORD_LENGTH) return { error: `ClientHello of ${needed} bytes is larger than usher reads (${2 * MAX_RECORD_LENGTH})` };
    }
    if (available < end) {
      if (needed >= 0 && handshakeBytes >= needed) break;
      return 'incomplete';
    }
    at = end;
  }
  const message = fragments.length === 1 ? fragments[0]!.subarray(0, needed) : firstBytes(fragments, needed);
  return parseClientHello(message);
}

/** The first `n` bytes across `fragments` (which hold at least that many), copied only when they span fragments. */
function firstBytes(fragments: readonly Uint8Array[], n: number): Uint8Array {
  const first = fragments[0]!;
  if (first.length >= n) return first.subarray(0, n);
  const out = new Uint8Array(n);
  let filled = 0;
  for (const fragment of fragments) {
    const take = Math.min(fragment.length, n - filled);
    out.set(fragment.subarray(0, take), filled);
    filled += take;
    if (filled === n) break;
  }
  return out;
}

/** Rejects a record header early when the bytes already present cannot start one. */
function checkPartialRecordHeader(buffer: Uint8Array, at: number): string | undefined {
  if (buffer.length > at && buffer[at] !== CONTENT_HANDSHAKE) return recordTypeError(buffer, at);
  if (buffer.length > at + 1 && buffer[at + 1] !== 3) return `TLS record version major ${buffer[at + 1]} is not 3`;
  return undefined;
}

function recordTypeError(buffer: Uint8Array, at: number): string {
  const type = buffer[at]!;
  if (at > 0) return `TLS record type ${type} arrived before the ClientHello was complete`;
  if (type === 0x50 /* P */ || type === 0x0d) return 'not a TLS handshake: looks like a PROXY protocol header';
  // SSLv2-compatible hello (RFC 5246 Appendix E.2): a two-byte length with the high bit set. It has no extensions, so no SNI.
  if (type & 0x80) return 'SSLv2-compatible ClientHello is not supported (it cannot carry SNI)';
  return `not a TLS handshake record (content type ${type})`;
}

function tooLarge(): string {
  return `ClientHello does not fit in ${CLIENT_HELLO_MAX_BYTES} bytes of TLS records`;
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}

/** Parses a whole ClientHello handshake message (4-byte header included). */
function parseClientHello(m: Uint8Array): ClientHelloResult {
  const end = m.length;
  let at = 4;
  // legacy_version(2) + random(32)
  if (end - at < 34) return { error: 'ClientHello too short for version and random' };
  if (m[at] !== 3) return { error: `ClientHello version major ${m[at]} is not 3` };
  at += 34;
  const sessionIdLength = m[at]!;
  if (sessionIdLength > 32) return { error: `ClientHello session id of ${sessionIdLength} bytes exceeds 32` };
  at += 1 + sessionIdLength;
  if (end - at < 2) return { error: 'ClientHello truncated before cipher suites' };
  const suitesLength = (m[at]! << 8) | m[at + 1]!;
  if (suitesLength < 2 || suitesLength % 2 !== 0) return { error: `ClientHello cipher suites length ${suitesLength} is not even and >= 2` };
  at += 2 + suitesLength;
  if (end - at < 1) return { error: 'ClientHello truncated before compression methods' };
  const compressionLength = m[at]!;
  if (compressionLength < 1) return { error: 'ClientHello has no compression method' };
  at += 1 + compressionLength;
  if (at > end) return { error: 'ClientHello truncated in cipher suites or compression methods' };
  if (at === end) return { serverName: undefined }; // no extensions (allowed in TLS 1.2)
  if (end - at < 2) return { error: 'ClientHello has a stray byte where extensions were expected' };
  const extensionsLength = (m[at]! << 8) | m[at + 1]!;
  at += 2;
  if (at + extensionsLength !== end) {
    return { error: `ClientHello extensions length ${extensionsLength} does not match the ${end - at} bytes left` };
  }
  let serverName: string | undefined;
  let seenServerName = false;
  while (at < end) {
    if (end - at < 4) return { error: 'ClientHello extension header truncated' };
    const type = (m[at]! << 8) | m[at + 1]!;
    const length = (m[at + 2]! << 8) | m[at + 3]!;
    at += 4;
    if (at + length > end) return { error: `ClientHello extension ${type} of ${length} bytes overruns the extensions` };
    if (type === EXTENSION_SERVER_NAME) {
      if (seenServerName) return { error: 'ClientHello has two server_name extensions' };
      seenServerName = true;
      const name = parseServerNameList(m, at, at + length);
      if (typeof name === 'object') return name;
      serverName = name;
    }
    at += length;
  }
  return { serverName };
}

/** RFC 6066 §3 ServerNameList in `m[start, end)`: returns the host_name, or an error. */
function parseServerNameList(m: Uint8Array, start: number, end: number): string | { readonly error: string } {
  if (end - start < 2) return { error: 'server_name extension too short' };
  const listLength = (m[start]! << 8) | m[start + 1]!;
  if (listLength === 0 || start + 2 + listLength !== end) return { error: 'server_name list length does not match its extension' };
  let at = start + 2;
  let hostName: string | undefined;
  while (at < end) {
    if (end - at < 3) return { error: 'server_name entry truncated' };
    const nameType = m[at]!;
    const length = (m[at + 1]! << 8) | m[at + 2]!;
    at += 3;
    // Only host_name is defined, and an unknown type's length format is unknown too: it cannot be skipped.
    if (nameType !== NAME_TYPE_HOST_NAME) return { error: `server_name entry has unknown name_type ${nameType}` };
    if (hostName !== undefined) return { error: 'server_name list has two host_name entries' };
    if (length === 0 || length > 255 || at + length > end) return { error: `server_name host_name length ${length} is invalid` };
    let name = '';
    for (let i = at; i < at + length; i++) {
      let c = m[i]!;
      const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e || c === 0x5f || (c >= 0x41 && c <= 0x5a);
      if (!ok) return { error: `server_name host_name contains byte 0x${hex(c)}` };
      if (c >= 0x41 && c <= 0x5a) c |= 0x20;
      name += String.fromCharCode(c);
    }
    hostName = name;
    at += length;
  }
  return hostName!;
}
