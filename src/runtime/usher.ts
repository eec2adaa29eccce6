import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { AdminServer } from '../admin/server.ts';
import { formatIssue, type ConfigResult } from '../config/index.ts';
import type { HostPort, ListenerConfig, UsherConfig } from '../config/types.ts';
import { createAccessLog, type AccessLog } from '../observe/access-log.ts';
import { silentLogger, type Logger } from '../observe/logger.ts';
import type { Pool, PoolOptions } from '../pool/pool.ts';
import { DownstreamConnection, type PlanSource } from '../proxy/downstream.ts';
import { simpleResponse } from '../proxy/error-response.ts';
import { clientAddress } from '../proxy/headers.ts';
import type { HttpListenerPlan } from '../proxy/pick.ts';
import { applySnapshot, compileSnapshotRoutes, type Snapshot } from './snapshot.ts';

/** How usher is embedded: everything here has a default suitable for production. */
export interface UsherOptions {
  readonly logger?: Logger;
  /** Overrides `config.accessLog` (tests and benchmarks pass a disabled log). */
  readonly accessLog?: AccessLog;
  readonly poolOptions?: PoolOptions;
  /** Where a reload without a config (SIGHUP, admin API) reads one: the CLI passes its file loader. */
  readonly configSource?: () => ConfigResult;
}

/** The outcome of a reload; on failure nothing changed. */
export type ReloadResult =
  | { readonly ok: true; readonly warnings: readonly string[] }
  | { readonly ok: false; readonly errors: readonly string[] };


/** A bound listener. It is its connections' plan source, so a reload swaps what they see in one assignment. */
class RunningListener implements PlanSource {
  readonly name: string;
  readonly bind: HostPort;
  readonly server: Server;
  readonly logger: Logger;
  readonly connections = new Set<DownstreamConnection>();
  /** Open connections per client IP, for `maxConnectionsPerClient`. */
  readonly perClient = new Map<string, number>();
  /** Connections refused since the last warning: logged at most once a second, so a flood cannot flood the log. */
  refused = 0;
  #refusedLoggedAt = 0;
  /** Undefined while a reload is binding this listener: connections wait, unread, until the swap. */
  current: HttpListenerPlan | undefined;
  /** Sockets accepted before the listener had a plan. */
  readonly waiting: Socket[] = [];

  constructor(name: string, bind: HostPort, server: Server, plan: HttpListenerPlan | undefined, logger: Logger) {
    this.name = name;
    this.bind = bind;
    this.server = server;
    this.current = plan;
    this.logger = logger;
  }

  plan(): HttpListenerPlan | undefined {
    return this.current;
  }

  onInternalError(error: unknown): void {
    this.logger.error({ err: error, listener: this.name }, 'internal error on a client connection; connection closed');
  }

  noteRefused(reason: string): void {
    this.refused++;
    const now = performance.now();
    if (now - this.#refusedLoggedAt < 1000) return;
    this.#refusedLoggedAt = now;
    this.logger.warn({ listener: this.name, refused: this.refused, reason }, 'refused client connections');
    this.refused = 0;
  }

  /** Stops accepting; idle connections close now, busy ones after their response. Resolves when all are gone. */
  drain(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const connection of this.connections) connection.closeIfIdle();
    return closed;
  }
}

/**
 * A running usher: its listeners, the snapshot they serve and the admin API.
 * `npm start`, the CLI and the tests all go through this class.
 */
export class Usher {
  readonly logger: Logger;
  #snapshot: Snapshot;
  readonly #listeners = new Map<string, RunningListener>();
  readonly #accessLog: AccessLog;
  readonly #options: UsherOptions;
  #admin: AdminServer | undefined;
  #reloading: Promise<ReloadResult> = Promise.resolve({ ok: true, warnings: [] });
  #stopping: Promise<void> | undefined;

  private constructor(config: UsherConfig, options: UsherOptions) {
    this.logger = options.logger ?? silentLogger();
    this.#options = options;
    this.#accessLog = options.accessLog ?? createAccessLog(config.accessLog);
    this.#snapshot = applySnapshot(compileSnapshotRoutes(config), undefined, this.#accessLog, this.#poolOptions()).snapshot;
  }

