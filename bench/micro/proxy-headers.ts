/**
 * Micro-benchmark of the per-request header rewriting (src/proxy/headers.ts):
 * the upstream request block for the 8-field request of http1-parse.ts, the
 * same request with three underscore names (one look-alike of a special
 * field, two ordinary), and the downstream response block.
 *
 *   node bench/micro/proxy-headers.ts
 *
 * Median and min of 7 rounds after warm-up (min is the figure to trust on a
 * busy machine); one core, no GC tuning.
 */
import { downstreamResponseHeaderLines, upstreamRequestHeaderLines } from '../../src/proxy/headers.ts';
import { measureNs } from './timing.ts';

const request = [
  'Host', 'api.example.com',
  'User-Agent', 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36',
  'Accept', 'application/json, text/plain, */*',
  'Accept-Encoding', 'gzip, deflate, br',
  'Accept-Language', 'en-US,en;q=0.9',
  'Connection', 'keep-alive',
  'Cookie', 'session=abcdef0123456789; theme=dark',
  'X-Request-Id', '7f3c2a9e-1b4d-4c8e-9f2a-6d5e4c3b2a10',
];
const underscored = [...request, 'X_Forwarded_For', '10.9.8.7', 'X_Api_Key', 'k', 'tenant_id', '42'];
const response = [
  'Content-Type', 'application/json',
  'Content-Length', '1234',
  'Date', 'Mon, 01 Jan 2024 00:00:00 GMT',
  'Cache-Control', 'no-cache',
  'Server', 'origin',
  'X-Request-Id', '7f3c2a9e-1b4d-4c8e-9f2a-6d5e4c3b2a10',
];
const info = { clientIp: '10.0.0.9', proto: 'http', requestId: '0123456789abcdef0123456789abcdef' };
const keepAlive = ['keep-alive'];

let sink = 0;

function bench(name: string, iterations: number, fn: () => void): void {
  const { median, min } = measureNs(iterations, fn);
  console.log(`${name.padEnd(52)} ${median.toFixed(0).padStart(6)} ns/op median ${min.toFixed(0).padStart(6)} min`);
}

const N = 200_000;
console.log(`node ${process.version}`);
bench('upstreamRequestHeaderLines (8 fields)', N, () => {
  sink += upstreamRequestHeaderLines(request, keepAlive, info).length;
});
bench('upstreamRequestHeaderLines (8 + 3 underscore fields)', N, () => {
  sink += upstreamRequestHeaderLines(underscored, keepAlive, info).length;
});
bench('downstreamResponseHeaderLines (6 fields)', N, () => {
  sink += downstreamResponseHeaderLines(response, keepAlive, false).length;
});
if (sink === 0) console.log('unreachable');
