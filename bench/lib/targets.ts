/**
 * The things the bench can point wrk at. Each target knows how to start itself
 * pinned to the balancer CPU (when the bench pins), on which port it listens,
 * and which process's CPU time is "the balancer's". Built-in: direct, usher,
 * usher-w0 (usher with `--workers 0` whatever `--workers` says), nginx,
 * haproxy, http-proxy and the data-path prototypes; more come from
 * `--extra 'name=command'`. usher gets `--workers N`, nginx
 * `worker_processes max(N,1)` and HAProxy `nbthread max(N,1)` (N = `--workers`).
 *
 * A target offers one or more modes (see `Mode`): every target proxies plain
 * HTTP; usher, nginx and HAProxy also terminate TLS (`https`); usher and
 * HAProxy also proxy TCP (`tcp`), and `direct` is the origin itself in every
 * mode but https. Each mode is a separate process with its own port.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Mode } from './args.ts';
import { haproxyConf, haproxyTcpConf, proxyNginxConf, usherHttpsYaml, usherTcpYaml, type TlsFiles } from './configs.ts';
import { freePort, hasCommand, pinned, start, waitForPort, type Spawned } from './proc.ts';

/** Shared facts every target launch needs. */
export interface BenchContext {
  /** Project root (where dist/ and bench/ live). */
  readonly root: string;
  /** Private temp directory for configs and logs. */
  readonly dir: string;
  /** Node 24 binary used for every Node peer. */
  readonly node: string;
  /** Origin ports; all serve identical content. */
  readonly backends: readonly number[];
  /** CPU the balancer under test is pinned to (undefined: no pinning). */
  readonly balancerCpu: number | undefined;
  /** PID of the origin process (the "balancer" of the direct target). */
  readonly originPid: number;
  /** Certificate for the https mode (undefined when no https scenario runs or openssl failed). */
  readonly tls: TlsFiles | undefined;
  /** `--workers`: usher's `--workers`; nginx's worker processes and HAProxy's threads are max(workers, 1). */
  readonly workers: number;
}

/** A started target. `proc` is undefined when the bench did not start anything (direct). */
export interface Launched {
  readonly port: number;
  readonly proc: Spawned | undefined;
  /** Process whose CPU time (with its descendants) is charged to the target. */
  readonly cpuPid: number;
  /** When the bench spawned it (process.hrtime.bigint()); undefined for direct. */
  readonly spawnedAt?: bigint;
  /** Milliseconds from spawn until its port accepted a TCP connection (10 ms resolution). */
  readonly startMs?: number;
}

/** Why a target could not run this time. */
export interface Skipped {
  readonly skip: string;
}

/** baseline: no balancer; peer: reference products; candidate: what we are evaluating. */
export type Role = 'baseline' | 'peer' | 'candidate';

export interface Target {
  readonly name: string;
  readonly role: Role;
  readonly description: string;
  /** The modes the target can be launched in. */
  readonly modes: readonly Mode[];
  /** Starts the target in `mode` (one of `modes`). */
  launch(ctx: BenchContext, mode: Mode): Promise<Launched | Skipped>;
}

/** Starts `argv` on a fresh port (argv built from the port) and waits until it accepts connections. */
async function launchCommand(ctx: BenchContext, name: string, build: (port: number) => string[]): Promise<Launched | Skipped> {
  const port = await freePort();
  const argv = pinned(ctx.balancerCpu, build(port));
  const spawnedAt = process.hrtime.bigint();
  const proc = start(name, argv, ctx.root);
  try {
    await waitForPort(port, proc, 10_000, 10);
  } catch (err) {
    return { skip: `${name} did not start: ${(err as Error).message}` };
  }
  return { port, proc, cpuPid: proc.pid, spawnedAt, startMs: Number(process.hrtime.bigint() - spawnedAt) / 1e6 };
}

/** nginx worker processes and HAProxy threads for `--workers n`. */
export function peerThreads(workers: number): number {
  return Math.max(1, workers);
}

function nodeScript(name: string, role: Role, file: string, description: string): Target {
  return {
    name,
    role,
    description,
    modes: ['http'],
    launch: (ctx) => {
      const path = join(ctx.root, file);
      if (!existsSync(path)) return Promise.resolve({ skip: `${name}: ${file} not found` });
      return launchCommand(ctx, name, (port) => [ctx.node, path, String(port), hostPorts(ctx.backends)]);
    },
  };
}

function hostPorts(ports: readonly number[]): string {
  return ports.map((p) => `127.0.0.1:${p}`).join(',');
}

