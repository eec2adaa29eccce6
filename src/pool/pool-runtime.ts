import type { Balancer, PickContext } from '../balancer/types.ts';
import { acceptAvailable, acceptFallback, acceptFallbackIfFree, acceptIfFree, acceptInPanic, acceptInPanicIfFree, acceptPinned } from './accept.ts';
import { algorithmName, BalancerNotLoadedError, createAlgorithm } from '../balancer/algorithm.ts';
import { UnknownBalancerError } from '../balancer/registry.ts';
import type { Logger } from '../observe/logger.ts';
import type { HashKey, PoolConfig, RetryConfig, TimeoutsConfig } from '../config/types.ts';
import { BackendRuntime } from './backend-runtime.ts';
import type { InFlightCounts } from './in-flight.ts';
import type { AttemptOutcome, AttemptReports, BackendUsage, PoolDataPlane, PublishedPool } from './published.ts';
import { RetryBudget, type RetryWindowRow } from './retry-budget.ts';
import type { PoolMode } from './pool-mode.ts';
import type { StickyCookie } from './sticky.ts';
import { WaitQueue, type Waiter } from './wait-queue.ts';

/**
 * What selecting a backend produced: a backend, `full` (candidates exist but
 * all are at their limit), `none`, or `failed`: the balancer threw (a bug in
 * a custom balancer), which is logged; the request is answered 500.
 */
export type Selection = BackendRuntime | 'full' | 'none' | 'failed';

/** One data plane's rows of a pool's counts that every plane reads. */
export interface PlaneRows {
  readonly inFlight: InFlightCounts;
  readonly retries: RetryWindowRow;
}

/** Injected for tests and embedding. */
export interface PoolRuntimeOptions {
  /** Randomness of balancers; default `Math.random`. */
  readonly random?: () => number;
  /** Balancers' clock; default `performance.now`. */
  readonly now?: () => number;
  /** Where a throwing (custom) balancer is reported. */
  readonly logger?: Logger | undefined;
}

/**
 * One data plane's side of a pool: balancers (and their per-pick state),
 * the wait queue, the retry budget, and a {@link BackendRuntime} per member
 * (connections, tunnels, counters, recent traffic). The request path uses
 * only this: `select`, `attemptStarted`/`attemptEnded`, `hasOtherCandidate`,
 * `enqueue`, `retryBudget`.
 *
 * What it does not own it reads from the control plane's
 * {@link PublishedPool} (mode, membership, weights, availability, settings),
 * and it rebuilds what it derives from that only when told to
 * ({@link PoolDataPlane}), never per request.
 */
export class PoolRuntime implements PoolDataPlane {
  readonly #control: PublishedPool & AttemptReports;
  readonly #inFlight: InFlightCounts;
  readonly #retries: RetryWindowRow;
  readonly #random: () => number;
  readonly #now: () => number;
  #backends: BackendRuntime[] = [];
  #bySlot: (BackendRuntime | undefined)[] = [];
  #primaries: Balancer;
  #backups: Balancer;
  #byStickyToken = new Map<string, BackendRuntime>();
  readonly #queue: WaitQueue;
  #retryBudget: RetryBudget | undefined;
  #budgetSettings = '';
  #timeouts: TimeoutsConfig;
  #closed = false;
  readonly #logger: Logger | undefined;
  /** Throws from the balancer since the last one was logged, and when that was (ms): one line per second at most. */
  #unloggedThrows = 0;
  #lastThrowLoggedAt = -Infinity;

  /**
   * @param control - the pool's control plane, as published (read only) and as the sink of attempt reports.
   * @param rows - this data plane's rows of the pool's shared counts: in-flight attempts and the retry budget's window.
   */
  constructor(control: PublishedPool & AttemptReports, rows: PlaneRows, options: PoolRuntimeOptions = {}) {
    this.#control = control;
    this.#inFlight = rows.inFlight;
    this.#retries = rows.retries;
    this.#random = options.random ?? Math.random;
    this.#now = options.now ?? performance.now.bind(performance);
    this.#logger = options.logger;
    const config = control.config;
    this.#queue = new WaitQueue(config.queueSize, config.queueTimeoutMs);
    this.#timeouts = config.timeouts;
    this.#primaries = this.#backups = this.#buildBalancer([]);
    this.membersChanged();
  }

  get name(): string {
    return this.#control.name;
  }

  get config(): PoolConfig {
    return this.#control.config;
  }

  /** Which backends the pool balances over now; `none`: no backend is available. */
  get mode(): PoolMode {
    return this.#control.mode;
  }

  /** Set when the algorithm hashes a request feature; the proxy computes `ctx.hash` only then. */
  get hashKey(): HashKey | undefined {
    return this.#control.hashKey;
  }

  get sticky(): StickyCookie | undefined {
    return this.#control.sticky;
  }

  /** Undefined when the pool does not retry. */
  get retryBudget(): RetryBudget | undefined {
    return this.#retryBudget;
  }

  /** This plane's side of each member, in the control plane's order. */
  get backends(): readonly BackendRuntime[] {
    return this.#backends;
  }

