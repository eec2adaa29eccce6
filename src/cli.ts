#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { configJsonSchema, formatIssue, loadConfigFile, parseConfig, quickConfig, type ConfigResult } from './config/index.ts';
import type { AlgorithmName, UsherConfig } from './config/types.ts';
import { demoBanner, demoConfigYaml, startDemoBackends, stopDemoBackends } from './demo/demo.ts';
import { createAccessLog } from './observe/access-log.ts';
import { exitCodes, UsageError } from './cli/exit-codes.ts';
import { runUntilSignal } from './cli/run.ts';

const mainHelp = `usher: a load balancer and reverse proxy

Usage:
  usher start -c usher.yaml                 run with a config file
  usher start --bind 127.0.0.1:8080 --backend 127.0.0.1:3001 --backend 127.0.0.1:3002 [--algorithm NAME]
                                            run without a file (quick mode)
  usher check -c usher.yaml                 validate a config and print every problem
  usher reload -c usher.yaml                ask a running usher to reload its config (admin API)
  usher demo [--bind 127.0.0.1:8080]        three demo backends behind usher
  usher schema                              print the config's JSON Schema (for editors)
  usher <command> --help                    help for one command

Exit codes:
  0    success
  1    invalid config, or usher could not start (e.g. the port is taken)
  2    wrong command line
  130  stopped at once by a second SIGTERM/SIGINT
`;

const commandHelp: Readonly<Record<string, string>> = {
  start: `usher start: run the balancer in the foreground

  -c, --config FILE      config file (YAML or JSON)
  --bind HOST:PORT       quick mode: listen here (default 127.0.0.1:8080)
  --backend HOST:PORT    quick mode: a backend; repeat for each
  --algorithm NAME       quick mode: p2c (default), round-robin, least-connections, random, ewma, hash, maglev
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
  check: `usher check: validate a config file

  -c, --config FILE      config file (YAML or JSON)

Prints "ok" and exits 0 when valid; otherwise prints every problem as
file:line:col key.path: message and exits 1.
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
        'access-log': { type: 'boolean', default: true },
      },
    }),
  );
  const file = values.config;
  const backends = values.backend ?? [];
  if (file !== undefined && backends.length > 0) throw new UsageError('give either -c FILE or --backend, not both');
  if (file === undefined && backends.length === 0) throw new UsageError('give -c FILE, or at least one --backend HOST:PORT');
  const result =
    file !== undefined
      ? loadConfigFile(file)
      : quickConfig({
          bind: values.bind ?? '127.0.0.1:8080',
          backends,
          algorithm: (values.algorithm as AlgorithmName | undefined) ?? 'p2c',
        });
  const config = reportConfig(result);
  if (config === undefined) return exitCodes.configOrStartup;
  const accessLog = values['access-log'] === false ? createAccessLog({ enabled: false }) : undefined;
  return runUntilSignal(config, {
    ...(accessLog ? { accessLog } : {}),
    ...(file !== undefined ? { configSource: () => loadConfigFile(file) } : {}),
  });
}

function check(args: readonly string[]): number {
  const { values } = parsed(() => parseArgs({ args: [...args], options: { config: { type: 'string', short: 'c' } } }));
  const file = values.config;
  if (file === undefined) throw new UsageError('give the config file with -c FILE');
  const config = reportConfig(loadConfigFile(file));
  if (config === undefined) return exitCodes.configOrStartup;
  process.stdout.write(`ok: ${file} is valid (${config.listeners.length} listener(s), ${Object.keys(config.pools).length} pool(s))\n`);
  return exitCodes.ok;
}

async function reload(args: readonly string[]): Promise<number> {
  const { values } = parsed(() =>
    parseArgs({ args: [...args], options: { config: { type: 'string', short: 'c' }, admin: { type: 'string' }, token: { type: 'string' } } }),
  );
  let adminUrl = values.admin;
  let token = values.token ?? process.env['USHER_ADMIN_TOKEN'];
  if (adminUrl === undefined) {
    if (values.config === undefined) throw new UsageError('give -c FILE (its admin section says where usher listens) or --admin URL');
    const config = reportConfig(loadConfigFile(values.config));
    if (config === undefined) return exitCodes.configOrStartup;
    if (config.admin === undefined) {
      process.stderr.write(`usher: ${values.config} has no admin section; add admin.bind, or send SIGHUP to the usher process\n`);
      return exitCodes.configOrStartup;
    }
    const { host, port } = config.admin.bind;
    adminUrl = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    token ??= config.admin.token;
  }
  let response: Response;
  try {
    response = await fetch(new URL('/api/reload', adminUrl), {
      method: 'POST',
      headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    process.stderr.write(`usher: cannot reach the admin API at ${adminUrl}: ${(err as Error).message}\n`);
    return exitCodes.configOrStartup;
  }
  const body = (await response.json().catch(() => ({}))) as { errors?: string[]; warnings?: string[]; error?: { message?: string } };
  if (response.ok) {
    for (const warning of body.warnings ?? []) process.stderr.write(`warning: ${warning}\n`);
    process.stdout.write('reloaded\n');
    return exitCodes.ok;
  }
  for (const error of body.errors ?? [body.error?.message ?? `HTTP ${response.status}`]) process.stderr.write(`${error}\n`);
  process.stderr.write('usher: reload rejected; the running config is unchanged\n');
  return exitCodes.configOrStartup;
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
