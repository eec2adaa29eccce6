import type { PoolConfig } from '../config/types.ts';
import { PoolDiscovery, type DiscoveryOptions } from '../discovery/pool-discovery.ts';
import type { Logger } from '../observe/logger.ts';
import type { BackendControl } from './backend-control.ts';
import type { BackendRuntime } from './backend-runtime.ts';
import { PoolControl } from './pool-control.ts';
import { PoolRuntime } from './pool-runtime.ts';

/** Options that are not part of the config file: injected for tests and embedding. */
export interface PoolOptions {
  readonly random?: () => number;
  readonly now?: () => number;
  readonly logger?: Logger;
  /** Data planes serving pools: 1 (the main thread) plus one per worker thread. Default 1. */
  readonly dataPlanes?: number;
  /** Discovery's resolver and clock, for tests (the logger is `logger`). */
  readonly discovery?: Omit<DiscoveryOptions, 'logger'>;
}

/**
 * A named set of interchangeable backends as this process runs it: the
 * pool's control plane ({@link PoolControl}: membership, weights, health,
 * operator state, mode) and the one data plane that serves it today, the
 * main thread ({@link PoolRuntime}: balancers, queue, retry budget,
 * connections). The snapshot holds these; route plans hold only the
 * runtime, the admin API works on the control.
 *
 * With worker threads the control stays on the main thread and each worker
 * builds its own runtime from what the control publishes (published.ts).
 * Discovery (DNS) runs here too, on the main thread only: workers get its
 * members with the rest of the published state.
 */
export class Pool {
  readonly name: string;
  readonly control: PoolControl;
  readonly runtime: PoolRuntime;
  /** The pool's discovery sources (`discovery`), which feed the control plane's members. */
  readonly discovery: PoolDiscovery;

  constructor(name: string, config: PoolConfig, options: PoolOptions = {}) {
    this.name = name;
    this.control = new PoolControl(name, config, { random: options.random, logger: options.logger, dataPlanes: options.dataPlanes });
    const runtimeOptions = { random: options.random, now: options.now, logger: options.logger };
    this.runtime = new PoolRuntime(this.control, { inFlight: this.control.inFlight.row(0), retries: this.control.retryWindow.row(0) }, runtimeOptions);
    this.control.attach(this.runtime);
    this.discovery = new PoolDiscovery(name, this.control, { ...options.discovery, logger: options.logger });
    this.discovery.configure(config.discovery);
  }

  /**
   * This process's data-plane side of a member (connections, counters,
   * recent traffic), for the admin API and metrics. With several data planes
   * these become sums over them; until then there is one to read.
   */
  runtimeOf(backend: BackendControl): BackendRuntime {
    const runtime = this.runtime.backendAt(backend.slot);
    if (runtime?.control !== backend) throw new Error(`pool ${this.name}: ${backend.key} is not a member`);
    return runtime;
  }

  /** Applies a reloaded pool config (see {@link PoolControl.reconfigure}). */
  reconfigure(config: PoolConfig): void {
    this.control.reconfigure(config);
    this.discovery.configure(config.discovery);
    this.discovery.republish();
  }

  /** Stops health checks, fails queued requests and closes idle upstream connections; busy ones close when released. */
  close(): void {
    this.discovery.close();
    this.control.close();
  }
}
