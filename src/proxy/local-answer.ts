import { STATUS_REASONS } from '../http1/serialize.ts';
import type { Answer } from './plan.ts';

/**
 * A response usher makes without a backend (a redirect, a filter's answer)
 * as one HTTP/1.1 latin1 string: status line, the answer's fields,
 * Content-Length (none for 204 and 304), the request's `x-request-id`,
 * `connection: close` when the connection will not carry another request
 * (`keep-alive` for a kept HTTP/1.0 one), and the body unless the request was
 * a HEAD. The HTTP/2 twin is `StreamExchange.answer`.
 *
 * A body of at most INLINE_BODY_BYTES goes in the same string (one write);
 * a larger one (a cached object) is returned apart, to be written as the
 * buffer it is: decoding 256 KiB to a string per response cost more than the
 * whole rest of a cache hit.
 */
export function http1Answer(answer: Pick<Answer, 'status' | 'headers' | 'body' | 'stream'>, keepAlive: boolean, minorVersion: 0 | 1, requestId: string, method: string): { readonly head: string; readonly body: Buffer | undefined; readonly bodyBytes: number } {
  const { status, headers, body } = answer;
  const length = answer.stream?.length ?? body.length;
  let head = `HTTP/1.1 ${status} ${STATUS_REASONS[status] ?? ''}\r\n`;
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
  if (status !== 204 && status !== 304) head += `content-length: ${length}\r\n`;
  head += `x-request-id: ${requestId}\r\n`;
  head += !keepAlive ? 'connection: close\r\n' : minorVersion === 0 ? 'connection: keep-alive\r\n' : '';
  head += '\r\n';
  if (body.length === 0 || method === 'HEAD') return { head, body: undefined, bodyBytes: 0 };
  return body.length <= INLINE_BODY_BYTES ? { head: head + body.toString('latin1'), body: undefined, bodyBytes: body.length } : { head, body, bodyBytes: body.length };
}

/** Largest body sent in the head's string. */
const INLINE_BODY_BYTES = 1024;
