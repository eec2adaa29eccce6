/**
 * A worker thread's entry: one data plane. It serves the listening sockets
 * the main thread lends it, with the route plans of the config the main
 * thread sends it, and pools that mirror the main thread's control plane.
 * It never binds, probes or reloads by itself; see docs/design.md, "Every core".
 */
import { parentPort, workerData, type TransferListItem } from 'node:worker_threads';
import type { Server, Socket } from 'node:net';
import type { Server as TlsServer } from 'node:tls';
import type { Registry } from 'prom-client';
import { formatIssue, resolveModules } from '../config/index.ts';
import type { AccessLogConfig, LogConfig, UsherConfig } from '../config/types.ts';
import { closeH2cSessions } from '../h2/index.ts';
import { L4Metrics } from '../l4/metrics.ts';
import { createAccessLog } from '../observe/access-log.ts';
import { createLogger, type Logger } from '../observe/logger.ts';
import { createMetricsRegistry } from '../observe/metrics.ts';
import { declarePoolDataMetrics } from '../pool/metrics.ts';
import { HttpMetrics } from '../proxy/metrics.ts';
import { CertificateStore } from '../tls/certificate-store.ts';
import { RunningListener } from '../runtime/listener.ts';
import { declareListenerMetrics } from '../runtime/listener-metrics.ts';
import { applySnapshot, compileSnapshotRoutes, type CompiledRoutes, type Snapshot, type SnapshotMetrics } from '../runtime/snapshot.ts';
import type { BackendUsageReport, FromWorker, LentListener, ToWorker, WorkerUsage } from './messages.ts';
import { MirroredPool } from './mirrored-pool.ts';
import { ResponseCache, type CacheCheckpoint } from '../cache/response-cache.ts';
import { declareCacheMetrics, threadCounters } from '../cache/report.ts';
import { declareCompressMetrics } from '../compress/report.ts';
import { RateLimitStore } from '../ratelimit/store.ts';

/** What the main thread gives a worker when it starts it. */
export interface WorkerInit {
  /** The worker's slot, 0-based. */
  readonly index: number;
  /** The row it writes in every in-flight table (see WorkerGroup). */
  readonly plane: number;
  readonly log: LogConfig;
  readonly accessLog: AccessLogConfig;
  /** TLS session-ticket keys shared by every worker, so a client resumes whichever worker it reaches. */
  readonly ticketKeys: Uint8Array;
}

/** A lent socket, and the connections it accepted before a listener took it over. */
interface HeldListener extends LentListener {
  readonly held: Held;
}

interface Held {
  /** The held connections; from now on the caller takes new ones. */
  take(): Socket[];
}

/** Holds what `server` accepts (paused) until {@link Held.take}. */
function hold(server: Server): Held {
  const sockets: Socket[] = [];
  const keep = (socket: Socket): void => {
    sockets.push(socket);
  };
  (server as Server & { pauseOnConnect: boolean }).pauseOnConnect = true;
  server.on('connection', keep);
  return {
    take() {
      server.off('connection', keep);
      return sockets.splice(0);
    },
  };
}

interface Prepared {
  readonly generation: number;
  readonly compiled: CompiledRoutes;
  readonly certificates: Map<string, CertificateStore>;
  readonly listeners: Map<string, RunningListener>;
}

const USAGE_INTERVAL_MS = 1000;

