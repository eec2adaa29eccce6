/**
 * PROXY protocol v1 (text) and v2 (binary): the header a proxy puts in front of
 * a TCP stream to pass on the original client and destination addresses.
 * Spec: HAProxy, "The PROXY protocol, Versions 1 & 2"
 * (https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt), cited by section.
 *
 * Encoding (sending to backends, HAProxy `send-proxy` / `send-proxy-v2`):
 * TCP4 when both addresses are IPv4 (also when Node reports them IPv4-mapped),
 * TCP6 otherwise, with an IPv4 address written in its mapped form when the
 * other one is IPv6 (both must share a family, §2.1). Unknown addresses give
 * `PROXY UNKNOWN\r\n` (v1) or the LOCAL command (v2), which tell the backend
 * to use the connection's own addresses.
 *
 * Decoding (accepting from trusted proxies) is strict and incremental: the
 * decoder answers 'incomplete' until it has the whole header, never reads past
 * it, and rejects anything the grammar does not allow with a message saying
 * what was wrong. Bounds: a v1 line is at most 107 bytes (§2.1); a v2 header
 * is at most {@link PROXY_V2_MAX_LENGTH} bytes, well above the address block
 * plus the TLVs real senders add (AWS, GCP and Azure use tens of bytes), far
 * below the 16 + 65535 the length field allows, so a peer cannot make usher
 * buffer 64 KiB per connection. TLVs (§2.2) are walked to check that they
 * tile the header exactly, then skipped: none changes how usher forwards.
 */
import { formatV4, formatV6, isV4Mapped, parseIp } from './ip.ts';

/** One end of a proxied connection. */
export interface ProxyEndpoint {
  /** IPv4 dotted-decimal or IPv6 text (RFC 5952 form when decoded). */
  readonly address: string;
  readonly port: number;
}

/** A decoded PROXY header. */
export interface ProxyHeader {
  readonly version: 1 | 2;
  /**
   * 'proxy': a relayed connection. 'local': the proxy speaking for itself
   * (v2 LOCAL, e.g. its health checks), whose addresses must be ignored (§2.2).
   */
  readonly command: 'proxy' | 'local';
  /**
   * The original client, or undefined when the header carries no usable
   * address (v1 UNKNOWN, v2 LOCAL, v2 AF_UNSPEC or AF_UNIX): then the
   * connection's own peer address stands (§2.1, §2.2).
   */
  readonly source: ProxyEndpoint | undefined;
  /** The address the client connected to, under the same rule as `source`. */
  readonly destination: ProxyEndpoint | undefined;
}

/** What {@link readProxyHeader} found. */
export type ProxyHeaderResult =
  | { readonly header: ProxyHeader; readonly length: number }
  | 'incomplete'
  | { readonly error: string };

/** Longest v1 header, CRLF included (§2.1: "PROXY UNKNOWN" with two full IPv6 addresses). */
export const PROXY_V1_MAX_LENGTH = 107;

/** Longest v2 header usher accepts: 16 fixed bytes plus addresses and TLVs. */
export const PROXY_V2_MAX_LENGTH = 4096;

/** The v2 signature, §2.2: `\r\n\r\n\0\r\nQUIT\n`. */
export const PROXY_V2_SIGNATURE: Buffer = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

const V1_PREFIX = Buffer.from('PROXY ', 'latin1');

// ---- encoding -------------------------------------------------------------------

interface Resolved {
  readonly v4: boolean;
  readonly src: Uint8Array;
  readonly dst: Uint8Array;
  readonly srcPort: number;
  readonly dstPort: number;
}

/** Both ends as 16 bytes each, or undefined when either is missing or not an IP address. */
function resolve(src: ProxyEndpoint | undefined, dst: ProxyEndpoint | undefined): Resolved | undefined {
  if (src === undefined || dst === undefined) return undefined;
  const srcBytes = new Uint8Array(16);
  const dstBytes = new Uint8Array(16);
  if (parseIp(src.address, srcBytes, true) === undefined || parseIp(dst.address, dstBytes, true) === undefined) return undefined;
  if (!validPort(src.port) || !validPort(dst.port)) return undefined;
  // A mapped address is an IPv4 client seen through a dual-stack socket: send it as the IPv4 it is.
  const v4 = isV4Mapped(srcBytes) && isV4Mapped(dstBytes);
  return { v4, src: srcBytes, dst: dstBytes, srcPort: src.port, dstPort: dst.port };
}

function validPort(port: number): boolean {
  return Number.isInteger(port) && port >= 0 && port <= 65535;
}

/**
 * The v1 header for a connection from `src` to `dst` (§2.1), e.g.
 * `PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n`; `PROXY UNKNOWN\r\n`
 * when either end is unknown.
 */
export function encodeProxyV1(src: ProxyEndpoint | undefined, dst: ProxyEndpoint | undefined): Buffer {
  const r = resolve(src, dst);
  if (r === undefined) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
  const line = r.v4
    ? `PROXY TCP4 ${formatV4(r.src, 12)} ${formatV4(r.dst, 12)} ${r.srcPort} ${r.dstPort}\r\n`
    : `PROXY TCP6 ${formatV6(r.src)} ${formatV6(r.dst)} ${r.srcPort} ${r.dstPort}\r\n`;
  return Buffer.from(line, 'latin1');
}

