/** A bounded GET used to check that a target proxies correctly before it is measured. */
import { request, type IncomingMessage } from 'node:http';
import { request as tlsRequest } from 'node:https';
import type { TLSSocket } from 'node:tls';

/** Options of one check request. */
export interface GetOptions {
  /** Speak TLS, trusting only `ca` and checking the certificate is for `servername`. */
  readonly tls?: { readonly ca: Buffer; readonly servername: string };
  /** Count the body instead of keeping it (large downloads); `body` is then empty. */
  readonly countOnly?: boolean;
}

/** What a check request got back. */
export interface GetResult {
  readonly status: number;
  readonly body: Buffer;
  /** Body bytes received (counted even with countOnly). */
  readonly length: number;
  /** Negotiated TLS version and cipher, for TLS requests. */
  readonly tls?: { readonly protocol: string; readonly cipher: string };
}

/**
 * Status and full body of GET http(s)://127.0.0.1:port/path (fresh connection,
 * 5 s without progress aborts it).
 */
export function httpGet(port: number, path: string, opts: GetOptions = {}): Promise<GetResult> {
  return new Promise((resolve, reject) => {
    const onResponse = (res: IncomingMessage): void => {
      const chunks: Buffer[] = [];
      let length = 0;
      res.on('data', (c: Buffer) => {
        length += c.length;
        if (opts.countOnly !== true) chunks.push(c);
      });
      res.on('end', () => {
        const sock = res.socket as TLSSocket;
        const tls = opts.tls ? { protocol: sock.getProtocol?.() ?? '?', cipher: sock.getCipher?.()?.name ?? '?' } : undefined;
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), length, ...(tls ? { tls } : {}) });
      });
      res.on('error', reject);
    };
    const base = { host: '127.0.0.1', port, path, method: 'GET', agent: false, timeout: 5000 } as const;
    const req = opts.tls ? tlsRequest({ ...base, ca: opts.tls.ca, servername: opts.tls.servername, headers: { host: opts.tls.servername } }, onResponse) : request(base, onResponse);
    req.on('timeout', () => req.destroy(new Error(`GET ${path} on port ${port} timed out`)));
    req.on('error', reject);
    req.end();
  });
}
