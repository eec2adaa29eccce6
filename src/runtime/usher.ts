import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Server as TlsServer } from 'node:tls';
import { availableParallelism } from 'node:os';
import { AggregatorRegistry, type Registry } from 'prom-client';
import { AdminServer } from '../admin/server.ts';
import { formatIssue, hasUnresolvedModules, resolveModules, type ConfigResult } from '../config/index.ts';
import { UsherConfigError } from '../errors.ts';
import type { AdminState, HostPort, UsherConfig } from '../config/types.ts';
import { createAccessLog, type AccessLog } from '../observe/access-log.ts';
import { silentLogger, type Logger } from '../observe/logger.ts';
import { createMetricsRegistry } from '../observe/metrics.ts';
import { L4Metrics } from '../l4/metrics.ts';
import { declarePoolMetrics } from '../pool/metrics.ts';
import { declareDiscoveryMetrics } from '../discovery/metrics.ts';
import type { Pool, PoolOptions } from '../pool/pool.ts';
import type { PoolRuntime } from '../pool/pool-runtime.ts';
import { HttpMetrics } from '../proxy/metrics.ts';
import { closeH2cSessions } from '../h2/index.ts';
import { CertificateStore } from '../tls/certificate-store.ts';
import { RunningListener } from './listener.ts';
import { declareListenerMetrics } from './listener-metrics.ts';
import { applySnapshot, compileSnapshotRoutes, type Snapshot, type SnapshotMetrics } from './snapshot.ts';
import { WorkerGroup, type WorkerView } from '../workers/group.ts';
import { ResponseCache } from '../cache/response-cache.ts';
import { cacheStats, declareCacheMetrics, purgeCache, type CachePurge, type CacheStats } from '../cache/report.ts';
import { declareCompressMetrics } from '../compress/report.ts';
import { declareWorkerMetrics } from '../workers/metrics.ts';
import { RateLimitStore } from '../ratelimit/store.ts';
import { KubernetesDiscovery, prepareKubernetes, type KubernetesDiscoveryOptions, connectionKey } from '../kubernetes/discovery.ts';
import { KubeClient } from '../kubernetes/client.ts';
import { KubernetesRoutes } from '../kubernetes/routes.ts';
import { withClusterRoutes } from '../kubernetes/merge.ts';
import type { ClusterRoutes } from '../kubernetes/translate.ts';
import type { KubeConnection } from '../kubernetes/connection.ts';
import { KubernetesConfigError } from '../kubernetes/errors.ts';
import { declareKubernetesMetrics } from '../kubernetes/metrics.ts';
import { declareRateLimitMetrics, rateLimitReports, rateLimitTopKeys, resetRateLimitKey, type RateLimitReport, type TopKeysReport } from '../ratelimit/report.ts';
import { purgeOf } from '../admin/api.ts';
import type { BusHandlers, ShareResult } from '../peers/bus.ts';
import { declarePeerMetrics } from '../peers/metrics.ts';
import { Peers, type PeersView } from '../peers/peers.ts';

/** How usher is embedded: everything here has a default suitable for production. */
export interface UsherOptions {
  readonly logger?: Logger;
  /** Overrides `config.accessLog` (tests and benchmarks pass a disabled log). */
  readonly accessLog?: AccessLog;
  readonly poolOptions?: PoolOptions;
  /** Where a reload without a config (SIGHUP, admin API) reads one: the CLI passes its file loader (`loadConfig`). */
  readonly configSource?: () => ConfigResult | Promise<ConfigResult>;
  /** Worker threads when the config has no `runtime` and `USHER_WORKERS` is unset: `usher start` passes `auto`; embedders and tests get 0. */
  readonly defaultWorkers?: 'auto' | number;
  /** Kubernetes discovery: the in-cluster environment and watch timings (tests point them at a fake API server). */
  readonly kubernetes?: Omit<KubernetesDiscoveryOptions, 'logger'>;
}

/** Whether usher should get traffic (the admin API's `/readyz`), and if not, why. */
export interface Readiness {
  readonly ready: boolean;
  readonly reasons: readonly string[];
}

