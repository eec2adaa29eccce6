import { STATUS_REASONS } from '../http1/serialize.ts';
import type { UsherError } from '../errors.ts';

/**
 * The one place a failure becomes a downstream response: a short plain-text
 * body, `x-usher-error` naming the reason and the request's `x-request-id`.
 * Addresses and internal messages stay in the log, never in the response.
 */
export function errorResponse(error: UsherError, keepAlive: boolean, requestId: string): string {
  return simpleResponse(error.httpStatus, error.reason, keepAlive, requestId);
}

/**
 * A complete small response with a plain-text body, as one latin1 string;
 * `requestId` is left out only where there is no request (a refused connection).
 */
export function simpleResponse(status: number, reason: string, keepAlive: boolean, requestId?: string): string {
  const phrase = STATUS_REASONS[status] ?? 'Error';
  const body = `${status} ${phrase}: ${reason.replaceAll('_', ' ')}\n`;
  return (
    `HTTP/1.1 ${status} ${phrase}\r\n` +
    'content-type: text/plain; charset=utf-8\r\n' +
    `content-length: ${body.length}\r\n` +
    'cache-control: no-store\r\n' +
    `x-usher-error: ${reason}\r\n` +
    (requestId === undefined ? '' : `x-request-id: ${requestId}\r\n`) +
    (keepAlive ? '' : 'connection: close\r\n') +
    `\r\n${body}`
  );
}
