/**
 * Construction of `Http1ParseError` values. Errors are plain data (style rule
 * 5): the session layer maps `status` to the downstream answer and logs `code`.
 * They are only built on the rejection path, so allocating here is fine.
 */
import type { Http1ParseError } from './types.ts';

/** Builds a parse error. `message` must never echo more than a few bytes of input. */
export function parseError(code: string, status: number, message: string): Http1ParseError {
  return { error: true, code, status, message };
}

/** Whether a parse result is an error (type guard usable on any `HeadResult`). */
export function isParseError(v: unknown): v is Http1ParseError {
  return typeof v === 'object' && v !== null && (v as { error?: unknown }).error === true;
}

/** The same error reported for an upstream response: usher answers 502 downstream. */
export function asBadResponse(e: Http1ParseError): Http1ParseError {
  return { error: true, code: e.code, status: 502, message: `bad upstream response: ${e.message}` };
}
