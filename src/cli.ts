#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { configJsonSchema, formatIssue, loadConfig, loadConfigFile, parseConfig, parseDuration, quickConfig, type ConfigResult } from './config/index.ts';
import type { UsherConfig } from './config/types.ts';
import { BUILTIN_BALANCERS, DEFAULT_BALANCER } from './balancer/names.ts';
import { demoBanner, demoConfigYaml, startDemoBackends, stopDemoBackends } from './demo/demo.ts';
import { createAccessLog } from './observe/access-log.ts';
import { adminEndpoint, callAdmin, errorMessage } from './cli/admin-client.ts';
import { exitCodes, UsageError } from './cli/exit-codes.ts';
import { runUntilSignal } from './cli/run.ts';
import { runStatus } from './cli/status.ts';
import { runDoctorCommand } from './cli/doctor.ts';
import { runExplain } from './cli/explain.ts';
import { validRequestPath } from './doctor/plan.ts';

const mainHelp = `usher: a load balancer and reverse proxy

Usage:
  usher start -c usher.yaml                 run with a config file
  usher start --bind 127.0.0.1:8080 --backend 127.0.0.1:3001 --backend 127.0.0.1:3002 [--algorithm NAME]
                                            run without a file (quick mode)
  usher check -c usher.yaml                 validate a config and print every problem
  usher reload -c usher.yaml                ask a running usher to reload its config (admin API)
  usher status -c usher.yaml [--watch]      pools, backends and peers of a running usher, as tables (admin API)
  usher doctor -c usher.yaml [--pool NAME]  check the backends for mistakes that break them behind a load balancer
  usher explain -c usher.yaml [-H 'name: value']... METHOD URL
                                            which listener, route, pool and backend a request would take, and why
  usher demo [--bind 127.0.0.1:8080]        three demo backends behind usher
  usher schema                              print the config's JSON Schema (for editors)
  usher <command> --help                    help for one command

Exit codes:
  0    success
  1    invalid config, or usher could not start (e.g. the port is taken);
       usher doctor: a problem found; usher explain: no route matches
  2    wrong command line
  130  stopped at once by a second SIGTERM/SIGINT
`;

