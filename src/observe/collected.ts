/**
 * Counters and gauges whose values are read at scrape time from the numbers
 * components already keep (backend counters, in-flight counts, queue lengths),
 * so the data path never increments anything twice. Each scrape starts from
 * an empty set of series: whatever the component no longer lists (a removed
 * backend, a route dropped by a reload) is gone from the output.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Labels } from './histogram.ts';

/** Emits one series: its labels and current value. */
export type Emit = (labels: Labels, value: number) => void;

/** A gauge whose series `fill` lists at each scrape. */
export function collectedGauge(registry: Registry, name: string, help: string, labelNames: readonly string[], fill: (emit: Emit) => void): void {
  new Gauge({
    name,
    help,
    labelNames: [...labelNames],
    registers: [registry],
    collect() {
      this.reset();
      fill((labels, value) => this.set(labels, value));
    },
  });
}

/**
 * A counter whose series `fill` lists at each scrape, with their running
 * totals. A series that disappears and comes back (a backend removed and added
 * again) restarts from 0, which Prometheus' `rate()` reads as a counter reset.
 */
export function collectedCounter(registry: Registry, name: string, help: string, labelNames: readonly string[], fill: (emit: Emit) => void): void {
  new Counter({
    name,
    help,
    labelNames: [...labelNames],
    registers: [registry],
    collect() {
      this.reset();
      fill((labels, value) => this.inc(labels, value));
    },
  });
}

/**
 * Per-object numbers (a route's, say) that survive a reload while their key
 * stays: between {@link begin} and {@link commit} every key asked for is
 * kept, with its old value when it had one, and the rest are dropped. A
 * lookup outside a begin/commit pair adds to the current set.
 */
export class KeptByKey<T> {
  #current = new Map<string, T>();
  #next: Map<string, T> | undefined;

  get(key: string, make: () => T): T {
    const value = this.#current.get(key) ?? this.#next?.get(key) ?? make();
    (this.#next ?? this.#current).set(key, value);
    return value;
  }

  begin(): void {
    this.#next = new Map();
  }

  commit(): void {
    if (this.#next === undefined) return;
    this.#current = this.#next;
    this.#next = undefined;
  }

  values(): IterableIterator<T> {
    return this.#current.values();
  }
}
