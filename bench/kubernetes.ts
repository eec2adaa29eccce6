/**
 * Kubernetes discovery figures: what a Service of 1k and 10k endpoints
 * (EndpointSlices of 100) costs usher, against the fake API server.
 *
 *   node --expose-gc bench/kubernetes.ts [--sizes 0,1000,10000] [--events 60] [--workers 2]
 *
 * For each size, a fresh process (`--measure N`) runs usher with one pool
 * discovered from the Service, and another (`--fake`) runs the fake API
 * server, so neither's CPU or memory is counted as the other's. Reported:
 *  - the first list: wall time from start until the pool has every member, usher's CPU for it;
 *  - memory once synced (RSS of the usher process, workers included; the main thread's heap),
 *    after a GC, against the same run with 0 endpoints;
 *  - event → every worker: from the fake changing one slice to every worker thread having
 *    applied the new membership (the control plane's change, then `Usher.settled()`, a ping
 *    through every worker that answers only after the pool message), p50/p99 over `--events`;
 *    and usher's CPU per event (main thread and workers);
 *  - a relist (410 Gone after a compaction): wall time from the cut to the change applied, CPU.
 * Endpoints are addresses nobody listens on (no traffic is sent; no health checks).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createAccessLog } from '../src/observe/access-log.ts';
import { silentLogger } from '../src/observe/logger.ts';
import { Usher } from '../src/runtime/usher.ts';
import { configFromYaml } from '../test/helpers/usher.ts';
import { tempDir, writeKubeconfig } from '../test/k8s-fake/files.ts';
import type { FakeObject } from '../test/k8s-fake/kinds.ts';
import { endpointSlice, type EndpointSpec } from '../test/k8s-fake/objects.ts';
import { FakeApiServer } from '../test/k8s-fake/server.ts';

const self = fileURLToPath(import.meta.url);
const args = process.argv.slice(2);
const flag = (name: string, fallback: string): string => {
  const i = args.indexOf(name);
  return i === -1 ? fallback : args[i + 1]!;
};

const SLICE = 100;
const PORT = 8080;

function ipOf(i: number): string {
  return `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
}

function sliceOf(index: number, total: number, terminatingIndex = -1): FakeObject {
  const endpoints: EndpointSpec[] = [];
  for (let i = index * SLICE; i < Math.min(total, (index + 1) * SLICE); i++) {
    endpoints.push(i === terminatingIndex ? { ip: ipOf(i), ready: false, serving: true, terminating: true, pod: `api-${i}` } : { ip: ipOf(i), ready: true, serving: true, terminating: false, pod: `api-${i}` });
  }
  return endpointSlice('prod', 'api', `api-${index}`, endpoints, [{ name: 'http', port: PORT }]);
}

// ---- the fake API server, in its own process, driven by JSON lines on stdin ------------------------------

async function runFake(): Promise<void> {
  const fake = await FakeApiServer.start({ bookmarkIntervalMs: 60_000, historyLimit: 10_000 });
  const dir = tempDir();
  let total = 0;
  const reply = (value: unknown): void => void process.stdout.write(`${JSON.stringify(value)}\n`);
  reply({ kubeconfig: writeKubeconfig(fake, dir.path, { namespace: 'prod' }) });
  for await (const line of createInterface({ input: process.stdin })) {
    const command = JSON.parse(line) as { op: string; n?: number; i?: number };
    if (command.op === 'populate') {
      total = command.n!;
      for (let s = 0; s * SLICE < total; s++) fake.apply(sliceOf(s, total));
      reply({ ok: true, revision: fake.revision });
    } else if (command.op === 'touch') {
      // One slice changes: its first endpoint turns terminating (even i), then back (odd i).
      const slices = Math.max(1, Math.ceil(total / SLICE));
      const s = Math.floor(command.i! / 2) % slices;
      const flip = command.i! % 2 === 0 ? s * SLICE : -1;
      fake.apply(total === 0 ? endpointSlice('prod', 'api', 'api-0', [{ ip: ipOf(0), ready: command.i! % 2 === 0 }], [{ name: 'http', port: PORT }]) : sliceOf(s, total, flip));
      reply({ ok: true });
    } else if (command.op === 'relist') {
      fake.stallWatches();
      fake.apply(sliceOf(0, total, 1));
      fake.compact();
      fake.cutWatches();
      reply({ ok: true });
    } else if (command.op === 'stop') {
      await fake.close();
      dir.remove();
      reply({ ok: true });
      process.exit(0);
    }
  }
}

class FakeProcess {
  readonly child: ChildProcess;
  readonly #lines: AsyncIterator<string>;
  constructor() {
    this.child = spawn(process.execPath, [self, '--fake'], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.#lines = createInterface({ input: this.child.stdout! })[Symbol.asyncIterator]();
  }
  async read(): Promise<Record<string, unknown>> {
    const next = await this.#lines.next();
    if (next.done === true) throw new Error('the fake exited');
    return JSON.parse(next.value) as Record<string, unknown>;
  }
  async send(command: Record<string, unknown>): Promise<Record<string, unknown>> {
    this.child.stdin!.write(`${JSON.stringify(command)}\n`);
    return this.read();
  }
}

// ---- one size, measured in its own process ------------------------------------------------------------------

function cpuMs(from: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(from);
  return (d.user + d.system) / 1000;
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function waitUntil(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

async function measure(size: number): Promise<void> {
  const workers = Number(flag('--workers', '2'));
  const events = Number(flag('--events', '60'));
  const fake = new FakeProcess();
  const { kubeconfig } = (await fake.read()) as { kubeconfig: string };
  await fake.send({ op: 'populate', n: size });
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const yaml = `runtime: { workers: ${workers} }
accessLog: { enabled: false }
listeners: [ { name: web, bind: 127.0.0.1:0, routes: [ { pool: api } ] } ]
pools:
  api:
    discovery: { kubernetes: { service: api, port: http } }
kubernetes: { kubeconfig: ${JSON.stringify(kubeconfig)} }
`;
  const rssBefore = process.memoryUsage().rss;
  const startCpu = process.cpuUsage();
  const started = performance.now();
  const usher = await Usher.start(configFromYaml(yaml), { logger: silentLogger(), accessLog: createAccessLog({ enabled: false }) });
  const control = usher.snapshot.pools.get('api')!.control;
  const expected = size === 0 ? 0 : size;
  if (process.env['BENCH_DEBUG']) {
    const t = setInterval(() => process.stderr.write(`synced=${usher.kubernetes.synced} members=${control.discovered.length} err=${usher.kubernetes.reflector('prod', 'api')?.lastError?.message}\n`), 1000);
    t.unref();
  }
  await waitUntil(() => usher.kubernetes.synced && control.discovered.length === expected, 60_000, 'the first list');
  await usher.settled();
  const syncMs = performance.now() - started;
  const syncCpuMs = cpuMs(startCpu);
  await new Promise((resolve) => setTimeout(resolve, 1500)); // usage reports, timers settle
  gc?.();
  const memory = process.memoryUsage();

  // Event → every worker: wrap setDiscovered to see when the control plane changed.
  let changed: (() => void) | undefined;
  const original = control.setDiscovered.bind(control);
  let membership = control.discovered.map((b) => `${b.key}${b.terminating}`).join();
  control.setDiscovered = (members) => {
    original(members);
    const now = control.discovered.map((b) => `${b.key}${b.terminating}`).join();
    if (now !== membership) {
      membership = now;
      changed?.();
    }
  };
  const latencies: number[] = [];
  const eventCpu = process.cpuUsage();
  for (let i = 0; i < events; i++) {
    const applied = new Promise<void>((resolve) => (changed = resolve));
    const sent = performance.now();
    await fake.send({ op: 'touch', i });
    await applied;
    // After the pool message left (it is posted in a microtask): a ping through every worker.
    await new Promise((resolve) => setImmediate(resolve));
    await usher.settled();
    latencies.push(performance.now() - sent);
    await new Promise((resolve) => setTimeout(resolve, 120)); // past the 100 ms coalescing window: each event on its own
  }
  const perEventCpuMs = cpuMs(eventCpu) / events; // includes the 120 ms idle gaps' timers, which cost next to nothing
  latencies.sort((a, b) => a - b);

  let relist: { ms: number; cpuMs: number } | undefined;
  if (size > 0) {
    const lists = usher.kubernetes.reflector('prod', 'api')!.stats.relists;
    const applied = new Promise<void>((resolve) => (changed = resolve));
    const cpu = process.cpuUsage();
    const t0 = performance.now();
    await fake.send({ op: 'relist' });
    await applied;
    await new Promise((resolve) => setImmediate(resolve));
    await usher.settled();
    relist = { ms: performance.now() - t0, cpuMs: cpuMs(cpu) };
    if (usher.kubernetes.reflector('prod', 'api')!.stats.relists !== lists + 1) throw new Error('expected one relist');
  }
  await usher.stop({ timeoutMs: 500 });
  await fake.send({ op: 'stop' });
  process.stdout.write(`${JSON.stringify({
    size,
    workers,
    syncMs: Math.round(syncMs),
    syncCpuMs: Math.round(syncCpuMs),
    rssMiB: +(memory.rss / 2 ** 20).toFixed(1),
    rssGrowthMiB: +((memory.rss - rssBefore) / 2 ** 20).toFixed(1),
    heapUsedMiB: +(memory.heapUsed / 2 ** 20).toFixed(1),
    events,
    eventToWorkersMs: { p50: +quantile(latencies, 0.5).toFixed(2), p99: +quantile(latencies, 0.99).toFixed(2), max: +latencies.at(-1)!.toFixed(2) },
    cpuPerEventMs: +perEventCpuMs.toFixed(2),
    relist: relist === undefined ? null : { ms: Math.round(relist.ms), cpuMs: Math.round(relist.cpuMs) },
  })}\n`);
}

// ---- the table -------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const sizes = flag('--sizes', '0,1000,10000').split(',').map(Number);
  const rows: Record<string, unknown>[] = [];
  for (const size of sizes) {
    const child = spawn(process.execPath, ['--expose-gc', self, '--measure', String(size), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const [code] = (await once(child, 'close')) as [number];
    if (code !== 0) throw new Error(`size ${size}: exit ${code}`);
    const row = JSON.parse(out.trim().split('\n').at(-1)!) as Record<string, unknown>;
    rows.push(row);
    process.stderr.write(`${JSON.stringify(row)}\n`);
  }
  process.stdout.write('\n| endpoints | first list: wall / usher CPU | RSS (growth over start) | main heap | event → every worker p50 / p99 | usher CPU per event | relist after 410: wall / CPU |\n|---|---|---|---|---|---|---|\n');
  for (const r of rows as { size: number; syncMs: number; syncCpuMs: number; rssMiB: number; rssGrowthMiB: number; heapUsedMiB: number; eventToWorkersMs: { p50: number; p99: number }; cpuPerEventMs: number; relist: { ms: number; cpuMs: number } | null }[]) {
    process.stdout.write(`| ${r.size} | ${r.syncMs} ms / ${r.syncCpuMs} ms | ${r.rssMiB} MiB (+${r.rssGrowthMiB}) | ${r.heapUsedMiB} MiB | ${r.eventToWorkersMs.p50} / ${r.eventToWorkersMs.p99} ms | ${r.cpuPerEventMs} ms | ${r.relist === null ? '—' : `${r.relist.ms} ms / ${r.relist.cpuMs} ms`} |\n`);
  }
}

if (args[0] === '--fake') await runFake();
else if (args[0] === '--measure') await measure(Number(args[1]));
else await main();
