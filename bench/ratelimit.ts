/**
 * Rate-limit benchmark (issue 15): `npm run bench:ratelimit` (= build, then
 * `node bench/ratelimit.ts`), on loopback only, every process started here
 * stopped by its PID at the end.
 *
 *   node bench/ratelimit.ts [--scenarios cost,accuracy,kill,memory] [--duration 30s]
 *                           [--requests 3000] [--keys 1000000] [--redis-keys 100000]
 *
 * - **cost**: one usher, three routes to the same origin: no limiter, a
 *   local gcra policy, a Redis gcra policy (both too generous to refuse).
 *   One client, one request at a time, the three routes interleaved (paired,
 *   same run): p50/p99 latency per route and what the limiter adds (µs).
 * - **accuracy**: three usher processes and one redis-server, a gcra and a
 *   sliding-window policy on Redis, offered 3× the allowed rate (open loop,
 *   spread over the three) for `--duration`. Admitted total against what the
 *   policy allows: the nominal figure (rate × time, + burst) and the exact one
 *   (the local algorithm replayed on the requests' send times).
 * - **kill**: the same three instances (gcra on Redis, onStoreError: local,
 *   each told there are 3 live instances), 3× load; redis-server is SIGKILLed
 *   after a third of the run and started again after two thirds. Failed
 *   requests (anything but 200 and 429), time to the first fallback decision,
 *   admitted while Redis was down against the limit, time until every
 *   instance decides on Redis again.
 * - **memory**: bytes per key of the local table at 1M keys (its fixed
 *   allocation, then filled with 1M keys), and in Redis (INFO used_memory
 *   delta over `--redis-keys` keys of each algorithm, and MEMORY USAGE of one).
 *
 * Figures from a shared 2-core machine are noisy: the load generator, the
 * origin, Redis and usher all share the cores. Nothing here runs in `npm test`.
 */
import { readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from 'redis';
import { gcra, slidingWindow } from '../src/ratelimit/algorithms.ts';
import { RedisRateLimitClient } from '../src/ratelimit/redis.ts';
import { RateLimitStore } from '../src/ratelimit/store.ts';
import { LimiterTable } from '../src/ratelimit/table.ts';
import { freePort, hasCommand, killAllSync, start, stop, waitForPort, type Spawned } from './lib/proc.ts';

const root = resolve(import.meta.dirname, '..');
const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
function seconds(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (m === null) throw new Error(`expected a duration such as 30s or 500ms, got ${text}`);
  const n = Number(m[1]);
  return m[2] === 'ms' ? n / 1000 : m[2] === 'm' ? n * 60 : n;
}
const SCENARIOS = new Set((args.get('scenarios') ?? 'cost,accuracy,kill,memory').split(','));
const DURATION_S = seconds(args.get('duration') ?? '30s');
const REQUESTS = Number(args.get('requests') ?? 3000);
const LOCAL_KEYS = Number(args.get('keys') ?? 1_000_000);
const REDIS_KEYS = Number(args.get('redis-keys') ?? 100_000);
const dir = mkdtempSync(join(tmpdir(), 'usher-bench-ratelimit-'));

function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

const epoch = (): number => performance.timeOrigin + performance.now();

// ---- processes ----

interface Redis {
  port: number;
  proc: Spawned;
}

async function startRedis(port?: number): Promise<Redis> {
  const p = port ?? (await freePort());
  const proc = start('redis-server', ['redis-server', '--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
  await waitForPort(p, proc, 10_000, 10);
  return { port: p, proc };
}

interface Instance {
  proc: Spawned;
  port: number;
  admin: string;
}

async function startUsher(name: string, yaml: string, live: number): Promise<Instance> {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, yaml);
  const proc = start(name, [process.execPath, join(root, 'bench/lib/ratelimit-usher.ts'), file, String(live)]);
  const deadline = Date.now() + 20_000;
  for (;;) {
    const line = proc.output.split('\n').find((l) => l.startsWith('{"port"'));
    if (line !== undefined) {
      const { port, admin } = JSON.parse(line) as { port: number; admin: string };
      return { proc, port, admin };
    }
    if (proc.exited || Date.now() > deadline) throw new Error(`${name} did not start:\n${proc.output}`);
    await sleep(20);
  }
}

function startOrigin(): Promise<Server> {
  const server = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' }).end('ok');
  });
  server.keepAliveTimeout = 60_000;
  return new Promise((done) => server.listen(0, '127.0.0.1', () => done(server)));
}

