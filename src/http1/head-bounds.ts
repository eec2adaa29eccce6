/**
 * Finding where a head ends in the bytes received so far. `indexOf` on the
 * Buffer (memchr-based) finds CRLFCRLF; only when it is absent do we walk the
 * bytes, to reject a bare LF or bare CR early instead of waiting for the size
 * limit (an LF-only client would otherwise hang until the header timeout).
 */
import { CR, LF } from './chars.ts';
import { parseError } from './errors.ts';
import type { Http1ParseError } from './types.ts';

const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');

/** Result of `headEnd` when the head is complete but over the size limit, or absent and the buffer is over it. */
export const TOO_BIG = -2;

/**
 * Index of the CRLFCRLF ending the head that starts at `p`, -1 if incomplete,
 * `TOO_BIG` if the head (counted from `start`) exceeds `maxHeadBytes`, or a
 * bare line-ending error found in an incomplete head.
 */
export function headEnd(buf: Buffer, start: number, p: number, maxHeadBytes: number): number | Http1ParseError {
  const end = buf.indexOf(CRLFCRLF, p);
  if (end >= 0) return end + 4 - start <= maxHeadBytes ? end : TOO_BIG;
  if (buf.length - start > maxHeadBytes) return TOO_BIG;
  return bareLineEnding(buf, p) ?? -1;
}

/** First bare LF or bare CR in `buf[p..]` (a CR as the last byte may still be followed by LF). */
export function bareLineEnding(buf: Buffer, p: number): Http1ParseError | undefined {
  const n = buf.length;
  for (let i = buf.indexOf(LF, p); i >= 0; i = buf.indexOf(LF, i + 1)) {
    if (i === p || buf[i - 1] !== CR) return parseError('HTTP1_BARE_LF', 400, 'bare LF line ending');
  }
  for (let i = buf.indexOf(CR, p); i >= 0 && i < n - 1; i = buf.indexOf(CR, i + 1)) {
    if (buf[i + 1] !== LF) return parseError('HTTP1_BARE_CR', 400, 'bare CR in head');
  }
  return undefined;
}

/**
 * Skips empty lines (CRLF) before a request line, as RFC 9112 §2.2 asks
 * ("SHOULD ignore at least one empty line"); they count towards the head size.
 * Returns the index of the request line, -1 if the buffer ends inside them, or
 * an error for a bare CR/LF.
 */
export function skipEmptyLines(buf: Buffer, p: number): number | Http1ParseError {
  const n = buf.length;
  while (p < n) {
    const c = buf[p];
    if (c === LF) return parseError('HTTP1_BARE_LF', 400, 'bare LF line ending');
    if (c !== CR) return p;
    if (p + 1 === n) return -1;
    if (buf[p + 1] !== LF) return parseError('HTTP1_BARE_CR', 400, 'bare CR in head');
    p += 2;
  }
  return -1;
}
