/**
 * Micro-benchmark of a pool's per-request work on the data plane: one pick
 * (`select`), `attemptStarted` and `attemptEnded` with a latency, as the
 * attempt loop does for every request, for three algorithms over three
 * backends (no health checks, nothing queued).
 *
 *   node bench/micro/pool-pick.ts
 *
 * It measures what the control/data-plane split costs the hot path: the
 * pick reads availability and the mode through the control plane's published
 * fields, in-flight counts go to a SharedArrayBuffer row. Median and min of
 * 7 rounds after warm-up (min is the figure to trust on a busy machine).
 */
import { parseConfig } from '../../src/config/index.ts';
import { silentLogger } from '../../src/observe/logger.ts';
import { Pool } from '../../src/pool/pool.ts';
import { measureNs } from './timing.ts';

const N = 1_000_000;
const ROUNDS = 7;

function pool(algorithm: string): Pool {
  const yaml = `listeners:
  - { name: web, bind: 127.0.0.1:0, routes: [{ pool: main }] }
pools:
  main:
    algorithm: ${algorithm}
    backends: [{ address: 127.0.0.1:1 }, { address: 127.0.0.1:2 }, { address: 127.0.0.1:3 }]
`;
  const result = parseConfig(yaml, 'bench.yaml');
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return new Pool('main', result.config.pools['main']!, { logger: silentLogger() });
}

for (const algorithm of ['round-robin', 'p2c', 'least-connections']) {
  const { runtime } = pool(algorithm);
  const ctx = { hash: 0, tried: [] as readonly number[] };
  const run = (i: number): void => {
    const backend = runtime.select(ctx, undefined);
    if (typeof backend === 'string') throw new Error(backend);
    runtime.attemptStarted(backend);
    runtime.attemptEnded(backend, 'success', 200, (i & 7) + 0.5);
  };
  const { median, min } = measureNs(N, run, ROUNDS);
  process.stdout.write(`${algorithm.padEnd(20)} median ${median.toFixed(1).padStart(7)} ns   min ${min.toFixed(1).padStart(7)} ns\n`);
}
