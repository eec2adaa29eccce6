/**
 * Scores a caching reverse proxy with the HTTP cache conformance suite, the
 * devDependency `http-cache-tests` (0.4.5): starts the suite's origin server,
 * starts the proxy under test in front of it, runs the suite's CLI through the
 * proxy and counts the results by each test's `kind` (docs/cache.md,
 * "Conformance harness").
 *
 *   node scripts/cache-conformance.ts --target nginx      nginx proxy_cache (/usr/sbin/nginx)
 *   node scripts/cache-conformance.ts --target usher      dist/cli.js with a cache filter (npm run build first)
 *   node scripts/cache-conformance.ts --proxy-url http://127.0.0.1:8080 --origin-port 8000
 *                                                         a proxy already running, routed to that origin port
 *   options: --json FILE (write the score), --timeout SECONDS (the suite's run, default 600),
 *            --nginx PATH (the nginx binary)
 *
 * Everything listens on 127.0.0.1; everything started is stopped by pid (its
 * process group) on exit, on error and on Ctrl-C, and the temp dir is removed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, chmodSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const root = fileURLToPath(new URL('..', import.meta.url));
const suiteDir = join(root, 'node_modules/http-cache-tests');
const SUITE_VERSION = '0.4.5';
const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;
const MAX_RESULTS_BYTES = 16 * 1024 * 1024;
const TAIL_BYTES = 8 * 1024;

/** The suite's server.mjs calls `listen(port)`, which binds every interface; this preload pins it to loopback. */
const LOOPBACK_PRELOAD = 'data:text/javascript,' + encodeURIComponent(`
import http from 'node:http';
const listen = http.Server.prototype.listen;
http.Server.prototype.listen = function (...args) {
  return args.length === 1 && typeof args[0] !== 'object' ? listen.call(this, args[0], '127.0.0.1') : listen.apply(this, args);
};`);

// ---------------------------------------------------------------- processes

interface Proc {
  name: string;
  child: ChildProcess;
  /** The last TAIL_BYTES of stdout and stderr, for error messages. */
  tail: string;
  exit?: string;
  exited: Promise<void>;
}

const started: Proc[] = [];
const tempDirs: string[] = [];

/** Starts a child in its own process group, so that stopping it also stops what it forks (nginx's workers). */
function start(name: string, command: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv; tailStdout?: boolean }): Proc {
  const child = spawn(command, args, { cwd: options.cwd, env: options.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const proc: Proc = { name, child, tail: '', exited: Promise.resolve() };
  const keep = (chunk: Buffer): void => {
    proc.tail = (proc.tail + chunk.toString('utf8')).slice(-TAIL_BYTES);
  };
  child.stderr?.on('data', keep);
  if (options.tailStdout !== false) child.stdout?.on('data', keep);
  proc.exited = new Promise((resolve) => {
    child.once('error', (err) => {
      proc.exit ??= `could not start: ${err.message}`;
      resolve();
    });
    child.once('exit', (code, signal) => {
      proc.exit ??= signal === null ? `exited with code ${code}` : `killed by ${signal}`;
      resolve();
    });
  });
  started.push(proc);
  return proc;
}

function signalGroup(proc: Proc, signal: NodeJS.Signals): void {
  if (proc.child.pid === undefined) return;
  try {
    process.kill(-proc.child.pid, signal);
  } catch {
    // ESRCH: the group is gone already.
  }
}

async function stop(proc: Proc): Promise<void> {
  signalGroup(proc, 'SIGTERM'); // also when the leader has exited: its group may still hold workers
  const timedOut = await Promise.race([proc.exited.then(() => false), delay(STOP_TIMEOUT_MS, true, { ref: false })]);
  if (timedOut) {
    signalGroup(proc, 'SIGKILL');
    await proc.exited;
  }
}

let stopping: Promise<void> | undefined;
function stopAll(): Promise<void> {
  stopping ??= (async () => {
    await Promise.all(started.map(stop));
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  })();
  return stopping;
}

class HarnessError extends Error {}

function failure(proc: Proc, what: string): HarnessError {
  const output = proc.tail.trim();
  return new HarnessError(`${proc.name} ${what}${output === '' ? ' (no output)' : `; its output ends with:\n${output}`}`);
}

/** Polls `check` until it returns a value; fails at the deadline or as soon as `proc` exits. */
async function pollUntil<T>(proc: Proc, what: string, check: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (proc.exit !== undefined) throw failure(proc, `${proc.exit} before ${what}`);
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw failure(proc, `did not get to ${what} within ${START_TIMEOUT_MS / 1000} s`);
    await delay(50);
  }
}

function accepts(port: number): Promise<true | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(undefined));
  });
}

