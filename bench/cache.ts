/**
 * Cache benchmark (issue 14): cache hits of 1 KiB, 16 KiB and 256 KiB objects
 * through usher's `cache` filter, nginx `proxy_cache` and Varnish (when
 * `varnishd` is installed), each pinned to one CPU with wrk and the origin on
 * the other; then a stampede: 500 concurrent requests for a cold key whose
 * origin takes 300 ms, counting the requests the origin saw and the clients'
 * p99.
 *
 *   node bench/cache.ts [--duration 4] [--rounds 3] [--workers 1]
 *
 * Ratios are per round, medians reported. Nothing here runs in `npm test`.
 */
import { request } from 'node:http';
import { createServer } from 'node:http';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { cpuTicks, descendants, freePort, hasCommand, killAllSync, pinned, start, stop, ticksPerSecond, waitForPort, type Spawned } from './lib/proc.ts';
import { runWrk, writeDoneScript } from './lib/wrk.ts';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const DURATION_S = Number(args.get('duration') ?? 4);
const ROUNDS = Number(args.get('rounds') ?? 3);
const WORKERS = Number(args.get('workers') ?? 1);
const SIZES = [['1k', 1024], ['16k', 16 * 1024], ['256k', 256 * 1024]] as const;
const BALANCER_CPU = 0;
const LOAD_CPU = 1;
const root = resolve(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'usher-bench-cache-'));
// varnishd reads its VCL as an unprivileged user (vcache): the directory must be readable.
chmodSync(dir, 0o755);
mkdirSync(join(dir, 'www', 'c'), { recursive: true });
mkdirSync(join(dir, 'tmp'), { recursive: true });
for (const [name, bytes] of SIZES) writeFileSync(join(dir, 'www', 'c', name), Buffer.alloc(bytes, 'x'));

interface Peer {
  readonly name: string;
  readonly port: number;
  readonly proc: Spawned;
}

function nginxOriginConf(port: number): string {
  return `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/origin.pid;
error_log ${dir}/origin-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp/o-body;
  proxy_temp_path ${dir}/tmp/o-proxy;
  server {
    listen 127.0.0.1:${port} backlog=4096;
    root ${dir}/www;
    location /c/ { add_header Cache-Control "max-age=3600"; }
  }
}
`;
}

function nginxCacheConf(port: number, origin: number, slowOrigin: number): string {
  return `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/ncache.pid;
error_log ${dir}/ncache-error.log warn;
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp/n-body;
  proxy_temp_path ${dir}/tmp/n-proxy;
  proxy_cache_path ${dir}/tmp/n-cache levels=1:2 keys_zone=c:32m max_size=256m inactive=60m use_temp_path=off;
  upstream o { server 127.0.0.1:${origin}; keepalive 64; }
  upstream slow { server 127.0.0.1:${slowOrigin}; keepalive 64; }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    proxy_cache c;
    proxy_cache_lock on;
    proxy_cache_lock_timeout 5s;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    location /stampede/ { proxy_pass http://slow; }
    location /swr/ { proxy_pass http://slow; proxy_cache_use_stale updating; proxy_cache_background_update on; }
    location / { proxy_pass http://o; }
  }
}
`;
}

function usherYaml(port: number, origin: number, slowOrigin: number): string {
  return `runtime: { workers: ${WORKERS} }
accessLog: { enabled: false }
cache: { maxSize: 256MiB }
listeners:
  - name: web
    bind: 127.0.0.1:${port}
    routes:
      - match: { pathPrefix: /stampede/ }
        pool: slow
        filters: [ { cache: {} } ]
      - match: { pathPrefix: /swr/ }
        pool: slow
        filters: [ { cache: {} } ]
      - pool: origin
        filters: [ { cache: {} } ]
pools:
  origin:
    backends: [ { address: 127.0.0.1:${origin} } ]
  slow:
    backends: [ { address: 127.0.0.1:${slowOrigin} } ]
    timeouts: { response: 10s }
`;
}

