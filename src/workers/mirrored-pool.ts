import { algorithmHashes } from '../balancer/algorithm.ts';
import type { HashKey, HostPort, PoolConfig } from '../config/types.ts';
import { SharedInFlightRow } from '../pool/in-flight.ts';
import { RetryWindow, type RetryWindowRow } from '../pool/retry-budget.ts';
import type { PoolMode } from '../pool/pool-mode.ts';
import { PoolRuntime, type PoolRuntimeOptions } from '../pool/pool-runtime.ts';
import type { AttemptOutcome, AttemptReports, PublishedBackend, PublishedPool } from '../pool/published.ts';
import { StickyCookie } from '../pool/sticky.ts';
import type { ConnectionOptions } from 'node:tls';
import type { ServedPool } from '../runtime/snapshot.ts';
import { OUTCOME_CODES, type BackendState, type PoolState } from './messages.ts';

/** Longest a clean success waits before it is reported (see {@link MirroredPool.attemptReported}). */
const SUCCESS_DELAY_MS = 100;

/** A member as a worker sees it: the control plane's published fields, updated in place by each `pool` message. */
class MirroredBackend implements PublishedBackend {
  readonly slot: number;
  readonly key: string;
  readonly address: HostPort;
  readonly tls: ConnectionOptions | undefined;
  name: string | undefined;
  backup = false;
  maxConnections = Infinity;
  stickyToken = '';
  weight = 1;
  configuredWeight = 1;
  available = true;
  enabled = true;
  pinnable = true;
  fallback = false;

  constructor(state: BackendState) {
    this.slot = state.slot;
    this.key = state.key;
    this.address = state.address;
    // A Buffer arrives as a Uint8Array; node:tls wants Buffers for `ca`.
    const ca = state.tls?.ca;
    this.tls = state.tls === undefined ? undefined : { ...state.tls, ...(ca instanceof Uint8Array ? { ca: Buffer.from(ca) } : {}) };
    this.update(state);
  }

  update(state: BackendState): void {
    this.name = state.name;
    this.backup = state.backup;
    this.maxConnections = state.maxConnections;
    this.stickyToken = state.stickyToken;
    this.weight = state.weight;
    this.configuredWeight = state.configuredWeight;
    this.available = state.available;
    this.enabled = state.enabled;
    this.pinnable = state.pinnable;
    this.fallback = state.fallback;
  }
}

/**
 * A pool in a worker thread: a mirror of what the main thread's control plane
 * publishes (membership, weights, availability, mode), the worker's own
 * {@link PoolRuntime} built on it, and the attempt reports that go back for
 * passive health, batched per event-loop turn in the order they happened.
 */
export class MirroredPool implements PublishedPool, AttemptReports, ServedPool {
  readonly name: string;
  mode: PoolMode = 'none';
  backends: MirroredBackend[] = [];
  sticky: StickyCookie | undefined;
  hashKey: HashKey | undefined;
  #config: PoolConfig | undefined;
  #runtime: PoolRuntime | undefined;
  #options: PoolRuntimeOptions = {};
  #row: SharedInFlightRow | undefined;
  #retries: RetryWindowRow | undefined;
  readonly #plane: number;
  #members = -1;
  #weights = -1;
  #reports: number[] = [];
  /** Slots whose last pending report is a clean success: another one would tell the control plane nothing. */
  readonly #pendingSuccess = new Set<number>();
  /** 'soon': a flush at the end of this turn; 'later': a timer (only clean successes are pending). */
  #flush: 'soon' | 'later' | undefined;
  readonly #sendReports: (pool: string, data: number[]) => void;

  constructor(name: string, plane: number, sendReports: (pool: string, data: number[]) => void) {
    this.name = name;
    this.#plane = plane;
    this.#sendReports = sendReports;
  }

