/**
 * Command-line flags and BENCH_* environment variables for bench/run.ts.
 * Flags win over the environment; --quick only changes the defaults.
 */
import { parseArgs } from 'node:util';

/**
 * What a target must offer for a scenario: a plain HTTP reverse proxy (`http`),
 * an HTTP reverse proxy terminating TLS (`https`), or a TCP (L4) proxy (`tcp`).
 * A target that cannot offer a mode is skipped for the scenarios needing it.
 */
export type Mode = 'http' | 'https' | 'tcp';

/** A wrk workload. */
export interface Scenario {
  readonly name: string;
  readonly title: string;
  readonly path: string;
  readonly headers: readonly string[];
  readonly mode: Mode;
  /**
   * `requests`: the figures are per request (req/s, CPU us/req); `bytes`: large
   * transfers, reported as MiB/s and balancer CPU seconds per GiB.
   */
  readonly unit: 'requests' | 'bytes';
  /** wrk -c for this scenario regardless of --connections (large transfers use few connections). */
  readonly connections?: number;
  /** wrk --timeout, seconds (default 5). */
  readonly timeoutS?: number;
  /** `bytes` scenarios: the body of each response, so short responses can be told apart. */
  readonly bodyBytes?: number;
}

/** Body size of /64m, the large file the l4 scenario downloads (64 MiB). */
export const L4_BODY_BYTES = 64 * 1024 * 1024;
/** wrk -c of the l4 scenario. */
export const L4_CONNECTIONS = 4;

/** The workloads, by name. */
export const SCENARIOS: readonly Scenario[] = [
  { name: 'small', title: 'small keep-alive GETs (GET /small, 3-byte body)', path: '/small', headers: [], mode: 'http', unit: 'requests' },
  { name: 'close', title: 'new connection per request (GET /small, Connection: close)', path: '/small', headers: ['Connection: close'], mode: 'http', unit: 'requests' },
  { name: '64k', title: '64 KiB responses, keep-alive (GET /64k)', path: '/64k', headers: [], mode: 'http', unit: 'requests' },
  {
    name: 'l4',
    title: `64 MiB downloads through a TCP (L4) proxy, ${L4_CONNECTIONS} keep-alive connections (GET /64m)`,
    path: '/64m',
    headers: [],
    mode: 'tcp',
    unit: 'bytes',
    connections: L4_CONNECTIONS,
    timeoutS: 60,
    bodyBytes: L4_BODY_BYTES,
  },
  { name: 'https', title: 'small keep-alive GETs over TLS terminated by the balancer (GET https://…/small)', path: '/small', headers: [], mode: 'https', unit: 'requests' },
  { name: '1m', title: '1 MiB responses, 8 keep-alive connections (GET /1m)', path: '/1m', headers: [], mode: 'http', unit: 'bytes', connections: 8, timeoutS: 30, bodyBytes: 1024 * 1024 },
  { name: 'l4-close', title: 'new TCP connection per request through a TCP (L4) proxy (GET /small, Connection: close)', path: '/small', headers: ['Connection: close'], mode: 'tcp', unit: 'requests' },
];

/**
 * Scenarios run when --scenarios is not given: the HTTP ones. l4 and https add
 * six more runs per round (~80 s at the default duration) plus their own
 * processes, a 64 MiB file and a certificate; ask for them by name or with `all`.
 */
export const DEFAULT_SCENARIOS: readonly string[] = ['small', 'close', '64k'];

/** Resolved options for one bench invocation. */
export interface BenchOptions {
  readonly durationS: number;
  readonly warmupS: number;
  readonly connections: number;
  readonly threads: number;
  readonly rounds: number;
  readonly targets: readonly string[] | undefined;
  readonly prototypes: boolean;
  readonly extras: readonly string[];
  readonly scenarios: readonly Scenario[];
  readonly pin: boolean;
  readonly maxTimeS: number;
  /** Longest wait for a quiet machine before each measured run (0 = never wait). */
  readonly quietWaitS: number;
  /** Which round a table row shows when --rounds > 1. */
  readonly pick: 'quietest' | 'median';
  /** Niceness of every process the bench starts; negative needs root. */
  readonly nice: number;
  readonly quick: boolean;
  /**
   * Threads/processes of the balancers under test: usher is started with
   * `--workers N` (0 = everything on the main thread), nginx with
   * `worker_processes max(N,1)`, HAProxy with `nbthread max(N,1)`. With N >= 2
   * nothing is pinned (see run.ts).
   */
  readonly workers: number;
}

