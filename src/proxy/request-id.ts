/**
 * Request ids (`x-request-id`): one per request, sent to the backend, returned
 * to the client on every response usher sends (proxied, redirect or error),
 * and written in the access log, so one id ties the three together.
 *
 * A client's (or an upstream proxy's) id is kept when it is 1-200 printable
 * ASCII characters (0x20-0x7E), so a request keeps its id across several
 * proxies; anything else is replaced rather than passed on, since the id lands
 * in log lines and headers.
 *
 * Fresh ids are 32 lowercase hex characters, 128 random bits (nginx's
 * `$request_id` format): unique without coordination between processes or
 * instances, and they tell a client nothing about how many requests others
 * sent (a counter would). Why not `randomUUID()`: it builds its string from
 * twenty pieces, and flattening that rope when the head is written cost about
 * 0.2 µs per request in bench/micro/metrics.ts; here one `toString('hex')`
 * per 256 ids and a slice per id cost a few tens of nanoseconds.
 */
import { randomFillSync } from 'node:crypto';

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
    return isValidRequestId(value) ? value : newRequestId();
  }
  return newRequestId();
}

/** Ids made per refill of the entropy pool. */
const BATCH = 256;
const entropy = Buffer.allocUnsafe(16 * BATCH);
let batch = '';
let next = BATCH;

/** A fresh random id (32 hex characters). */
export function newRequestId(): string {
  if (next === BATCH) {
    randomFillSync(entropy);
    batch = entropy.toString('hex');
    next = 0;
  }
  const start = next++ * 32;
  return batch.slice(start, start + 32);
}
