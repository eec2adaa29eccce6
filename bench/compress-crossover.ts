/**
 * Where synchronous coding stops paying: gzip level 4 on JSON bodies of 1 KiB
 * to 1 MiB, zlib.gzipSync against zlib.gzip (libuv thread pool), per call.
 * `node bench/compress-crossover.ts`; figures in docs/compression.md.
 */
import zlib from 'node:zlib';
import { performance } from 'node:perf_hooks';
const json = Buffer.from(JSON.stringify(Array.from({ length: 40000 }, (_, i) => ({ id: i, name: `item-${i}`, tags: ['a', 'b', String(i % 17)], price: (i * 7919) % 1000 / 10 }))));
const opts = { level: 4 };
const gzipAsync = (b: Buffer): Promise<Buffer> => new Promise((res, rej) => zlib.gzip(b, opts, (e: Error | null, r: Buffer) => (e ? rej(e) : res(r))));
for (const size of [1024, 4096, 16384, 65536, 262144, 1048576]) {
  const body = json.subarray(0, size);
  const n = Math.max(20, Math.min(2000, Math.floor(4e6 / size)));
  for (let i = 0; i < 20; i++) zlib.gzipSync(body, opts);
  let t = performance.now();
  for (let i = 0; i < n; i++) zlib.gzipSync(body, opts);
  const sync = (performance.now() - t) / n;
  for (let i = 0; i < 20; i++) await gzipAsync(body);
  t = performance.now();
  for (let i = 0; i < n; i++) await gzipAsync(body);
  const asyncMs = (performance.now() - t) / n;
  // loop time held by the async path: measure event-loop utilisation-ish by timing the call itself
  t = performance.now();
  const ps: Promise<Buffer>[] = []; for (let i = 0; i < 50; i++) ps.push(gzipAsync(body));
  const issue = (performance.now() - t) / 50; await Promise.all(ps);
  console.log(`${String(size).padStart(8)} B  sync ${(sync*1000).toFixed(0).padStart(6)} µs  async latency ${(asyncMs*1000).toFixed(0).padStart(6)} µs  hop ${((asyncMs-sync)*1000).toFixed(0).padStart(5)} µs  loop time to issue ${(issue*1000).toFixed(1)} µs`);
}
