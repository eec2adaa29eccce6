import type { PoolControl } from '../pool/pool-control.ts';
import type { BackendUsage, PoolDataPlane } from '../pool/published.ts';
import type { BackendUsageReport, PoolState, ToWorker } from './messages.ts';

/** Where a remote plane posts: the worker's port. */
export interface WorkerPort {
  post(message: ToWorker): void;
}

const noUsage = new Map<number, BackendUsage>();

/**
 * A pool's data plane in a worker thread, as the pool's control plane sees
 * it: the same {@link PoolDataPlane} calls an in-thread `PoolRuntime` gets,
 * turned into messages. State changes made in one synchronous run (a reload,
 * a health round, an admin call) leave as one `pool` message with the whole
 * published state, posted in a microtask; `close-idle` and `taken-out` go at
 * once, after any state still pending, so the worker sees them in order.
 */
export class RemotePlane implements PoolDataPlane {
  readonly #control: PoolControl;
  readonly #port: WorkerPort;
  #members = 0;
  #weights = 0;
  #pending = false;
  #closed = false;
  /** The worker's last usage report for this pool, by slot. */
  #usage: ReadonlyMap<number, BackendUsage> = noUsage;

  constructor(control: PoolControl, port: WorkerPort) {
    this.#control = control;
    this.#port = port;
    this.membersChanged();
  }

  membersChanged(): void {
    this.#members++;
    this.#schedule();
  }

  availabilityChanged(): void {
    this.#schedule();
  }

  weightsChanged(): void {
    this.#weights++;
    this.#schedule();
  }

  closeIdle(slot: number): void {
    this.flush();
    this.#port.post({ type: 'close-idle', pool: this.#control.name, slot });
  }

  takenOut(slot: number): void {
    this.flush();
    this.#port.post({ type: 'taken-out', pool: this.#control.name, slot });
  }

  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
    this.#port.post({ type: 'pool-closed', pool: this.#control.name });
  }

  usage(slot: number): BackendUsage | undefined {
    return this.#usage.get(slot);
  }

  /** The worker's numbers for this pool. */
  reported(reports: readonly BackendUsageReport[]): void {
    const usage = new Map<number, BackendUsage>();
    for (const r of reports) {
      usage.set(r.slot, {
        counters: { requests: r.requests, failures: r.failures, responses5xx: r.responses5xx, retriedAway: r.retriedAway, bytesOut: r.bytesOut },
        connections: { open: r.open, idleCount: r.idle },
        metrics: { bytesIn: r.bytesIn },
        // As of the report (at most a second old): the window moves on only when the next report comes.
        recent: () => r.recent,
      });
    }
    this.#usage = usage;
  }

  /** Posts the pending state now. */
  flush(): void {
    if (!this.#pending || this.#closed) return;
    this.#pending = false;
    this.#port.post({ type: 'pool', pool: this.#control.name, state: this.#state() });
  }

  #schedule(): void {
    if (this.#pending || this.#closed) return;
    this.#pending = true;
    queueMicrotask(() => this.flush());
  }

  #state(): PoolState {
    const control = this.#control;
    return {
      mode: control.mode,
      members: this.#members,
      weights: this.#weights,
      inFlight: control.inFlight.shared,
      retries: control.retryWindow.shared,
      backends: control.backends.map((b) => ({
        slot: b.slot,
        key: b.key,
        name: b.name,
        address: b.address,
        tls: b.tls,
        backup: b.backup,
        maxConnections: b.maxConnections,
        stickyToken: b.stickyToken,
        weight: b.weight,
        configuredWeight: b.configuredWeight,
        available: b.available,
        enabled: b.enabled,
        pinnable: b.pinnable,
        fallback: b.fallback,
      })),
    };
  }
}
