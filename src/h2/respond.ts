import type { Http2Stream, ServerHttp2Stream } from 'node:http2';
import { STATUS_REASONS } from '../http1/serialize.ts';

/**
 * Answers an HTTP/2 stream with a short plain-text error: the same status,
 * body, `x-usher-error` reason and `x-request-id` `proxy/error-response.ts`
 * gives HTTP/1.1 clients, so both protocols fail identically. Returns false
 * when the stream can no longer be answered (reset by the client, or a
 * response already begun).
 */
export function respondError(stream: ServerHttp2Stream, status: number, reason: string, method: string, requestId?: string): boolean {
  if (stream.destroyed || stream.closed || stream.headersSent) return false;
  const phrase = STATUS_REASONS[status] ?? 'Error';
  const body = `${status} ${phrase}: ${reason.replaceAll('_', ' ')}\n`;
  const headers: Record<string, string | number> = {
    ':status': status,
    'content-type': 'text/plain; charset=utf-8',
    'content-length': body.length,
    'cache-control': 'no-store',
    'x-usher-error': reason,
  };
  if (requestId !== undefined) headers['x-request-id'] = requestId;
  // A HEAD response has no body: node:http2 ends the stream with the headers.
  if (method === 'HEAD') {
    stream.respond(headers, { endStream: true });
    return true;
  }
  stream.respond(headers);
  stream.end(body, 'latin1');
  return true;
}

const EMPTY = Buffer.alloc(0);

/**
 * Resets a stream whose message is incomplete with RST_STREAM(`code`) and no
 * END_STREAM before it. node:http2's `close(code)` ends the writable side
 * first, and when no write is pending that END_STREAM goes out ahead of the
 * RST_STREAM: a peer then takes a truncated body for a complete one (seen on
 * Node 24; `destroy()` avoids it but can only say INTERNAL_ERROR or CANCEL).
 * A pending (empty) write defers the end until after the reset, which
 * discards it.
 */
export function resetStream(stream: Http2Stream, code: number): void {
  if (stream.closed || stream.destroyed) return;
  if (!stream.writableEnded) stream.write(EMPTY);
  stream.close(code);
}