/** A port that was free a moment ago (for proxies that cannot report the port they were given). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => (port > 0 ? resolve(port) : reject(new Error('no port from the probe socket'))));
    });
  });
}

/** The environment without npm's `npm_config_*`/`npm_package_*`: the suite reads its settings from those. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('npm_config_') && !key.startsWith('npm_package_')) env[key] = value;
  }
  return { ...env, ...extra };
}

// ---------------------------------------------------------------- origin and proxies

/** Waits for a proxy to accept; when it fails, the error shows the config it was given (its temp file is removed on exit). */
async function awaitProxy(proc: Proc, port: number, config: string): Promise<string> {
  try {
    await pollUntil(proc, `accepting on port ${port}`, () => accepts(port));
  } catch (err) {
    if (err instanceof HarnessError) err.message += `\nthe config it was given:\n${config.trimEnd()}`;
    throw err;
  }
  return `http://127.0.0.1:${port}`;
}

async function startOrigin(dir: string, port: number): Promise<number> {
  const proc = start('origin (http-cache-tests server)', process.execPath,
    ['--no-warnings', `--import=${LOOPBACK_PRELOAD}`, 'server/server.mjs'], {
      cwd: suiteDir,
      env: cleanEnv({ npm_config_protocol: 'http', npm_config_port: String(port), npm_config_pidfile: join(dir, 'origin.pid') }),
    });
  const bound = await pollUntil(proc, 'listening', () => {
    const match = /Listening on http:\/\/127\.0\.0\.1:(\d+)\//.exec(proc.tail);
    return match?.[1] === undefined ? undefined : Number(match[1]);
  });
  await pollUntil(proc, `accepting on port ${bound}`, () => accepts(bound));
  return bound;
}

function nginxConfig(dir: string, port: number, originPort: number): string {
  return `# Written by scripts/cache-conformance.ts: nginx proxy_cache with no default TTL.
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy_temp;
  fastcgi_temp_path ${dir}/fastcgi_temp;
  uwsgi_temp_path ${dir}/uwsgi_temp;
  scgi_temp_path ${dir}/scgi_temp;
  proxy_cache_path ${dir}/cache levels=1:2 keys_zone=conformance:10m max_size=256m inactive=60m use_temp_path=off;
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://127.0.0.1:${originPort};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_cache conformance;
      proxy_cache_methods GET HEAD;
      # no proxy_cache_valid: only what the origin's headers allow is cached
      proxy_cache_revalidate on;
      proxy_cache_lock on;
      proxy_cache_use_stale error timeout updating;
      proxy_cache_background_update on;
    }
  }
}
`;
}

async function startNginx(dir: string, originPort: number, binary: string): Promise<string> {
  const port = await freePort();
  const file = join(dir, 'nginx.conf');
  const config = nginxConfig(dir, port, originPort);
  writeFileSync(file, config);
  // nginx started as root runs its workers as nobody, who must reach the cache and temp paths in here.
  chmodSync(dir, 0o755);
  const proc = start('nginx', binary, ['-p', `${dir}/`, '-e', join(dir, 'error.log'), '-c', file, '-g', 'daemon off;'],
    { cwd: dir, env: cleanEnv({}) });
  return awaitProxy(proc, port, config);
}

const usherCli = join(root, 'dist/cli.js');

async function startUsher(dir: string, originPort: number): Promise<string> {
  const port = await freePort();
  const file = join(dir, 'usher.yaml');
  const config = `cache: { maxSize: 64MiB }
listeners:
  - name: web
    bind: 127.0.0.1:${port}
    routes:
      - pool: origin
        filters:
          - cache: {}
pools:
  origin:
    backends:
      - address: 127.0.0.1:${originPort}
accessLog: { enabled: false }
`;
  writeFileSync(file, config);
  const proc = start('usher', process.execPath, [usherCli, 'start', '-c', file],
    { cwd: root, env: cleanEnv({ USHER_WORKERS: '0' }) });
  return awaitProxy(proc, port, config);
}