/** The outcome of a reload; on failure nothing changed. */
export type ReloadResult =
  | { readonly ok: true; readonly warnings: readonly string[] }
  | { readonly ok: false; readonly errors: readonly string[] };

/**
 * How often the TLS session-ticket keys are replaced (Caddy's period). A key
 * that leaks decrypts the resumed sessions of at most this long; a client
 * whose ticket predates a rotation makes one full handshake (Node keeps one
 * key set, and tickets live `sessionTimeout`, 300 s by default, anyway).
 */
const TICKET_KEY_ROTATION_MS = 12 * 60 * 60 * 1000;

/**
 * Longest `Usher.start` waits for discovered pools' first lookups. Each lookup
 * is bounded by its source's `timeout` (2 s by default; an SRV source asks
 * twice in a row: the SRV records, then their targets'), so this only caps a
 * config with very long timeouts.
 */
const DISCOVERY_START_WAIT_MS = 10_000;

/**
 * A running usher: its listeners, the snapshot they serve and the admin API.
 * `npm start`, the CLI and the tests all go through this class.
 */
export class Usher {
  readonly logger: Logger;
  /** This usher's metrics (`GET /metrics` on the admin API renders it). */
  readonly metrics: Registry;
  /** The main thread's response cache: it owns the process's store, which every worker thread uses too. */
  readonly responseCache = new ResponseCache();
  /** The process's rate-limit tables: made here, shared with every worker thread. */
  readonly rateLimits = new RateLimitStore(true);
  readonly #recorded: SnapshotMetrics = { http: new HttpMetrics(), l4: new L4Metrics() };
  #snapshot: Snapshot;
  readonly #listeners = new Map<string, RunningListener>();
  readonly #accessLog: AccessLog;
  readonly #options: UsherOptions;
  #admin: AdminServer | undefined;
  /** The data-plane worker threads; undefined when the main thread serves (`runtime.workers: 0`). */
  #group: WorkerGroup | undefined;
  readonly #workers: number;
  #reloading: Promise<ReloadResult> = Promise.resolve({ ok: true, warnings: [] });
  #stopping: Promise<void> | undefined;
  #ticketKeyTimer: NodeJS.Timeout | undefined;
  /** Pools from EndpointSlices: watches on the main thread, members published to every data plane. */
  readonly #kubernetes: KubernetesDiscovery;
  /** The registry and event bus shared with other instances; undefined without a `redis` section. */
  #peers: Peers | undefined;
  /** The config as the file (or the embedder) gave it: what cluster routes are merged into. */
  #fileConfig: UsherConfig;
  /** Routes, pools and certificates from Ingresses and the Gateway API, merged into every config applied. */
  #cluster: ClusterRoutes | undefined;
  /** The controller watching them; undefined without `kubernetes.ingress` or `kubernetes.gateway`. */
  #routes: KubernetesRoutes | undefined;
  #routesKey = '';

