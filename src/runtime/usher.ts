import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import type { ListenerConfig, UsherConfig } from '../config/types.ts';
import { defaultHeadLimits } from '../http1/types.ts';
import { createAccessLog, type AccessLog } from '../observe/access-log.ts';
import { silentLogger, type Logger } from '../observe/logger.ts';
import type { PoolOptions } from '../pool/pool.ts';
import { DownstreamConnection, type DownstreamSettings } from '../proxy/downstream.ts';
import type { HttpListenerPlan } from '../proxy/pick.ts';
import { buildSnapshot, type Snapshot } from './snapshot.ts';

/** How usher is embedded: everything here has a default suitable for production. */
export interface UsherOptions {
  readonly logger?: Logger;
  /** Overrides `config.accessLog` (tests and benchmarks pass a disabled log). */
  readonly accessLog?: AccessLog;
  readonly poolOptions?: PoolOptions;
}

/** Client-side defaults until they become listener settings (nginx: 60s header and body, 75s keep-alive). */
const downstreamDefaults: DownstreamSettings = {
  limits: defaultHeadLimits,
  keepAliveTimeoutMs: 60_000,
  headerTimeoutMs: 60_000,
  sendTimeoutMs: 60_000,
};

interface RunningListener {
  readonly name: string;
  readonly server: Server;
  readonly connections: Set<DownstreamConnection>;
}

/**
 * A running usher: its listeners and the snapshot they serve. `npm start`, the
 * CLI and the tests all go through this class.
 */
export class Usher {
  readonly logger: Logger;
  #snapshot: Snapshot;
  readonly #listeners = new Map<string, RunningListener>();
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
    const address = this.#listeners.get(listener)?.server.address();
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
    const connections = new Set<DownstreamConnection>();
    const plans = { plan: (): HttpListenerPlan | undefined => this.#snapshot.listeners.get(name) };
    const onClosed = (connection: DownstreamConnection): void => {
      connections.delete(connection);
    };
    const server = createServer({ noDelay: true }, (socket: Socket) => {
      const connection = new DownstreamConnection(socket, plans, downstreamDefaults, onClosed);
      connections.add(connection);
      if (this.#stopping !== undefined) connection.closeIfIdle();
    });
    try {
      server.listen({ host: config.bind.host, port: config.bind.port });
      await once(server, 'listening');
    } catch (err) {
      throw new Error(`listener ${name}: cannot bind ${config.bind.host}:${config.bind.port}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    server.on('error', (err) => this.logger.error({ err, listener: name }, 'listener error'));
    this.#listeners.set(name, { name, server, connections });
    this.logger.info({ listener: name, address: this.url(name) }, 'listening');
  }

  /**
   * Stops accepting, lets in-flight requests finish (their responses carry
   * `Connection: close`; idle connections close at once), then closes upstream
   * pools. After `timeoutMs` the remaining connections are cut.
   */
  stop(options: { timeoutMs?: number } = {}): Promise<void> {
    this.#stopping ??= this.#stop(options.timeoutMs ?? 30_000);
    return this.#stopping;
  }

  async #stop(timeoutMs: number): Promise<void> {
    const listeners = [...this.#listeners.values()];
    const closed = listeners.map((listener) => new Promise<void>((resolve) => listener.server.close(() => resolve())));
    for (const listener of listeners) for (const connection of listener.connections) connection.closeIfIdle();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        for (const listener of listeners) for (const connection of listener.connections) connection.socket.destroy();
        resolve();
      }, timeoutMs);
    });
    await Promise.race([Promise.all(closed), deadline]);
    clearTimeout(timer);
    for (const pool of this.#snapshot.pools.values()) pool.close();
    this.#accessLog.flush();
    this.logger.info('stopped');
  }
}