class DataPlane {
  readonly #index: number;
  readonly #plane: number;
  readonly #logger: Logger;
  readonly #accessLog;
  #ticketKeys: Buffer;
  readonly #port: NonNullable<typeof parentPort>;
  readonly #mirrors = new Map<string, MirroredPool>();
  /** This thread's fills and request counters, on the process's store (the main thread's, adopted). */
  readonly #responseCache = new ResponseCache(false);
  /** The response cache as it was before the last `prepare`, put back if that config is aborted. */
  #cacheBefore: { readonly generation: number; readonly checkpoint: CacheCheckpoint } | undefined;
  /** The main thread's rate-limit tables, adopted: this thread decides against the process's budgets. */
  readonly #rateLimits = new RateLimitStore(false);
  readonly #listeners = new Map<string, RunningListener>();
  readonly #recorded: SnapshotMetrics = { http: new HttpMetrics(), l4: new L4Metrics() };
  readonly #metrics: Registry;
  #snapshot: Snapshot<MirroredPool> | undefined;
  #prepared: Prepared | undefined;
  /** The last generation the main thread aborted. */
  #aborted = -1;
  #stopping: Promise<void> | undefined;

  constructor(init: WorkerInit, port: NonNullable<typeof parentPort>) {
    this.#index = init.index;
    this.#plane = init.plane;
    this.#port = port;
    this.#logger = createLogger(init.log).child({ worker: init.index });
    this.#accessLog = createAccessLog(init.accessLog);
    this.#ticketKeys = Buffer.from(init.ticketKeys);
    const runtimes = () => [...this.#mirrors.values()].flatMap((mirror) => (mirror.served === undefined ? [] : [mirror.served]));
    this.#metrics = createMetricsRegistry([
      (registry) => declareListenerMetrics(registry, () => this.#listeners.values()),
      (registry) => this.#recorded.http.declare(registry, runtimes),
      (registry) => this.#recorded.l4.declare(registry),
      (registry) => declarePoolDataMetrics(registry, runtimes),
      (registry) => declareCacheMetrics(registry, this.#responseCache),
      (registry) => declareCompressMetrics(registry),
    ]);
    const timer = setInterval(() => this.#post({ type: 'usage', usage: this.#usage() }), USAGE_INTERVAL_MS);
    timer.unref();
  }

  receive(message: ToWorker): void {
    switch (message.type) {
      case 'pool':
        this.#mirror(message.pool).apply(message.state);
        return;
      case 'close-idle':
        this.#mirrors.get(message.pool)?.served?.closeIdle(message.slot);
        return;
      case 'taken-out':
        this.#mirrors.get(message.pool)?.served?.takenOut(message.slot);
        return;
      case 'pool-closed':
        this.#mirrors.get(message.pool)?.served?.close();
        this.#mirrors.delete(message.pool);
        return;
      case 'prepare':
        // A lent socket accepts as soon as it arrives: hold what it accepts until the listener takes over.
        this.#rateLimits.adopt(message.rateLimits);
        this.#cacheBefore = { generation: message.generation, checkpoint: this.#responseCache.checkpoint() };
        this.#responseCache.adopt(message.cache);
        void this.#prepare(message.generation, message.config, message.listeners.map((lent) => ({ ...lent, held: hold(lent.server as Server) })));
        return;
      case 'commit':
        this.#commit(message.generation);
        return;
      case 'abort':
        // The main thread keeps its store when a reload fails: so does this thread.
        if (this.#cacheBefore?.generation === message.generation) this.#responseCache.restore(this.#cacheBefore.checkpoint);
        this.#abort(message.generation);
        return;
      case 'ping':
        this.#post({ type: 'pong', id: message.id });
        return;
      case 'cache':
        this.#post({ type: 'cache-report', id: message.id, counters: threadCounters(this.#responseCache) });
        return;
      case 'ticket-keys':
        this.#ticketKeys = Buffer.from(message.keys);
        for (const running of this.#listeners.values()) this.#shareTicketKeys(running);
        for (const running of this.#prepared?.listeners.values() ?? []) this.#shareTicketKeys(running);
        return;
      case 'collect':
        if (message.metrics) void this.#metrics.getMetricsAsJSON().then((metrics) => this.#post({ type: 'collected', id: message.id, usage: this.#usage(), metrics }));
        else this.#post({ type: 'collected', id: message.id, usage: this.#usage(), metrics: undefined });
        return;
      case 'stop':
        void this.#stop(message.timeoutMs).then(() => this.#post({ type: 'stopped', id: message.id }));
        return;
      case 'hand-back':
        this.#handBack(message.id);
        return;
      default: {
        const unknown: never = message;
        this.#logger.error({ message: unknown }, 'unknown message from the main thread');
      }
    }
  }

  #mirror(name: string): MirroredPool {
    let mirror = this.#mirrors.get(name);
    if (mirror === undefined) {
      mirror = new MirroredPool(name, this.#plane, (pool, data) => this.#post({ type: 'reports', pool, data }));
      this.#mirrors.set(name, mirror);
    }
    return mirror;
  }

  /** Phase one: load modules, compile, read certificates, serve the lent sockets later. Nothing serves the new config yet. */
  async #prepare(generation: number, given: UsherConfig, lent: readonly HeldListener[]): Promise<void> {
    const errors: string[] = [];
    const listeners = new Map<string, RunningListener>();
    this.#abort(this.#prepared?.generation ?? -1); // a newer prepare replaces one never committed
    try {
      const resolved = await resolveModules({ ok: true, config: given, warnings: [] });
      if (!resolved.ok) throw new Error(resolved.errors.map(formatIssue).join('; '));
      const config = resolved.config;
      const compiled = compileSnapshotRoutes(config, this.#logger, this.#responseCache, this.#rateLimits);
      const certificates = new Map<string, CertificateStore>();
      for (const listener of config.listeners) {
        if (listener.protocol === 'https' && listener.tls !== undefined) certificates.set(listener.name, new CertificateStore(listener.tls));
      }
      for (const { name, server, held } of lent) {
        const listenerConfig = config.listeners.find((listener) => listener.name === name);
        if (listenerConfig === undefined) throw new Error(`listener ${name} is not in the config`);
        const running = await RunningListener.bind(listenerConfig, undefined, this.#logger, server as Server, held.take());
        this.#shareTicketKeys(running);
        listeners.set(name, running);
      }
      if (this.#aborted === generation) throw new Error('aborted');
      this.#prepared = { generation, compiled, certificates, listeners };
    } catch (error) {
      for (const running of listeners.values()) running.abandon();
      // Sockets not yet taken by a listener close too, with the connections they held.
      for (const { name, server, held } of lent) {
        if (listeners.has(name)) continue;
        for (const socket of held.take()) socket.destroy();
        (server as Server).close();
      }
      errors.push((error as Error).message);
    }
    this.#post({ type: 'prepared', generation, errors });
  }

  /** Every worker encrypts session tickets with the same keys, so a client resumes whichever worker it reaches next. */
  #shareTicketKeys(running: RunningListener): void {
    if (running.protocol === 'https') (running.server as TlsServer).setTicketKeys(this.#ticketKeys);
  }

  /** Phase two: swap in the prepared config. Requests in flight finish on the plans they started with. */
  #commit(generation: number): void {
    const prepared = this.#prepared;
    if (prepared === undefined || prepared.generation !== generation) {
      this.#logger.error({ generation }, 'commit of a config this worker did not prepare');
      this.#post({ type: 'committed', generation, error: 'this worker did not prepare that config' });
      return;
    }
    this.#prepared = undefined;
    const options = { logger: this.#logger };
    const { snapshot } = applySnapshot(prepared.compiled, this.#snapshot, this.#accessLog, options, this.#recorded, (name, config) => {
      const mirror = this.#mirror(name);
      mirror.configure(config, options);
      return mirror;
    });
    this.#snapshot = snapshot;
    const names = new Set(snapshot.config.listeners.map((listener) => listener.name));
    for (const [name, running] of [...this.#listeners]) {
      if (prepared.listeners.has(name) || !names.has(name)) {
        this.#listeners.delete(name);
        void running.drain();
      } else {
        running.update(snapshot, prepared.certificates.get(name));
        this.#shareTicketKeys(running);
      }
    }
    for (const [name, running] of prepared.listeners) {
      running.activate(snapshot);
      this.#listeners.set(name, running);
    }
    this.#post({ type: 'committed', generation });
  }

  #abort(generation: number): void {
    this.#aborted = generation; // a prepare still loading modules stops when it is done
    const prepared = this.#prepared;
    if (prepared === undefined || prepared.generation !== generation) return;
    this.#prepared = undefined;
    for (const running of prepared.listeners.values()) running.abandon();
  }

  #usage(): WorkerUsage {
    const pools: Record<string, BackendUsageReport[]> = {};
    for (const [name, mirror] of this.#mirrors) {
      const runtime = mirror.served;
      if (runtime === undefined) continue;
      const now = performance.now();
      // A backend no request has reached and with no connection has nothing to say (the control plane reads
      // a missing slot as zeros): a pool of thousands of discovered endpoints reports only the used ones.
      pools[name] = runtime.backends.filter((b) => b.counters.requests !== 0 || b.connections.open !== 0).map((b) => ({
        slot: b.index,
        requests: b.counters.requests,
        failures: b.counters.failures,
        responses5xx: b.counters.responses5xx,
        retriedAway: b.counters.retriedAway,
        bytesOut: b.counters.bytesOut,
        bytesIn: b.metrics.bytesIn,
        open: b.connections.open,
        idle: b.connections.idleCount,
        recent: b.traffic.window(now),
      }));
    }
    let connections = 0;
    for (const listener of this.#listeners.values()) connections += listener.openConnections;
    const requests = this.#recorded.http.served + this.#recorded.l4.served;
    const cache = this.#responseCache.enabled ? threadCounters(this.#responseCache) : undefined;
    return { pools, connections, requests, cpuMicros: cpuMicros(), cache };
  }

  /** A planned restart: the listening sockets go back to the main thread, open; the connections already accepted are served on. */
  #handBack(id: number): void {
    const listeners: LentListener[] = [];
    for (const [name, running] of this.#listeners) {
      const server = running.handBack();
      if (server !== undefined) listeners.push({ name, server });
    }
    this.#port.postMessage({ type: 'handed-back', id, listeners } satisfies FromWorker, listeners.map((l) => l.server) as unknown as TransferListItem[]);
  }

  /** Graceful stop: stop accepting, let requests finish (up to `timeoutMs`), then cut what is left. Every caller waits for the same stop. */
  #stop(timeoutMs: number): Promise<void> {
    this.#stopping ??= this.#drainAndClose(timeoutMs);
    return this.#stopping;
  }

  async #drainAndClose(timeoutMs: number): Promise<void> {
    const listeners = [...this.#listeners.values()];
    for (const listener of listeners) listener.stopping = true;
    const drained = Promise.all(listeners.map((listener) => listener.drain()));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    const completed = await Promise.race([drained.then(() => true), deadline]);
    clearTimeout(timer);
    if (!completed) {
      let cut = 0;
      for (const listener of listeners) cut += listener.cut();
      this.#logger.warn({ connections: cut, timeoutMs }, 'shutdown timeout: cut the remaining connections');
    }
    for (const mirror of this.#mirrors.values()) mirror.served?.close();
    closeH2cSessions();
    await this.#rateLimits.close();
    await this.#accessLog.close();
  }

  #post(message: FromWorker): void {
    this.#port.postMessage(message);
  }
}

/** CPU time this thread used, µs. */
function cpuMicros(): number {
  const usage = process.threadCpuUsage();
  return usage.user + usage.system;
}

if (parentPort !== null) {
  const port = parentPort;
  const plane = new DataPlane(workerData as WorkerInit, port);
  port.on('message', (message: ToWorker) => {
    try {
      plane.receive(message);
    } catch (error) {
      // A bug handling a control message must not take the data plane down with it; it is logged and the worker keeps serving.
      process.stderr.write(`usher worker: ${(error as Error).stack ?? String(error)}\n`);
    }
  });
}
