/**
 * Schedules the active health checks of one backend and keeps its rise/fall
 * state (health-state.ts). Probes never overlap: the next one is scheduled an
 * interval after the previous one completed, so a slow backend is checked
 * less often rather than piling up checks (HAProxy does the same).
 *
 * The first probe runs after a random delay in [0, fastIntervalMs), so a pool
 * of N backends (or N usher instances restarted together) does not probe in
 * the same millisecond (Envoy `initial_jitter`). Later delays are `intervalMs`
 * in a steady state and `fastIntervalMs` while the state is moving towards a
 * flip (HAProxy `inter` / `fastinter`), each jittered by ±10% so checks of
 * many backends drift apart instead of staying in lockstep (Envoy
 * `interval_jitter_percent`). Timers are unref'd: checks never keep a process
 * alive; `stop()` also aborts an in-flight probe.
 */
import type { ConnectionOptions } from 'node:tls';
import type { HealthCheckConfig, HostPort } from '../../config/types.ts';
import { HealthState } from './health-state.ts';
import { probe, type ProbeResult } from './probe.ts';

export type { ProbeResult } from './probe.ts';

/** A probe result stamped with its completion time (`Date.now()` ms). */
export type TimedProbeResult = ProbeResult & { readonly at: number };

/** What an `ActiveHealthCheck` reports. Hooks must not throw: a throw surfaces as an unhandled rejection. */
export interface ActiveHealthCheckHooks {
  /** The backend's health flipped; `last` is the result that flipped it. */
  onTransition(healthy: boolean, last: ProbeResult): void;
  /** Every completed probe, before `onTransition` when both fire. */
  onResult?(result: TimedProbeResult): void;
}

export interface ActiveHealthCheckOptions {
  /** Source of jitter in [0, 1); default `Math.random`. Injected by tests. */
  readonly random?: () => number;
  /** Health before the first result; default true (see health-state.ts for why). */
  readonly initiallyHealthy?: boolean;
  /** Probe over TLS with these options (the backend speaks TLS). */
  readonly tls?: ConnectionOptions | undefined;
}

/** How many results `recent` keeps, for the dashboard's per-backend strip. */
export const RECENT_RESULTS = 20;

/** ±10% around each scheduled interval. */
const JITTER = 0.1;

/** Active health checking of one backend. */
export class ActiveHealthCheck {
  readonly #target: HostPort;
  readonly #config: HealthCheckConfig;
  readonly #hooks: ActiveHealthCheckHooks;
  readonly #random: () => number;
  readonly #state: HealthState;
  readonly #recent: TimedProbeResult[] = [];
  #running = false;
  #timer: NodeJS.Timeout | undefined;
  /** The in-flight probe's controller; a result whose controller is no longer this one is stale and dropped. */
  #inFlight: AbortController | undefined;

  readonly #tls: ConnectionOptions | undefined;

  constructor(target: HostPort, config: HealthCheckConfig, hooks: ActiveHealthCheckHooks, options: ActiveHealthCheckOptions = {}) {
    this.#tls = options.tls;
    this.#target = target;
    this.#config = config;
    this.#hooks = hooks;
    this.#random = options.random ?? Math.random;
    this.#state = new HealthState({ rise: config.rise, fall: config.fall, initiallyHealthy: options.initiallyHealthy ?? true });
  }

  /** Health as far as active checks know; `initiallyHealthy` until the first result. */
  get healthy(): boolean {
    return this.#state.healthy;
  }

  /** The last `RECENT_RESULTS` results, oldest first (a copy). */
  get recent(): readonly TimedProbeResult[] {
    return this.#recent.slice();
  }

  get lastResult(): TimedProbeResult | undefined {
    return this.#recent.at(-1);
  }

  /** Whether checks are scheduled (between `start()` and `stop()`). */
  get running(): boolean {
    return this.#running;
  }

  /** Starts checking; the first probe runs within `fastIntervalMs`. No-op when already running. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#schedule(this.#random() * this.#config.fastIntervalMs);
  }

  /** Cancels the next probe and aborts an in-flight one. Idempotent; `start()` may follow. */
  stop(): void {
    this.#running = false;
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    const inFlight = this.#inFlight;
    this.#inFlight = undefined;
    inFlight?.abort();
  }

  #schedule(delayMs: number): void {
    this.#timer = setTimeout(this.#run, delayMs);
    this.#timer.unref();
  }

  #run = (): void => {
    this.#timer = undefined;
    const controller = new AbortController();
    this.#inFlight = controller;
    void probe(this.#target, this.#config, controller.signal, this.#tls).then((result) => this.#complete(result, controller));
  };

  #complete(result: ProbeResult, controller: AbortController): void {
    if (this.#inFlight !== controller) return; // stopped (and maybe restarted) meanwhile
    this.#inFlight = undefined;
    const timed: TimedProbeResult = { ...result, at: Date.now() };
    const recent = this.#recent;
    recent.push(timed);
    if (recent.length > RECENT_RESULTS) recent.shift();
    const flipped = this.#state.record(result.ok);
    // Schedule before the hooks run, so a hook that calls stop() cancels the next probe.
    this.#schedule(this.#jittered(this.#state.transitioning ? this.#config.fastIntervalMs : this.#config.intervalMs));
    this.#hooks.onResult?.(timed);
    if (flipped) this.#hooks.onTransition(this.#state.healthy, result);
  }

  /** `base` ±10%. */
  #jittered(base: number): number {
    return base * (1 + JITTER * (2 * this.#random() - 1));
  }
}
