/**
 * CIDR lists (`trustedProxies`): which peers may send a PROXY protocol header.
 *
 * Every address and prefix is compared as 128 bits (see ip.ts): an IPv4
 * prefix `a.b.c.d/n` is the IPv4-mapped prefix `::ffff:a.b.c.d/(96 + n)`, so
 * it matches a peer Node reports as `10.1.2.3` and as `::ffff:10.1.2.3` (a
 * dual-stack listener) alike. A consequence worth knowing: `::/0` matches
 * every IPv4 peer too.
 *
 * Cost: compiling is O(entries); a test parses the peer address once into a
 * reused buffer, then does O(entries) word compares. It runs once per
 * connection, never per byte.
 * Lists are short (a load balancer tier or two), so a linear scan beats a trie.
 */
import { parseIp } from './ip.ts';

interface Prefix {
  /** Network address as four big-endian 32-bit words, already masked. */
  readonly words: Uint32Array;
  readonly mask: Uint32Array;
}

const scratchBytes = new Uint8Array(16);

function wordsOf(bytes: Uint8Array, out: Uint32Array): void {
  for (let w = 0; w < 4; w++) {
    out[w] = ((bytes[w * 4]! << 24) | (bytes[w * 4 + 1]! << 16) | (bytes[w * 4 + 2]! << 8) | bytes[w * 4 + 3]!) >>> 0;
  }
}

/**
 * Parses one CIDR (`10.0.0.0/8`, `2001:db8::/32`) or bare address (a /32 or
 * /128). Returns the prefix, or an error message naming what is wrong.
 */
function parseCidr(text: string): Prefix | { readonly error: string } {
  const slash = text.indexOf('/');
  const addressText = slash < 0 ? text : text.slice(0, slash);
  const bytes = new Uint8Array(16);
  const family = parseIp(addressText, bytes);
  if (family === undefined) return { error: `expected an IPv4 or IPv6 address or CIDR, got ${JSON.stringify(text)}` };
  const maxBits = family === 'IPv4' ? 32 : 128;
  let bits = maxBits;
  if (slash >= 0) {
    const lengthText = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(lengthText) || Number(lengthText) > maxBits) {
      return { error: `prefix length of ${JSON.stringify(text)} must be an integer in [0, ${maxBits}]` };
    }
    bits = Number(lengthText);
  }
  if (family === 'IPv4') bits += 96;
  const mask = new Uint32Array(4);
  for (let w = 0; w < 4; w++) {
    const inWord = Math.min(32, Math.max(0, bits - w * 32));
    mask[w] = inWord === 0 ? 0 : (0xffffffff << (32 - inWord)) >>> 0;
  }
  const words = new Uint32Array(4);
  wordsOf(bytes, words);
  // Host bits (`10.1.2.3/8`) are masked off, as Go's net.ParseCIDR and HAProxy do.
  for (let w = 0; w < 4; w++) words[w] = (words[w]! & mask[w]!) >>> 0;
  return { words, mask };
}

/**
 * Checks one CIDR or address as written in config.
 *
 * @returns undefined when valid, else a message such as
 *   `prefix length of "10.0.0.0/33" must be an integer in [0, 32]`.
 */
export function cidrError(text: string): string | undefined {
  const prefix = parseCidr(text);
  return 'error' in prefix ? prefix.error : undefined;
}

/**
 * Compiles CIDRs into a predicate over peer addresses as Node reports them
 * (`1.2.3.4`, `::ffff:1.2.3.4`, `2001:db8::1`, `fe80::1%eth0`).
 * An address that does not parse never matches.
 *
 * @throws Error naming the first invalid entry (config validation should have caught it).
 */
export function compileCidrs(list: readonly string[]): (ip: string) => boolean {
  const prefixes: Prefix[] = [];
  for (const [i, text] of list.entries()) {
    const prefix = parseCidr(text);
    if ('error' in prefix) throw new Error(`trustedProxies[${i}]: ${prefix.error}`);
    prefixes.push(prefix);
  }
  if (prefixes.length === 0) return () => false;
  const peer = new Uint32Array(4);
  return (ip: string): boolean => {
    if (parseIp(ip, scratchBytes, true) === undefined) return false;
    wordsOf(scratchBytes, peer);
    for (const { words, mask } of prefixes) {
      if (
        (peer[0]! & mask[0]!) >>> 0 === words[0] &&
        (peer[1]! & mask[1]!) >>> 0 === words[1] &&
        (peer[2]! & mask[2]!) >>> 0 === words[2] &&
        (peer[3]! & mask[3]!) >>> 0 === words[3]
      ) {
        return true;
      }
    }
    return false;
  };
}