  /** Builds the snapshot and binds every listener (and the admin API); rejects if any bind fails (and closes the others). */
  static async start(config: UsherConfig, options: UsherOptions = {}): Promise<Usher> {
    const usher = new Usher(config, options);
    try {
      for (const listener of config.listeners) {
        const running = await usher.#bind(listener, usher.#snapshot.listeners.get(listener.name)!);
        usher.#listeners.set(listener.name, running);
        usher.logger.info({ listener: listener.name, address: usher.url(listener.name) }, 'listening');
      }
      if (config.admin !== undefined) {
        usher.#admin = await AdminServer.start(config.admin, usher);
        usher.logger.info({ address: usher.#admin.url }, 'admin API listening');
      }
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
    return urlOf(this.address(listener));
  }

  /** `http://host:port` of the admin API, when configured. */
  get adminUrl(): string | undefined {
    return this.#admin?.url;
  }

  /** Names of the listeners currently bound. */
  get listenerNames(): readonly string[] {
    return [...this.#listeners.keys()];
  }

  /**
   * Applies a new config without dropping a request: pools that stay keep
   * their backends' health, counters and connections; listeners added or
   * removed start and stop cleanly; requests in flight finish on the plan they
   * started with. Without `config`, reads the `configSource` (the file).
   * On any error nothing changes and the old config keeps serving.
   */
  reload(config?: UsherConfig): Promise<ReloadResult> {
    // One reload at a time: a second waits for the first, then applies on top of it.
    const next = this.#reloading.then(() => this.#reload(config));
    this.#reloading = next;
    return next;
  }

  async #reload(given: UsherConfig | undefined): Promise<ReloadResult> {
    if (this.#stopping !== undefined) return { ok: false, errors: ['usher is stopping'] };
    let config = given;
    let warnings: string[] = [];
    if (config === undefined) {
      const source = this.#options.configSource;
      if (source === undefined) return { ok: false, errors: ['no config file to reload from (usher was started without -c)'] };
      const result = source();
      if (!result.ok) return this.#rejected(result.errors.map(formatIssue));
      config = result.config;
      warnings = result.warnings.map(formatIssue);
    }
    let compiled;
    try {
      compiled = compileSnapshotRoutes(config);
    } catch (err) {
      return this.#rejected([(err as Error).message]);
    }
    // Bind new listeners first: a port that cannot be bound fails the reload before anything changed.
    const bound = new Map<string, RunningListener>();
    for (const listener of config.listeners) {
      const running = this.#listeners.get(listener.name);
      if (running !== undefined && sameBind(running.bind, listener.bind)) continue;
      try {
        // Until the swap below the new listener has no plan: its connections wait, unread.
        bound.set(listener.name, await this.#bind(listener, undefined));
      } catch (err) {
        for (const fresh of bound.values()) {
          fresh.server.close();
          for (const socket of fresh.waiting.splice(0)) socket.destroy();
        }
        return this.#rejected([(err as Error).message]);
      }
    }
    const previousConfig = this.#snapshot.config;
    const { snapshot, retiredPools } = applySnapshot(compiled, this.#snapshot, this.#accessLog, this.#poolOptions());
    this.#snapshot = snapshot;
    const retiring: RunningListener[] = [];
    for (const [name, running] of this.#listeners) {
      const plan = snapshot.listeners.get(name);
      if (plan !== undefined && !bound.has(name)) running.current = plan;
      else retiring.push(running);
    }
    for (const running of retiring) this.#listeners.delete(running.name);
    for (const [name, running] of bound) {
      running.current = snapshot.listeners.get(name)!;
      for (const socket of running.waiting.splice(0)) this.#accept(running, socket);
      this.#listeners.set(name, running);
      this.logger.info({ listener: name, address: this.url(name) }, 'listening');
    }
    this.#retire(retiring, retiredPools);
    if (config.admin !== undefined) this.#admin?.configure(config.admin);
    if (JSON.stringify(config.admin?.bind) !== JSON.stringify(previousConfig.admin?.bind)) {
      warnings.push('admin.bind changes take effect at the next restart');
    }
    this.logger.info({ listeners: config.listeners.length, pools: Object.keys(config.pools).length, warnings }, 'config reloaded');
    return { ok: true, warnings };
  }

  #rejected(errors: string[]): ReloadResult {
    this.logger.error({ errors }, 'reload rejected; still serving the previous config');
    return { ok: false, errors };
  }

  /** Listeners and pools the new config dropped finish their in-flight work, then close. */
  #retire(listeners: readonly RunningListener[], pools: readonly Pool[]): void {
    const drained = listeners.map((listener) => {
      this.logger.info({ listener: listener.name }, 'listener removed: draining');
      return listener.drain();
    });
    void Promise.all(drained).then(() => {
      for (const pool of pools) pool.close();
    });
  }

  #poolOptions(): PoolOptions {
    return { logger: this.logger, ...this.#options.poolOptions };
  }

  #accept(running: RunningListener, socket: Socket): void {
    const settings = running.current!.settings;
    const clientIp = clientAddress(socket.remoteAddress);
    const fromClient = running.perClient.get(clientIp) ?? 0;
    if (running.connections.size >= settings.maxConnections || (settings.maxConnectionsPerClient > 0 && fromClient >= settings.maxConnectionsPerClient)) {
      const reason = running.connections.size >= settings.maxConnections ? 'max_connections' : 'max_connections_per_client';
      running.noteRefused(reason);
      socket.on('error', () => socket.destroy());
      socket.setTimeout(1000, () => socket.destroy());
      socket.end(simpleResponse(503, reason, false), 'latin1');
      socket.resume(); // read and drop whatever the client sends, so end() can complete
      return;
    }
    running.perClient.set(clientIp, fromClient + 1);
    const connection = new DownstreamConnection(socket, running, settings, (closed) => {
      running.connections.delete(closed);
      const left = (running.perClient.get(closed.clientIp) ?? 1) - 1;
      if (left <= 0) running.perClient.delete(closed.clientIp);
      else running.perClient.set(closed.clientIp, left);
    });
    running.connections.add(connection);
    socket.resume(); // listeners bound by a reload accept paused (pauseOnConnect)
    if (this.#stopping !== undefined) connection.closeIfIdle();
  }

  async #bind(config: ListenerConfig, plan: HttpListenerPlan | undefined): Promise<RunningListener> {
    const name = config.name;
    const server = createServer({ noDelay: true, pauseOnConnect: plan === undefined });
    const running = new RunningListener(name, config.bind, server, plan, this.logger);
    server.on('connection', (socket: Socket) => {
      if (running.current === undefined) {
        socket.on('error', () => socket.destroy());
        running.waiting.push(socket);
      } else {
        this.#accept(running, socket);
      }
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
    return running;
  }

  /**
   * Stops accepting, lets in-flight requests finish (their responses carry
   * `Connection: close`; idle connections close at once), then closes upstream
   * pools and the admin API. After `timeoutMs` (default: the config's
   * `shutdownTimeout`) the remaining connections are cut.
   */
  stop(options: { timeoutMs?: number } = {}): Promise<void> {
    this.#stopping ??= this.#stop(options.timeoutMs ?? this.#snapshot.config.shutdownTimeoutMs ?? 30_000);
    return this.#stopping;
  }

  async #stop(timeoutMs: number): Promise<void> {
    const listeners = [...this.#listeners.values()];
    const drained = Promise.all(listeners.map((listener) => listener.drain()));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const completed = await Promise.race([drained.then(() => true), deadline]);
    clearTimeout(timer);
    if (!completed) {
      let cut = 0;
      for (const listener of listeners) {
        for (const connection of listener.connections) {
          cut++;
          connection.socket.destroy();
        }
      }
      this.logger.warn({ connections: cut, timeoutMs }, 'shutdown timeout: cut the remaining connections');
    }
    for (const pool of this.#snapshot.pools.values()) pool.close();
    await this.#admin?.close();
    this.#accessLog.flush();
    this.logger.info('stopped');
  }
}

function sameBind(a: HostPort, b: HostPort): boolean {
  return a.host === b.host && a.port === b.port;
}

function urlOf({ address, port, family }: AddressInfo): string {
  return family === 'IPv6' ? `http://[${address}]:${port}` : `http://${address}:${port}`;
}