/**
 * The v2 header for a connection from `src` to `dst` (§2.2): signature,
 * 0x21 (version 2, PROXY), 0x11 (TCP over IPv4) or 0x21 (TCP over IPv6), the
 * address block length, then addresses and ports in network byte order. No
 * TLVs. When either end is unknown: 0x20 (LOCAL), family 0x00, no addresses.
 */
export function encodeProxyV2(src: ProxyEndpoint | undefined, dst: ProxyEndpoint | undefined): Buffer {
  const r = resolve(src, dst);
  if (r === undefined) {
    const local = Buffer.alloc(16);
    PROXY_V2_SIGNATURE.copy(local, 0);
    local[12] = 0x20;
    return local;
  }
  const addressLength = r.v4 ? 12 : 36;
  const out = Buffer.alloc(16 + addressLength);
  PROXY_V2_SIGNATURE.copy(out, 0);
  out[12] = 0x21;
  out[13] = r.v4 ? 0x11 : 0x21;
  out.writeUInt16BE(addressLength, 14);
  if (r.v4) {
    out.set(r.src.subarray(12), 16);
    out.set(r.dst.subarray(12), 20);
    out.writeUInt16BE(r.srcPort, 24);
    out.writeUInt16BE(r.dstPort, 26);
  } else {
    out.set(r.src, 16);
    out.set(r.dst, 32);
    out.writeUInt16BE(r.srcPort, 48);
    out.writeUInt16BE(r.dstPort, 50);
  }
  return out;
}

// ---- decoding -------------------------------------------------------------------

/**
 * Whether `buffer` begins with a PROXY header signature (`PROXY ` or the v2
 * signature). Used to refuse headers from peers that are not trusted to send one.
 */
export function startsWithProxySignature(buffer: Uint8Array): boolean {
  return startsWith(buffer, V1_PREFIX, V1_PREFIX.length) || startsWith(buffer, PROXY_V2_SIGNATURE, PROXY_V2_SIGNATURE.length);
}

/** Whether the first `n` bytes of `buffer` equal those of `prefix` (false when `buffer` is shorter). */
function startsWith(buffer: Uint8Array, prefix: Uint8Array, n: number): boolean {
  if (buffer.length < n) return false;
  for (let i = 0; i < n; i++) if (buffer[i] !== prefix[i]) return false;
  return true;
}

/** Whether `buffer` could still become `prefix` (it is a prefix of it, or starts with all of it). */
function couldStartWith(buffer: Uint8Array, prefix: Uint8Array): boolean {
  return startsWith(buffer, prefix, Math.min(buffer.length, prefix.length));
}

/**
 * Reads a PROXY v1 or v2 header from the start of `buffer`.
 *
 * @returns the header and its length in bytes (the client's own data starts
 *   there); 'incomplete' when `buffer` is a valid beginning of a header that
 *   needs more bytes; or `{ error }` for anything else. Never throws.
 */
export function readProxyHeader(buffer: Uint8Array): ProxyHeaderResult {
  if (buffer.length === 0) return 'incomplete';
  if (buffer[0] === 0x0d) {
    if (!couldStartWith(buffer, PROXY_V2_SIGNATURE)) return { error: 'not a PROXY protocol header (bad v2 signature)' };
    return buffer.length < PROXY_V2_SIGNATURE.length ? 'incomplete' : readV2(buffer);
  }
  if (!couldStartWith(buffer, V1_PREFIX)) return { error: 'not a PROXY protocol header (expected "PROXY " or the v2 signature)' };
  return buffer.length < V1_PREFIX.length ? 'incomplete' : readV1(buffer);
}

function readV1(buffer: Uint8Array): ProxyHeaderResult {
  const limit = Math.min(buffer.length, PROXY_V1_MAX_LENGTH);
  let lf = -1;
  for (let i = V1_PREFIX.length; i < limit; i++) {
    const c = buffer[i]!;
    if (c === 0x0a) {
      lf = i;
      break;
    }
    // Printable US-ASCII and the CR that must precede the LF; nothing else may appear (§2.1).
    if ((c < 0x20 || c > 0x7e) && c !== 0x0d) return { error: `v1 header contains byte 0x${c.toString(16).padStart(2, '0')}` };
  }
  if (lf < 0) {
    return buffer.length >= PROXY_V1_MAX_LENGTH ? { error: `v1 header has no CRLF within ${PROXY_V1_MAX_LENGTH} bytes` } : 'incomplete';
  }
  if (buffer[lf - 1] !== 0x0d) return { error: 'v1 header must end with CRLF, got a bare LF' };
  const line = Buffer.from(buffer.buffer, buffer.byteOffset, lf - 1).toString('latin1');
  if (line.indexOf('\r') >= 0) return { error: 'v1 header contains a CR before its end' };
  const length = lf + 1;
  const fields = line.split(' ');
  const proto = fields[1];
  if (proto === 'UNKNOWN') {
    // §2.1: "the receiver must ignore anything presented before the CRLF is found".
    return { header: { version: 1, command: 'proxy', source: undefined, destination: undefined }, length };
  }
  if (proto !== 'TCP4' && proto !== 'TCP6') return { error: `v1 protocol must be TCP4, TCP6 or UNKNOWN, got ${JSON.stringify(proto ?? '')}` };
  if (fields.length !== 6) return { error: `v1 ${proto} header needs 4 fields after the protocol separated by single spaces, got ${JSON.stringify(line)}` };
  const source = v1Endpoint(fields[2]!, fields[4]!, proto);
  if ('error' in source) return source;
  const destination = v1Endpoint(fields[3]!, fields[5]!, proto);
  if ('error' in destination) return destination;
  return { header: { version: 1, command: 'proxy', source, destination }, length };
}

