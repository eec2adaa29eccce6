import { createHash, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AdminConfig } from '../config/types.ts';
import type { Logger } from '../observe/logger.ts';
import { renderMetrics } from '../observe/metrics.ts';
import { AdminError, handleAdminRequest, type AdminTarget } from './api.ts';
import { dashboardAsset } from './dashboard.ts';
import { streamEvents } from './events.ts';

/** Admin request bodies are small JSON objects. */
const MAX_BODY_BYTES = 64 * 1024;

/**
 * The admin listener: JSON over HTTP on its own socket, never on a traffic
 * listener. With a token set, every request must carry
 * `Authorization: Bearer <token>`; the comparison is constant-time.
 * The config refuses a non-loopback bind without a token.
 */
export class AdminServer {
  readonly #server: Server;
  readonly #target: AdminTarget & { readonly logger: Logger };
  #tokenDigest: Buffer | undefined;

  private constructor(server: Server, target: AdminTarget & { readonly logger: Logger }, config: AdminConfig) {
    this.#server = server;
    this.#target = target;
    this.configure(config);
  }

  static async start(config: AdminConfig, target: AdminTarget & { readonly logger: Logger }): Promise<AdminServer> {
    const server = createServer({ requestTimeout: 30_000, headersTimeout: 10_000, keepAliveTimeout: 5_000 });
    const admin = new AdminServer(server, target, config);
    server.on('request', (req, res) => void admin.#handle(req, res));
    server.on('clientError', (_err, socket) => socket.destroy());
    try {
      server.listen({ host: config.bind.host, port: config.bind.port });
      await once(server, 'listening');
    } catch (err) {
      throw new Error(`admin: cannot bind ${config.bind.host}:${config.bind.port}: ${(err as Error).message}`, { cause: err });
    }
    return admin;
  }

  get url(): string {
    const { address, port, family } = this.#server.address() as AddressInfo;
    return family === 'IPv6' ? `http://[${address}]:${port}` : `http://${address}:${port}`;
  }

  /** Applies a reloaded admin config (the token; a bind change needs a restart). */
  configure(config: AdminConfig): void {
    this.#tokenDigest = config.token === undefined ? undefined : digest(config.token);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const path = (req.url ?? '/').split('?')[0]!;
    try {
      // Dashboard assets hold no data and need no token: the page asks for it and sends it with each call.
      const asset = method === 'GET' ? dashboardAsset(path) : undefined;
      if (asset !== undefined) {
        res.writeHead(200, { ...asset.headers, 'content-type': asset.contentType, 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' });
        res.end(asset.body);
        return;
      }
      // Probes (kubelet, load balancers) carry no token; the answers hold nothing but ready or not.
      if ((method === 'GET' || method === 'HEAD') && (path === '/livez' || path === '/readyz')) {
        const readiness = path === '/livez' ? { ready: true, reasons: [] } : (this.#target.readiness?.() ?? { ready: true, reasons: [] });
        send(res, readiness.ready ? 200 : 503, readiness);
        return;
      }
      this.#authorize(req);
      if (method === 'GET' && path === '/metrics') {
        const metrics = await renderMetrics(this.#target);
        res.writeHead(200, { 'content-type': metrics.contentType, 'cache-control': 'no-store' });
        res.end(metrics.body);
        return;
      }
      if (method === 'GET' && path === '/api/events') {
        streamEvents(req, res, this.#target);
        return;
      }
      const body = method === 'GET' || method === 'DELETE' ? undefined : await readJson(req);
      const reply = await handleAdminRequest(this.#target, method, path, body);
      if (method !== 'GET') this.#target.logger.info({ method, path, status: reply.status }, 'admin request');
      send(res, reply.status, reply.body);
    } catch (err) {
      if (err instanceof AdminError) {
        const headers = err.status === 401 ? { ...err.headers, 'www-authenticate': 'Bearer realm="usher"' } : err.headers;
        send(res, err.status, { error: { code: err.code, message: err.message } }, headers);
        return;
      }
      this.#target.logger.error({ err, method, path }, 'admin request failed');
      send(res, 500, { error: { code: 'internal', message: 'internal error; see the usher log' } });
    }
  }

  #authorize(req: IncomingMessage): void {
    const expected = this.#tokenDigest;
    if (expected === undefined) return;
    const header = req.headers.authorization ?? '';
    const given = header.startsWith('Bearer ') ? header.slice(7).trim() : '';
    // Comparing fixed-length digests keeps the comparison constant-time whatever the lengths.
    if (given === '' || !timingSafeEqual(digest(given), expected)) {
      throw new AdminError(401, 'unauthorized', 'missing or wrong admin token: send "Authorization: Bearer <token>"');
    }
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new AdminError(413, 'body_too_large', `admin request bodies are limited to ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch (err) {
    throw new AdminError(400, 'bad_json', `request body is not valid JSON: ${(err as Error).message}`);
  }
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = `${JSON.stringify(body, null, 2)}\n`;
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(text);
}
