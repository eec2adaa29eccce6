import { request, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';

/** A whole response: status, fields, and the body as bytes and as UTF-8 text. */
export interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** The body bytes as received (still coded, if the response was). */
  readonly raw: Buffer;
  readonly body: string;
}

/** One request on a new connection to 127.0.0.1:`port`; resolves with the whole response. */
export function send(port: number, path: string, headers: OutgoingHttpHeaders = {}, method = 'GET', body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (chunk: Buffer) => parts.push(chunk));
      res.on('end', () => {
        const raw = Buffer.concat(parts);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, raw, body: raw.toString('utf8') });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}
