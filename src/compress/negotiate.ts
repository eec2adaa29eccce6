/**
 * Content-coding negotiation (RFC 9110 §12.5.3): which of the codings usher
 * offers a client's `Accept-Encoding` prefers. Pure: no I/O, no state.
 *
 * - Each coding gets the qvalue of its own member, else that of `*`, else 0
 *   (a coding the client does not list is not acceptable). `q=0` refuses.
 * - The highest qvalue wins; ties go to the earlier coding in `offered` (the
 *   route's `codings`, by default zstd, br, gzip: the best ratio per CPU first).
 * - `identity` (no coding) is acceptable unless refused by `identity;q=0`, or
 *   by `*;q=0` without an `identity` member. A coding wins only when its
 *   qvalue is above zero; usher never answers 406: a client that refuses
 *   identity and every offered coding still gets identity, as the RFC allows.
 * - No `Accept-Encoding` at all: identity (the RFC lets a server assume any
 *   coding, but clients that decode always send the field).
 * - `x-gzip` counts as `gzip` (RFC 9110 §8.4.1.3).
 */
import type { Coding } from './codec.ts';

/** The chosen coding, or `identity` for none. */
export type Negotiated = Coding | 'identity';

/** Parsed `Accept-Encoding`: lower-case coding → qvalue (0-1). */
export type AcceptEncoding = ReadonlyMap<string, number>;

/** Parses the field lines of `Accept-Encoding`; malformed members are skipped (a qvalue that does not parse counts as 1, as browsers send none). */
export function parseAcceptEncoding(lines: readonly string[]): AcceptEncoding {
  const out = new Map<string, number>();
  for (const line of lines) {
    for (const member of line.split(',')) {
      const [rawName, ...params] = member.split(';');
      let name = rawName!.trim().toLowerCase();
      if (name === '') continue;
      if (name === 'x-gzip') name = 'gzip';
      let q = 1;
      for (const param of params) {
        const eq = param.indexOf('=');
        if (eq === -1 || param.slice(0, eq).trim().toLowerCase() !== 'q') continue;
        const value = Number(param.slice(eq + 1).trim());
        if (Number.isFinite(value)) q = Math.min(1, Math.max(0, value));
      }
      // A repeated member: the highest qvalue stands (the RFC does not say; this refuses least).
      out.set(name, Math.max(q, out.get(name) ?? 0));
    }
  }
  return out;
}

/** The qvalue of `coding` in `accept`: its own member, else `*`'s, else `fallback`. */
function qvalue(accept: AcceptEncoding, coding: string, fallback: number): number {
  return accept.get(coding) ?? accept.get('*') ?? fallback;
}

/** Whether `accept` still allows identity (RFC 9110 §12.5.3: only `identity;q=0`, or `*;q=0` without an identity member, refuse it). */
export function identityAcceptable(accept: AcceptEncoding): boolean {
  return qvalue(accept, 'identity', 1) > 0;
}

/**
 * The coding to answer with: the offered coding with the highest qvalue above
 * 0 (the first offered on ties), when it is at least as wanted as identity;
 * else identity.
 */
export function negotiate(lines: readonly string[], offered: readonly Coding[]): Negotiated {
  if (lines.length === 0) return 'identity';
  const accept = parseAcceptEncoding(lines);
  let best: Coding | undefined;
  let bestQ = 0;
  for (const coding of offered) {
    const q = qvalue(accept, coding, 0);
    if (q > bestQ) {
      best = coding;
      bestQ = q;
    }
  }
  if (best === undefined) return 'identity';
  // Only an explicit identity member ranks identity against the codings; its default (acceptable) never beats one the client lists.
  const identity = accept.get('identity');
  return identity !== undefined && identity > bestQ ? 'identity' : best;
}