  private constructor(config: UsherConfig, options: UsherOptions, kubernetes: KubeConnection | undefined) {
    this.logger = options.logger ?? silentLogger();
    this.#options = options;
    this.#workers = workerCount(config, options.defaultWorkers);
    this.#accessLog = options.accessLog ?? createAccessLog(config.accessLog);
    this.#fileConfig = config;
    // Connected before the pools exist: a pool's `discovery.kubernetes` source subscribes as the pool is made.
    this.#kubernetes = new KubernetesDiscovery({ logger: this.logger, ...options.kubernetes });
    this.#kubernetes.connect(config.kubernetes, kubernetes);
    const pools = (): Iterable<Pool> => this.#snapshot.pools.values();
    // Read at scrape time only: the array costs nothing on the data path.
    const runtimes = (): Iterable<PoolRuntime> => [...this.#snapshot.pools.values()].map((pool) => pool.runtime);
    this.metrics = createMetricsRegistry([
      (registry) => declareListenerMetrics(registry, () => this.#listeners.values()),
      (registry) => declarePoolMetrics(registry, pools),
      (registry) => declareDiscoveryMetrics(registry, pools),
      (registry) => this.#recorded.http.declare(registry, runtimes),
      (registry) => this.#recorded.l4.declare(registry),
      (registry) => declareWorkerMetrics(registry, () => this.workers),
      (registry) => declareCacheMetrics(registry, this.responseCache),
      (registry) => declareCompressMetrics(registry),
      (registry) => declareRateLimitMetrics(registry, this.rateLimits),
      (registry) => declareKubernetesMetrics(registry, () => this.#kubernetes),
      (registry) => declarePeerMetrics(registry, () => this.#peers),
    ]);
    this.#snapshot = applySnapshot(compileSnapshotRoutes(config, this.logger, this.responseCache, this.rateLimits), undefined, this.#accessLog, this.#poolOptions(), this.#recorded).snapshot;
  }

  /**
   * Builds the snapshot and binds every listener (and the admin API); rejects if any bind fails (and closes the others).
   * Balancer modules the config names are loaded first when they are not yet
   * (see `resolveModules`); one that fails rejects with an {@link UsherConfigError}.
   */
  static async start(given: UsherConfig, options: UsherOptions = {}): Promise<Usher> {
    const resolved = await withModules(given);
    if (!resolved.ok) throw new UsherConfigError('the config names modules that cannot be used', resolved.errors.map(formatIssue));
    const config = resolved.config;
    let kubernetes: KubeConnection | undefined;
    try {
      kubernetes = prepareKubernetes(config, options.kubernetes?.environment);
    } catch (err) {
      if (err instanceof KubernetesConfigError) throw new UsherConfigError('the kubernetes section cannot be used', [err.message]);
      throw err;
    }
    const usher = new Usher(config, options, kubernetes);
    try {
      await usher.#firstLookups();
      if (usher.#workers > 0) {
        const group = new WorkerGroup(
          usher.#workers,
          { logger: usher.logger, pools: () => usher.#snapshot.pools.values(), config: () => usher.#snapshot.config, rateLimits: (c) => usher.rateLimits.share(c.rateLimits), cache: () => usher.responseCache.share() },
          // An access log given as an object (tests, --no-access-log) cannot cross threads; a disabled one is honoured.
          { log: config.log, accessLog: options.accessLog?.enabled === false ? { ...config.accessLog, enabled: false } : config.accessLog, ticketKeys: randomBytes(48) },
        );
        usher.#group = group;
        await group.start(config);
        for (const listener of config.listeners) usher.logger.info({ listener: listener.name, address: usher.url(listener.name), workers: group.size }, 'listening');
      } else {
        for (const listener of config.listeners) {
          const running = await RunningListener.bind(listener, usher.#snapshot, usher.logger);
          usher.#listeners.set(listener.name, running);
          usher.logger.info({ listener: listener.name, address: usher.url(listener.name) }, 'listening');
        }
      }
      if (config.admin !== undefined) {
        usher.#admin = await AdminServer.start(config.admin, usher);
        usher.logger.info({ address: usher.#admin.url }, 'admin API listening');
      }
      // After the admin API: peers learn its address from the registry. Never waits for Redis.
      if (config.redis !== undefined) {
        const peers = Peers.start(config.redis, { config: () => usher.#snapshot.config, admin: () => usher.adminUrl ?? null, handlers: usher.#peerHandlers(), logger: usher.logger });
        usher.#peers = peers;
        // While Redis is away, `onStoreError: local` enforces each limit ÷ the instances last seen alive.
        usher.rateLimits.setLiveInstances(() => peers.liveInstances());
      }
      // Routes from the cluster: applied like a reload once listed (bounded wait, as for discovery).
      usher.#configureRoutes(config, kubernetes);
      if (usher.#routes !== undefined) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([usher.#routes.firstApplied, new Promise<void>((resolve) => (timer = setTimeout(resolve, DISCOVERY_START_WAIT_MS)))]);
        clearTimeout(timer);
      }
      usher.#ticketKeyTimer = setInterval(() => {
        usher.rotateTicketKeys().catch((err: unknown) => usher.logger.error({ err }, 'rotating the TLS session-ticket keys failed; the old keys stay'));
      }, TICKET_KEY_ROTATION_MS).unref();
    } catch (err) {
      await usher.stop({ timeoutMs: 0 });
      throw err;
    }
    return usher;
  }

  get snapshot(): Snapshot {
    return this.#snapshot;
  }

  /** Kubernetes discovery (its reflectors and counts), for tests and the admin API. */
  get kubernetes(): KubernetesDiscovery {
    return this.#kubernetes;
  }

  /**
   * Ready for traffic: not stopping, and every Service that pools are
   * discovered from has been listed once (until then those pools would
   * answer 503). Losing the API server later does not make usher unready:
   * it keeps serving the last known endpoints.
   */
  readiness(): Readiness {
    const reasons: string[] = [];
    if (this.#stopping !== undefined) reasons.push('stopping');
    if (!this.#kubernetes.synced) reasons.push('waiting for the first list of the EndpointSlices that pools are discovered from');
    if (this.#routes !== undefined && !this.#routes.synced) reasons.push('waiting for the first routes from Ingresses and the Gateway API');
    return { ready: reasons.length === 0, reasons };
  }

  /**
   * Waits for every discovered pool's first round of lookups (bounded by
   * their timeouts, at most {@link DISCOVERY_START_WAIT_MS}), so a pool whose
   * name resolves serves from the first request; one that does not starts
   * empty (503 no_backend) and fills when a lookup answers.
   */
  async #firstLookups(): Promise<void> {
    const pools = [...this.#snapshot.pools.values()].filter((pool) => pool.discovery.active);
    if (pools.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const capped = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), DISCOVERY_START_WAIT_MS)));
    await Promise.race([Promise.all(pools.map((pool) => pool.discovery.ready())), capped]);
    clearTimeout(timer);
    for (const pool of pools) {
      if (pool.control.discovered.length > 0) continue;
      const empty = pool.control.backends.length === 0 ? 'requests get 503 no_backend' : 'only its file backends serve';
      this.logger.warn({ pool: pool.name, discovery: pool.discovery.view() }, `pool ${pool.name} starts without discovered members: ${empty} until a lookup answers`);
    }
  }

  /** The bound address of a listener (useful with port 0). */
  address(listener: string): AddressInfo {
    const address = this.#group !== undefined ? this.#group.address(listener) : this.#listeners.get(listener)?.server.address();
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
    if (this.#group !== undefined) return this.#snapshot.config.listeners.map((listener) => listener.name);
    return [...this.#listeners.keys()];
  }

  /** The data-plane worker threads; empty when the main thread serves. */
  get workers(): readonly WorkerView[] {
    return this.#group?.views ?? [];
  }

  /** A planned restart of worker `index` (see {@link WorkerGroup.restart}); no connection is refused or reset. */
  async restartWorker(index: number): Promise<void> {
    if (this.#group === undefined) throw new Error('usher runs no worker threads (runtime.workers: 0)');
    await this.#group.restart(index);
  }

  /** Refreshes what the control plane knows of the workers' traffic (counters, connections, recent traffic); the admin API reads it fresh. */
  async refresh(): Promise<void> {
    await this.#group?.collect(false);
  }

  /** The response cache: the store's numbers now, the threads' request counters as last reported (at most a second old); undefined when no route caches. */
  cacheStats(): CacheStats | undefined {
    if (!this.responseCache.enabled) return undefined;
    return cacheStats(this.responseCache, [this.responseCache.counters, ...(this.#group?.cacheCounters ?? [])]);
  }

  /**
   * The response cache, after `purge` if given: the process has one store,
   * so a purge is applied once, here, and every thread sees it at once. The
   * threads' request counters are read fresh.
   */
  async cache(purge?: CachePurge): Promise<{ purged: number; stats: CacheStats }> {
    const purged = purge === undefined ? 0 : purgeCache(this.responseCache, purge);
    const workers = this.#group === undefined ? [] : await this.#group.cache();
    return { purged, stats: cacheStats(this.responseCache, [this.responseCache.counters, ...workers]) };
  }

  /** The instances sharing this usher's Redis (registry and event bus); undefined without a `redis` section. */
  get peers(): Peers | undefined {
    return this.#peers;
  }

  /** `GET /api/peers`: the live instances, whether their configs differ, the bus's counters. */
  peersView(): PeersView | undefined {
    return this.#peers?.view();
  }

  /** Sends a purge (applied here already) to every peer. */
  sharePurge(body: Readonly<Record<string, unknown>>): Promise<ShareResult> | undefined {
    return this.#peers?.bus.publishPurge(body);
  }

  /** Sends a backend's operator state (set here already) to every peer, when `redis.shareAdminActions` is on. */
  shareBackendState(pool: string, backend: string, state: AdminState): Promise<ShareResult> | undefined {
    return this.#peers?.bus.publishBackendState(pool, backend, state);
  }

  /** What this usher does with a message from a peer: what its own admin API would do. */
  #peerHandlers(): BusHandlers {
    return {
      purge: async (body) => (await this.cache(purgeOf(body))).purged,
      backendState: async (poolName, key, state) => {
        const pool = this.#snapshot.pools.get(poolName);
        const backend = pool?.control.find(key);
        if (pool === undefined || backend === undefined) return false;
        pool.control.setAdminState(backend, state);
        await this.settled();
        return true;
      },
    };
  }

  /** The rate-limit policies with their numbers, every thread's (they count into shared tables). */
  rateLimitReports(): RateLimitReport[] {
    return rateLimitReports(this.rateLimits, this.#snapshot.config.rateLimits);
  }

  /** Forgets what policy `policy` counted for `key`; undefined when there is no such policy, false when the key had no state. */
  resetRateLimit(policy: string, key: string): boolean | undefined {
    return resetRateLimitKey(this.rateLimits, this.#snapshot.config.rateLimits, policy, key);
  }

  /** The most limited and busiest keys of policy `policy` (every thread's); undefined when there is no such policy. */
  rateLimitTopKeys(policy: string): TopKeysReport | undefined {
    return rateLimitTopKeys(this.rateLimits, this.#snapshot.config.rateLimits, policy);
  }

  /**
   * New TLS session-ticket keys for every https listener, in every worker;
   * resolves once all have them. Runs every 12 h on its own.
   */
  async rotateTicketKeys(): Promise<void> {
    const keys = randomBytes(48);
    if (this.#group !== undefined) await this.#group.setTicketKeys(keys);
    for (const listener of this.#listeners.values()) if (listener.protocol === 'https') (listener.server as TlsServer).setTicketKeys(keys);
    this.logger.info('TLS session-ticket keys rotated');
  }

  /** Resolves once every worker thread applied the control-plane changes made so far (the admin API answers a change only then). */
  async settled(): Promise<void> {
    await this.#group?.barrier();
  }

  /**
   * Prometheus text of every thread's metrics: the control plane's (health,
   * state, weights, in-flight, summed usage) and each worker's traffic
   * (requests, durations, bytes, connections), summed series by series.
   */
  async renderMetrics(): Promise<string> {
    const group = this.#group;
    if (group === undefined) return this.metrics.metrics();
    const workers = await group.collect();
    const all: unknown[] = [await this.metrics.getMetricsAsJSON(), ...workers.map((w) => w.metrics)];
    return AggregatorRegistry.aggregate(all as Parameters<typeof AggregatorRegistry.aggregate>[0]).metrics();
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
    const next = this.#reloading.then(async () => {
      // Compiling the new config sets the response cache up for it (a new store for new limits): undone on failure.
      const cache = this.responseCache.checkpoint();
      const result = await this.#reload(config);
      if (!result.ok) this.responseCache.restore(cache);
      return result;
    });
    this.#reloading = next;
    return next;
  }

  /** The controller of usher's IngressClass and GatewayClass (its counts, what it applied), when configured. */
  get kubernetesRoutes(): KubernetesRoutes | undefined {
    return this.#routes;
  }

  /** Swaps routes from the cluster in, like a reload of the same file; resolves with the errors when refused (nothing changed). */
  async #applyCluster(routes: ClusterRoutes): Promise<readonly string[]> {
    // New pools first, under the routes already served, so that no route points at a pool that has not listed its endpoints yet (a 503).
    const fresh = [...routes.pools.keys()].filter((name) => !this.#snapshot.pools.has(name));
    if (fresh.length > 0) {
      const previous = this.#cluster;
      const staged: ClusterRoutes = previous === undefined
        ? { ...routes, routes: new Map(), certificates: new Map() }
        : { ...previous, pools: new Map([...previous.pools, ...routes.pools]) };
      const errors = await this.#swapCluster(staged);
      if (errors.length > 0) return errors;
      const pools = fresh.map((name) => this.#snapshot.pools.get(name)).filter((pool) => pool !== undefined);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(pools.map((pool) => pool.discovery.ready())), new Promise<void>((resolve) => (timer = setTimeout(resolve, DISCOVERY_START_WAIT_MS)))]);
      clearTimeout(timer);
      await this.settled(); // every worker has the members
    }
    return this.#swapCluster(routes);
  }

  #swapCluster(routes: ClusterRoutes): Promise<readonly string[]> {
    const next = this.#reloading.then(async () => {
      const previous = this.#cluster;
      this.#cluster = routes;
      const cache = this.responseCache.checkpoint();
      const result = await this.#reload(undefined, true);
      if (!result.ok) {
        this.#cluster = previous;
        this.responseCache.restore(cache);
      }
      return result;
    });
    this.#reloading = next;
    return next.then((result) => (result.ok ? [] : result.errors));
  }

  /** Starts, restarts or stops the route controller for the file's `kubernetes` section. */
  #configureRoutes(file: UsherConfig, connection: KubeConnection | undefined): void {
    const section = file.kubernetes;
    const wanted = connection !== undefined && (section?.ingress !== undefined || section?.gateway !== undefined);
    // The credentials are part of the key: a reload that rotates a static token or certificate restarts the controller on them.
    const key = wanted ? connectionKey(section, connection) : '';
    if (key === this.#routesKey) return;
    this.#routesKey = key;
    const old = this.#routes;
    this.#routes = undefined;
    if (old !== undefined) void old.stop();
    if (!wanted || section === undefined) return;
    const client = new KubeClient(connection, { userAgent: 'usher (kubernetes routes)' });
    const routes: KubernetesRoutes = new KubernetesRoutes({
      client,
      config: section,
      logger: this.logger,
      ...(this.#options.kubernetes?.timing === undefined ? {} : { timing: this.#options.kubernetes.timing }),
      apply: (translated): Promise<readonly string[]> => (this.#routes === routes ? this.#applyCluster(translated) : Promise.resolve(['the route controller was replaced'])),
    });
    this.#routes = routes;
    const stop = routes.stop.bind(routes);
    routes.stop = async () => {
      await stop();
      client.close();
    };
    routes.start();
  }

  async #reload(given: UsherConfig | undefined, fromCluster = false): Promise<ReloadResult> {
    if (this.#stopping !== undefined) return { ok: false, errors: ['usher is stopping'] };
    let config = given;
    let warnings: string[] = [];
    if (config === undefined && fromCluster) config = this.#fileConfig;
    if (config === undefined) {
      const source = this.#options.configSource;
      if (source === undefined) return { ok: false, errors: ['no config file to reload from (usher was started without -c)'] };
      const result = await source();
      if (!result.ok) return this.#rejected(result.errors.map(formatIssue));
      config = result.config;
      warnings = result.warnings.map(formatIssue);
    }
    const resolved = await withModules(config);
    if (!resolved.ok) return this.#rejected(resolved.errors.map(formatIssue));
    const file = resolved.config;
    try {
      // Without an ingress or gateway section, the cluster's routes go.
      const section = file.kubernetes;
      const cluster = section?.ingress === undefined && section?.gateway === undefined ? undefined : this.#cluster;
      config = withClusterRoutes(file, cluster);
    } catch (err) {
      return this.#rejected([(err as Error).message]);
    }
    let compiled;
    try {
      compiled = compileSnapshotRoutes(config, this.logger, this.responseCache, this.rateLimits);
    } catch (err) {
      return this.#rejected([(err as Error).message]);
    }
    // Certificates are read now: a missing or broken file fails the reload before anything changed.
    const certificates = new Map<string, CertificateStore>();
    try {
      for (const listener of config.listeners) {
        if (listener.protocol === 'https' && listener.tls !== undefined) certificates.set(listener.name, new CertificateStore(listener.tls));
      }
    } catch (err) {
      return this.#rejected([(err as Error).message]);
    }
    let kubernetes: KubeConnection | undefined;
    try {
      kubernetes = prepareKubernetes(config, this.#options.kubernetes?.environment);
    } catch (err) {
      return this.#rejected([(err as Error).message]);
    }
    const committed = (): void => {
      this.#fileConfig = file;
      if (!fromCluster) this.#configureRoutes(file, kubernetes);
    };
    if (this.#group !== undefined) {
      const result = await this.#reloadWorkers(config, warnings, kubernetes);
      if (result.ok) committed();
      return result;
    }
    // Bind new listeners first: a port that cannot be bound fails the reload before anything changed.
    const bound = new Map<string, RunningListener>();
    for (const listener of config.listeners) {
      const running = this.#listeners.get(listener.name);
      if (running !== undefined && sameBind(running.bind, listener.bind) && running.protocol === listener.protocol) continue;
      try {
        // Until the swap below the new listener has no plan: its connections wait, unread.
        bound.set(listener.name, await RunningListener.bind(listener, undefined, this.logger));
      } catch (err) {
        for (const fresh of bound.values()) fresh.abandon();
        return this.#rejected([(err as Error).message]);
      }
    }
    const previousConfig = this.#snapshot.config;
    this.#kubernetes.connect(config.kubernetes, kubernetes); // before the pools' sources are (re)configured
    const { snapshot, retiredPools } = applySnapshot(compiled, this.#snapshot, this.#accessLog, this.#poolOptions(), this.#recorded);
    this.#snapshot = snapshot;
    const retiring: RunningListener[] = [];
    const configs = new Set(config.listeners.map((listener) => listener.name));
    for (const [name, running] of this.#listeners) {
      if (configs.has(name) && !bound.has(name)) running.update(snapshot, certificates.get(name));
      else retiring.push(running);
    }
    for (const running of retiring) this.#listeners.delete(running.name);
    for (const [name, running] of bound) {
      running.activate(snapshot);
      this.#listeners.set(name, running);
      this.logger.info({ listener: name, address: this.url(name) }, 'listening');
    }
    this.#retire(retiring, retiredPools);
    this.rateLimits.retain(config.rateLimits);
    if (config.admin !== undefined) this.#admin?.configure(config.admin);
    this.#restartOnlyWarnings(config, previousConfig, warnings);
    committed();
    this.logger.info({ listeners: config.listeners.length, pools: Object.keys(config.pools).length, warnings, ...(fromCluster ? { from: 'kubernetes routes' } : {}) }, 'config reloaded');
    return { ok: true, warnings };
  }

  /**
   * A reload with worker threads, in two phases: every worker prepares the
   * new config (and the main thread binds new listeners' sockets); only when
   * all succeed does the control plane apply it and every worker commit.
   */
  async #reloadWorkers(config: UsherConfig, warnings: string[], kubernetes: KubeConnection | undefined): Promise<ReloadResult> {
    const group = this.#group!;
    const previousConfig = this.#snapshot.config;
    const before = new Map(previousConfig.listeners.map((listener) => [listener.name, listener]));
    const changed = config.listeners.filter((listener) => {
      const old = before.get(listener.name);
      return old === undefined || !sameBind(old.bind, listener.bind) || old.protocol !== listener.protocol;
    });
    // Prepare and commit run alone: no planned restart or crash replacement starts a thread between them.
    const errors = await group.exclusive(async () => {
      const failed = await group.prepare(config, changed);
      if (failed.length > 0) return failed;
      const compiled = compileSnapshotRoutes(config, this.logger, this.responseCache, this.rateLimits);
      const previousPools = this.#snapshot.pools;
      this.#kubernetes.connect(config.kubernetes, kubernetes); // before the pools' sources are (re)configured
      const { snapshot, retiredPools } = applySnapshot(compiled, this.#snapshot, this.#accessLog, this.#poolOptions(), this.#recorded);
      this.#snapshot = snapshot;
      for (const pool of snapshot.pools.values()) if (previousPools.get(pool.name) !== pool) group.attachPool(pool);
      await group.commit();
      for (const pool of retiredPools) pool.close();
      return [];
    });
    if (errors.length > 0) return this.#rejected(errors);
    this.rateLimits.retain(config.rateLimits);
    if (config.admin !== undefined) this.#admin?.configure(config.admin);
    this.#restartOnlyWarnings(config, previousConfig, warnings);
    this.logger.info({ listeners: config.listeners.length, pools: Object.keys(config.pools).length, workers: group.size, warnings }, 'config reloaded');
    return { ok: true, warnings };
  }

  #restartOnlyWarnings(config: UsherConfig, previousConfig: UsherConfig, warnings: string[]): void {
    // The peers' shareAdminActions applies now; the rest of the redis section at the next restart.
    if (this.#peers !== undefined) warnings.push(...this.#peers.configure(config.redis));
    else if (config.redis !== undefined) warnings.push('adding a redis section takes effect at the next restart');
    if (JSON.stringify(config.admin?.bind) !== JSON.stringify(previousConfig.admin?.bind)) {
      warnings.push('admin.bind changes take effect at the next restart');
    }
    // Both logs are opened once, at start (their streams may hold buffered lines).
    if (JSON.stringify(config.accessLog) !== JSON.stringify(previousConfig.accessLog)) {
      warnings.push('accessLog changes take effect at the next restart');
    }
    if (JSON.stringify(config.log) !== JSON.stringify(previousConfig.log)) {
      warnings.push('log changes take effect at the next restart');
    }
    if (workerCount(config, this.#options.defaultWorkers) !== this.#workers) warnings.push('runtime.workers changes take effect at the next restart');
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
    const given = this.#options.poolOptions;
    return { logger: this.logger, dataPlanes: WorkerGroup.planes(this.#workers), ...given, discovery: { ...given?.discovery, kubernetes: this.#kubernetes } };
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
    clearInterval(this.#ticketKeyTimer);
    // First: peers drop this instance from their lists at once, and no peer message arrives while it stops.
    await this.#peers?.stop();
    // Stop watching first: pools keep their last members while requests drain.
    await this.#routes?.stop();
    await this.#kubernetes.close();
    await this.#group?.stop(timeoutMs);
    const listeners = [...this.#listeners.values()];
    for (const listener of listeners) listener.stopping = true;
    const drained = Promise.all(listeners.map((listener) => listener.drain()));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const completed = await Promise.race([drained.then(() => true), deadline]);
    clearTimeout(timer);
    if (!completed) {
      let cut = 0;
      for (const listener of listeners) cut += listener.cut();
      this.logger.warn({ connections: cut, timeoutMs }, 'shutdown timeout: cut the remaining connections');
    }
    for (const pool of this.#snapshot.pools.values()) pool.close();
    closeH2cSessions();
    await this.rateLimits.close();
    await this.#admin?.close();
    await this.#accessLog.close();
    this.logger.info('stopped');
  }
}

/** `config` with its modules loaded (the config itself when there is nothing to load), or why they cannot be. */
async function withModules(config: UsherConfig): Promise<ConfigResult> {
  return hasUnresolvedModules(config) ? resolveModules({ ok: true, config, warnings: [] }) : { ok: true, config, warnings: [] };
}

/**
 * Data-plane worker threads for `config`: `USHER_WORKERS` when set, else
 * `runtime.workers` (`auto`: one per CPU this process may use), else
 * `fallback` (0 unless the caller says: `usher start` says `auto`).
 */
export function workerCount(config: UsherConfig, fallback: 'auto' | number = 0, env: NodeJS.ProcessEnv = process.env): number {
  const fromEnv = env['USHER_WORKERS'];
  const wanted = fromEnv !== undefined && fromEnv !== '' ? (fromEnv === 'auto' ? 'auto' : Number(fromEnv)) : (config.runtime?.workers ?? fallback);
  if (wanted === 'auto') return availableParallelism();
  return Number.isInteger(wanted) && wanted >= 0 ? Math.min(64, wanted) : 0;
}

function sameBind(a: HostPort, b: HostPort): boolean {
  return a.host === b.host && a.port === b.port;
}

function urlOf({ address, port, family }: AddressInfo): string {
  return family === 'IPv6' ? `http://[${address}]:${port}` : `http://${address}:${port}`;
}