// ---------------------------------------------------------------- the suite

type TestResult = true | [string, string];

async function runSuite(base: string, timeoutS: number): Promise<Map<string, TestResult>> {
  const proc = start('suite (http-cache-tests cli)', process.execPath, ['--no-warnings', 'cli.mjs'], {
    cwd: suiteDir,
    // An empty id means "every test"; it must be the package-config variable, as cli.mjs falls back on it.
    env: cleanEnv({ npm_config_base: base, npm_package_config_id: '' }),
    tailStdout: false,
  });
  const chunks: Buffer[] = [];
  let size = 0;
  let problem: string | undefined;
  proc.child.stdout?.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size <= MAX_RESULTS_BYTES) chunks.push(chunk);
    else if (problem === undefined) {
      problem = `printed more than ${MAX_RESULTS_BYTES} bytes`;
      signalGroup(proc, 'SIGKILL');
    }
  });
  const timer = setTimeout(() => {
    problem ??= `did not finish within ${timeoutS} s`;
    signalGroup(proc, 'SIGKILL');
  }, timeoutS * 1000);
  await proc.exited;
  clearTimeout(timer);
  if (problem !== undefined) throw failure(proc, problem);
  const text = Buffer.concat(chunks).toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.slice(Math.max(0, text.indexOf('{'))));
  } catch {
    throw failure(proc, `${proc.exit ?? 'ended'} without printing JSON results (stdout starts with ${JSON.stringify(text.slice(0, 200))})`);
  }
  const results = new Map<string, TestResult>();
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw failure(proc, 'printed JSON that is not an object');
  for (const [id, value] of Object.entries(parsed)) {
    if (value === true) results.set(id, true);
    else if (Array.isArray(value)) results.set(id, [String(value[0]), String(value[1])]);
    else results.set(id, ['unknown', JSON.stringify(value)]);
  }
  return results;
}

interface SuiteTest {
  id: string;
  name: string;
  kind: 'required' | 'optimal' | 'check';
  browserOnly: boolean;
  suite: string;
}

/** The tests cli.mjs runs: the suites of tests/index.mjs plus tests/surrogate-control.mjs, not browser_only. */
async function loadTests(): Promise<SuiteTest[]> {
  const load = async (file: string): Promise<unknown> => {
    const mod: { default: unknown } = await import(pathToFileURL(join(suiteDir, 'tests', file)).href);
    return mod.default;
  };
  const index = await load('index.mjs');
  if (!Array.isArray(index)) throw new HarnessError('tests/index.mjs does not export an array of suites');
  const suites: unknown[] = [...index, await load('surrogate-control.mjs')];
  const tests: SuiteTest[] = [];
  for (const suite of suites) {
    const { id: suiteId, tests: list } = suite as { id?: unknown; tests?: unknown };
    if (!Array.isArray(list)) throw new HarnessError(`suite ${String(suiteId)} has no tests array`);
    for (const test of list as Array<Record<string, unknown>>) {
      const kind = test['kind'] ?? 'required';
      if (kind !== 'required' && kind !== 'optimal' && kind !== 'check') throw new HarnessError(`test ${String(test['id'])} has kind ${String(kind)}`);
      tests.push({
        id: String(test['id']),
        name: String(test['name'] ?? ''),
        kind,
        browserOnly: test['browser_only'] === true,
        suite: String(suiteId),
      });
    }
  }
  return tests.filter((t) => !t.browserOnly);
}

interface Score {
  target: string;
  required: { passed: number; total: number };
  optimal: { passed: number; total: number };
  check: { passed: number; total: number };
  failures: Array<{ id: string; name: string; message: string }>;
}

function score(target: string, tests: SuiteTest[], results: Map<string, TestResult>): { score: Score; bySuite: Map<string, { passed: number; total: number }> } {
  const counts = { required: { passed: 0, total: 0 }, optimal: { passed: 0, total: 0 }, check: { passed: 0, total: 0 } };
  const bySuite = new Map<string, { passed: number; total: number }>();
  const failures: Score['failures'] = [];
  for (const test of tests) {
    const result = results.get(test.id);
    const passed = result === true;
    counts[test.kind].total++;
    if (passed) counts[test.kind].passed++;
    if (test.kind !== 'required') continue;
    const suite = bySuite.get(test.suite) ?? { passed: 0, total: 0 };
    suite.total++;
    if (passed) suite.passed++;
    bySuite.set(test.suite, suite);
    if (!passed) {
      const message = result === undefined ? 'no result from the suite' : `${result[0]}: ${result[1]}`;
      failures.push({ id: test.id, name: test.name, message: message.replace(/\s+/g, ' ') });
    }
  }
  return { score: { target, ...counts, failures }, bySuite };
}