const direct: Target = {
  name: 'direct',
  role: 'baseline',
  description: 'wrk straight at one origin port (CPU column: the origin nginx); in l4 the same, as the no-proxy ceiling',
  modes: ['http', 'tcp'],
  launch: (ctx) => {
    const port = ctx.backends[0];
    if (port === undefined) return Promise.resolve({ skip: 'direct: no origin' });
    return Promise.resolve({ port, proc: undefined, cpuPid: ctx.originPid });
  },
};

/**
 * usher started with `--workers <workers(ctx)>`, always explicit (usher start
 * defaults to auto otherwise). `name` also names its processes and generated
 * configs, so usher and usher-w0 can run side by side.
 */
function usherTarget(name: string, description: string, workers: (ctx: BenchContext) => number): Target {
  return {
    name,
    role: 'candidate',
    description,
    modes: ['http', 'https', 'tcp'],
    launch: (ctx, mode) => {
      const cli = join(ctx.root, 'dist', 'cli.js');
      if (!existsSync(cli)) return Promise.resolve({ skip: `${name}: dist/cli.js not found (run \`npm run build\`; is the CLI written yet?)` });
      const n = String(workers(ctx));
      if (mode !== 'http') {
        const tls = ctx.tls;
        if (mode === 'https' && tls === undefined) return Promise.resolve({ skip: `${name} (https): no certificate (openssl failed?)` });
        return launchCommand(ctx, `${name}-${mode}`, (port) => {
          const file = join(ctx.dir, `${name}-${mode}.yaml`);
          writeFileSync(file, mode === 'tcp' ? usherTcpYaml(port, ctx.backends) : usherHttpsYaml(port, ctx.backends, tls as TlsFiles));
          return [ctx.node, cli, 'start', '-c', file, '--workers', n, '--no-access-log'];
        });
      }
      return launchCommand(ctx, name, (port) => {
        const argv = [ctx.node, cli, 'start', '--bind', `127.0.0.1:${port}`];
        for (const b of ctx.backends) argv.push('--backend', `127.0.0.1:${b}`);
        argv.push('--algorithm', 'round-robin', '--workers', n, '--no-access-log');
        return argv;
      });
    },
  };
}

function usherDescription(workers: number): string {
  const threads = workers === 0 ? 'single-threaded: the main thread serves' : `${workers} data-plane worker thread${workers === 1 ? '' : 's'} + the main control thread`;
  return (
    `--workers ${workers} (${threads}); ` +
    `http: node dist/cli.js start --bind … --backend … --algorithm round-robin --workers ${workers} --no-access-log; ` +
    `https/tcp: node dist/cli.js start -c <generated yaml> --workers ${workers} --no-access-log (protocol https / tcp listener, round-robin pool, access log off)`
  );
}

const nginx = (workers: number): Target => ({
  name: 'nginx',
  role: 'peer',
  description:
    `nginx reverse proxy, ${peerThreads(workers) === 1 ? '1 worker (single process, master_process off)' : `master + ${peerThreads(workers)} worker processes`}, ` +
    'upstream keepalive 64 (https: the same behind `listen … ssl`)',
  modes: ['http', 'https'],
  launch: (ctx, mode) => {
    if (!hasCommand('nginx')) return Promise.resolve({ skip: 'nginx: not installed' });
    if (mode === 'https' && ctx.tls === undefined) return Promise.resolve({ skip: 'nginx (https): no certificate (openssl failed?)' });
    const name = mode === 'https' ? 'proxy-tls' : 'proxy';
    return launchCommand(ctx, mode === 'https' ? 'nginx-https' : 'nginx', (port) => {
      const conf = join(ctx.dir, `${name}-nginx.conf`);
      writeFileSync(conf, proxyNginxConf(ctx.dir, port, ctx.backends, mode === 'https' ? ctx.tls : undefined, name, peerThreads(ctx.workers)));
      return ['nginx', '-p', `${ctx.dir}/`, '-c', conf, '-e', join(ctx.dir, `${name}-error.log`)];
    });
  },
});

const haproxy = (workers: number): Target => ({
  name: 'haproxy',
  role: 'peer',
  description: `HAProxy, nbthread ${peerThreads(workers)}, roundrobin, http-reuse always (https: \`bind … ssl crt\`; tcp: mode tcp, no splicing)`,
  modes: ['http', 'https', 'tcp'],
  launch: (ctx, mode) => {
    if (!hasCommand('haproxy')) return Promise.resolve({ skip: 'haproxy: not installed' });
    if (mode === 'https' && ctx.tls === undefined) return Promise.resolve({ skip: 'haproxy (https): no certificate (openssl failed?)' });
    return launchCommand(ctx, mode === 'http' ? 'haproxy' : `haproxy-${mode}`, (port) => {
      const conf = join(ctx.dir, `haproxy-${mode}.cfg`);
      const threads = peerThreads(ctx.workers);
      writeFileSync(conf, mode === 'tcp' ? haproxyTcpConf(port, ctx.backends, threads) : haproxyConf(port, ctx.backends, mode === 'https' ? ctx.tls : undefined, threads));
      return ['haproxy', '-db', '-f', conf];
    });
  },
});

