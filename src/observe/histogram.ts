/**
 * Latency histograms that cost a few nanoseconds per observation, exposed
 * through prom-client at scrape time.
 *
 * Why not prom-client's own `Histogram` on the request path: even a child
 * resolved once with `.labels()` re-validates and re-hashes its label set on
 * every `observe()` (about 0.5-0.8 µs each on the development VM, against
 * 5-10 ns here; bench/micro/metrics.ts measures both), and a request records
 * two histograms and a counter. So the data path only bumps plain numbers in
 * a {@link LatencyHistogram} it resolved when its route or backend was
 * compiled, and {@link CollectedHistogram} turns them into Prometheus series
 * when `/metrics` is read. Bucket bounds are fixed for every usher histogram,
 * so dashboards can aggregate across routes and backends.
 */
import { Histogram, type Registry } from 'prom-client';

/**
 * Upper bounds in milliseconds: 0.5 ms (a loopback hop) to 30 s (past the
 * default response timeouts are rare); roughly ×2.5 steps, Prometheus' own
 * default shape extended downwards for a proxy's sub-millisecond overhead.
 */
export const LATENCY_BOUNDS_MS: readonly number[] = [0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000];

/** The same bounds as Prometheus `le` values (seconds), written out so no float noise reaches the output. */
const LE: readonly string[] = ['0.0005', '0.001', '0.0025', '0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '30'];

const BOUNDS = LATENCY_BOUNDS_MS;
const LAST = BOUNDS.length;

/** Observations of one series: per-bucket counts (not cumulative; the last slot is above every bound) and their sum. */
export class LatencyHistogram {
  readonly counts = new Float64Array(LAST + 1);
  count = 0;
  sumMs = 0;

  /** Records one duration in milliseconds. Most are small, so a scan from the low end ends in a few steps. */
  observe(ms: number): void {
    let i = 0;
    while (i < LAST && ms > BOUNDS[i]!) i++;
    this.counts[i]!++;
    this.count++;
    this.sumMs += ms;
  }
}

/** Label values of one series. */
export type Labels = Readonly<Record<string, string>>;

/** One series of a {@link CollectedHistogram}: its labels and its observations. */
export type HistogramSeries = readonly [Labels, LatencyHistogram];

type HistogramData = Awaited<ReturnType<Histogram['get']>>;

/**
 * A prom-client histogram whose series are read from {@link LatencyHistogram}s
 * at scrape time: `series()` lists the live ones, so a route or backend that
 * is gone simply stops being listed. It is never observed directly.
 */
export class CollectedHistogram extends Histogram {
  readonly #name: string;
  readonly #help: string;
  readonly #series: () => Iterable<HistogramSeries>;

  constructor(registry: Registry, name: string, help: string, labelNames: readonly string[], series: () => Iterable<HistogramSeries>) {
    super({ name, help, labelNames: [...labelNames], registers: [registry], buckets: BOUNDS.map((ms) => ms / 1000) });
    this.#name = name;
    this.#help = help;
    this.#series = series;
  }

  override async get(): Promise<HistogramData> {
    const bucket = `${this.#name}_bucket`;
    const values: { metricName: string; labels: Record<string, string | number>; value: number }[] = [];
    for (const [labels, histogram] of this.#series()) {
      let cumulative = 0;
      for (let i = 0; i < LAST; i++) {
        cumulative += histogram.counts[i]!;
        values.push({ metricName: bucket, labels: { ...labels, le: LE[i]! }, value: cumulative });
      }
      values.push({ metricName: bucket, labels: { ...labels, le: '+Inf' }, value: histogram.count });
      values.push({ metricName: `${this.#name}_sum`, labels, value: histogram.sumMs / 1000 });
      values.push({ metricName: `${this.#name}_count`, labels, value: histogram.count });
    }
    // prom-client declares `type` as an enum its runtime never uses: the registry reads the string.
    return { name: this.#name, help: this.#help, type: 'histogram', aggregator: 'sum', values } as unknown as HistogramData;
  }

  /** What the registry's text rendering reads (prom-client's base class renders its own, unused, store). */
  getForPromString(): Promise<HistogramData> {
    return this.get();
  }
}