  get config(): PoolConfig {
    if (this.#config === undefined) throw new Error(`pool ${this.name}: no config yet`);
    return this.#config;
  }

  /** The worker's data plane of this pool, made at the first config that names it. */
  get runtime(): PoolRuntime {
    if (this.#runtime === undefined) throw new Error(`pool ${this.name}: not configured yet`);
    return this.#runtime;
  }

  /** The runtime, when a config has named the pool. */
  get served(): PoolRuntime | undefined {
    return this.#runtime;
  }

  /** ServedPool: a reload kept the pool. */
  reconfigure(config: PoolConfig): void {
    this.configure(config, this.#options);
  }

  /** ServedPool: the main thread closes pools (`pool-closed`), not the snapshot. */
  close(): void {}

  /** Applies the control plane's state; the runtime rebuilds only what changed. */
  apply(state: PoolState): void {
    this.#retries ??= new RetryWindow(state.retries).row(this.#plane);
    if (this.#row === undefined) this.#row = new SharedInFlightRow(state.inFlight, this.#plane);
    else this.#row.adopt(state.inFlight);
    const membersChanged = state.members !== this.#members;
    const weightsChanged = state.weights !== this.#weights;
    this.#members = state.members;
    this.#weights = state.weights;
    if (membersChanged) {
      const previous = new Map(this.backends.map((b) => [b.slot, b]));
      this.backends = state.backends.map((s) => {
        const kept = previous.get(s.slot);
        if (kept !== undefined && kept.key === s.key) {
          kept.update(s);
          return kept;
        }
        return new MirroredBackend(s);
      });
    } else {
      for (let i = 0; i < state.backends.length; i++) this.backends[i]?.update(state.backends[i]!);
    }
    this.mode = state.mode;
    const runtime = this.#runtime;
    if (runtime === undefined) return;
    if (membersChanged) runtime.membersChanged();
    else if (weightsChanged) runtime.weightsChanged();
    runtime.availabilityChanged();
  }

  /** The config this worker serves names the pool with `config`: (re)configure, making the runtime on first use. */
  configure(config: PoolConfig, options: PoolRuntimeOptions): PoolRuntime {
    const changed = config !== this.#config;
    this.#config = config;
    this.#options = options;
    this.sticky = config.sticky === undefined ? undefined : new StickyCookie(config.sticky);
    this.hashKey = algorithmHashes(config.algorithm) ? config.hashKey : undefined;
    if (this.#runtime === undefined) {
      if (this.#row === undefined || this.#retries === undefined) throw new Error(`pool ${this.name}: no state from the control plane yet`);
      this.#runtime = new PoolRuntime(this, { inFlight: this.#row, retries: this.#retries }, options);
    } else if (changed) {
      this.#runtime.membersChanged();
    }
    return this.#runtime;
  }

  /**
   * Reports go to the control plane in order, but not one message per
   * attempt. A failure (or an unreachable backend) leaves at the end of this
   * event-loop turn, with whatever is pending before it: passive health acts
   * on it at once. A clean success only ends a failure streak, and repeated
   * ones end it no more than the first, so successes with nothing else
   * pending wait up to {@link SUCCESS_DELAY_MS}, one per backend. Under
   * healthy traffic that is a few messages a second instead of one per turn:
   * the main thread then costs the workers nothing they can measure.
   */
  attemptReported(slot: number, outcome: Exclude<AttemptOutcome, 'unknown'>, failed: boolean): void {
    const clean = outcome === 'success' && !failed;
    if (clean) {
      if (this.#pendingSuccess.has(slot)) return;
      this.#pendingSuccess.add(slot);
    } else {
      this.#pendingSuccess.delete(slot);
    }
    this.#reports.push(slot, OUTCOME_CODES.indexOf(outcome), failed ? 1 : 0);
    if (!clean && this.#flush !== 'soon') {
      this.#flush = 'soon';
      setImmediate(this.#flushReports);
    } else if (this.#flush === undefined) {
      this.#flush = 'later';
      setTimeout(this.#flushReports, SUCCESS_DELAY_MS).unref();
    }
  }

  readonly #flushReports = (): void => {
    if (this.#flush === undefined) return; // flushed already (a failure came before the timer)
    this.#flush = undefined;
    const data = this.#reports;
    this.#reports = [];
    this.#pendingSuccess.clear();
    if (data.length > 0) this.#sendReports(this.name, data);
  };
}
