/**
 * Shared, frozen framing values and Connection-token helpers for the head
 * parsers, so the common cases allocate nothing.
 */
import type { BodyFraming } from './types.ts';

/** No body. */
export const NONE: BodyFraming = Object.freeze({ kind: 'none' });
/** Chunked body. */
export const CHUNKED: BodyFraming = Object.freeze({ kind: 'chunked' });
/** Response body delimited by the upstream closing the connection. */
export const UNTIL_CLOSE: BodyFraming = Object.freeze({ kind: 'until-close' });
/** Shared empty `connectionTokens`. */
export const NO_TOKENS: readonly string[] = Object.freeze([]);

/** Content-Length framing; a length of 0 is reported as `NONE` (there are no body bytes to frame). */
export function lengthFraming(length: number): BodyFraming {
  return length === 0 ? NONE : { kind: 'length', length };
}

/** Connection flags: 1 = close, 2 = keep-alive, 4 = upgrade. */
export function connectionFlags(tokens: readonly string[]): number {
  let flags = 0;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (t === 'close') flags |= 1;
    else if (t === 'keep-alive') flags |= 2;
    else if (t === 'upgrade') flags |= 4;
  }
  return flags;
}
