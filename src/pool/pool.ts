import type { Accept, Balancer, Endpoint, PickContext } from '../balancer/types.ts';
import { algorithmHashes, algorithmName, BalancerNotLoadedError, createAlgorithm } from '../balancer/algorithm.ts';
import { UnknownBalancerError } from '../balancer/registry.ts';
import type { AdminState, BackendConfig, HashKey, PoolConfig } from '../config/types.ts';
import type { Logger } from '../observe/logger.ts';
import { RetryBudget } from '../proxy/retry-budget.ts';
import { Backend, formatHostPort } from './backend.ts';
import { PoolHealth } from './health/pool-health.ts';
import { StickyCookie } from './sticky.ts';
import { backendTlsOptions, UpstreamConnectionPool } from './upstream-connection.ts';
import { WaitQueue, type Waiter } from './wait-queue.ts';

/**
 * Health, draining, connection limits and "already tried" are decided here,
 * once, for every algorithm: the balancer only ranks candidates (see
 * balancer/types.ts). Module-level functions, so a pick allocates nothing.
 */
const acceptAvailable: Accept = (endpoint, ctx) => {
  const backend = endpoint as Backend;
  return backend.available && backend.inFlight < backend.maxConnections && notTried(backend, ctx);
};

/** Panic mode (Envoy): health is ignored, operator intent and limits are not. */
const acceptInPanic: Accept = (endpoint, ctx) => {
  const backend = endpoint as Backend;
  return (
    backend.adminState === 'enabled' && !backend.removed && backend.inFlight < backend.maxConnections && notTried(backend, ctx)
  );
};

/** Like `acceptAvailable` without the connection limit: "would a slot help?". */
const acceptIfFree: Accept = (endpoint, ctx) => (endpoint as Backend).available && notTried(endpoint as Backend, ctx);
const acceptInPanicIfFree: Accept = (endpoint, ctx) =>
  (endpoint as Backend).adminState === 'enabled' && !(endpoint as Backend).removed && notTried(endpoint as Backend, ctx);

function notTried(backend: Backend, ctx: PickContext): boolean {
  return ctx.tried.length === 0 || !ctx.tried.includes(backend.index);
}

/**
 * Which backends a pool balances over right now; recomputed on every state
 * change, so a request reads one field.
 *  - `primary`: available non-backup backends.
 *  - `backup`: no primary is available (or too few with a panic threshold), backups are.
 *  - `panic`: too few available and no backup: all enabled backends, healthy or not.
 *  - `none`: nothing to offer; requests get 503 at once.
 */
export type PoolMode = 'primary' | 'backup' | 'panic' | 'none';

/** Options that are not part of the config file: injected for tests and embedding. */
export interface PoolOptions {
  readonly random?: () => number;
  readonly now?: () => number;
  readonly logger?: Logger;
}

/**
 * What selecting a backend produced: a backend, `full` (candidates exist but
 * all are at their limit), `none`, or `failed`: the balancer threw (a bug in
 * a custom balancer), which is logged; the request is answered 500.
 */
export type Selection = Backend | 'full' | 'none' | 'failed';

/** A backend as the admin API adds it. */
export type BackendSpec = Pick<BackendConfig, 'address' | 'name' | 'weight' | 'backup' | 'state' | 'maxConnections' | 'tls'>;

/**
 * How an attempt on a backend ended: `success` (a complete response),
 * `failure` (reset, timeout, malformed response or a retried 5xx),
 * `unreachable` (no connection could be made: refused, connect error or
 * timeout), or `unknown` (no verdict: the client left).
 */
export type AttemptOutcome = 'success' | 'failure' | 'unreachable' | 'unknown';

/**
 * A named set of interchangeable backends and the rules for spreading requests
 * over them: balancers, hash key, sticky sessions, health, limits and retries.
 *
 * A pool lives across reloads: `reconfigure` applies a new file while keeping
 * the health, counters and pooled connections of backends that stay.
 */
