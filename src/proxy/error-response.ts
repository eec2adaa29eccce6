import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { UsherError } from '../errors.ts';

/**
 * The one place a failure becomes a downstream response: a short plain-text
 * body and `x-usher-error` naming the reason. Addresses and internal messages
 * stay in the log, never in the response. When the response has already started
 * nothing truthful can be sent, so the connection is cut and the client sees a
 * truncated response rather than a corrupted one.
 */
export function sendError(res: ServerResponse, error: UsherError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (res.destroyed) return;
  const status = error.httpStatus;
  const body = `${status} ${STATUS_CODES[status] ?? 'Error'}: ${error.reason.replaceAll('_', ' ')}\n`;
  res.writeHead(status, [
    'content-type', 'text/plain; charset=utf-8',
    'content-length', String(Buffer.byteLength(body)),
    'cache-control', 'no-store',
    'x-usher-error', error.reason,
  ]);
  res.end(body);
}
