/**
 * How long a cache purge takes to reach another usher instance (issue 15:
 * "under 100 ms"): two `usher start` processes share one redis-server on
 * loopback; the bench purges through instance A's admin API, one purge at a
 * time, and reads from instance B's debug log when B had applied it (the
 * purge done, as B's own admin API would answer it, with its worker thread's
 * counters read). Prints, over all purges:
 *
 * - bus: A's publish → B applied (`delayMs` in B's log: B's clock minus the
 *   `at` A stamped on the message; one host, one clock);
 * - admin call → B applied (the bench's clock before the POST, B's log time).
 *
 *   node bench/peers-latency.ts [--count 200] [--workers 1] [--gap 10]
 *
 * Needs `npm run build` (it runs dist/cli.js) and redis-server. Nothing here
 * runs in `npm test`; the tests assert delivery with deadlines, not timings.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const COUNT = Number(args.get('count') ?? 200);
const WORKERS = Number(args.get('workers') ?? 1);
const GAP_MS = Number(args.get('gap') ?? 10);
const root = resolve(import.meta.dirname, '..');
const cli = join(root, 'dist', 'cli.js');
const dir = mkdtempSync(join(tmpdir(), 'usher-bench-peers-'));
const children: ChildProcess[] = [];

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((done) => server.close(() => done()));
  return port;
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const start = performance.now();
  while (!(await check())) {
    if (performance.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function summary(name: string, values: readonly number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  const under = values.filter((v) => v < 100).length;
  return `${name.padEnd(28)} p50 ${percentile(sorted, 50)} ms  p90 ${percentile(sorted, 90)} ms  p99 ${percentile(sorted, 99)} ms  max ${sorted.at(-1)} ms  (${under}/${values.length} under 100 ms)`;
}

interface Instance {
  readonly admin: string;
  /** B's applied purges: prefix → [log time, delayMs]. */
  readonly applied: Map<string, [number, number]>;
}

function startUsher(name: string, redisPort: number, adminPort: number, workers: number): Instance {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    `redis: { url: 'redis://127.0.0.1:${redisPort}', instance: ${name}, keyPrefix: bench }
admin: { bind: '127.0.0.1:${adminPort}' }
log: { level: debug }
accessLog: { enabled: false }
runtime: { workers: ${workers} }
listeners: [ { name: web, bind: '127.0.0.1:0', routes: [ { pool: main, filters: [ { cache: {} } ] } ] } ]
pools: { main: { backends: [ { address: '127.0.0.1:9' } ] } }
`,
  );
  const child = spawn(process.execPath, [cli, 'start', '-c', file], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, USHER_WORKERS: String(workers) } });
  children.push(child);
  const applied = new Map<string, [number, number]>();
  let pending = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) {
      if (!line.includes('cache purge from a peer applied')) continue;
      const entry = JSON.parse(line) as { time: number | string; delayMs: number; purge: { prefix: string } };
      applied.set(entry.purge.prefix, [typeof entry.time === 'number' ? entry.time : Date.parse(entry.time), entry.delayMs]);
    }
  });
  return { admin: `http://127.0.0.1:${adminPort}`, applied };
}

async function main(): Promise<void> {
  const redisPort = await freePort();
  const redis = spawn('redis-server', ['--port', String(redisPort), '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1'], { stdio: 'ignore' });
  children.push(redis);
  const a = startUsher('a', redisPort, await freePort(), 0);
  const b = startUsher('b', redisPort, await freePort(), WORKERS);
  await until('both instances to list each other and b to subscribe', async () => {
    try {
      const [va, vb] = await Promise.all([a, b].map(async (i) => (await fetch(`${i.admin}/api/peers`)).json() as Promise<{ peers: unknown[]; bus: { subscribed: boolean } }>));
      return va!.peers.length === 2 && vb!.peers.length === 2 && vb!.bus.subscribed;
    } catch {
      return false;
    }
  });
  const bus: number[] = [];
  const endToEnd: number[] = [];
  for (let i = 0; i < COUNT; i++) {
    const prefix = `http://bench.test/${i}/`;
    const started = Date.now();
    const res = await fetch(`${a.admin}/api/cache/purge`, { method: 'POST', body: JSON.stringify({ prefix }) });
    await res.text();
    await until(`b to apply purge ${i}`, () => b.applied.has(prefix), 5000);
    const [at, delayMs] = b.applied.get(prefix)!;
    bus.push(delayMs);
    endToEnd.push(at - started);
    await sleep(GAP_MS);
  }
  console.log(`peers latency: ${COUNT} purges through a's admin API, applied by b (worker threads: ${WORKERS}), one redis-server on loopback`);
  console.log(summary('bus (publish → applied)', bus));
  console.log(summary('admin call → applied on b', endToEnd));
}

try {
  await main();
} finally {
  for (const child of children) if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
