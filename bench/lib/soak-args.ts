/**
 * Command-line flags and SOAK_* environment variables for bench/soak.ts.
 * Flags win over the environment.
 */
import { parseArgs } from 'node:util';

export interface SoakOptions {
  /** Length of the steady load, in seconds (--minutes × 60). */
  readonly durationS: number;
  /** Client connections (wrk -c, or the node client's concurrency). */
  readonly connections: number;
  /** Seconds between the starts of two chaos events. */
  readonly chaosIntervalS: number;
  /** How long a SIGKILLed backend stays down before it is restarted on its port. */
  readonly downS: number;
  /** The RSS baseline is the first sample at or after this many seconds of load. */
  readonly warmupS: number;
  /** Fail when usher's RSS rises more than this many MiB above the baseline. */
  readonly rssLimitMiB: number;
  /** Seconds between RSS/CPU samples. */
  readonly sampleS: number;
  /** `wrk` (the default when /usr/bin/wrk or wrk on PATH exists) or `node` (the bounded keep-alive client). */
  readonly client: 'auto' | 'wrk' | 'node';
  /** Write usher's access log (needed to attribute failures to chaos events; costs usher some CPU). */
  readonly accessLog: boolean;
  /** Keep the temp dir (configs, logs) instead of deleting it. */
  readonly keep: boolean;
  /**
   * usher's `--workers` (always passed): 0 (the default) serves from the main
   * thread, as every soak did before `usher start` defaulted to auto.
   */
  readonly workers: number;
}

export const SOAK_USAGE = `usage: node bench/soak.ts [options]     (npm run soak -- [options])

A bounded soak of a real usher process in front of 3 demo backends, with
steady wrk load and a chaos loop (SIGKILL+restart, drain/enable, reload,
invalid reload). See bench/README.md, "Soak".

  --minutes N          load duration in minutes, fractions allowed (default 5; SOAK_MINUTES)
  --connections N      client connections (default 32; SOAK_CONNECTIONS)
  --chaos-interval S   seconds between chaos events (default 10; SOAK_CHAOS_INTERVAL)
  --down S             seconds a killed backend stays down (default 2; SOAK_DOWN)
  --warmup S           RSS baseline = first sample at or after S seconds (default 30,
                       at most a quarter of the run; SOAK_WARMUP)
  --rss-limit MiB      fail if RSS rises more than this above the baseline (default 150; SOAK_RSS_LIMIT)
  --sample S           seconds between RSS/CPU samples (default 5; SOAK_SAMPLE)
  --client wrk|node    load generator (default: wrk if installed, else node; SOAK_CLIENT)
  --workers N          usher start --workers N: data-plane worker threads, 0 = the main thread
                       serves (default 0, as before usher start defaulted to auto; SOAK_WORKERS)
  --no-access-log      do not write usher's access log (no failure attribution)
  --keep               keep the temp dir with the configs and logs
  -h, --help           this text
`;

function num(name: string, raw: string | undefined, fallback: number, min: number): number {
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) throw new Error(`${name}: expected a number >= ${min}, got "${raw}"`);
  return n;
}

/** Parses argv (without node and the script); throws with a message on bad input. Returns undefined for --help. */
export function parseSoakOptions(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): SoakOptions | undefined {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      minutes: { type: 'string' },
      connections: { type: 'string' },
      'chaos-interval': { type: 'string' },
      down: { type: 'string' },
      warmup: { type: 'string' },
      'rss-limit': { type: 'string' },
      sample: { type: 'string' },
      client: { type: 'string' },
      workers: { type: 'string' },
      'no-access-log': { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) return undefined;
  const minutes = num('--minutes', values.minutes ?? env.SOAK_MINUTES, 5, 0.1);
  const durationS = Math.round(minutes * 60);
  const client = values.client ?? env.SOAK_CLIENT ?? 'auto';
  if (client !== 'auto' && client !== 'wrk' && client !== 'node') throw new Error(`--client: expected wrk or node, got "${client}"`);
  const workersRaw = values.workers ?? env.SOAK_WORKERS ?? '0';
  if (!/^\d+$/.test(workersRaw) || Number(workersRaw) > 64) throw new Error(`--workers: expected a whole number from 0 to 64, got "${workersRaw}"`);
  const warmupS = Math.min(num('--warmup', values.warmup ?? env.SOAK_WARMUP, 30, 0), durationS / 4);
  return {
    durationS,
    connections: Math.round(num('--connections', values.connections ?? env.SOAK_CONNECTIONS, 32, 1)),
    chaosIntervalS: num('--chaos-interval', values['chaos-interval'] ?? env.SOAK_CHAOS_INTERVAL, 10, 1),
    downS: num('--down', values.down ?? env.SOAK_DOWN, 2, 0),
    warmupS,
    rssLimitMiB: num('--rss-limit', values['rss-limit'] ?? env.SOAK_RSS_LIMIT, 150, 1),
    sampleS: num('--sample', values.sample ?? env.SOAK_SAMPLE, 5, 0.5),
    client,
    accessLog: !values['no-access-log'],
    keep: values.keep,
    workers: Number(workersRaw),
  };
}