export class Pool {
  readonly name: string;
  config: PoolConfig;
  #backends: Backend[] = [];
  #primaries: Balancer;
  #backups: Balancer;
  #mode: PoolMode = 'none';
  /** Set when the algorithm hashes a request feature; the proxy computes `ctx.hash` only then. */
  hashKey: HashKey | undefined;
  sticky: StickyCookie | undefined;
  retryBudget: RetryBudget | undefined;
  #byStickyToken = new Map<string, Backend>();
  readonly #queue: WaitQueue;
  readonly health: PoolHealth;
  readonly #options: PoolOptions;
  #nextIndex = 0;
  #closed = false;
  #budgetSettings = '';
  /** Throws from the balancer since the last one was logged, and when that was (ms): one line per second at most. */
  #unloggedThrows = 0;
  #lastThrowLoggedAt = -Infinity;

  constructor(name: string, config: PoolConfig, options: PoolOptions = {}) {
    this.name = name;
    this.config = config;
    this.#options = options;
    this.#queue = new WaitQueue(config.queueSize, config.queueTimeoutMs);
    this.health = new PoolHealth(this, options.random ?? Math.random, options.logger);
    this.#primaries = this.#backups = this.#buildBalancer([]);
    this.#applyPoolSettings(config);
    for (const backend of config.backends) this.#backends.push(this.#newBackend(backend));
    this.#rebuild();
    this.health.configure(config);
  }

  get backends(): readonly Backend[] {
    return this.#backends;
  }

  get mode(): PoolMode {
    return this.#mode;
  }

  get queueLength(): number {
    return this.#queue.length;
  }

  /** The balancer over primary backends (latency feedback goes to it). */
  get balancer(): Balancer {
    return this.#primaries;
  }

  /**
   * The backend a request goes to, or why there is none (see {@link Selection}).
   * The one place balancers are asked to pick, so the one place a throwing
   * balancer is caught: one request fails, not the process.
   */
  select(ctx: PickContext, stickyToken: string | undefined): Selection {
    try {
      return this.#select(ctx, stickyToken);
    } catch (error) {
      this.#balancerThrew('pick', error);
      return 'failed';
    }
  }

