/**
 * Background revalidation for `stale-while-revalidate` (RFC 5861 §3): the
 * client gets the stale response at once and one request per key goes to a
 * backend the route's pool picks, with the stored validators. A 304 freshens
 * the stored response; a new storable 200 replaces it. Nobody waits for it,
 * and a failure leaves the stale response to its window.
 *
 * It uses its own keep-alive agent rather than the proxy's upstream
 * connections: the request has no client to stream to, and its rare
 * occurrence (once per key per expiry) does not justify a second user of the
 * exchange machinery. Backends reached over TLS are not revalidated this way
 * (the next request after the window revalidates in line).
 */
import { Agent, request } from 'node:http';
import type { PoolRuntime } from '../pool/pool-runtime.ts';
import type { Fields } from './fields.ts';

/** At most this many background revalidations per thread hold a connection at once. */
const agent = new Agent({ keepAlive: true, maxSockets: 64, maxFreeSockets: 16 });

/** What came back: a 304's fields, or a 200's fields and body; undefined when nothing usable did. */
export type BackgroundResult =
  | { readonly status: 304; readonly fields: Record<string, string[]>; readonly requestTime: number; readonly responseTime: number }
  | { readonly status: number; readonly fields: Record<string, string[]>; readonly body: Buffer; readonly requestTime: number; readonly responseTime: number };

export interface BackgroundRequest {
  readonly pool: PoolRuntime;
  /** Request target (path and query) and Host. */
  readonly target: string;
  readonly host: string;
  /** Header fields to send: the stored variant's Vary fields and the validators. */
  readonly headers: Readonly<Record<string, string>>;
  /** Largest body accepted (the store's maxObjectSize). */
  readonly maxBytes: number;
  /** The epoch-ms clock the cache uses. */
  readonly now: () => number;
}

/** Sends one revalidation; resolves undefined on any failure (no backend, refused, timeout, too large). */
export function revalidateInBackground(req: BackgroundRequest): Promise<BackgroundResult | undefined> {
  const pool = req.pool;
  const backend = pool.select({ hash: 0, tried: [] }, undefined);
  if (typeof backend === 'string' || backend.connections.tls !== undefined) return Promise.resolve(undefined);
  const requestTime = req.now();
  const startedAt = performance.now();
  pool.attemptStarted(backend);
  let ended = false;
  const end = (status: number, ok: boolean): void => {
    if (ended) return;
    ended = true;
    pool.attemptEnded(backend, ok ? 'success' : 'failure', status, ok ? performance.now() - startedAt : -1);
  };
  return new Promise((resolve) => {
    const outgoing = request(
      { host: backend.address.host, port: backend.address.port, path: req.target, method: 'GET', headers: { ...req.headers, host: req.host }, agent, timeout: pool.config.timeouts.responseMs },
      (res) => {
        const fields: Record<string, string[]> = {};
        for (let i = 0; i < res.rawHeaders.length; i += 2) (fields[res.rawHeaders[i]!.toLowerCase()] ??= []).push(res.rawHeaders[i + 1]!);
        const status = res.statusCode ?? 0;
        if (status === 304) {
          res.resume();
          end(status, true);
          resolve({ status: 304, fields, requestTime, responseTime: req.now() });
          return;
        }
        const chunks: Buffer[] = [];
        let bytes = 0;
        res.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          if (bytes > req.maxBytes) {
            res.destroy();
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => {
          end(status, status < 500);
          resolve({ status, fields, body: Buffer.concat(chunks, bytes), requestTime, responseTime: req.now() });
        });
        res.on('error', () => {
          end(status, false);
          resolve(undefined);
        });
        res.on('close', () => {
          if (!res.complete) {
            end(status, false);
            resolve(undefined);
          }
        });
      },
    );
    outgoing.on('timeout', () => outgoing.destroy(new Error('timeout')));
    outgoing.on('error', () => {
      end(0, false);
      resolve(undefined);
    });
    outgoing.end();
  });
}

/** The request fields a stored variant was selected by, as headers to send again. */
export function varyHeaders(requestFields: Fields): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, lines] of Object.entries(requestFields)) if (lines !== undefined && lines.length > 0) out[name] = lines.join(', ');
  return out;
}
