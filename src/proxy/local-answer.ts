import { STATUS_REASONS } from '../http1/serialize.ts';
import type { Answer } from './plan.ts';

/**
 * A response usher makes without a backend (a redirect, a filter's answer)
 * as one HTTP/1.1 latin1 string: status line, the answer's fields,
 * Content-Length (none for 204 and 304), the request's `x-request-id`,
 * `connection: close` when the connection will not carry another request
 * (`keep-alive` for a kept HTTP/1.0 one), and the body unless the request was
 * a HEAD. The HTTP/2 twin is `StreamExchange.answer`.
 */
export function http1Answer(answer: Pick<Answer, 'status' | 'headers' | 'body'>, keepAlive: boolean, minorVersion: 0 | 1, requestId: string, method: string): string {
  const { status, headers, body } = answer;
  let head = `HTTP/1.1 ${status} ${STATUS_REASONS[status] ?? ''}\r\n`;
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
  if (status !== 204 && status !== 304) head += `content-length: ${body.length}\r\n`;
  head += `x-request-id: ${requestId}\r\n`;
  head += !keepAlive ? 'connection: close\r\n' : minorVersion === 0 ? 'connection: keep-alive\r\n' : '';
  head += '\r\n';
  return body.length === 0 || method === 'HEAD' ? head : head + body.toString('latin1');
}
