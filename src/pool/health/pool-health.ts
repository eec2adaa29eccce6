import type { PoolConfig } from '../../config/types.ts';
import type { Logger } from '../../observe/logger.ts';
import type { BackendControl } from '../backend-control.ts';
import { ActiveHealthCheck, type ProbeResult } from './active-check.ts';
import { OutlierDetector, newOutlierState, type OutlierState } from './outlier.ts';
import { slowStartFactor } from './slow-start.ts';

/** What PoolHealth needs from its pool's control plane. */
export interface HealthHost {
  readonly name: string;
  readonly backends: readonly BackendControl[];
  /** A state field changed: recompute availability and the mode, and tell the data planes. */
  stateChanged(): void;
  /** The backend left rotation: data planes keep no idle connection to it (a restarted server must not see stale ones). */
  closeIdle(backend: BackendControl): void;
  /** Slow start changed effective weights: data planes take the new ones. */
  weightsChanged(): void;
}

/**
 * The health mechanisms of one pool, which no single anchor combines: active
 * checks (HAProxy's rise/fall), passive ejection of backends that refuse
 * connections (nginx's `max_fails=1`, on by default) and of backends that fail
 * real traffic (Envoy's outlier detection), and slow start for backends that
 * come back (Envoy's 10% → 100% linear ramp). Each only sets a field on the
 * backend's control record and asks the pool to recompute availability;
 * nothing here runs per request except the outlier counters. It is control
 * plane: one set of checks per pool, however many data planes serve it.
 */
