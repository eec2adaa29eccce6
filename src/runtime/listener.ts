import { once } from 'node:events';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import type { HostPort, ListenerConfig } from '../config/types.ts';
import type { Logger } from '../observe/logger.ts';
import { DownstreamConnection, type PlanSource } from '../proxy/downstream.ts';
import { simpleResponse } from '../proxy/error-response.ts';
import { clientAddress } from '../proxy/headers.ts';
import type { HttpListenerPlan } from '../proxy/plan.ts';
import { closeAll, destroyAll, serveHttp2, type Http2Downstream } from '../h2/index.ts';
import { TcpProxy } from '../l4/tcp-proxy.ts';
import { CertificateStore } from '../tls/certificate-store.ts';
import type { ListenerMetricsSource } from './listener-metrics.ts';
import type { ServedPool, Snapshot } from './snapshot.ts';


/**
 * A bound listener: its server socket, its client connections and the plan
 * they serve (HTTP and HTTPS through `DownstreamConnection` or HTTP/2, tcp and
 * tls-passthrough through a `TcpProxy`). It is its connections' plan source, so a reload
 * swaps what they see with one assignment.
 */
export class RunningListener implements PlanSource, ListenerMetricsSource {
  readonly name: string;
  readonly bind: HostPort;
  readonly protocol: ListenerConfig['protocol'];
  readonly server: Server;
  readonly logger: Logger;
  readonly connections = new Set<DownstreamConnection>();
  /** Open connections per client IP, for `maxConnectionsPerClient`. */
  readonly perClient = new Map<string, number>();
  /** Undefined while a reload is binding this listener: connections wait, unread, until the swap. */
  current: HttpListenerPlan | undefined;
  /** The certificates an https listener serves; replaced on reload. */
  certificates: CertificateStore | undefined;
  /** Set when usher is stopping: new connections are closed after their first response. */
  stopping = false;
  /** Client connections accepted (not refused) since the bind. */
  accepted = 0;
  readonly #waiting: Socket[] = [];
  /** HTTP/2 sessions (TLS connections that negotiated `h2`). */
  readonly #http2 = new Set<Http2Downstream>();
  /** The L4 proxy of a tcp or tls-passthrough listener. */
  #tcp: TcpProxy | undefined;
  #refused = 0;
  #refusedLoggedAt = -Infinity;
  /** The listening socket the main thread lent this worker; `server` then only handles the connections it accepts. */
  #lent: Server | undefined;

  private constructor(config: ListenerConfig, server: Server, plan: HttpListenerPlan | undefined, logger: Logger) {
    this.name = config.name;
    this.bind = config.bind;
    this.protocol = config.protocol;
    this.server = server;
    this.current = plan;
    this.logger = logger;
  }