  #select(ctx: PickContext, stickyToken: string | undefined): Selection {
    const mode = this.#mode;
    if (mode === 'none') return 'none';
    const accept = mode === 'panic' ? acceptInPanic : acceptAvailable;
    if (stickyToken !== undefined) {
      const pinned = this.#byStickyToken.get(stickyToken);
      if (pinned !== undefined && accept(pinned, ctx)) return pinned;
    }
    const balancer = mode === 'backup' ? this.#backups : this.#primaries;
    let backend = balancer.pick(ctx, accept) as Backend | undefined;
    if (backend === undefined && mode === 'panic') backend = this.#backups.pick(ctx, accept) as Backend | undefined;
    if (backend !== undefined) {
      // A custom balancer must return one of the endpoints it was given; anything else would fail later, far from here.
      if (!(backend instanceof Backend)) throw new TypeError(`the balancer returned ${JSON.stringify((backend as { key?: unknown }).key)}, which is not one of the pool's backends`);
      return backend;
    }
    const acceptFree = mode === 'panic' ? acceptInPanicIfFree : acceptIfFree;
    if (balancer.pick(ctx, acceptFree) !== undefined) return 'full';
    return mode === 'panic' && this.#backups.pick(ctx, acceptFree) !== undefined ? 'full' : 'none';
  }

  /**
   * Whether a backend other than `exclude` could take this request now or
   * after a wait. Side-effect free (balancers are not asked, so round-robin
   * state does not move): a retry checks it before giving up a response.
   */
  hasOtherCandidate(ctx: PickContext, exclude: Backend): boolean {
    const mode = this.#mode;
    if (mode === 'none') return false;
    const accept = mode === 'panic' ? acceptInPanicIfFree : acceptIfFree;
    for (const backend of this.#backends) {
      if (backend === exclude || !accept(backend, ctx)) continue;
      if (mode === 'panic' || backend.backup === (mode === 'backup')) return true;
    }
    return false;
  }

  /** Waits for a slot (see {@link WaitQueue}); false when the queue is full. */
  enqueue(waiter: Waiter): boolean {
    return this.#queue.push(waiter);
  }

  dequeue(waiter: Waiter): void {
    this.#queue.remove(waiter);
  }

  /** An attempt on `backend` started. */
  attemptStarted(backend: Backend): void {
    backend.inFlight++;
    backend.counters.requests++;
  }

  /**
   * An attempt on `backend` ended (see {@link AttemptOutcome}). A 5xx
   * `status` counts against the backend for outlier detection. `latencyMs`
   * (-1 for none) feeds the balancer and the backend's recent traffic.
   * Offers the freed slot to queued requests.
   */
  attemptEnded(backend: Backend, outcome: AttemptOutcome, status: number, latencyMs: number): void {
    backend.inFlight--;
    const failed = outcome === 'failure' || outcome === 'unreachable';
    if (failed) backend.counters.failures++;
    if (status >= 500) backend.counters.responses5xx++;
    const now = performance.now();
    backend.traffic.record(now, latencyMs, failed || status >= 500);
    if (backend.removed) {
      if (backend.inFlight === 0) backend.connections.close();
    } else if (outcome !== 'unknown') {
      if (outcome === 'unreachable') this.health.unreachable(backend);
      else if (backend.connectFailures !== 0) backend.connectFailures = 0; // it answered: the backoff starts over
      this.health.observe(backend, failed || status >= 500);
      if (latencyMs >= 0) {
        try {
          (backend.backup ? this.#backups : this.#primaries).observe?.(backend, latencyMs, now);
        } catch (error) {
          this.#balancerThrew('observe', error);
        }
      }
    }
    if (this.#queue.length > 0) this.#queue.wake();
  }

  // ---- operator and control-plane changes -----------------------------------

  /** The backend with this `host:port` (hostnames compared case-insensitively). */
  find(key: string): Backend | undefined {
    const wanted = key.toLowerCase();
    for (const backend of this.#backends) if (backend.key.toLowerCase() === wanted) return backend;
    return undefined;
  }

  /** Adds a backend at runtime; it starts as the first health check decides, with slow start. */
  add(spec: BackendSpec): Backend {
    const backend = this.#newBackend(spec);
    this.#backends.push(backend);
    this.#rebuild();
    this.health.added(backend, true);
    return backend;
  }

  /** Removes a backend: no new requests; in-flight ones finish, then its connections close. */
  remove(backend: Backend): void {
    const i = this.#backends.indexOf(backend);
    if (i === -1) return;
    this.#backends.splice(i, 1);
    backend.removed = true;
    backend.refresh();
    this.health.removed(backend);
    backend.connections.closeIdle();
    if (backend.inFlight === 0) backend.connections.close();
    this.#closeTunnelsLater(backend);
    this.#rebuild();
  }

  setWeight(backend: Backend, weight: number): void {
    backend.configuredWeight = weight;
    backend.weight = weight;
    this.health.reweigh(backend);
    this.#rebuild();
  }

  setAdminState(backend: Backend, state: AdminState): void {
    const previous = backend.adminState;
    if (previous === state) return;
    backend.adminState = state;
    // A backend taken out keeps no idle connections: a restarted server must not see stale ones.
    if (state !== 'enabled') {
      backend.connections.closeIdle();
      this.#closeTunnelsLater(backend);
    } else {
      this.health.rejoined(backend);
    }
    this.stateChanged();
  }

  /**
   * Tunnels (WebSockets, L4 connections) may outlive a drain by `drainTimeout`:
   * long-lived connections would otherwise keep a drained backend busy forever.
   */
  #closeTunnelsLater(backend: Backend): void {
    if (backend.tunnels.size === 0) return;
    const timer = setTimeout(() => {
      if (backend.adminState === 'enabled' && !backend.removed) return;
      for (const tunnel of [...backend.tunnels]) tunnel.close();
    }, this.config.drainTimeoutMs);
    timer.unref();
  }

  /** Recomputes availability and the pool mode; called after any state change. */
  stateChanged(): void {
    let primaries = 0;
    let primariesUp = 0;
    let backupsUp = 0;
    let enabled = 0;
    for (const backend of this.#backends) {
      backend.refresh();
      if (backend.adminState === 'enabled') enabled++;
      if (backend.backup) {
        if (backend.available) backupsUp++;
        continue;
      }
      if (backend.adminState !== 'enabled') continue;
      primaries++;
      if (backend.available) primariesUp++;
    }
    const threshold = this.config.panicThresholdPercent;
    const tooFew = threshold !== undefined && primariesUp * 100 < threshold * primaries;
    if (primariesUp > 0 && !tooFew) this.#mode = 'primary';
    else if (backupsUp > 0) this.#mode = 'backup';
    else if (threshold !== undefined && enabled > 0) this.#mode = 'panic';
    else this.#mode = primariesUp > 0 ? 'primary' : 'none';
    if (this.#queue.length > 0) this.#queue.wake();
  }

  /**
   * Applies a reloaded pool config. The file is the source of truth: backends
   * it lists keep their health, counters and connections but take its weight,
   * backup flag, state and limit; backends it does not list are removed (also
   * those the admin API added).
   */
  reconfigure(config: PoolConfig): void {
    const previous = this.config;
    this.config = config;
    this.#applyPoolSettings(config);
    const timeoutsChanged = JSON.stringify(previous.timeouts) !== JSON.stringify(config.timeouts);
    const wanted = new Map(config.backends.map((b) => [formatHostPort(b.address), b]));
    for (const backend of [...this.#backends]) {
      const spec = wanted.get(backend.key);
      if (spec === undefined) {
        this.remove(backend);
        continue;
      }
      wanted.delete(backend.key);
      backend.name = spec.name;
      backend.configuredWeight = spec.weight;
      backend.weight = spec.weight;
      backend.backup = spec.backup;
      backend.maxConnections = spec.maxConnections ?? config.maxConnections ?? Infinity;
      if (backend.adminState !== spec.state) this.setAdminState(backend, spec.state);
      if (timeoutsChanged) backend.connections.timeouts = config.timeouts;
    }
    const added: Backend[] = [];
    for (const spec of wanted.values()) {
      const backend = this.#newBackend(spec);
      this.#backends.push(backend);
      added.push(backend);
    }
    // Keep the file's order: balancers that walk the list (round-robin ties) follow it.
    const order = new Map(config.backends.map((b, i) => [formatHostPort(b.address), i]));
    this.#backends.sort((a, b) => order.get(a.key)! - order.get(b.key)!);
    this.#rebuild();
    this.health.configure(config);
    for (const backend of added) this.health.added(backend, true);
  }

  /** Stops health checks, fails queued requests and closes idle upstream connections; busy ones close when released. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.health.stop();
    this.#queue.expireAll();
    for (const backend of this.#backends) backend.connections.close();
  }

  // ---- internals ---------------------------------------------------------------

  /** Logs a balancer's exception: the first at once, then at most one line a second with the count in between. */
  #balancerThrew(method: 'pick' | 'observe', error: unknown): void {
    this.#unloggedThrows++;
    const now = performance.now();
    if (now - this.#lastThrowLoggedAt < 1000) return;
    this.#options.logger?.error(
      { err: error, pool: this.name, algorithm: algorithmName(this.config.algorithm), throws: this.#unloggedThrows },
      method === 'pick' ? 'the balancer threw while picking a backend; the request is answered 500' : 'the balancer threw in observe()',
    );
    this.#unloggedThrows = 0;
    this.#lastThrowLoggedAt = now;
  }

  #applyPoolSettings(config: PoolConfig): void {
    this.#queue.configure(config.queueSize, config.queueTimeoutMs);
    this.sticky = config.sticky === undefined ? undefined : new StickyCookie(config.sticky);
    this.hashKey = algorithmHashes(config.algorithm) ? config.hashKey : undefined;
    const retry = config.retry;
    if (retry.attempts === 0) {
      this.retryBudget = undefined;
    } else if (
      this.retryBudget === undefined ||
      this.#budgetSettings !== `${retry.budgetPercent}/${retry.minRetriesPerSecond}`
    ) {
      this.retryBudget = new RetryBudget(retry.budgetPercent, retry.minRetriesPerSecond);
      this.#budgetSettings = `${retry.budgetPercent}/${retry.minRetriesPerSecond}`;
    }
  }

  #newBackend(spec: BackendSpec): Backend {
    const key = formatHostPort(spec.address);
    return new Backend({
      index: this.#nextIndex++,
      address: spec.address,
      name: spec.name,
      weight: spec.weight,
      backup: spec.backup,
      adminState: spec.state,
      maxConnections: spec.maxConnections ?? this.config.maxConnections ?? Infinity,
      stickyToken: this.sticky === undefined ? '' : this.sticky.token(this.name, key),
      connections: new UpstreamConnectionPool(
        spec.address,
        this.config.timeouts,
        spec.tls === undefined ? undefined : backendTlsOptions(spec.address, spec.tls),
      ),
    });
  }

  /** Rebuilds balancers and lookup tables after a membership or weight change (control plane only). */
  #rebuild(): void {
    const primaries: Endpoint[] = [];
    const backups: Endpoint[] = [];
    for (const backend of this.#backends) (backend.backup ? backups : primaries).push(backend);
    this.#primaries = this.#buildBalancer(primaries);
    this.#backups = this.#buildBalancer(backups);
    const sticky = this.sticky;
    this.#byStickyToken = new Map();
    for (const backend of this.#backends) {
      backend.stickyToken = sticky === undefined ? '' : sticky.token(this.name, backend.key);
      if (sticky !== undefined) this.#byStickyToken.set(backend.stickyToken, backend);
    }
    this.stateChanged();
  }

  #buildBalancer(endpoints: readonly Endpoint[]): Balancer {
    const build = (): Balancer => {
      try {
        return createAlgorithm(this.config.algorithm, endpoints, {
          random: this.#options.random ?? Math.random,
          now: this.#options.now ?? performance.now.bind(performance),
          hashBalanceFactor: this.config.hashBalanceFactor,
        });
      } catch (error) {
        // A name nobody registered, a module never loaded: the config is wrong, and start or reload says so.
        if (error instanceof UnknownBalancerError || error instanceof BalancerNotLoadedError) throw error;
        // A custom balancer's create() failed on this membership (an admin API change, a reload): the pool
        // stays consistent and its requests get 500 balancer_error, as if pick had thrown, until a change builds again.
        this.#options.logger?.error({ err: error, pool: this.name, algorithm: algorithmName(this.config.algorithm) }, 'the balancer could not be built; requests to this pool are answered 500');
        return { pick: () => { throw error; } };
      }
    };
    if (this.hashKey === undefined) return build();
    // Hash tables are built once from the weights they see: build them from the configured
    // weights, or a backend ramping up (slow start) would keep its reduced share after the ramp.
    const ramping = this.#backends.filter((backend) => backend.weight !== backend.configuredWeight);
    const saved = ramping.map((backend) => backend.weight);
    for (const backend of ramping) backend.weight = backend.configuredWeight;
    try {
      return build();
    } finally {
      ramping.forEach((backend, i) => (backend.weight = saved[i]!));
    }
  }
}