export class PoolHealth {
  readonly #host: HealthHost;
  readonly #random: () => number;
  readonly #logger: Logger | undefined;
  #checkConfig = '';
  #config: PoolConfig | undefined;
  readonly #checks = new Map<BackendControl, ActiveHealthCheck>();
  #outlier: OutlierDetector | undefined;
  #outlierConfig = 'null';
  readonly #outlierStates = new Map<BackendControl, OutlierState>();
  readonly #ejectionTimers = new Map<BackendControl, NodeJS.Timeout>();
  readonly #unreachableTimers = new Map<BackendControl, NodeJS.Timeout>();
  #slowStartTicker: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(host: HealthHost, random: () => number, logger?: Logger) {
    this.#host = host;
    this.#random = random;
    this.#logger = logger;
  }

  /** Applies a pool config (at start and on reload); checks restart only when their settings changed. */
  configure(config: PoolConfig): void {
    this.#config = config;
    const checkConfig = JSON.stringify(config.healthCheck ?? null);
    if (checkConfig !== this.#checkConfig) {
      this.#checkConfig = checkConfig;
      for (const check of this.#checks.values()) check.stop();
      this.#checks.clear();
      if (config.healthCheck === undefined) {
        // Without checks nothing would ever bring a backend back: trust them all.
        for (const backend of this.#host.backends) backend.healthy = true;
      }
    }
    const outlier = config.outlier;
    const outlierConfig = JSON.stringify(outlier ?? null);
    if (outlier === undefined) {
      this.#outlier = undefined;
      for (const backend of this.#host.backends) this.#release(backend, false);
    } else if (outlierConfig !== this.#outlierConfig) {
      // New settings: start counting afresh. Backends ejected under the old ones return now,
      // so the new detector's count of ejected backends is true from the start.
      for (const backend of this.#host.backends) this.#release(backend, false);
      this.#outlierStates.clear();
      this.#outlier = new OutlierDetector(outlier, () => this.#host.backends.length);
    }
    this.#outlierConfig = outlierConfig;
    if (config.unreachable === false) for (const backend of this.#host.backends) this.#reachable(backend, false);
    for (const backend of this.#host.backends) this.#ensureCheck(backend);
    this.#host.stateChanged();
  }

  /** A backend joined the pool after start (admin API or reload). */
  added(backend: BackendControl, slowStart: boolean): void {
    this.#ensureCheck(backend);
    if (slowStart) this.#beginSlowStart(backend);
  }

  removed(backend: BackendControl): void {
    this.#checks.get(backend)?.stop();
    this.#checks.delete(backend);
    const state = this.#outlierStates.get(backend);
    if (state !== undefined) this.#outlier?.forget(state);
    this.#outlierStates.delete(backend);
    clearTimeout(this.#ejectionTimers.get(backend));
    this.#ejectionTimers.delete(backend);
    clearTimeout(this.#unreachableTimers.get(backend));
    this.#unreachableTimers.delete(backend);
  }

  /** An operator enabled a backend again: it ramps up like one that recovered. */
  rejoined(backend: BackendControl): void {
    this.#beginSlowStart(backend);
  }

  /** The configured weight changed: keep the ramp's proportion. */
  reweigh(backend: BackendControl): void {
    if (backend.slowStartSince !== 0) this.#tickSlowStart();
  }

  /** Recent check results of a backend, oldest first (for the admin API and dashboard). */
  recentChecks(backend: BackendControl): readonly (ProbeResult & { at: number })[] {
    return this.#checks.get(backend)?.recent ?? [];
  }

  /** Outlier state of a backend, when outlier detection is on. */
  outlierState(backend: BackendControl): Readonly<OutlierState> | undefined {
    return this.#outlierStates.get(backend);
  }

  /** One finished attempt: passive health learns from real traffic. */
  observe(backend: BackendControl, failed: boolean): void {
    const detector = this.#outlier;
    if (detector === undefined) return;
    let state = this.#outlierStates.get(backend);
    if (state === undefined) {
      state = newOutlierState();
      this.#outlierStates.set(backend, state);
    }
    if (!failed) {
      detector.onSuccess(state);
      return;
    }
    const now = Date.now();
    if (!detector.onFailure(state, now)) return;
    backend.ejected = true;
    backend.ejections++;
    this.#host.closeIdle(backend);
    const ms = Math.max(0, state.ejectedUntil - now);
    this.#logger?.warn({ pool: this.#host.name, backend: backend.key, ejectedForMs: ms, ejections: state.ejections }, 'backend ejected');
    const timer = setTimeout(() => this.#release(backend, true), ms);
    timer.unref();
    this.#ejectionTimers.set(backend, timer);
    this.#host.stateChanged();
  }

  /**
   * A connection to the backend could not be made (refused, connect error or
   * timeout): it leaves rotation at once, without waiting for a health check,
   * and is tried again after the pool's `unreachable` backoff, which doubles
   * with every refusal until the backend answers again. Never the pool's last
   * available backend: taking that one out would turn "probably down" into
   * "certainly 503" (nginx never marks down a lone server either).
   * Refusals while it is out (attempts that were already connecting) are
   * ignored, so one outage counts once.
   */
  unreachable(backend: BackendControl): void {
    const config = this.#config?.unreachable;
    if (config === undefined || config === false || backend.unreachable || this.#stopped) return;
    if (!this.#host.backends.some((other) => other !== backend && other.available)) return;
    const ms = Math.min(config.maxBackoffMs, config.backoffMs * 2 ** Math.min(backend.connectFailures, 30));
    backend.connectFailures++;
    backend.unreachable = true;
    this.#logger?.warn({ pool: this.#host.name, backend: backend.key, outForMs: ms }, 'backend unreachable');
    const timer = setTimeout(() => this.#reachable(backend, true), ms);
    timer.unref();
    this.#unreachableTimers.set(backend, timer);
    this.#host.stateChanged();
  }

  stop(): void {
    this.#stopped = true;
    for (const check of this.#checks.values()) check.stop();
    this.#checks.clear();
    for (const timer of this.#ejectionTimers.values()) clearTimeout(timer);
    this.#ejectionTimers.clear();
    for (const timer of this.#unreachableTimers.values()) clearTimeout(timer);
    this.#unreachableTimers.clear();
    clearInterval(this.#slowStartTicker);
    this.#slowStartTicker = undefined;
  }

  // ---- internals ---------------------------------------------------------------

  #ensureCheck(backend: BackendControl): void {
    const config = this.#config?.healthCheck;
    if (config === undefined || this.#stopped || this.#checks.has(backend)) return;
    const check = new ActiveHealthCheck(
      backend.address,
      config,
      {
        onTransition: (healthy, last) => this.#onTransition(backend, healthy, last),
        onResult: (result) => {
          if (result.ok) backend.checks.passed++;
          else backend.checks.failed++;
          // A passing check proves the backend accepts connections again: no need to sit out the backoff.
          if (result.ok && backend.unreachable) this.#reachable(backend, true);
        },
      },
      { random: this.#random, initiallyHealthy: backend.healthy, tls: backend.tls },
    );
    this.#checks.set(backend, check);
    check.start();
  }

  #onTransition(backend: BackendControl, healthy: boolean, last: ProbeResult): void {
    if (backend.healthy === healthy) return;
    backend.healthy = healthy;
    if (healthy) this.#beginSlowStart(backend);
    else this.#host.closeIdle(backend);
    this.#logger?.[healthy ? 'info' : 'warn']({ pool: this.#host.name, backend: backend.key, check: last.detail }, healthy ? 'backend healthy' : 'backend unhealthy');
    this.#host.stateChanged();
  }

  #release(backend: BackendControl, slowStart: boolean): void {
    clearTimeout(this.#ejectionTimers.get(backend));
    this.#ejectionTimers.delete(backend);
    const state = this.#outlierStates.get(backend);
    // The timer fired at ejectedUntil; the clock may read a millisecond earlier than the detector expects.
    if (state !== undefined) this.#outlier?.release(state, Math.max(Date.now(), state.ejectedUntil));
    if (!backend.ejected) return;
    backend.ejected = false;
    if (slowStart) this.#beginSlowStart(backend);
    this.#logger?.info({ pool: this.#host.name, backend: backend.key }, 'backend returned after ejection');
    this.#host.stateChanged();
  }

  /** Ends an `unreachable` spell: back in rotation (ramping up when slow start is on). */
  #reachable(backend: BackendControl, slowStart: boolean): void {
    clearTimeout(this.#unreachableTimers.get(backend));
    this.#unreachableTimers.delete(backend);
    if (!backend.unreachable) return;
    backend.unreachable = false;
    if (slowStart) this.#beginSlowStart(backend);
    this.#logger?.info({ pool: this.#host.name, backend: backend.key }, 'backend back in rotation after being unreachable');
    this.#host.stateChanged();
  }

  #beginSlowStart(backend: BackendControl): void {
    const windowMs = this.#config?.slowStartMs;
    if (windowMs === undefined || windowMs <= 0 || this.#stopped) return;
    backend.slowStartSince = performance.now();
    backend.weight = backend.configuredWeight * slowStartFactor(backend.slowStartSince, backend.slowStartSince, windowMs);
    this.#host.weightsChanged();
    if (this.#slowStartTicker === undefined) {
      // 20 steps over the window, between 50 ms and 1 s apart: smooth enough, and cheap.
      const every = Math.min(1000, Math.max(50, windowMs / 20));
      this.#slowStartTicker = setInterval(() => this.#tickSlowStart(), every);
      this.#slowStartTicker.unref();
    }
  }

  #tickSlowStart(): void {
    const windowMs = this.#config?.slowStartMs ?? 0;
    const now = performance.now();
    let ramping = 0;
    for (const backend of this.#host.backends) {
      if (backend.slowStartSince === 0) continue;
      const factor = slowStartFactor(backend.slowStartSince, now, windowMs);
      if (factor >= 1) {
        backend.slowStartSince = 0;
        backend.weight = backend.configuredWeight;
      } else {
        backend.weight = backend.configuredWeight * factor;
        ramping++;
      }
    }
    this.#host.weightsChanged();
    if (ramping === 0) {
      clearInterval(this.#slowStartTicker);
      this.#slowStartTicker = undefined;
    }
  }
}
