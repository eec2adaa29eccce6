/**
 * DNS discovery figures (docs/discovery.md, "Measured"): an in-process usher
 * whose pools discover their members from the tests' DNS server, run in a
 * worker thread so its CPU stays off the main thread.
 *
 *   node bench/discovery-dns.ts [--changes 30] [--seconds 10]
 *
 * 1. Change to every worker: `runtime.workers: 2`, a name with TTL 1 whose A
 *    record flips between two backends `--changes` times. For each change:
 *    the time until the control plane has the new member (the TTL's wait, up
 *    to 1 s, then the lookup), and from there until both workers applied it
 *    (`Usher.settled()`: a ping through every worker after the change); then
 *    a request on a new connection must reach the new backend.
 * 2. Refresh cost: 100 pools, each discovering its own name (A, TTL 1, so
 *    100 lookups a second), `workers: 0`; the main thread's CPU over
 *    `--seconds`, minus the same config with TTL 300 (no lookups), per lookup.
 */
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseConfig } from '../src/config/index.ts';
import { createAccessLog } from '../src/observe/access-log.ts';
import { Usher } from '../src/runtime/usher.ts';
import type { DnsEntry } from '../test/helpers/dns-server.ts';
import { getOnConnection } from '../test/helpers/one-shot.ts';
import { startOriginsOnOnePort } from '../test/helpers/origin.ts';

const { values } = parseArgs({ options: { changes: { type: 'string', default: '30' }, seconds: { type: 'string', default: '10' } } });
const CHANGES = Number(values.changes);
const SECONDS = Number(values.seconds);

/** The DNS server thread: `set` resolves once it answers with the new entry. */
async function dnsThread(): Promise<{ port: number; set(name: string, entry: DnsEntry): Promise<void>; stop(): Promise<number> }> {
  const worker = new Worker(fileURLToPath(new URL('./lib/dns-server-worker.ts', import.meta.url)));
  const port = await new Promise<number>((resolve) => worker.once('message', (m: { port: number }) => resolve(m.port)));
  const ask = (message: object): Promise<{ queries: number }> =>
    new Promise((resolve) => {
      worker.once('message', resolve);
      worker.postMessage(message);
    });
  return {
    port,
    set: async (name, entry) => void (await ask({ set: [name, entry] })),
    stop: async () => {
      const { queries } = await ask({});
      await worker.terminate();
      return queries;
    },
  };
}

