import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { once } from 'node:events';
import type { ListenerConfig, UsherConfig } from '../config/types.ts';
import { createAccessLog, type AccessLog } from '../observe/access-log.ts';
import { silentLogger, type Logger } from '../observe/logger.ts';
import type { PoolOptions } from '../pool/pool.ts';
import { handleHttpRequest } from '../proxy/http-proxy.ts';
import { buildSnapshot, type Snapshot } from './snapshot.ts';

/** How usher is embedded: everything here has a default suitable for production. */
export interface UsherOptions {
  readonly logger?: Logger;
  /** Overrides `config.accessLog` (tests and benchmarks pass a disabled log). */
  readonly accessLog?: AccessLog;
  readonly poolOptions?: PoolOptions;
}

/** Downstream connection defaults until they become listener settings. */
const keepAliveTimeoutMs = 60_000;
const headersTimeoutMs = 60_000;

/**
 * A running usher: its listeners and the snapshot they serve. One process can
 * hold several; `npm start`, the CLI and the tests all go through this class.
 */
export class Usher {
  readonly logger: Logger;
  #snapshot: Snapshot;
  readonly #servers = new Map<string, Server>();
  readonly #accessLog: AccessLog;
  #stopping: Promise<void> | undefined;

  private constructor(config: UsherConfig, options: UsherOptions) {
    this.logger = options.logger ?? silentLogger();
    this.#accessLog = options.accessLog ?? createAccessLog(config.accessLog);
    this.#snapshot = buildSnapshot(config, this.#accessLog, options.poolOptions);
  }

  /** Builds the snapshot and binds every listener; rejects if any bind fails (and closes the others). */
  static async start(config: UsherConfig, options: UsherOptions = {}): Promise<Usher> {
    const usher = new Usher(config, options);
    try {
      for (const listener of config.listeners) await usher.#listen(listener);
    } catch (err) {
      await usher.stop({ timeoutMs: 0 });
      throw err;
    }
    return usher;
  }

  get snapshot(): Snapshot {
    return this.#snapshot;
  }

  /** The bound address of a listener (useful with port 0). */
  address(listener: string): AddressInfo {
    const address = this.#servers.get(listener)?.address();
    if (address === null || address === undefined || typeof address === 'string') {
      throw new Error(`listener ${listener} is not bound`);
    }
    return address;
  }

  /** `http://host:port` of a listener, for clients and tests. */
  url(listener: string): string {
    const { address, port, family } = this.address(listener);
    return family === 'IPv6' ? `http://[${address}]:${port}` : `http://${address}:${port}`;
  }

  async #listen(config: ListenerConfig): Promise<void> {
    const name = config.name;
    const server = createServer({
      keepAliveTimeout: keepAliveTimeoutMs,
      headersTimeout: headersTimeoutMs,
      // Whole-request deadlines would cut long uploads; upstream timeouts bound the wait instead.
      requestTimeout: 0,
      noDelay: true,
    });
    server.on('request', (req, res) => {
      const plan = this.#snapshot.listeners.get(name);
      if (plan === undefined) {
        res.writeHead(503, { 'x-usher-error': 'listener_removed', connection: 'close' }).end();
        return;
      }
      handleHttpRequest(plan, req, res);
    });
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => onClientError(err, socket));
    try {
      server.listen({ host: config.bind.host, port: config.bind.port });
      await once(server, 'listening');
    } catch (err) {
      throw new Error(`listener ${name}: cannot bind ${config.bind.host}:${config.bind.port}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    server.on('error', (err) => this.logger.error({ err, listener: name }, 'listener error'));
    this.#servers.set(name, server);
    this.logger.info({ listener: name, address: this.url(name) }, 'listening');
  }

  /**
   * Stops accepting, lets in-flight requests finish (idle keep-alive
   * connections are closed at once), then closes upstream pools. After
   * `timeoutMs` the remaining connections are cut.
   */
  stop(options: { timeoutMs?: number } = {}): Promise<void> {
    this.#stopping ??= this.#stop(options.timeoutMs ?? 30_000);
    return this.#stopping;
  }

  async #stop(timeoutMs: number): Promise<void> {
    const servers = [...this.#servers.values()];
    const closed = servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
    for (const server of servers) server.closeIdleConnections();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        for (const server of servers) server.closeAllConnections();
        resolve();
      }, timeoutMs);
    });
    await Promise.race([Promise.all(closed), deadline]);
    clearTimeout(timer);
    await Promise.all([...this.#snapshot.pools.values()].map((pool) => pool.close()));
    this.#accessLog.flush();
    this.logger.info('stopped');
  }
}

/**
 * A request node's parser rejected. Answer 400 when the socket can still take
 * it, and always close: after a framing error the byte stream cannot be trusted.
 */
function onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
  socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\nx-usher-error: bad_request\r\n\r\n`);
}
