/**
 * Request ids (`x-request-id`): one per request, sent to the backend, returned
 * to the client on every response usher sends (proxied, redirect or error),
 * and written in the access log, so one id ties the three together.
 *
 * A client's (or an upstream proxy's) id is kept when it is 1-200 printable
 * ASCII characters (0x20-0x7E), so a request keeps its id across several
 * proxies; anything else is replaced rather than passed on, since the id lands
 * in log lines and headers. Fresh ids are random UUIDs: `randomUUID()` draws
 * from a buffered entropy pool (tens of nanoseconds) and needs no coordination
 * between processes or instances.
 */
import { randomUUID } from 'node:crypto';

/** The header, as usher writes it. */
export const REQUEST_ID_HEADER = 'x-request-id';

/** Longest id kept from a request; nginx and Heroku cap theirs at similar lengths. */
export const MAX_REQUEST_ID_LENGTH = 200;

/** Whether a received id may be kept: 1-200 characters, each printable ASCII. */
export function isValidRequestId(value: string): boolean {
  const length = value.length;
  if (length === 0 || length > MAX_REQUEST_ID_LENGTH) return false;
  for (let i = 0; i < length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x20 || code > 0x7e) return false;
  }
  return true;
}

/**
 * The id of a request with these raw header fields (`[name, value, ...]`,
 * any case): its first `x-request-id` when valid, else a new one.
 */
export function requestIdOf(rawHeaders: readonly string[]): string {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.length !== 12 || name.toLowerCase() !== REQUEST_ID_HEADER) continue;
    const value = rawHeaders[i + 1]!;
    return isValidRequestId(value) ? value : randomUUID();
  }
  return randomUUID();
}

/** A fresh id, for a response to a request usher could not read. */
export function newRequestId(): string {
  return randomUUID();
}