const scratch = new Uint8Array(16);

function v1Endpoint(address: string, port: string, proto: 'TCP4' | 'TCP6'): ProxyEndpoint | { readonly error: string } {
  const family = parseIp(address, scratch);
  if (family !== (proto === 'TCP4' ? 'IPv4' : 'IPv6')) {
    return { error: `v1 ${proto} header has an invalid ${proto === 'TCP4' ? 'IPv4' : 'IPv6'} address ${JSON.stringify(address)}` };
  }
  // Decimal 0..65535 without leading zeros (§2.1 writes ports as plain decimal integers).
  if (!/^(0|[1-9][0-9]{0,4})$/.test(port) || Number(port) > 65535) {
    return { error: `v1 header has an invalid port ${JSON.stringify(port)}` };
  }
  return { address: family === 'IPv4' ? address : formatV6(scratch), port: Number(port) };
}

function readV2(buffer: Uint8Array): ProxyHeaderResult {
  if (buffer.length < 16) return 'incomplete';
  const versionCommand = buffer[12]!;
  if (versionCommand >> 4 !== 2) return { error: `v2 header has version ${versionCommand >> 4}, expected 2` };
  const commandBits = versionCommand & 0x0f;
  if (commandBits > 1) return { error: `v2 header has unknown command ${commandBits}` };
  const familyByte = buffer[13]!;
  const family = familyByte >> 4;
  const transport = familyByte & 0x0f;
  // §2.2: values other than these "must be rejected as invalid by receivers".
  if (family > 3 || transport > 2 || (family === 0) !== (transport === 0)) {
    return { error: `v2 header has unknown address family/transport 0x${familyByte.toString(16).padStart(2, '0')}` };
  }
  const bodyLength = (buffer[14]! << 8) | buffer[15]!;
  const length = 16 + bodyLength;
  if (length > PROXY_V2_MAX_LENGTH) return { error: `v2 header is ${length} bytes, more than the ${PROXY_V2_MAX_LENGTH} usher accepts` };
  if (buffer.length < length) return 'incomplete';
  const command = commandBits === 0 ? 'local' : 'proxy';
  // Address block sizes, §2.2: IPv4 4+4+2+2, IPv6 16+16+2+2, UNIX 108+108.
  const addressLength = family === 1 ? 12 : family === 2 ? 36 : family === 3 ? 216 : 0;
  if (command === 'proxy' && bodyLength < addressLength) {
    return { error: `v2 header is too short for its addresses: ${bodyLength} < ${addressLength} bytes` };
  }
  let source: ProxyEndpoint | undefined;
  let destination: ProxyEndpoint | undefined;
  let tlvStart = 16 + addressLength;
  if (command === 'local') {
    // §2.2: a LOCAL header's address block is ignored; its length may be anything (TLVs included), so skip it whole.
    tlvStart = length;
  } else if (family === 1) {
    source = { address: formatV4(buffer, 16), port: (buffer[24]! << 8) | buffer[25]! };
    destination = { address: formatV4(buffer, 20), port: (buffer[26]! << 8) | buffer[27]! };
  } else if (family === 2) {
    source = { address: formatV6(buffer, 16), port: (buffer[48]! << 8) | buffer[49]! };
    destination = { address: formatV6(buffer, 32), port: (buffer[50]! << 8) | buffer[51]! };
  }
  const tlvError = checkTlvs(buffer, tlvStart, length);
  if (tlvError !== undefined) return { error: tlvError };
  return { header: { version: 2, command, source, destination }, length };
}

/** TLVs (§2.2: type, 16-bit length, value) must exactly fill `[start, end)`. */
function checkTlvs(buffer: Uint8Array, start: number, end: number): string | undefined {
  let at = start;
  while (at < end) {
    if (end - at < 3) return `v2 header has ${end - at} stray byte(s) where a TLV was expected`;
    const valueLength = (buffer[at + 1]! << 8) | buffer[at + 2]!;
    const next = at + 3 + valueLength;
    if (next > end) return `v2 TLV 0x${buffer[at]!.toString(16).padStart(2, '0')} of ${valueLength} bytes overruns the header`;
    at = next;
  }
  return undefined;
}