export const USAGE = `Usage: node bench/run.ts [options]

  --quick                 ~3 s runs, 1 s warm-up (smoke test)
  --duration <t>          measured run per peer and scenario (BENCH_DURATION, default 10s)
  --warmup <t>            unmeasured warm-up before each run (BENCH_WARMUP, default 2s)
  --connections <n>       wrk -c (BENCH_CONNECTIONS, default 50; the l4 scenario always uses 4)
  --threads <n>           wrk -t (BENCH_THREADS, default 1)
  --rounds <n>            repeat every run n times, targets interleaved (BENCH_ROUNDS, default 1)
  --pick median|quietest  what the tables show with --rounds > 1: per-metric medians over the
                          rounds (default), or the round with the least CPU used by other
                          processes (BENCH_PICK)
  --quiet-wait <t>        before each run wait up to <t> for other processes to go quiet
                          (BENCH_QUIET_WAIT, default 10s; 0 disables)
  --targets <a,b,...>     direct,usher,usher-w0,nginx,haproxy,http-proxy,undici-dispatch,
                          undici-request,http-agent,raw-socket, or "all" (BENCH_TARGETS; default:
                          direct,usher,nginx,haproxy,http-proxy). usher-w0 is usher with
                          --workers 0 whatever --workers says
  --prototypes            add the four data-path prototypes to the targets
  --extra 'name=cmd'      extra target; {port} and {backends} (host:port,host:port) are substituted;
                          repeatable
  --scenarios <a,b,...>   small,close,64k,1m,l4,l4-close,https, or "all" (BENCH_SCENARIOS; default
                          small,close,64k). l4 runs on the targets with a TCP mode (direct,
                          usher, haproxy), https on those terminating TLS (usher, nginx,
                          haproxy); other targets are left out of those two
  --workers <n>           usher is started with --workers <n> (0: single-threaded, the main thread
                          serves; n >= 1: n data-plane worker threads + the main control thread);
                          nginx gets worker_processes max(n,1), HAProxy nbthread max(n,1)
                          (BENCH_WORKERS, default 0). The usher-w0 target always runs --workers 0.
                          With n >= 2 nothing is pinned (the balancer needs more than one CPU)
  --no-pin                do not use taskset
  --nice <n>              niceness of all bench processes (BENCH_NICE; default -10 as root, else 0),
                          so other work on a shared machine does not take the pinned CPUs
  --max-time <t>          stop starting new runs after this long (BENCH_MAX_TIME, default 600s)
`;

/** Parses "10s", "500ms", "2m" or a bare number of seconds. */
export function parseSeconds(text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!m) throw new Error(`${what} must look like 10s, 500ms or 2m, got ${JSON.stringify(text)}`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  const s = unit === 'ms' ? n / 1000 : unit === 'm' ? n * 60 : n;
  if (s <= 0) throw new Error(`${what} must be positive, got ${JSON.stringify(text)}`);
  return s;
}

function positiveInt(text: string, what: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${what} must be a positive integer, got ${JSON.stringify(text)}`);
  return n;
}

function list(text: string | undefined): string[] | undefined {
  if (text === undefined) return undefined;
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** Highest --workers usher accepts. */
export const MAX_WORKERS = 64;

function workerCount(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isInteger(n) || n > MAX_WORKERS) throw new Error(`--workers must be a whole number from 0 to ${MAX_WORKERS}, got ${JSON.stringify(text)}`);
  return n;
}

function pickMode(text: string): 'quietest' | 'median' {
  if (text === 'quietest' || text === 'median') return text;
  throw new Error(`--pick must be quietest or median, got ${JSON.stringify(text)}`);
}

function niceness(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < -20 || n > 19) throw new Error(`--nice must be an integer in [-20, 19], got ${JSON.stringify(text)}`);
  return n;
}

/** Reads argv and the environment; throws with a readable message on bad input. */
export function parseOptions(argv: readonly string[], env: NodeJS.ProcessEnv): BenchOptions | 'help' {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      quick: { type: 'boolean', default: false },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string' },
      threads: { type: 'string' },
      rounds: { type: 'string' },
      targets: { type: 'string' },
      prototypes: { type: 'boolean', default: false },
      extra: { type: 'string', multiple: true },
      scenarios: { type: 'string' },
      'no-pin': { type: 'boolean', default: false },
      workers: { type: 'string' },
      'max-time': { type: 'string' },
      nice: { type: 'string' },
      pick: { type: 'string' },
      'quiet-wait': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return 'help';
  const quick = values.quick === true;
  let scenarioNames = list(values.scenarios ?? env.BENCH_SCENARIOS) ?? [...DEFAULT_SCENARIOS];
  if (scenarioNames.includes('all')) scenarioNames = SCENARIOS.map((s) => s.name);
  const scenarios = scenarioNames.map((name) => {
    const s = SCENARIOS.find((x) => x.name === name);
    if (s === undefined) throw new Error(`unknown scenario ${JSON.stringify(name)}; known: ${SCENARIOS.map((x) => x.name).join(', ')}`);
    return s;
  });
  return {
    quick,
    durationS: parseSeconds(values.duration ?? env.BENCH_DURATION ?? (quick ? '3s' : '10s'), '--duration'),
    warmupS: parseSeconds(values.warmup ?? env.BENCH_WARMUP ?? (quick ? '1s' : '2s'), '--warmup'),
    connections: positiveInt(values.connections ?? env.BENCH_CONNECTIONS ?? '50', '--connections'),
    threads: positiveInt(values.threads ?? env.BENCH_THREADS ?? '1', '--threads'),
    rounds: positiveInt(values.rounds ?? env.BENCH_ROUNDS ?? '1', '--rounds'),
    targets: list(values.targets ?? env.BENCH_TARGETS),
    prototypes: values.prototypes === true,
    extras: values.extra ?? [],
    scenarios,
    pin: values['no-pin'] !== true,
    quietWaitS: (values['quiet-wait'] ?? env.BENCH_QUIET_WAIT ?? '10s') === '0' ? 0 : parseSeconds(values['quiet-wait'] ?? env.BENCH_QUIET_WAIT ?? '10s', '--quiet-wait'),
    pick: pickMode(values.pick ?? env.BENCH_PICK ?? 'median'),
    nice: niceness(values.nice ?? env.BENCH_NICE ?? (process.getuid?.() === 0 ? '-10' : '0')),
    maxTimeS: parseSeconds(values['max-time'] ?? env.BENCH_MAX_TIME ?? '600s', '--max-time'),
    workers: workerCount(values.workers ?? env.BENCH_WORKERS ?? '0'),
  };
}