// ---------------------------------------------------------------- main

const USAGE = `usage: node scripts/cache-conformance.ts (--target nginx|usher | --proxy-url URL --origin-port N)
       [--json FILE] [--timeout SECONDS] [--nginx PATH]`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      target: { type: 'string' },
      'proxy-url': { type: 'string' },
      'origin-port': { type: 'string' },
      json: { type: 'string' },
      timeout: { type: 'string', default: '600' },
      nginx: { type: 'string', default: existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const proxyUrl = values['proxy-url']?.replace(/\/+$/, '');
  const target = values.target ?? (proxyUrl === undefined ? undefined : 'proxy-url');
  const originPort = Number(values['origin-port'] ?? 0);
  const timeoutS = Number(values.timeout);
  const usage = (why: string): number => {
    process.stderr.write(`${why}\n${USAGE}\n`);
    return 2;
  };
  if (target !== 'nginx' && target !== 'usher' && target !== 'proxy-url') return usage('--target must be nginx or usher, or give --proxy-url');
  if ((target === 'proxy-url') !== (proxyUrl !== undefined)) return usage('--proxy-url and --target go alone');
  if (target === 'proxy-url' && originPort === 0) return usage('--proxy-url needs --origin-port: the port the running proxy sends to');
  if (!Number.isInteger(originPort) || originPort < 0 || originPort > 65535) return usage('--origin-port must be a port number');
  if (!(timeoutS > 0)) return usage('--timeout must be a positive number of seconds');

  const version = (JSON.parse(readFileSync(join(suiteDir, 'package.json'), 'utf8')) as { version?: unknown }).version;
  if (version !== SUITE_VERSION) throw new HarnessError(`node_modules/http-cache-tests is ${String(version)}, expected ${SUITE_VERSION}: run npm ci`);
  if (target === 'usher' && !existsSync(usherCli)) throw new HarnessError(`${usherCli} is missing: run \`npm run build\` first`);
  const tests = await loadTests();

  const dir = mkdtempSync(join(tmpdir(), 'usher-cache-conformance-'));
  tempDirs.push(dir);
  const origin = await startOrigin(dir, originPort);
  process.stdout.write(`origin: http://127.0.0.1:${origin}\n`);
  const base = target === 'nginx' ? await startNginx(dir, origin, values.nginx)
    : target === 'usher' ? await startUsher(dir, origin)
    : proxyUrl ?? '';
  process.stdout.write(`proxy (${target}): ${base}\nrunning http-cache-tests ${SUITE_VERSION} (about 20 s against nginx; at most --timeout)...\n`);

  const began = Date.now();
  const results = await runSuite(base, timeoutS);
  const { score: result, bySuite } = score(target, tests, results);
  const line = (label: string, c: { passed: number; total: number }): string => `${label}: ${c.passed}/${c.total} passed\n`;
  process.stdout.write(`${results.size} results in ${Math.round((Date.now() - began) / 1000)} s\n`
    + line('required', result.required) + line('optimal', result.optimal) + line('check', result.check));
  process.stdout.write('required, by suite:\n');
  for (const [suite, c] of bySuite) process.stdout.write(`  ${suite.padEnd(20)} ${c.passed}/${c.total}\n`);
  if (result.failures.length > 0) process.stdout.write('failed required tests:\n');
  for (const f of result.failures) process.stdout.write(`  ${f.id}  ${f.message}\n`);
  if (values.json !== undefined) {
    writeFileSync(values.json, `${JSON.stringify(result, null, 2)}\n`);
    process.stdout.write(`wrote ${values.json}\n`);
  }
  return 0;
}

let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    interrupted = true;
    process.stderr.write(`\n${signal}: stopping what was started\n`);
    void stopAll().finally(() => process.exit(130));
  });
}

try {
  process.exitCode = await main();
} catch (err) {
  if (!interrupted) process.stderr.write(`cache-conformance: ${err instanceof HarnessError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
} finally {
  await stopAll();
}
