/**
 * Micro-benchmark of what metrics and request ids add to one proxied request,
 * per request, against doing the same with prom-client children resolved once
 * with `.labels()` (what src/observe/histogram.ts explains usher avoids).
 *
 *   node bench/micro/metrics.ts
 *
 * "usher" is `RouteMetrics.observe` (status class cell, request duration
 * histogram, upstream duration histogram, bytes in and out); "prom-client"
 * records the same five things through children. The request id cases put the
 * id into a header line and read it, as writing the head does (which flattens
 * the string: `randomUUID()` returns a twenty-piece rope). Median and min of
 * 7 rounds after warm-up (min is the figure to trust on a busy machine).
 */
import { randomUUID } from 'node:crypto';
import { Counter, Histogram, Registry } from 'prom-client';
import { BackendControl } from '../../src/pool/backend-control.ts';
import { BackendRuntime } from '../../src/pool/backend-runtime.ts';
import { InFlightTable } from '../../src/pool/in-flight.ts';
import { RouteMetrics } from '../../src/proxy/metrics.ts';
import { newRequestId, requestIdOf } from '../../src/proxy/request-id.ts';
import { measureNs } from './timing.ts';

const N = 1_000_000;
const ROUNDS = 7;

const address = { host: '127.0.0.1', port: 3001 };
const timeouts = { connectMs: 1000, responseMs: 1000, idleMs: 1000 };
const inFlight = new InFlightTable();
const control = new BackendControl({ slot: 0, address, weight: 1, backup: false, adminState: 'enabled', maxConnections: Infinity, tls: undefined }, inFlight, []);
const backend = new BackendRuntime(control, inFlight.row(0), timeouts);
const route = new RouteMetrics('web', 'api', 'main');

const registry = new Registry();
const labels = { listener: 'web', route: 'api', pool: 'main', backend: '127.0.0.1:3001' };
const buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const requests = new Counter({ name: 'r', help: 'h', labelNames: ['listener', 'route', 'pool', 'backend', 'class'], registers: [registry] }).labels({ ...labels, class: '2xx' });
const duration = new Histogram({ name: 'd', help: 'h', labelNames: ['listener', 'route'], buckets, registers: [registry] }).labels({ listener: 'web', route: 'api' });
const upstream = new Histogram({ name: 'u', help: 'h', labelNames: ['pool', 'backend'], buckets, registers: [registry] }).labels({ pool: 'main', backend: '127.0.0.1:3001' });
const bytesIn = new Counter({ name: 'bi', help: 'h', labelNames: ['listener', 'route'], registers: [registry] }).labels({ listener: 'web', route: 'api' });
const bytesOut = new Counter({ name: 'bo', help: 'h', labelNames: ['listener', 'route'], registers: [registry] }).labels({ listener: 'web', route: 'api' });

const headers = ['Host', 'example.com', 'User-Agent', 'wrk', 'Accept', '*/*', 'Connection', 'keep-alive'];
const withId = [...headers, 'X-Request-Id', '7f3c2a9e-1b4d-4c8e-9f2a-6d5e4c3b2a10'];
let sink = 0;

const cases: Readonly<Record<string, (i: number) => void>> = {
  'usher RouteMetrics.observe': (i) => route.observe(backend, 200, (i & 1023) / 512, (i & 511) / 512, 180, 3),
  'prom-client children': (i) => {
    requests.inc();
    duration.observe((i & 1023) / 512_000);
    upstream.observe((i & 511) / 512_000);
    bytesIn.inc(180);
    bytesOut.inc(3);
  },
  'request id: none sent (fresh id)': () => void (sink += inHead(requestIdOf(headers))),
  'request id: kept from the request': () => void (sink += inHead(requestIdOf(withId))),
  'newRequestId alone': () => void (sink += inHead(newRequestId())),
  'randomUUID alone (not used)': () => void (sink += inHead(randomUUID())),
  'a constant id (the floor)': () => void (sink += inHead('0123456789abcdef0123456789abcdef')),
};

/** The id in a header line, read once: the string is flattened, as when the head is written. */
function inHead(id: string): number {
  return `x-forwarded-proto: http\r\nx-request-id: ${id}\r\n`.charCodeAt(40);
}

for (const [name, run] of Object.entries(cases)) {
  const { median, min } = measureNs(N, run, ROUNDS);
  process.stdout.write(`${name.padEnd(36)} median ${median.toFixed(1).padStart(7)} ns   min ${min.toFixed(1).padStart(7)} ns\n`);
}
if (sink === 0) process.stdout.write('\n');
