/**
 * A policy's key: the parts it names, read from the request and joined. A
 * part that is absent (no such header or cookie, no Host) makes the key
 * empty, and an empty key is not counted: the request passes that policy.
 */
import type { FilterRequest } from '../filter/filter.ts';
import { parseCookies } from '../route/cookies.ts';

/** One part of a key, as compiled from `client-ip`, `header:<name>`, `cookie:<name>`, `route`, `method`, `host`. */
export type KeyPart =
  | { readonly kind: 'client-ip' }
  | { readonly kind: 'route' | 'method' | 'host' }
  | { readonly kind: 'header' | 'cookie'; readonly name: string };

/** Parses a key part as written in the config; undefined when it is not one. */
export function parseKeyPart(text: string): KeyPart | undefined {
  if (text === 'client-ip' || text === 'route' || text === 'method' || text === 'host') return { kind: text };
  const colon = text.indexOf(':');
  if (colon < 0) return undefined;
  const kind = text.slice(0, colon);
  const name = text.slice(colon + 1);
  if ((kind !== 'header' && kind !== 'cookie') || name === '') return undefined;
  if (kind === 'header' && !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) return undefined;
  return { kind, name: kind === 'header' ? name.toLowerCase() : name };
}

/** A separator no header value, cookie, host or address contains. */
const SEPARATOR = '\n';

/** The request's key under `parts`, or undefined when a part is absent or empty. */
export function keyOf(parts: readonly KeyPart[], request: FilterRequest, ipv6Prefix: number): string | undefined {
  let key = '';
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    let value: string | undefined;
    switch (part.kind) {
      case 'client-ip':
        value = clientKey(request.clientIp, ipv6Prefix);
        break;
      case 'route':
        value = request.route;
        break;
      case 'method':
        value = request.method;
        break;
      case 'host':
        value = request.host?.toLowerCase();
        break;
      case 'header':
        value = request.header(part.name);
        break;
      case 'cookie':
        value = parseCookies(request.headerValues('cookie')).get(part.name);
        break;
    }
    if (value === undefined || value === '') return undefined;
    key = i === 0 ? value : key + SEPARATOR + value;
  }
  return key;
}

/**
 * The client's address as a key: an IPv4 address (IPv4-mapped IPv6 ones
 * too) as it is, an IPv6 address cut to its first `prefix` bits and written
 * `network/prefix` (one user typically holds a whole /64).
 */
export function clientKey(address: string, prefix: number): string {
  if (!address.includes(':')) return address;
  const zone = address.indexOf('%');
  const plain = (zone < 0 ? address : address.slice(0, zone)).toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(plain);
  if (mapped !== null) return mapped[1]!;
  const groups = expand(plain);
  if (groups === undefined) return plain;
  if (prefix >= 128) return groups.map((g) => g.toString(16)).join(':');
  const kept: number[] = [];
  for (let i = 0; i < 8; i++) {
    const bits = Math.max(0, Math.min(16, prefix - 16 * i));
    kept.push(bits === 0 ? 0 : groups[i]! & ((0xffff << (16 - bits)) & 0xffff));
  }
  return `${kept.map((g) => g.toString(16)).join(':')}/${prefix}`;
}

/** The eight 16-bit groups of an IPv6 address, or undefined when it is not one. */
function expand(address: string): number[] | undefined {
  const halves = address.split('::');
  if (halves.length > 2) return undefined;
  const parse = (text: string): number[] | undefined => {
    if (text === '') return [];
    const out: number[] = [];
    for (const part of text.split(':')) {
      if (part.includes('.')) {
        const octets = part.split('.').map(Number);
        if (octets.length !== 4 || octets.some((o) => !Number.isInteger(o) || o < 0 || o > 255)) return undefined;
        out.push((octets[0]! << 8) | octets[1]!, (octets[2]! << 8) | octets[3]!);
      } else {
        if (!/^[0-9a-f]{1,4}$/.test(part)) return undefined;
        out.push(parseInt(part, 16));
      }
    }
    return out;
  };
  const head = parse(halves[0]!);
  const tail = halves.length === 2 ? parse(halves[1]!) : [];
  if (head === undefined || tail === undefined) return undefined;
  if (halves.length === 1) return head.length === 8 ? head : undefined;
  const missing = 8 - head.length - tail.length;
  if (missing < 1) return undefined;
  return [...head, ...new Array<number>(missing).fill(0), ...tail];
}