/**
 * Every built-in target, in the order they run, for `--workers workers` (which
 * the descriptions state). usher-w0 is a candidate outside DEFAULT_TARGETS:
 * `--targets usher,usher-w0 --workers 1` compares one worker thread with the
 * single-threaded design in the same run.
 */
export function builtinTargets(workers: number): Target[] {
  return [
    direct,
    usherTarget('usher', usherDescription(workers), (ctx) => ctx.workers),
    usherTarget('usher-w0', `usher held at the single-threaded design whatever --workers says: ${usherDescription(0)}`, () => 0),
    nginx(workers),
    haproxy(workers),
    nodeScript('http-proxy', 'peer', 'bench/peers/http-proxy.ts', 'http-proxy npm package, keep-alive agent'),
    nodeScript('undici-dispatch', 'candidate', 'bench/prototypes/undici-dispatch.ts', 'prototype: undici Pool.dispatch + handler object'),
    nodeScript('undici-request', 'candidate', 'bench/prototypes/undici-request.ts', 'prototype: undici Pool.request (stream body)'),
    nodeScript('http-agent', 'candidate', 'bench/prototypes/http-agent.ts', 'prototype: http.request + keep-alive Agent'),
    nodeScript('raw-socket', 'candidate', 'bench/prototypes/raw-socket.ts', 'prototype: hand-written HTTP/1.1 client on net.Socket'),
    nodeScript('raw-both', 'candidate', 'bench/prototypes/raw-both.ts', 'prototype: hand-written HTTP/1.1 on both sides (net.Server + net.Socket)'),
    nodeScript('node-floor', 'baseline', 'bench/peers/origin.ts', 'node:http server answering by itself (no upstream): the floor of a node:http downstream'),
  ];
}

/** Targets run when --targets is not given. */
export const DEFAULT_TARGETS = ['direct', 'usher', 'nginx', 'haproxy', 'http-proxy'];

/** The data-path prototypes and the node:http floor (`--prototypes` adds these). */
export const PROTOTYPES = ['undici-dispatch', 'undici-request', 'http-agent', 'raw-socket', 'raw-both', 'node-floor'];

/**
 * `name=command with {port} and {backends}` → a target. A leading `node` is
 * replaced by the bench's own Node 24 binary so PATH cannot pick another one.
 */
export function extraTarget(spec: string): Target {
  const eq = spec.indexOf('=');
  if (eq <= 0) throw new Error(`--extra must be name=command, got ${JSON.stringify(spec)}`);
  const name = spec.slice(0, eq).trim();
  const words = splitWords(spec.slice(eq + 1));
  if (words.length === 0) throw new Error(`--extra ${name}: empty command`);
  if (!words.some((w) => w.includes('{port}'))) throw new Error(`--extra ${name}: command must contain {port}`);
  return {
    name,
    role: 'candidate',
    description: `extra: ${words.join(' ')}`,
    modes: ['http'],
    launch: (ctx) =>
      launchCommand(ctx, name, (port) =>
        words.map((w, i) => {
          if (i === 0 && w === 'node') return ctx.node;
          return w.replaceAll('{port}', String(port)).replaceAll('{backends}', hostPorts(ctx.backends));
        }),
      ),
  };
}

/** Shell-like word splitting with '...' and "..." quoting (no expansion). */
export function splitWords(text: string): string[] {
  const words: string[] = [];
  let cur = '';
  let quote = '';
  let has = false;
  for (const ch of text) {
    if (quote !== '') {
      if (ch === quote) quote = '';
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      has = true;
    } else if (/\s/.test(ch)) {
      if (has) words.push(cur);
      cur = '';
      has = false;
    } else {
      cur += ch;
      has = true;
    }
  }
  if (quote !== '') throw new Error(`unterminated ${quote} in ${JSON.stringify(text)}`);
  if (has) words.push(cur);
  return words;
}

/** Makes the nginx temp directories a prefix needs. */
export function prepareNginxDirs(dir: string): void {
  for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, 'tmp', sub), { recursive: true });
}
