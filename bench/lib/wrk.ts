/**
 * Runs wrk and reads its results through a Lua `done` hook that prints one
 * JSON line, so nothing depends on wrk's human-readable output format.
 * Latencies are in microseconds as wrk records them (no coordinated-omission
 * correction: wrk 4 is closed-loop).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pinned, start, stop } from './proc.ts';

/** What one wrk run measured. */
export interface WrkResult {
  /** CPU ticks wrk itself used (user+system), read from its parent shell's cutime/cstime. */
  readonly wrkTicks: number;
  readonly requests: number;
  readonly durationUs: number;
  readonly bytes: number;
  readonly errors: {
    readonly connect: number;
    readonly read: number;
    readonly write: number;
    /** Responses with status > 399 (wrk's definition of a non-2xx/3xx error). */
    readonly status: number;
    readonly timeout: number;
  };
  readonly latencyUs: {
    readonly p50: number;
    readonly p90: number;
    readonly p99: number;
    readonly p999: number;
    readonly mean: number;
    readonly max: number;
  };
}

/** One wrk invocation. */
export interface WrkOptions {
  readonly url: string;
  readonly threads: number;
  readonly connections: number;
  readonly durationS: number;
  readonly headers: readonly string[];
  readonly cpu: number | undefined;
  /** wrk --timeout in seconds (default 5). */
  readonly timeoutS?: number;
}

const MARKER = 'BENCH_JSON ';
const TICKS_MARKER = 'BENCH_WRK_TICKS ';

/**
 * wrk runs under `sh -c` so that, once it is reaped, the shell's cutime and
 * cstime (fields 16 and 17 of /proc/<sh>/stat) hold exactly wrk's CPU time.
 */
const WRAPPER = `"$@"; s=$?; echo "${TICKS_MARKER}$(cut -d' ' -f16,17 /proc/$$/stat)"; exit $s`;

const DONE_LUA = `done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('${MARKER}{"requests":%d,"durationUs":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latencyUs":{"p50":%d,"p90":%d,"p99":%d,"p999":%d,"mean":%.1f,"max":%d}}\\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.mean, latency.max))
end
`;

/** Writes the Lua hook into `dir` and returns its path. */
export function writeDoneScript(dir: string): string {
  const path = join(dir, 'done.lua');
  writeFileSync(path, DONE_LUA);
  return path;
}

/** Runs wrk to completion (bounded by its -d plus a grace period) and parses the JSON line. */
export async function runWrk(opts: WrkOptions, script: string): Promise<WrkResult> {
  const argv = ['wrk', `-t${opts.threads}`, `-c${opts.connections}`, `-d${opts.durationS}s`, '--timeout', `${opts.timeoutS ?? 5}s`, '-s', script];
  for (const h of opts.headers) argv.push('-H', h);
  argv.push(opts.url);
  const proc = start('wrk', ['sh', '-c', WRAPPER, 'sh', ...pinned(opts.cpu, argv)]);
  const deadline = Date.now() + (opts.durationS + 20) * 1000;
  while (!proc.exited && Date.now() < deadline) await sleep(50);
  if (!proc.exited) {
    await stop(proc);
    throw new Error(`wrk did not finish within ${opts.durationS + 20} s`);
  }
  // 'exit' can fire before the last stdout chunk is read; wait for the pipes to close.
  const drain = Date.now() + 2000;
  while (!proc.closed && Date.now() < drain) await sleep(10);
  const line = proc.output.split('\n').find((l) => l.startsWith(MARKER));
  if (line === undefined) throw new Error(`wrk produced no result (exit ${proc.exitCode}):\n${proc.output.trim()}`);
  const ticksLine = proc.output.split('\n').find((l) => l.startsWith(TICKS_MARKER));
  const wrkTicks = (ticksLine ?? '')
    .slice(TICKS_MARKER.length)
    .split(' ')
    .reduce((sum, f) => sum + (Number(f) || 0), 0);
  return { ...(JSON.parse(line.slice(MARKER.length)) as Omit<WrkResult, 'wrkTicks'>), wrkTicks };
}