function config(originPort: number, redisPort: number, policies: string, routes: string): string {
  return `redis: { url: 'redis://127.0.0.1:${redisPort}', keyPrefix: bench }
rateLimits:
${policies}
admin: { bind: 127.0.0.1:0 }
accessLog: { enabled: false }
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
${routes}
pools:
  main:
    backends:
      - address: 127.0.0.1:${originPort}
`;
}

// ---- HTTP client ----

const agents = new Map<number, Agent>();

interface Sent {
  readonly at: number;
  readonly instance: number;
  readonly path: string;
  status: number;
  latencyMs: number;
}

function get(port: number, path: string, headers: Record<string, string>): Promise<{ status: number; latencyMs: number }> {
  let agent = agents.get(port);
  if (agent === undefined) {
    agent = new Agent({ keepAlive: true, maxSockets: 64 });
    agents.set(port, agent);
  }
  const started = performance.now();
  return new Promise((done) => {
    const req = request({ host: '127.0.0.1', port, path, headers, agent, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => done({ status: res.statusCode ?? 0, latencyMs: performance.now() - started }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => done({ status: 0, latencyMs: performance.now() - started }));
    req.end();
  });
}

async function metrics(admin: string): Promise<string> {
  const reply = await fetch(`${admin}/metrics`);
  return reply.text();
}

function metricValue(text: string, pattern: RegExp): number {
  let sum = 0;
  for (const line of text.split('\n')) if (pattern.test(line)) sum += Number(line.split(' ').at(-1));
  return sum;
}

/**
 * Open-loop load: `rate` requests per second for `seconds`, round-robin over
 * `ports`, each request as its own (not waiting for the previous one).
 */
async function offer(ports: readonly number[], rate: number, durationS: number, paths: readonly string[], headers: Record<string, string>, events: { at: number; run: () => void }[] = []): Promise<Sent[]> {
  const sent: Sent[] = [];
  const pending: Promise<void>[] = [];
  const started = performance.now();
  const total = Math.floor(rate * durationS);
  let n = 0;
  const todo = [...events].sort((a, b) => a.at - b.at);
  while (n < total) {
    const elapsed = (performance.now() - started) / 1000;
    while (todo.length > 0 && todo[0]!.at <= elapsed) todo.shift()!.run();
    const due = Math.min(total, Math.floor(elapsed * rate) + 1);
    while (n < due) {
      const instance = n % ports.length;
      const path = paths[Math.floor(n / ports.length) % paths.length]!;
      const one: Sent = { at: epoch(), instance, path, status: -1, latencyMs: 0 };
      sent.push(one);
      pending.push(get(ports[instance]!, path, headers).then((r) => {
        one.status = r.status;
        one.latencyMs = r.latencyMs;
      }));
      n++;
    }
    await sleep(1);
  }
  await Promise.all(pending);
  return sent;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const fmt = (n: number, digits = 0): string => (Number.isFinite(n) ? n.toFixed(digits) : '-');

// ---- scenarios ----

async function costScenario(origin: number): Promise<void> {
  const redis = await startRedis();
  const policies = `  lim-local: { rate: 1000000/s, burst: 100000, key: ['header:x-k'] }
  lim-redis: { rate: 1000000/s, burst: 100000, key: ['header:x-k'], store: redis }`;
  const routes = `      - { match: { pathPrefix: /local }, pool: main, filters: [ { rateLimit: [lim-local] } ] }
      - { match: { pathPrefix: /redis }, pool: main, filters: [ { rateLimit: [lim-redis] } ] }
      - { pool: main }`;
  const usher = await startUsher('usher-cost', config(origin, redis.port, policies, routes), 1);
  try {
    const paths = ['/none', '/local', '/redis'] as const;
    const latencies: Record<string, number[]> = { '/none': [], '/local': [], '/redis': [] };
    const warm = Math.min(500, REQUESTS);
    for (let i = 0; i < REQUESTS + warm; i++) {
      // Rotate the order so no route always goes first after the others.
      for (let j = 0; j < 3; j++) {
        const path = paths[(i + j) % 3]!;
        const r = await get(usher.port, path, { 'x-k': `k${i % 1000}` });
        if (r.status !== 200) throw new Error(`${path}: status ${r.status}`);
        if (i >= warm) latencies[path]!.push(r.latencyMs);
      }
    }
    const text = await metrics(usher.admin);
    const fallback = metricValue(text, /^usher_ratelimit_decisions_total\{policy="lim-redis",outcome="[a-z_]+",store="fallback"\}/);
    const p = (path: string, q: number): number => percentile([...latencies[path]!].sort((a, b) => a - b), q) * 1000;
    console.log(`\n## Added cost per request (one usher, main thread; ${REQUESTS} requests per route, interleaved, one at a time)\n`);
    console.log('| route | p50 µs | p99 µs | added p50 µs | added p99 µs |');
    console.log('|---|---|---|---|---|');
    for (const path of paths) console.log(`| ${path.slice(1)} | ${fmt(p(path, 50))} | ${fmt(p(path, 99))} | ${path === '/none' ? '' : fmt(p(path, 50) - p('/none', 50))} | ${path === '/none' ? '' : fmt(p(path, 99) - p('/none', 99))} |`);
    console.log(`\nRedis decisions that fell back (timeout 20 ms): ${fallback}`);
    // The local decision alone, in this process: no HTTP around it.
    const store = new RateLimitStore(true);
    const limiter = store.limiter('micro', { algorithm: 'gcra', rate: { count: 1_000_000, periodMs: 1000 }, burst: 100_000, maxDelayMs: 0, key: ['client-ip'], ipv6Prefix: 64, dryRun: false, status: 429, xRateLimitHeaders: false, maxKeys: 100_000, store: 'local', onStoreError: 'local' });
    const keys = Array.from({ length: 1000 }, (_, i) => `10.0.${i >> 8}.${i & 255}`);
    let best = Infinity;
    for (let round = 0; round < 5; round++) {
      const t0 = performance.now();
      for (let i = 0; i < 200_000; i++) limiter.decide(keys[i % 1000]!, epoch());
      best = Math.min(best, ((performance.now() - t0) * 1e6) / 200_000);
    }
    console.log(`One local gcra decision (Limiter.decide, 1000 keys, best of 5 × 200k): ${fmt(best)} ns`);
  } finally {
    await stop(usher.proc, 1000);
    await stop(redis.proc, 1000);
  }
}

/** Three instances on one redis-server with `policies` and `routes`, each told there are 3 live instances. */
async function fleet(origin: number, redisPort: number, policies: string, routes: string): Promise<Instance[]> {
  return Promise.all([0, 1, 2].map((i) => startUsher(`usher-${i}`, config(origin, redisPort, policies, routes), 3)));
}

async function ready(instances: readonly Instance[], path: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (const instance of instances) {
    for (;;) {
      await get(instance.port, path, { 'x-user': `warm-${instance.port}` });
      if (metricValue(await metrics(instance.admin), /^usher_ratelimit_decisions_total\{[^}]*store="redis"\}/) > 0) break;
      if (Date.now() > deadline) throw new Error(`instance ${instance.port} never decided on redis`);
      await sleep(20);
    }
  }
}

async function accuracyScenario(origin: number): Promise<void> {
  const redis = await startRedis();
  const RATE = 100;
  const BURST = 10;
  const policies = `  g: { rate: ${RATE}/s, burst: ${BURST}, key: ['header:x-user'], store: redis }
  w: { algorithm: sliding-window, limit: ${RATE}, window: 1s, key: ['header:x-user'], store: redis }`;
  const routes = `      - { match: { pathPrefix: /g }, pool: main, filters: [ { rateLimit: [g] } ] }
      - { match: { pathPrefix: /w }, pool: main, filters: [ { rateLimit: [w] } ] }`;
  const instances = await fleet(origin, redis.port, policies, routes);
  try {
    await ready(instances, '/g');
    log(`accuracy: 3 instances, ${3 * RATE}/s offered per policy for ${DURATION_S} s`);
    const sent = await offer(instances.map((i) => i.port), 2 * 3 * RATE, DURATION_S, ['/g', '/w'], { 'x-user': 'shared' });
    console.log(`\n## Accuracy across instances (3 usher processes, 1 redis-server, ${3 * RATE}/s offered per policy = 3× the limit, ${DURATION_S} s)\n`);
    console.log('| policy | offered | admitted | nominal limit | admitted ÷ nominal | exact (replayed) | admitted ÷ exact | other statuses |');
    console.log('|---|---|---|---|---|---|---|---|');
    for (const [path, name] of [['/g', `gcra ${RATE}/s burst ${BURST}`], ['/w', `sliding-window ${RATE}/1s`]] as const) {
      const mine = sent.filter((s) => s.path === path);
      const admitted = mine.filter((s) => s.status === 200).length;
      const other = mine.filter((s) => s.status !== 200 && s.status !== 429).length;
      const spanS = (mine.at(-1)!.at - mine[0]!.at) / 1000;
      let state = 0n;
      let exact = 0;
      for (const s of mine) {
        const step = path === '/g' ? gcra(state, Math.floor(s.at * 1000), { intervalUs: 1e6 / RATE, burst: BURST, maxDelayUs: 0 }) : slidingWindow(state, s.at, { limit: RATE, windowMs: 1000 });
        if (step.next !== undefined) state = step.next;
        if (step.decision.allowed) exact++;
      }
      const nominal = path === '/g' ? RATE * spanS + BURST + 1 : RATE * spanS;
      console.log(`| ${name} | ${mine.length} | ${admitted} | ${fmt(nominal)} | ${fmt(admitted / nominal, 3)} | ${exact} | ${fmt(admitted / exact, 3)} | ${other} |`);
    }
  } finally {
    await Promise.all(instances.map((i) => stop(i.proc, 1000)));
    await stop(redis.proc, 1000);
  }
}

async function killScenario(origin: number): Promise<void> {
  let redis = await startRedis();
  const RATE = 100;
  const BURST = 10;
  const policies = `  g: { rate: ${RATE}/s, burst: ${BURST}, key: ['header:x-user'], store: redis, onStoreError: local }`;
  const routes = `      - { pool: main, filters: [ { rateLimit: [g] } ] }`;
  const instances = await fleet(origin, redis.port, policies, routes);
  const killAt = DURATION_S / 3;
  const backAt = (2 * DURATION_S) / 3;
  let killedEpoch = 0;
  let restartedEpoch = 0;
  const switched: number[] = [];
  const recovered: number[] = [];
  const fallbackCount = async (i: Instance): Promise<number> => metricValue(await metrics(i.admin), /^usher_ratelimit_decisions_total\{policy="g",outcome="[a-z_]+",store="fallback"\}/);
  const redisCount = async (i: Instance): Promise<number> => metricValue(await metrics(i.admin), /^usher_ratelimit_decisions_total\{policy="g",outcome="[a-z_]+",store="redis"\}/);
  /** Polls each instance every 10 ms (bounded) until `changed`, recording ms since `since`. */
  const watch = (out: number[], since: () => number, count: (i: Instance) => Promise<number>): void => {
    for (const instance of instances) {
      void (async () => {
        const base = await count(instance);
        const deadline = Date.now() + 10_000;
        while (Date.now() < deadline) {
          if ((await count(instance)) > base) {
            out.push(epoch() - since());
            return;
          }
          await sleep(10);
        }
      })();
    }
  };
  try {
    await ready(instances, '/');
    log(`kill: 3 instances, ${3 * RATE}/s offered for ${DURATION_S} s; redis-server killed at ${fmt(killAt, 1)} s, restarted at ${fmt(backAt, 1)} s`);
    const port = redis.port;
    const sent = await offer(instances.map((i) => i.port), 3 * RATE, DURATION_S, ['/'], { 'x-user': 'shared' }, [
      {
        at: killAt,
        run: () => {
          killedEpoch = epoch();
          process.kill(redis.proc.pid, 'SIGKILL');
          watch(switched, () => killedEpoch, fallbackCount);
        },
      },
      {
        at: backAt,
        run: () => {
          void startRedis(port).then((r) => {
            redis = r;
            restartedEpoch = epoch();
            watch(recovered, () => restartedEpoch, redisCount);
          });
        },
      },
    ]);
    await sleep(200);
    const failed = sent.filter((s) => s.status !== 200 && s.status !== 429);
    const down = sent.filter((s) => s.at >= killedEpoch && s.at < restartedEpoch);
    const admittedDown = down.filter((s) => s.status === 200).length;
    const downS = (restartedEpoch - killedEpoch) / 1000;
    const limitDown = RATE * downS + 3 * (Math.ceil(BURST / 3) + 1);
    const around = sent.filter((s) => s.at >= killedEpoch && s.at < killedEpoch + 1000).map((s) => s.latencyMs).sort((a, b) => a - b);
    console.log(`\n## Redis killed under load (3 usher processes, gcra ${RATE}/s burst ${BURST}, onStoreError: local, live instances 3, ${3 * RATE}/s offered, ${DURATION_S} s)\n`);
    console.log('| figure | value | target |');
    console.log('|---|---|---|');
    console.log(`| requests sent | ${sent.length} | |`);
    console.log(`| failed (not 200 or 429) | ${failed.length}${failed.length > 0 ? ` (statuses ${[...new Set(failed.map((f) => f.status))].join(', ')})` : ''} | 0 |`);
    console.log(`| first fallback decision after the kill, per instance (ms; metrics polled every 10 ms) | ${switched.map((n) => fmt(n)).join(', ') || 'none'} | < 100 |`);
    console.log(`| client latency in the second after the kill, p50 / p99 / max (ms) | ${fmt(percentile(around, 50), 1)} / ${fmt(percentile(around, 99), 1)} / ${fmt(around.at(-1) ?? Number.NaN, 1)} | |`);
    console.log(`| admitted while Redis was down (${fmt(downS, 1)} s) | ${admittedDown} of ${down.length} | |`);
    console.log(`| limit for that time (rate × time + 3 × (burst ÷ 3 + 1)) | ${fmt(limitDown)} | |`);
    console.log(`| admitted ÷ limit while down | ${fmt(admittedDown / limitDown, 3)} | ≤ 1.1 |`);
    console.log(`| back on Redis after its restart, per instance (ms) | ${recovered.map((n) => fmt(n)).join(', ') || 'none'} | ≤ 3000 |`);
  } finally {
    await Promise.all(instances.map((i) => stop(i.proc, 1000)));
    await stop(redis.proc, 1000);
  }
}

async function memoryScenario(): Promise<void> {
  console.log(`\n## Memory per key\n`);
  const table = new LimiterTable(LOCAL_KEYS);
  const algorithm = { step: (state: bigint, nowMs: number) => gcra(state, Math.floor(nowMs * 1000), { intervalUs: 1000, burst: 10, maxDelayUs: 0 }), expired: (state: bigint, nowMs: number) => Number(state) <= nowMs * 1000 };
  const heapBefore = process.memoryUsage().heapUsed;
  const started = performance.now();
  const now = epoch();
  for (let i = 0; i < LOCAL_KEYS; i++) table.decide(table.hashOf(`198.51.${i >> 16}.${i & 0xffff}`), now, algorithm);
  const ms = performance.now() - started;
  console.log('| store | keys | bytes | bytes per key | note |');
  console.log('|---|---|---|---|---|');
  console.log(`| local table (maxKeys ${LOCAL_KEYS}) | ${table.liveKeys(now, algorithm)} live | ${table.bytes} | ${fmt(table.bytes / LOCAL_KEYS, 1)} | fixed at start (16 B × ${table.slots} slots + header and top-keys sketch); filled in ${fmt(ms)} ms (${fmt((ms * 1000) / LOCAL_KEYS, 2)} µs per new key), ${table.evictions} evictions, JS heap +${fmt((process.memoryUsage().heapUsed - heapBefore) / 2 ** 20, 1)} MiB |`);

  const redis = await startRedis();
  const client = new RedisRateLimitClient({ url: `redis://127.0.0.1:${redis.port}`, keyPrefix: 'usher', timeoutMs: 10_000 });
  const info = createClient({ url: `redis://127.0.0.1:${redis.port}` }).on('error', () => {});
  try {
    await info.connect();
    while (!client.ready) await sleep(10);
    const used = async (): Promise<number> => Number(/used_memory:(\d+)/.exec(await info.info('memory'))![1]);
    for (const [name, call] of [
      ['gcra', (k: string) => client.gcra('api', k, 60_000_000, 10, 0)], // 1/min: the keys live a minute (a short interval would let them expire during the count)
      ['sliding-window', (k: string) => client.slidingWindow('hourly', k, 1000, 3_600_000)],
      ['concurrency (1 lease)', (k: string) => client.acquire('uploads', k, 10, 60_000, client.newLease())],
    ] as const) {
      await info.flushAll();
      const before = await used();
      for (let i = 0; i < REDIS_KEYS; i += 1000) {
        const batch: Promise<unknown>[] = [];
        for (let j = i; j < Math.min(REDIS_KEYS, i + 1000); j++) batch.push(call(`198.51.${j >> 16}.${j & 0xffff}`));
        await Promise.all(batch);
      }
      const after = await used();
      const sample = (await info.keys('*'))[0]!;
      const one = await info.memoryUsage(sample);
      console.log(`| Redis ${name} | ${REDIS_KEYS} | ${after - before} | ${fmt((after - before) / REDIS_KEYS, 1)} | MEMORY USAGE of one key: ${one} B (${sample}) |`);
    }
  } finally {
    await info.close().catch(() => {});
    await client.close();
    await stop(redis.proc, 1000);
  }
}

async function main(): Promise<void> {
  if (!hasCommand('redis-server')) throw new Error('redis-server is not installed (apt-get install redis-server)');
  const load = readFileSync('/proc/loadavg', 'utf8').trim().split(' ').slice(0, 3).join(' ');
  console.log(`# usher rate-limit bench — Node ${process.version}, load average at start ${load}; on a shared 2-core machine the figures are indicative`);
  const origin = await startOrigin();
  const originPort = (origin.address() as AddressInfo).port;
  try {
    if (SCENARIOS.has('cost')) await costScenario(originPort);
    if (SCENARIOS.has('accuracy')) await accuracyScenario(originPort);
    if (SCENARIOS.has('kill')) await killScenario(originPort);
    if (SCENARIOS.has('memory')) await memoryScenario();
  } finally {
    for (const agent of agents.values()) agent.destroy();
    origin.close();
    origin.closeAllConnections();
  }
}

const cleanup = (): void => {
  killAllSync();
  rmSync(dir, { recursive: true, force: true });
};
process.on('SIGINT', () => {
  cleanup();
  process.exit(130);
});
try {
  await main();
} finally {
  cleanup();
}