function start(yaml: string): Promise<Usher> {
  const parsed = parseConfig(yaml, 'bench.yaml');
  if (!parsed.ok) throw new Error(parsed.errors.map((e) => `${e.path}: ${e.message}`).join('\n'));
  return Usher.start(parsed.config, { accessLog: createAccessLog({ enabled: false }) });
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function summary(label: string, samples: readonly number[]): string {
  const sorted = [...samples].sort((a, b) => a - b);
  return `${label}: p50 ${percentile(sorted, 50).toFixed(1)} ms, p99 ${percentile(sorted, 99).toFixed(1)} ms, max ${sorted.at(-1)!.toFixed(1)} ms (n=${sorted.length})`;
}

async function changeToWorkers(): Promise<void> {
  const dns = await dnsThread();
  const origins = await startOriginsOnOnePort(['127.0.0.2', '127.0.0.3']);
  const port = origins[0]!.port;
  await dns.set('flip.test', { a: ['127.0.0.2'], ttl: 1 });
  const usher = await start(`runtime: { workers: 2 }
listeners: [{ name: web, bind: "127.0.0.1:0", routes: [{ pool: api }] }]
pools:
  api:
    discovery: { dns: { name: flip.test, port: ${port}, family: ipv4, resolvers: ["127.0.0.1:${dns.port}"] } }
`);
  const web = usher.address('web').port;
  const control = usher.snapshot.pools.get('api')!.control;
  let seen: (() => void) | undefined;
  const setDiscovered = control.setDiscovered.bind(control);
  control.setDiscovered = (members) => {
    setDiscovered(members);
    seen?.();
  };
  const toControl: number[] = [];
  const toWorkers: number[] = [];
  const total: number[] = [];
  let wrong = 0;
  for (let i = 0; i < CHANGES; i++) {
    const next = i % 2 === 0 ? '127.0.0.3' : '127.0.0.2';
    // A change lands anywhere in the TTL: wait a random part of a second first.
    await new Promise((resolve) => setTimeout(resolve, Math.random() * 1000));
    const applied = new Promise<void>((resolve) => (seen = resolve));
    const changed = performance.now();
    await dns.set('flip.test', { a: [next], ttl: 1 });
    await applied;
    const atControl = performance.now();
    await usher.settled();
    const atWorkers = performance.now();
    toControl.push(atControl - changed);
    toWorkers.push(atWorkers - atControl);
    total.push(atWorkers - changed);
    for (let j = 0; j < 4; j++) if ((await getOnConnection(web, '/')).body !== next) wrong++;
  }
  console.log(`1. DNS change to every worker (workers: 2, TTL 1 s, ${CHANGES} changes)`);
  console.log(`   ${summary('change -> control plane (TTL wait + lookup)', toControl)}`);
  console.log(`   ${summary('control plane -> both workers applied', toWorkers)}`);
  console.log(`   ${summary('change -> both workers applied', total)}`);
  console.log(`   requests on new connections after each change that reached the old backend: ${wrong} of ${CHANGES * 4}`);
  await usher.stop({ timeoutMs: 500 });
  await Promise.all(origins.map((o) => o.close()));
  await dns.stop();
}

async function refreshCost(): Promise<void> {
  const dns = await dnsThread();
  const names = Array.from({ length: 100 }, (_, i) => `n${i}.test`);
  const measure = async (ttl: number): Promise<{ cpuMs: number; lookups: number }> => {
    for (const [i, name] of names.entries()) await dns.set(name, { a: [`10.0.${i >> 8}.${(i & 255) + 1}`], ttl });
    const pools = names.map((name, i) => `  p${i}:\n    discovery: { dns: { name: ${name}, port: 80, family: ipv4, resolvers: ["127.0.0.1:${dns.port}"] } }`).join('\n');
    const usher = await start(`runtime: { workers: 0 }
listeners: [{ name: web, bind: "127.0.0.1:0", routes: [${names.map((_, i) => `{ match: { pathPrefix: /p${i} }, pool: p${i} }`).join(', ')}] }]
pools:
${pools}
`);
    const lookups = (): number => [...usher.snapshot.pools.values()].reduce((sum, pool) => sum + [...pool.discovery.counts().values()].reduce((a, b) => a + b, 0), 0);
    await new Promise((resolve) => setTimeout(resolve, 1500)); // past start-up
    const before = process.threadCpuUsage();
    const lookupsBefore = lookups();
    await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
    const used = process.threadCpuUsage(before);
    const result = { cpuMs: (used.user + used.system) / 1000, lookups: lookups() - lookupsBefore };
    await usher.stop({ timeoutMs: 500 });
    return result;
  };
  const idle = await measure(300);
  const busy = await measure(1);
  const perLookupUs = ((busy.cpuMs - idle.cpuMs) * 1000) / busy.lookups;
  console.log(`2. Refresh cost, 100 names (A, TTL 1 s), workers: 0, ${SECONDS} s each`);
  console.log(`   TTL 300 s: ${idle.cpuMs.toFixed(0)} ms main-thread CPU, ${idle.lookups} lookups`);
  console.log(`   TTL 1 s:   ${busy.cpuMs.toFixed(0)} ms main-thread CPU, ${busy.lookups} lookups (${(busy.lookups / SECONDS).toFixed(0)}/s)`);
  console.log(`   => ${perLookupUs.toFixed(0)} µs CPU per lookup, ${((perLookupUs * 100) / 1000).toFixed(1)} ms per refresh of all 100 names, ${((busy.cpuMs - idle.cpuMs) / SECONDS / 10).toFixed(2)} % of one core`);
  await dns.stop();
}

await changeToWorkers();
await refreshCost();