  /**
   * Binds a listener. Without a `plan` (a reload binding a new listener) it
   * accepts but leaves connections unread until {@link activate}. With
   * `lent`, a listening socket the main thread bound and lent to this worker
   * thread, it serves that socket instead of binding one, starting with the
   * `early` connections it accepted before.
   */
  static async bind(config: ListenerConfig, snapshot: Snapshot<ServedPool> | undefined, logger: Logger, lent?: Server, early: readonly Socket[] = []): Promise<RunningListener> {
    let server: Server;
    let running: RunningListener;
    const plan = snapshot?.listeners.get(config.name);
    if (config.protocol === 'tcp' || config.protocol === 'tls-passthrough') {
      // L4: half-open connections are legal TCP; the tunnel relays each direction's FIN.
      server = createNetServer({ noDelay: true, allowHalfOpen: true, pauseOnConnect: snapshot === undefined });
      running = new RunningListener(config, server, undefined, logger);
      const tcpPlan = snapshot?.tcpListeners.get(config.name);
      if (tcpPlan !== undefined) running.#tcp = new TcpProxy(tcpPlan);
      server.on('connection', (socket: Socket) => running.#onConnection(socket));
    } else if (config.protocol === 'https') {
      const certificates = new CertificateStore(config.tls!);
      const tlsServer = createTlsServer({
        SNICallback: (serverName, callback) => callback(null, running.certificates!.contextFor(serverName)),
        ALPNProtocols: [...config.tls!.alpn],
        minVersion: config.tls!.minVersion,
        // A client that never finishes its handshake is a slowloris of another kind.
        handshakeTimeout: config.timeouts.headerMs,
        noDelay: true,
      });
      tlsServer.setSecureContext(certificates.defaultOptions);
      server = tlsServer;
      running = new RunningListener(config, server, plan, logger);
      running.certificates = certificates;
      tlsServer.on('secureConnection', (socket: TLSSocket) => running.#onConnection(socket));
      tlsServer.on('tlsClientError', (err) => logger.debug({ err: err.message, listener: config.name }, 'TLS handshake failed'));
    } else {
      server = createNetServer({ noDelay: true, pauseOnConnect: snapshot === undefined });
      running = new RunningListener(config, server, plan, logger);
      server.on('connection', (socket: Socket) => running.#onConnection(socket));
    }
    if (lent !== undefined) {
      // The lent socket accepts; the protocol's server takes each connection as if it had accepted it.
      // Kept apart so it can be handed back to the main thread (a planned worker restart) without closing.
      // Plain properties net.Server reads at each accept (node's lib/net.js), as its constructor's options would set them.
      const accepting = lent as Server & { noDelay: boolean; allowHalfOpen: boolean; pauseOnConnect: boolean };
      accepting.noDelay = true;
      accepting.allowHalfOpen = config.protocol === 'tcp' || config.protocol === 'tls-passthrough';
      accepting.pauseOnConnect = snapshot === undefined;
      lent.on('connection', (socket: Socket) => server.emit('connection', socket));
      lent.on('error', (err) => logger.error({ err, listener: config.name }, 'listener error'));
      running.#lent = lent;
      // Connections the socket accepted before this listener existed (held paused by the worker).
      for (const socket of early) server.emit('connection', socket);
      return running;
    }
    try {
      server.listen({ host: config.bind.host, port: config.bind.port });
      await once(server, 'listening');
    } catch (err) {
      throw new Error(`listener ${config.name}: cannot bind ${config.bind.host}:${config.bind.port}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    server.on('error', (err) => logger.error({ err, listener: config.name }, 'listener error'));
    return running;
  }

  plan(): HttpListenerPlan | undefined {
    return this.current;
  }

  /** Client connections open now (for metrics). */
  get openConnections(): number {
    return this.connections.size + this.#http2.size + (this.#tcp?.connections ?? 0);
  }

  /** HTTP requests being served now (for metrics): counted at scrape time, so serving them costs nothing. */
  get requestsInFlight(): number {
    let busy = 0;
    for (const connection of this.connections) if (connection.busy) busy++;
    for (const session of this.#http2) busy += session.activeStreams;
    return busy;
  }

  /** Applies a reloaded config: the plan, and for https the certificates the reload read from disk. */
  update(snapshot: Snapshot<ServedPool>, certificates: CertificateStore | undefined): void {
    if (certificates !== undefined) {
      (this.server as ReturnType<typeof createTlsServer>).setSecureContext(certificates.defaultOptions);
      this.certificates = certificates;
    }
    this.activate(snapshot);
  }

  /**
   * Gives the listener its plan from `snapshot` and serves the connections
   * that waited for it. Open L4 tunnels keep the plan they started with.
   */
  activate(snapshot: Snapshot<ServedPool>): void {
    if (this.protocol === 'tcp' || this.protocol === 'tls-passthrough') {
      const plan = snapshot.tcpListeners.get(this.name)!;
      if (this.#tcp === undefined) this.#tcp = new TcpProxy(plan);
      else this.#tcp.setPlan(plan);
    } else {
      this.current = snapshot.listeners.get(this.name);
    }
    for (const socket of this.#waiting.splice(0)) this.#accept(socket);
  }

  /** Closes without serving (a reload that failed after binding this listener). */
  abandon(): void {
    (this.#lent ?? this.server).close();
    for (const socket of this.#waiting.splice(0)) socket.destroy();
  }

  /**
   * Stops accepting and gives the lent listening socket back, open, so the
   * connections waiting in its accept queue stay there for the next worker;
   * the connections already accepted are served to the end ({@link drain}).
   */
  handBack(): Server | undefined {
    const lent = this.#lent;
    if (lent === undefined) return undefined;
    this.#lent = undefined;
    lent.removeAllListeners('connection');
    lent.removeAllListeners('error');
    return lent;
  }

  onInternalError(error: unknown): void {
    this.logger.error({ err: error, listener: this.name }, 'internal error on a client connection; connection closed');
  }

  /** Stops accepting; idle connections close now, busy ones after their response. Resolves when all are gone. */
  drain(): Promise<void> {
    const lent = this.#lent;
    // A server closes once its connections have; a lent socket's protocol server never counted them, so wait for them here.
    const closed = lent === undefined && this.server.listening ? new Promise<void>((resolve) => this.server.close(() => resolve())) : this.#allClosed();
    lent?.close();
    for (const connection of this.connections) connection.closeIfIdle();
    // HTTP/2: GOAWAY; streams in flight finish, new ones are refused.
    return Promise.all([closed, closeAll(this)]).then(() => undefined);
  }

  /** Resolves when no client connection is open (checked every 50 ms while draining). */
  #allClosed(): Promise<void> {
    return new Promise((resolve) => {
      const check = (): void => {
        if (this.openConnections > 0) return;
        clearInterval(timer);
        resolve();
      };
      const timer = setInterval(check, 50);
      timer.unref();
      check();
    });
  }

  /** Cuts every connection now (the shutdown timeout passed). Returns how many were cut. */
  cut(): number {
    let cut = destroyAll(this);
    if (this.#tcp !== undefined) {
      cut += this.#tcp.connections;
      this.#tcp.closeAll();
    }
    for (const connection of this.connections) {
      cut++;
      connection.socket.destroy();
    }
    return cut;
  }

  #onConnection(socket: Socket): void {
    if (this.current === undefined && this.#tcp === undefined) {
      socket.on('error', () => socket.destroy());
      this.#waiting.push(socket);
      return;
    }
    this.#accept(socket);
  }

  #accept(socket: Socket): void {
    if (this.#tcp !== undefined) {
      this.accepted++;
      socket.resume(); // listeners bound by a reload accept paused (pauseOnConnect)
      this.#tcp.handle(socket);
      return;
    }
    const settings = this.current!.settings;
    const clientIp = clientAddress(socket.remoteAddress);
    const fromClient = this.perClient.get(clientIp) ?? 0;
    const full = this.connections.size + this.#http2.size >= settings.maxConnections;
    if (full || (settings.maxConnectionsPerClient > 0 && fromClient >= settings.maxConnectionsPerClient)) {
      this.#refuse(socket, full ? 'max_connections' : 'max_connections_per_client');
      return;
    }
    this.perClient.set(clientIp, fromClient + 1);
    this.accepted++;
    if ((socket as TLSSocket).alpnProtocol === 'h2') {
      this.#serveHttp2(socket as TLSSocket, clientIp);
      return;
    }
    const connection = new DownstreamConnection(socket, this, settings, (closed) => {
      this.connections.delete(closed);
      this.#forgetClient(closed.clientIp);
    });
    this.connections.add(connection);
    socket.resume(); // listeners bound by a reload accept paused (pauseOnConnect)
    if (this.stopping) connection.closeIfIdle();
  }

  #serveHttp2(socket: TLSSocket, clientIp: string): void {
    const session = serveHttp2(socket, this, {
      onClose: () => {
        this.#http2.delete(session);
        this.#forgetClient(clientIp);
      },
    });
    this.#http2.add(session);
    if (this.stopping) session.close();
  }

  #forgetClient(clientIp: string): void {
    const left = (this.perClient.get(clientIp) ?? 1) - 1;
    if (left <= 0) this.perClient.delete(clientIp);
    else this.perClient.set(clientIp, left);
  }

  #refuse(socket: Socket, reason: string): void {
    this.#refused++;
    const now = performance.now();
    if (now - this.#refusedLoggedAt >= 1000) {
      // At most one line a second, so a flood of connections cannot flood the log.
      this.#refusedLoggedAt = now;
      this.logger.warn({ listener: this.name, refused: this.#refused, reason }, 'refused client connections');
      this.#refused = 0;
    }
    socket.on('error', () => socket.destroy());
    socket.setTimeout(1000, () => socket.destroy());
    socket.end(simpleResponse(503, reason, false), 'latin1');
    socket.resume(); // read and drop what the client sends, so end() can complete
  }
}