function varnishVcl(origin: number, slowOrigin: number): string {
  return `vcl 4.1;
backend o { .host = "127.0.0.1"; .port = "${origin}"; }
backend slow { .host = "127.0.0.1"; .port = "${slowOrigin}"; }
sub vcl_recv { if (req.url ~ "^/(stampede|swr)/") { set req.backend_hint = slow; } else { set req.backend_hint = o; } }
`;
}

/** The stampede origin: every request waits 300 ms; it counts what it saw. */
async function slowOrigin(): Promise<{ port: number; seen: () => number; close: () => void }> {
  let seen = 0;
  const server = createServer((req, res) => {
    seen++;
    const cacheControl = req.url?.startsWith('/swr/') === true ? 'max-age=1, stale-while-revalidate=30' : 'max-age=3600';
    setTimeout(() => res.writeHead(200, { 'cache-control': cacheControl, 'content-length': '5' }).end('slow\n'), 300);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as { port: number }).port, seen: () => seen, close: () => server.close() };
}

function get(port: number, path: string): Promise<number> {
  const started = performance.now();
  return new Promise((resolveGet) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolveGet(res.statusCode === 200 ? performance.now() - started : -1));
    });
    req.on('error', () => resolveGet(-1));
    req.end();
  });
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const node = process.execPath;
  const originPort = await freePort();
  writeFileSync(join(dir, 'origin.conf'), nginxOriginConf(originPort));
  const originProc = start('origin', pinned(LOAD_CPU, ['nginx', '-c', join(dir, 'origin.conf'), '-p', dir]));
  await waitForPort(originPort, originProc);
  const slow = await slowOrigin();
  const peers: Peer[] = [];
  const usherPort = await freePort();
  writeFileSync(join(dir, 'usher.yaml'), usherYaml(usherPort, originPort, slow.port));
  const usher = start('usher', pinned(WORKERS > 1 ? undefined : BALANCER_CPU, [node, join(root, 'dist', 'cli.js'), 'start', '-c', join(dir, 'usher.yaml')]));
  await waitForPort(usherPort, usher);
  peers.push({ name: 'usher', port: usherPort, proc: usher });
  const nginxPort = await freePort();
  writeFileSync(join(dir, 'ncache.conf'), nginxCacheConf(nginxPort, originPort, slow.port));
  const nginx = start('nginx', pinned(BALANCER_CPU, ['nginx', '-c', join(dir, 'ncache.conf'), '-p', dir]));
  await waitForPort(nginxPort, nginx);
  peers.push({ name: 'nginx', port: nginxPort, proc: nginx });
  if (hasCommand('varnishd')) {
    const varnishPort = await freePort();
    writeFileSync(join(dir, 'default.vcl'), varnishVcl(originPort, slow.port));
    const varnish = start('varnish', pinned(BALANCER_CPU, ['varnishd', '-F', '-n', join(dir, 'varnish'), '-a', `127.0.0.1:${varnishPort}`, '-f', join(dir, 'default.vcl'), '-s', 'malloc,256m']));
    await waitForPort(varnishPort, varnish, 20_000);
    peers.push({ name: 'varnish', port: varnishPort, proc: varnish });
  } else {
    process.stdout.write('varnishd not installed: Varnish skipped (apt-get install varnish)\n');
  }

  const script = writeDoneScript(dir);
  const hz = ticksPerSecond();
  const rows: Record<string, Record<string, { rps: number[]; p99: number[]; cpu: number[] }>> = {};
  for (let round = 1; round <= ROUNDS; round++) {
    for (const [size] of SIZES) {
      for (const peer of peers) {
        await get(peer.port, `/c/${size}`); // fill
        const pids = [peer.proc.pid, ...descendants(peer.proc.pid)];
        const t0 = cpuTicks(pids);
        const result = await runWrk({ url: `http://127.0.0.1:${peer.port}/c/${size}`, threads: 1, connections: 50, durationS: DURATION_S, headers: [], cpu: LOAD_CPU }, script);
        const t1 = cpuTicks([peer.proc.pid, ...descendants(peer.proc.pid)]);
        const rps = result.requests / (result.durationUs / 1e6);
        const cpuUs = ((t1 - t0) / hz) * 1e6 / Math.max(1, result.requests);
        const row = ((rows[size] ??= {})[peer.name] ??= { rps: [], p99: [], cpu: [] });
        row.rps.push(rps);
        row.p99.push(result.latencyUs.p99 / 1000);
        row.cpu.push(cpuUs);
        process.stdout.write(`r${round} ${peer.name.padEnd(8)} ${size.padEnd(5)} ${Math.round(rps)} req/s  p99 ${(result.latencyUs.p99 / 1000).toFixed(2)} ms  ${cpuUs.toFixed(1)} us CPU/req  errors ${result.errors.status + result.errors.connect + result.errors.read + result.errors.timeout}\n`);
      }
    }
  }
  process.stdout.write('\ncache hits (medians)\nsize   peer      req/s    p99 ms  CPU us/req  req/s vs best other\n');
  for (const [size] of SIZES) {
    const r = rows[size]!;
    const others = peers.filter((p) => p.name !== 'usher').map((p) => median(r[p.name]!.rps));
    const best = Math.max(...others);
    for (const peer of peers) {
      const x = r[peer.name]!;
      process.stdout.write(`${size.padEnd(6)} ${peer.name.padEnd(8)} ${String(Math.round(median(x.rps))).padStart(7)}  ${median(x.p99).toFixed(2).padStart(7)}  ${median(x.cpu).toFixed(1).padStart(9)}  ${peer.name === 'usher' ? `${(median(x.rps) / best).toFixed(2)}x` : ''}\n`);
    }
  }

  process.stdout.write('\nstampede: 500 concurrent requests for a cold key, origin takes 300 ms\npeer      origin requests  p99 ms  failed\n');
  for (const peer of peers) {
    const before = slow.seen();
    const times = await Promise.all(Array.from({ length: 500 }, () => get(peer.port, `/stampede/${peer.name}`)));
    const ok = times.filter((ms) => ms >= 0).sort((a, b) => a - b);
    process.stdout.write(`${peer.name.padEnd(9)} ${String(slow.seen() - before).padStart(15)}  ${(ok[Math.floor(ok.length * 0.99)] ?? NaN).toFixed(0).padStart(6)}  ${500 - ok.length}\n`);
  }

  process.stdout.write('\nexpiry under stale-while-revalidate: max-age=1, stale-while-revalidate=30, origin takes 300 ms;\n10 clients in a loop from 0.5 s to 2.5 s after the fill\npeer      origin requests  p99 ms in the second after expiry  max ms  requests\n');
  for (const peer of peers) {
    const path = `/swr/${peer.name}`;
    const before = slow.seen();
    await get(peer.port, path); // the fill (300 ms)
    const filled = performance.now();
    await new Promise((resolveWait) => setTimeout(resolveWait, 500));
    const samples: Array<{ at: number; ms: number }> = [];
    await Promise.all(Array.from({ length: 10 }, async () => {
      while (performance.now() - filled < 2500) {
        const at = performance.now() - filled;
        samples.push({ at, ms: await get(peer.port, path) });
      }
    }));
    const window = samples.filter((s) => s.at >= 1000 && s.at < 2000 && s.ms >= 0).map((s) => s.ms).sort((a, b) => a - b);
    process.stdout.write(`${peer.name.padEnd(9)} ${String(slow.seen() - before).padStart(15)}  ${(window[Math.floor(window.length * 0.99)] ?? NaN).toFixed(1).padStart(33)}  ${(window.at(-1) ?? NaN).toFixed(1).padStart(6)}  ${String(window.length).padStart(8)}\n`);
  }

  for (const peer of peers) await stop(peer.proc);
  await stop(originProc);
  slow.close();
  rmSync(dir, { recursive: true, force: true });
}

process.on('SIGINT', () => {
  killAllSync();
  process.exit(130);
});
main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  killAllSync();
  process.exit(1);
});
