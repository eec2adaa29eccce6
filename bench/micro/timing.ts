/**
 * The timing loop every micro-benchmark here uses: warm up, then `rounds`
 * timed runs of `iterations` calls; per-call nanoseconds, median and min
 * (the min is the run least disturbed by the rest of the machine).
 */
export function measureNs(iterations: number, fn: (i: number) => void, rounds = 7): { readonly median: number; readonly min: number } {
  for (let i = 0; i < iterations; i++) fn(i); // warm-up: let V8 optimise before timing
  const perCall: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) fn(i);
    perCall.push(Number(process.hrtime.bigint() - start) / iterations);
  }
  perCall.sort((a, b) => a - b);
  return { median: perCall[rounds >> 1]!, min: perCall[0]! };
}