const commandHelp: Readonly<Record<string, string>> = {
  start: `usher start: run the balancer in the foreground

  -c, --config FILE      config file (YAML or JSON)
  --bind HOST:PORT       quick mode: listen here (default 127.0.0.1:8080)
  --backend HOST:PORT    quick mode: a backend; repeat for each
  --algorithm NAME       quick mode: ${BUILTIN_BALANCERS.map((name) => (name === DEFAULT_BALANCER ? `${name} (default)` : name)).join(', ')}
  --workers N|auto       data-plane worker threads (overrides runtime.workers and
                         USHER_WORKERS; 0 serves from the main thread alone)
  --no-access-log        do not write the access log
  -h, --help             this help

SIGTERM or SIGINT stops gracefully; a second one stops at once.
SIGHUP reloads the config file (as "usher reload" does).
`,
  reload: `usher reload: make a running usher re-read its config file

  -c, --config FILE      the config file; its admin.bind and admin.token say where to ask
  --admin URL            the admin API instead (e.g. http://127.0.0.1:9090)
  --token TOKEN          admin token (default: $USHER_ADMIN_TOKEN, or admin.token of FILE)

An invalid config is rejected with the same errors as "usher check", and usher
keeps serving the old one; the command then exits 1. SIGHUP does the same.
`,
  status: `usher status: show the pools, backends, worker threads and peers of a running usher

  -c, --config FILE      the config file; its admin.bind and admin.token say where to ask
  --admin URL            the admin API instead (e.g. http://127.0.0.1:9090)
  --token TOKEN          admin token (default: $USHER_ADMIN_TOKEN, or admin.token of FILE)
  --watch [SECONDS]      refresh every SECONDS (default 2) until Ctrl-C
  --count N              with --watch: stop after N refreshes
  --json                 print the admin API's JSON (GET /api/pools, with "workers"
                         from GET /api/workers when usher runs worker threads and
                         "peers" from GET /api/peers when it has a redis section)

One row per backend: pool, pool mode, backend, state, weight (the weight in
use during slow start in brackets), requests in flight, requests, failures and
5xx responses since start, and the last health check. With worker threads, a
second table has one row per worker: state, client connections open, requests
per second and CPU % (of one core) over the last second, and restarts. With a
redis section, a third table lists the usher instances sharing that Redis: id
(this one marked), host, pid, version, config hash (marked when it differs
from this one's), admin API and when each was last seen; Redis unreachable and
a config mismatch are said above it. Exits 1 when the admin API cannot be
reached or refuses the token.
`,
  doctor: `usher doctor: check every backend for the mistakes that make services
misbehave behind a load balancer, and print each finding with its fix

  -c, --config FILE      config file (YAML or JSON)
  --pool NAME            check this pool only (default: every pool)
  --path PATH            path of the keep-alive and session requests (default /)
  --max-wait DURATION    hold idle connections at most this long (default: each
                         pool's timeouts.idle + 1s, all backends at once)
  --timeout DURATION     wait at most this long for each answer (default 5s;
                         health requests use the pool's healthCheck.timeout)
  --json                 print the findings as JSON

Checks, per backend: the health endpoint (the pool's healthCheck, or /health
when there is none); whether it keeps connections open between responses;
whether it closes idle connections before usher does (Keep-Alive: timeout=N
is honoured); and, for a pool of two or more backends without sticky,
whether a session cookie from one backend is refused by another. Sends only
GET requests, never to the admin API: it changes nothing.

Each finding is "problem", "warning", "ok" or "skip" (with why), and each
problem and warning has a fix. Exit codes: 0 no problem (warnings allowed),
1 a problem found, or an invalid or unreadable config, 2 wrong command line
(an unknown --pool included).
`,
  explain: `usher explain: which listener and route a request would match and why,
what the route does with it, and which backend it would reach; sends nothing

  usher explain -c usher.yaml [-H 'name: value']... METHOD URL

  -c, --config FILE      config file (YAML or JSON)
  -H, --header 'N: V'    a request header; repeat for each (a Host here wins over the URL's)
  --listener NAME        explain against this listener (default: the http/https
                         listener bound to the URL's port, else the first one)
  --client-ip IP         the client address a client-ip hash key hashes (default 127.0.0.1)
  --admin URL            read live health, drain state and pool mode from a running usher
  --token TOKEN          admin token (default: $USHER_ADMIN_TOKEN, or admin.token of FILE)
  --json                 print the explanation as JSON

URL is absolute (http://api.example.com:8080/api/users?id=7: its host is the
Host header) or a path (/api/users?id=7). For each route before the one that
matches, explain prints the first condition that failed; for the match, its
action: the pool and the path the backend sees (after stripPrefix), or the
redirect; its filters; the pool's algorithm, mode and backends; and for hash,
maglev and sticky pools the backend this request's key picks.

Exit codes: 0 a route matches, 1 no route matches (or an invalid config, or
the admin API cannot be reached), 2 wrong command line.
`,
  check: `usher check: validate a config file

  -c, --config FILE      config file (YAML or JSON)

Prints "ok" and exits 0 when valid; otherwise prints every problem as
file:line:col key.path: message and exits 1. Modules the file names
(algorithm: { module: ./x.ts }) are loaded and their options checked.
`,
  demo: `usher demo: run three demo backends behind usher

  --bind HOST:PORT       where usher listens (default 127.0.0.1:8080)
  --admin HOST:PORT      where the admin API listens (default 127.0.0.1:9090)
`,
  schema: `usher schema: print the JSON Schema of the config file format

Point your editor's YAML language server at it for completion and checks.
`,
};

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(mainHelp);
    return command === undefined ? exitCodes.usage : exitCodes.ok;
  }
  if (command === '--version' || command === '-v') {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    process.stdout.write(`${pkg.version}\n`);
    return exitCodes.ok;
  }
  const help = commandHelp[command];
  if (help === undefined) throw new UsageError(`unknown command "${command}"`);
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(help);
    return exitCodes.ok;
  }
  switch (command) {
    case 'start':
      return start(rest);
    case 'check':
      return check(rest);
    case 'reload':
      return reload(rest);
    case 'status':
      return status(rest);
    case 'doctor':
      return doctor(rest);
    case 'explain':
      return runExplain(rest, async (file) => reportConfig(await loadConfig(file)));
    case 'demo':
      return demo(rest);
    case 'schema':
      process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
      return exitCodes.ok;
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

/** Runs a parseArgs call, turning its complaints into usage errors (exit code 2). */
function parsed<T>(parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** Prints a failed config result the way `usher check` does; returns the config when valid. */
function reportConfig(result: ConfigResult): UsherConfig | undefined {
  if (!result.ok) {
    for (const issue of result.errors) process.stderr.write(`${formatIssue(issue)}\n`);
    process.stderr.write(`usher: ${result.errors.length} problem${result.errors.length === 1 ? '' : 's'} in the config\n`);
    return undefined;
  }
  for (const issue of result.warnings) process.stderr.write(`warning: ${formatIssue(issue)}\n`);
  return result.config;
}

async function start(args: readonly string[]): Promise<number> {
  const { values } = parsed(() =>
    parseArgs({
      args: [...args],
      allowNegative: true,
      options: {
        config: { type: 'string', short: 'c' },
        bind: { type: 'string' },
        backend: { type: 'string', multiple: true },
        algorithm: { type: 'string' },
        workers: { type: 'string' },
        'access-log': { type: 'boolean', default: true },
      },
    }),
  );
  if (values.workers !== undefined) {
    const workers = values.workers;
    if (workers !== 'auto' && !(/^\d+$/.test(workers) && Number(workers) <= 64)) throw new UsageError(`--workers: expected auto or a whole number from 0 to 64, got ${JSON.stringify(workers)}`);
    // Through the environment, so a reload from the file keeps it (see workerCount).
    process.env['USHER_WORKERS'] = workers;
  }
  const file = values.config;
  const backends = values.backend ?? [];
  if (file !== undefined && backends.length > 0) throw new UsageError('give either -c FILE or --backend, not both');
  if (file === undefined && backends.length === 0) throw new UsageError('give -c FILE, or at least one --backend HOST:PORT');
  const result =
    file !== undefined
      ? await loadConfig(file)
      : quickConfig({
          bind: values.bind ?? '127.0.0.1:8080',
          backends,
          algorithm: values.algorithm ?? DEFAULT_BALANCER,
        });
  const config = reportConfig(result);
  if (config === undefined) return exitCodes.configOrStartup;
  const accessLog = values['access-log'] === false ? createAccessLog({ enabled: false }) : undefined;
  return runUntilSignal(config, {
    ...(accessLog ? { accessLog } : {}),
    ...(file !== undefined ? { configSource: () => loadConfig(file) } : {}),
  });
}

async function check(args: readonly string[]): Promise<number> {
  const { values } = parsed(() => parseArgs({ args: [...args], options: { config: { type: 'string', short: 'c' } } }));
  const file = values.config;
  if (file === undefined) throw new UsageError('give the config file with -c FILE');
  // Modules the file names are loaded and their options checked, as start does.
  const config = reportConfig(await loadConfig(file));
  if (config === undefined) return exitCodes.configOrStartup;
  process.stdout.write(`ok: ${file} is valid (${config.listeners.length} listener(s), ${Object.keys(config.pools).length} pool(s))\n`);
  return exitCodes.ok;
}

const adminOptions = { config: { type: 'string', short: 'c' }, admin: { type: 'string' }, token: { type: 'string' } } as const;

async function reload(args: readonly string[]): Promise<number> {
  const { values } = parsed(() => parseArgs({ args: [...args], options: adminOptions }));
  const endpoint = adminEndpoint(values, (file) => reportConfig(loadConfigFile(file)));
  if (endpoint === undefined) return exitCodes.configOrStartup;
  if ('error' in endpoint) {
    process.stderr.write(`usher: ${endpoint.error}, or send SIGHUP to the usher process\n`);
    return exitCodes.configOrStartup;
  }
  const answer = await callAdmin(endpoint, 'POST', '/api/reload');
  if (!answer.reached) {
    process.stderr.write(`usher: ${answer.message}\n`);
    return exitCodes.configOrStartup;
  }
  const body = answer.body as { errors?: string[]; warnings?: string[] };
  if (answer.ok) {
    for (const warning of body.warnings ?? []) process.stderr.write(`warning: ${warning}\n`);
    process.stdout.write('reloaded\n');
    return exitCodes.ok;
  }
  for (const error of body.errors ?? [errorMessage(answer)]) process.stderr.write(`${error}\n`);
  process.stderr.write('usher: reload rejected; the running config is unchanged\n');
  return exitCodes.configOrStartup;
}

async function status(args: readonly string[]): Promise<number> {
  const { values } = parsed(() =>
    parseArgs({
      args: withWatchValue(args),
      options: { ...adminOptions, watch: { type: 'string' }, count: { type: 'string' }, json: { type: 'boolean', default: false } },
    }),
  );
  const watchSeconds = values.watch === undefined ? undefined : Number(values.watch);
  if (watchSeconds !== undefined && !(watchSeconds >= 0.1 && watchSeconds <= 3600)) {
    throw new UsageError(`--watch takes seconds between 0.1 and 3600, got ${JSON.stringify(values.watch)}`);
  }
  const count = values.count === undefined ? undefined : Number(values.count);
  if (count !== undefined && !(Number.isInteger(count) && count >= 1)) throw new UsageError(`--count takes a whole number of refreshes, at least 1, got ${JSON.stringify(values.count)}`);
  if (count !== undefined && watchSeconds === undefined) throw new UsageError('--count goes with --watch');
  const endpoint = adminEndpoint(values, (file) => reportConfig(loadConfigFile(file)));
  if (endpoint === undefined) return exitCodes.configOrStartup;
  if ('error' in endpoint) {
    process.stderr.write(`usher: ${endpoint.error}\n`);
    return exitCodes.configOrStartup;
  }
  return runStatus(endpoint, { json: values.json, watchSeconds, count });
}

/** `--watch` takes an optional value: without one (end of line, or another option next) it means every 2 seconds. */
function withWatchValue(args: readonly string[]): string[] {
  return args.map((arg, i) => (arg === '--watch' && (i + 1 >= args.length || args[i + 1]!.startsWith('-')) ? '--watch=2' : arg));
}

async function doctor(args: readonly string[]): Promise<number> {
  const { values } = parsed(() =>
    parseArgs({
      args: [...args],
      options: {
        config: { type: 'string', short: 'c' },
        pool: { type: 'string' },
        path: { type: 'string', default: '/' },
        'max-wait': { type: 'string' },
        timeout: { type: 'string', default: '5s' },
        json: { type: 'boolean', default: false },
      },
    }),
  );
  const file = values.config;
  if (file === undefined) throw new UsageError('give the config file with -c FILE');
  if (!validRequestPath(values.path)) throw new UsageError(`--path takes a path starting with "/" (printable ASCII, no spaces), got ${JSON.stringify(values.path)}`);
  const maxWaitMs = values['max-wait'] === undefined ? undefined : durationOption('--max-wait', values['max-wait'], 1);
  const requestTimeoutMs = durationOption('--timeout', values.timeout, 1);
  const config = reportConfig(loadConfigFile(file));
  if (config === undefined) return exitCodes.configOrStartup;
  return runDoctorCommand(config, { file, pool: values.pool, path: values.path, requestTimeoutMs, maxWaitMs, json: values.json });
}

/** A duration option (`500ms`, `5s`, `1m`) of at least `minMs`, or a usage error naming it. */
function durationOption(name: string, text: string, minMs: number): number {
  const result = parseDuration(text);
  if (!result.ok) throw new UsageError(`${name}: ${result.message}, got ${JSON.stringify(text)}`);
  if (result.value < minMs) throw new UsageError(`${name} must be at least ${minMs}ms, got ${JSON.stringify(text)}`);
  return result.value;
}

async function demo(args: readonly string[]): Promise<number> {
  const { values } = parsed(() =>
    parseArgs({
      args: [...args],
      options: { bind: { type: 'string', default: '127.0.0.1:8080' }, admin: { type: 'string', default: '127.0.0.1:9090' } },
    }),
  );
  const backends = await startDemoBackends();
  const env = {
    ...process.env,
    USHER_DEMO_BIND: values.bind,
    USHER_DEMO_ADMIN: values.admin,
    USHER_DEMO_PORT_1: String(backends[0]!.port),
    USHER_DEMO_PORT_2: String(backends[1]!.port),
    USHER_DEMO_PORT_3: String(backends[2]!.port),
  };
  const config = reportConfig(parseConfig(demoConfigYaml, 'demo.yaml', env));
  if (config === undefined) {
    stopDemoBackends(backends);
    return exitCodes.configOrStartup;
  }
  const code = await runUntilSignal(config, {
    onStarted: (usher) => process.stdout.write(demoBanner(usher.url('web'), backends, usher.adminUrl)),
    onStop: () => stopDemoBackends(backends),
  });
  stopDemoBackends(backends);
  return code;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`usher: ${err.message}\nRun "usher --help" for usage.\n`);
      process.exitCode = exitCodes.usage;
      return;
    }
    process.stderr.write(`usher: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = exitCodes.configOrStartup;
  },
);
