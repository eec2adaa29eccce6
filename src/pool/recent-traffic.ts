/**
 * A backend's recent traffic, for the dashboard and the admin API: attempts
 * and errors per second over the last minute, and a latency histogram over
 * the last ten seconds from which p50 and p99 are read.
 *
 * Recording is O(1) and allocation-free: fixed typed-array rings indexed by
 * the second, each slot tagged with the second it holds, so a slot left over
 * from an earlier minute is cleared when it is reused and ignored when read.
 * Latencies go into log-scale buckets (four per doubling, from 50 µs up to
 * about 3 minutes), so a quantile is exact to the bucket: within about 10%.
 */

/** Seconds of per-second attempt and error counts kept (the dashboard's sparkline). */
export const SERIES_SECONDS = 60;
/** Seconds of latency samples quantiles are read over. */
export const LATENCY_WINDOW_SECONDS = 10;

/** Lower bound of the first latency bucket, in ms; faster samples share bucket 0. */
const MIN_MS = 0.05;
const BUCKETS_PER_DOUBLING = 4;
/** Bucket 0 is below MIN_MS; the last bucket also takes everything above its lower bound. */
const BUCKETS = 1 + 22 * BUCKETS_PER_DOUBLING;

/** The bucket a latency falls in. */
export function latencyBucket(ms: number): number {
  if (!(ms >= MIN_MS)) return 0; // also NaN
  const bucket = 1 + Math.floor(Math.log2(ms / MIN_MS) * BUCKETS_PER_DOUBLING);
  return bucket < BUCKETS ? bucket : BUCKETS - 1;
}

/** The value reported for a bucket: its geometric midpoint (the lower bound for the open-ended ones). */
function bucketValue(bucket: number): number {
  if (bucket === 0) return MIN_MS;
  if (bucket === BUCKETS - 1) return MIN_MS * 2 ** ((bucket - 1) / BUCKETS_PER_DOUBLING);
  return MIN_MS * 2 ** ((bucket - 0.5) / BUCKETS_PER_DOUBLING);
}

/** What {@link RecentTraffic.summary} reports. */
export interface TrafficSummary {
  readonly windowSeconds: number;
  /** Attempts that ended within the window (the current second included). */
  readonly requests: number;
  /** Of those, failed attempts and 5xx responses. */
  readonly errors: number;
  /** Null when no attempt in the window reported a latency. */
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
}

/** A backend's per-second series and latency buckets: allocated at its first attempt. */
class Series {
  readonly seriesSecond = new Float64Array(SERIES_SECONDS).fill(-1);
  readonly requests = new Uint32Array(SERIES_SECONDS);
  readonly errors = new Uint32Array(SERIES_SECONDS);
  readonly latencySecond = new Float64Array(LATENCY_WINDOW_SECONDS).fill(-1);
  readonly latency = new Uint32Array(LATENCY_WINDOW_SECONDS * BUCKETS);
}

export class RecentTraffic {
  /**
   * About 4.6 KiB per backend and data plane, made at the first attempt: a
   * pool discovered with thousands of endpoints (Kubernetes) pays nothing for
   * the ones no request reached.
   */
  #series: Series | undefined;

  /**
   * One attempt ended at `nowMs` (a monotonic clock in ms, e.g. performance.now()).
   * `latencyMs` < 0 means none (the attempt got no response to time).
   */
  record(nowMs: number, latencyMs: number, error: boolean): void {
    const s = (this.#series ??= new Series());
    const second = Math.floor(nowMs / 1000);
    const slot = second % SERIES_SECONDS;
    if (s.seriesSecond[slot] !== second) {
      s.seriesSecond[slot] = second;
      s.requests[slot] = 0;
      s.errors[slot] = 0;
    }
    s.requests[slot]!++;
    if (error) s.errors[slot]!++;
    if (latencyMs < 0) return;
    const latencySlot = second % LATENCY_WINDOW_SECONDS;
    const base = latencySlot * BUCKETS;
    if (s.latencySecond[latencySlot] !== second) {
      s.latencySecond[latencySlot] = second;
      s.latency.fill(0, base, base + BUCKETS);
    }
    s.latency[base + latencyBucket(latencyMs)]!++;
  }

  /** Attempts per second over the last {@link SERIES_SECONDS} complete seconds before `nowMs`, oldest first. */
  perSecond(nowMs: number): number[] {
    const current = Math.floor(nowMs / 1000);
    const series = new Array<number>(SERIES_SECONDS).fill(0);
    const s = this.#series;
    if (s === undefined) return series;
    for (let i = 0; i < SERIES_SECONDS; i++) {
      const second = current - SERIES_SECONDS + i;
      const slot = second % SERIES_SECONDS;
      if (second >= 0 && s.seriesSecond[slot] === second) series[i] = s.requests[slot]!;
    }
    return series;
  }

  /** Attempts, errors and latency quantiles over the last {@link LATENCY_WINDOW_SECONDS} seconds. */
  summary(nowMs: number): TrafficSummary {
    return summarize([this.window(nowMs)]);
  }

  /**
   * The counts behind {@link summary}: what a worker thread reports, so the
   * control plane can merge every thread's window into one summary.
   */
  window(nowMs: number): TrafficWindow {
    const current = Math.floor(nowMs / 1000);
    const oldest = current - LATENCY_WINDOW_SECONDS + 1;
    let requests = 0;
    let errors = 0;
    const latency = new Uint32Array(BUCKETS);
    const s = this.#series;
    if (s === undefined) return { requests, errors, latency };
    for (let slot = 0; slot < SERIES_SECONDS; slot++) {
      const second = s.seriesSecond[slot]!;
      if (second < oldest || second > current) continue;
      requests += s.requests[slot]!;
      errors += s.errors[slot]!;
    }
    for (let slot = 0; slot < LATENCY_WINDOW_SECONDS; slot++) {
      const second = s.latencySecond[slot]!;
      if (second < oldest || second > current) continue;
      for (let b = 0, base = slot * BUCKETS; b < BUCKETS; b++) latency[b]! += s.latency[base + b]!;
    }
    return { requests, errors, latency };
  }
}

/** Attempts, errors and latency bucket counts of one data plane over the last {@link LATENCY_WINDOW_SECONDS} seconds. */
export interface TrafficWindow {
  readonly requests: number;
  readonly errors: number;
  /** Samples per latency bucket. */
  readonly latency: Uint32Array;
}

/** One summary of several data planes' windows (a backend served by several worker threads). */
export function summarize(windows: Iterable<TrafficWindow | undefined>): TrafficSummary {
  let requests = 0;
  let errors = 0;
  let samples = 0;
  const counts = new Uint32Array(BUCKETS);
  for (const window of windows) {
    if (window === undefined) continue;
    requests += window.requests;
    errors += window.errors;
    const latency = window.latency;
    for (let b = 0; b < BUCKETS && b < latency.length; b++) {
      counts[b]! += latency[b]!;
      samples += latency[b]!;
    }
  }
  return {
    windowSeconds: LATENCY_WINDOW_SECONDS,
    requests,
    errors,
    p50Ms: quantile(counts, samples, 0.5),
    p99Ms: quantile(counts, samples, 0.99),
  };
}

/** The value of the bucket holding the sample of rank ceil(q * samples); null without samples. */
function quantile(counts: Uint32Array, samples: number, q: number): number | null {
  if (samples === 0) return null;
  const rank = Math.max(1, Math.ceil(q * samples));
  let seen = 0;
  for (let b = 0; b < counts.length; b++) {
    seen += counts[b]!;
    if (seen >= rank) return Math.round(bucketValue(b) * 100) / 100;
  }
  return null;
}