  /** The member in `slot`, if any. */
  backendAt(slot: number): BackendRuntime | undefined {
    return this.#bySlot[slot];
  }

  get queueLength(): number {
    return this.#queue.length;
  }

  // ---- the request path -------------------------------------------------------------

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
    const mode = this.#control.mode;
    if (stickyToken !== undefined) {
      // A pinned client keeps its backend while it is available, or terminating but still serving (Kubernetes).
      const pinned = this.#byStickyToken.get(stickyToken);
      if (pinned !== undefined && (mode === 'panic' ? acceptInPanic(pinned, ctx) : acceptPinned(pinned, ctx))) return pinned;
    }
    if (mode === 'none') return 'none';
    const accept = mode === 'panic' ? acceptInPanic : mode === 'fallback' ? acceptFallback : acceptAvailable;
    const balancer = mode === 'backup' ? this.#backups : this.#primaries;
    let backend = balancer.pick(ctx, accept) as BackendRuntime | undefined;
    if (backend === undefined && (mode === 'panic' || mode === 'fallback')) backend = this.#backups.pick(ctx, accept) as BackendRuntime | undefined;
    if (backend !== undefined) {
      // A custom balancer must return one of the endpoints it was given; anything else would fail later, far from here.
      if (!(backend instanceof BackendRuntime)) throw new TypeError(`the balancer returned ${JSON.stringify((backend as { key?: unknown }).key)}, which is not one of the pool's backends`);
      return backend;
    }
    const acceptFree = mode === 'panic' ? acceptInPanicIfFree : mode === 'fallback' ? acceptFallbackIfFree : acceptIfFree;
    if (balancer.pick(ctx, acceptFree) !== undefined) return 'full';
    return (mode === 'panic' || mode === 'fallback') && this.#backups.pick(ctx, acceptFree) !== undefined ? 'full' : 'none';
  }

  /**
   * Whether a backend other than `exclude` could take this request now or
   * after a wait. Side-effect free (balancers are not asked, so round-robin
   * state does not move): a retry checks it before giving up a response.
   */
  hasOtherCandidate(ctx: PickContext, exclude: BackendRuntime): boolean {
    const mode = this.#control.mode;
    if (mode === 'none') return false;
    const accept = mode === 'panic' ? acceptInPanicIfFree : mode === 'fallback' ? acceptFallbackIfFree : acceptIfFree;
    for (const backend of this.#backends) {
      if (backend === exclude || !accept(backend, ctx)) continue;
      if (mode === 'panic' || mode === 'fallback' || backend.control.backup === (mode === 'backup')) return true;
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
  attemptStarted(backend: BackendRuntime): void {
    this.#inFlight.started(backend.index);
    backend.counters.requests++;
  }

  /**
   * An attempt on `backend` ended (see {@link AttemptOutcome}). A 5xx
   * `status` counts against the backend for outlier detection. `latencyMs`
   * (-1 for none) feeds the balancer and the backend's recent traffic.
   * Offers the freed slot to queued requests.
   */
  attemptEnded(backend: BackendRuntime, outcome: AttemptOutcome, status: number, latencyMs: number): void {
    const own = this.#inFlight.ended(backend.index);
    const failed = outcome === 'failure' || outcome === 'unreachable';
    if (failed) backend.counters.failures++;
    if (status >= 500) backend.counters.responses5xx++;
    const now = performance.now();
    backend.traffic.record(now, latencyMs, failed || status >= 500);
    if (backend.retired) {
      if (own === 0) backend.connections.close();
    } else if (outcome !== 'unknown') {
      this.#control.attemptReported(backend.index, outcome, failed || status >= 500);
      if (latencyMs >= 0) {
        try {
          (backend.control.backup ? this.#backups : this.#primaries).observe?.(backend, latencyMs, now);
        } catch (error) {
          this.#balancerThrew('observe', error);
        }
      }
    }
    if (this.#queue.length > 0) this.#queue.wake();
  }

  // ---- PoolDataPlane: what the control plane tells this plane --------------------------

  membersChanged(): void {
    const config = this.#control.config;
    this.#queue.configure(config.queueSize, config.queueTimeoutMs);
    this.#configureRetryBudget(config.retry);
    const timeoutsChanged = config.timeouts !== this.#timeouts && JSON.stringify(config.timeouts) !== JSON.stringify(this.#timeouts);
    this.#timeouts = config.timeouts;
    const previous = this.#backends;
    const backends: BackendRuntime[] = [];
    const bySlot: (BackendRuntime | undefined)[] = [];
    for (const member of this.#control.backends) {
      let backend = this.#bySlot[member.slot];
      // A slot whose member changed (a removed backend's slot reused) gets a fresh runtime.
      if (backend === undefined || backend.control !== member) backend = new BackendRuntime(member, this.#inFlight, config.timeouts);
      else if (timeoutsChanged) backend.connections.timeouts = config.timeouts;
      backends.push(backend);
      bySlot[member.slot] = backend;
    }
    for (const backend of previous) if (bySlot[backend.index] !== backend) this.#retire(backend);
    this.#backends = backends;
    this.#bySlot = bySlot;
    for (const backend of backends) backend.weight = backend.control.weight;
    const primaries: BackendRuntime[] = [];
    const backups: BackendRuntime[] = [];
    for (const backend of backends) (backend.control.backup ? backups : primaries).push(backend);
    this.#primaries = this.#buildBalancer(primaries);
    this.#backups = this.#buildBalancer(backups);
    const byStickyToken = new Map<string, BackendRuntime>();
    if (this.#control.sticky !== undefined) for (const backend of backends) byStickyToken.set(backend.control.stickyToken, backend);
    this.#byStickyToken = byStickyToken;
  }

  availabilityChanged(): void {
    if (this.#queue.length > 0) this.#queue.wake();
  }

  weightsChanged(): void {
    for (const backend of this.#backends) backend.weight = backend.control.weight;
  }

  closeIdle(slot: number): void {
    this.#bySlot[slot]?.connections.closeIdle();
  }

  takenOut(slot: number): void {
    const backend = this.#bySlot[slot];
    if (backend === undefined) return;
    // A backend taken out keeps no idle connections: a restarted server must not see stale ones.
    backend.connections.closeIdle();
    this.#closeTunnelsLater(backend);
  }

  usage(slot: number): BackendUsage | undefined {
    return this.#bySlot[slot];
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue.expireAll();
    for (const backend of this.#backends) backend.connections.close();
  }

  // ---- internals ---------------------------------------------------------------

  /** A backend left the membership: no idle connections; busy ones close when this plane's last attempt on it ends. */
  #retire(backend: BackendRuntime): void {
    backend.retired = true;
    backend.connections.closeIdle();
    if (this.#inFlight.own(backend.index) === 0) backend.connections.close();
    this.#closeTunnelsLater(backend);
  }

  /**
   * Tunnels (WebSockets, L4 connections) may outlive a drain by `drainTimeout`:
   * long-lived connections would otherwise keep a drained backend busy forever.
   */
  #closeTunnelsLater(backend: BackendRuntime): void {
    if (backend.tunnels.size === 0) return;
    const timer = setTimeout(() => {
      if (backend.control.enabled && !backend.retired) return;
      for (const tunnel of [...backend.tunnels]) tunnel.close();
    }, this.#control.config.drainTimeoutMs);
    timer.unref();
  }

  /** The budget's window (shared by every data plane) survives reloads and changes of its settings. */
  #configureRetryBudget(retry: RetryConfig): void {
    if (retry.attempts === 0) {
      this.#retryBudget = undefined;
      return;
    }
    const settings = `${retry.budgetPercent}/${retry.minRetriesPerSecond}`;
    if (this.#retryBudget !== undefined && this.#budgetSettings === settings) return;
    this.#retryBudget = new RetryBudget(retry.budgetPercent, retry.minRetriesPerSecond, this.#retries, performance.timeOrigin);
    this.#budgetSettings = settings;
  }

  /** Logs a balancer's exception: the first at once, then at most one line a second with the count in between. */
  #balancerThrew(method: 'pick' | 'observe', error: unknown): void {
    this.#unloggedThrows++;
    const now = performance.now();
    if (now - this.#lastThrowLoggedAt < 1000) return;
    this.#logger?.error(
      { err: error, pool: this.name, algorithm: algorithmName(this.config.algorithm), throws: this.#unloggedThrows },
      method === 'pick' ? 'the balancer threw while picking a backend; the request is answered 500' : 'the balancer threw in observe()',
    );
    this.#unloggedThrows = 0;
    this.#lastThrowLoggedAt = now;
  }

  #buildBalancer(endpoints: readonly BackendRuntime[]): Balancer {
    const config = this.#control.config;
    const build = (): Balancer => {
      try {
        return createAlgorithm(config.algorithm, endpoints, { random: this.#random, now: this.#now, hashBalanceFactor: config.hashBalanceFactor });
      } catch (error) {
        // A name nobody registered, a module never loaded: the config is wrong, and start or reload says so.
        if (error instanceof UnknownBalancerError || error instanceof BalancerNotLoadedError) throw error;
        // A custom balancer's create() failed on this membership (an admin API change, a reload): the pool
        // stays consistent and its requests get 500 balancer_error, as if pick had thrown, until a change builds again.
        this.#logger?.error({ err: error, pool: this.name, algorithm: algorithmName(config.algorithm) }, 'the balancer could not be built; requests to this pool are answered 500');
        return {
          pick: () => {
            throw error;
          },
        };
      }
    };
    if (this.#control.hashKey === undefined) return build();
    // Hash tables are built once from the weights they see: build them from the configured ones, or a
    // backend ramping up (slow start) would keep its reduced share after the ramp (nginx ignores it too).
    for (const backend of endpoints) backend.weight = backend.control.configuredWeight;
    try {
      return build();
    } finally {
      for (const backend of endpoints) backend.weight = backend.control.weight;
    }
  }
}
