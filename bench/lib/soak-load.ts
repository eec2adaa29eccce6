/**
 * The soak's steady load: wrk (`wrk -t1 -cC -dDs --latency URL`, read from
 * its plain-text summary, no Lua), or, when wrk is missing, a bounded Node
 * keep-alive client with the same shape (C concurrent request loops until the
 * deadline, 5 s per-request timeout).
 */
import { Agent, request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { start, stop, type Spawned } from './proc.ts';

export interface LoadResult {
  readonly tool: 'wrk' | 'node';
  readonly command: string;
  readonly requests: number;
  readonly durationS: number;
  readonly reqPerS: number;
  /** wrk: "Non-2xx or 3xx responses" (wrk counts status > 399); node: status outside 200-299. */
  readonly non2xx: number;
  readonly socketErrors: { readonly connect: number; readonly read: number; readonly write: number; readonly timeout: number };
  readonly latencyMs: { readonly p50: number; readonly p75: number; readonly p90: number; readonly p99: number; readonly avg: number; readonly max: number };
  /** Node client only: responses by status, and errors by code. */
  readonly statuses?: Readonly<Record<string, number>>;
  readonly errorCodes?: Readonly<Record<string, number>>;
  /** Node client only: wall-clock times (ms since epoch) of failed requests, first 10 000. */
  readonly failureTimes?: readonly number[];
  /** wrk's output, verbatim. */
  readonly raw?: string;
}

export interface LoadRun {
  readonly done: Promise<LoadResult>;
  /** Ends the load early (Ctrl-C); `done` still settles. */
  stop(): Promise<void>;
  readonly pid?: number;
}

const UNIT_MS: Readonly<Record<string, number>> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function timeMs(value: string, unit: string): number {
  return Number(value) * (UNIT_MS[unit] ?? Number.NaN);
}

/** Parses wrk 4's human summary (as printed with --latency). Throws when the totals line is missing. */
export function parseWrkSummary(text: string): Omit<LoadResult, 'tool' | 'command'> {
  const total = /(\d+) requests in ([\d.]+)(us|ms|s|m|h),/.exec(text);
  if (total === null) throw new Error(`no "N requests in T" line in wrk's output:\n${text.trim()}`);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(text);
  const pct = (p: string): number => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m|h)\\s*$`, 'm').exec(text);
    return m ? timeMs(m[1] ?? '', m[2] ?? '') : Number.NaN;
  };
  const stats = /^\s+Latency\s+([\d.]+)(us|ms|s|m|h)\s+([\d.]+)(us|ms|s|m|h)\s+([\d.]+)(us|ms|s|m|h)/m.exec(text);
  return {
    requests: Number(total[1]),
    durationS: timeMs(total[2] ?? '', total[3] ?? '') / 1000,
    reqPerS: rps ? Number(rps[1]) : Number.NaN,
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    socketErrors: {
      connect: socket ? Number(socket[1]) : 0,
      read: socket ? Number(socket[2]) : 0,
      write: socket ? Number(socket[3]) : 0,
      timeout: socket ? Number(socket[4]) : 0,
    },
    latencyMs: {
      p50: pct('50'),
      p75: pct('75'),
      p90: pct('90'),
      p99: pct('99'),
      avg: stats ? timeMs(stats[1] ?? '', stats[2] ?? '') : Number.NaN,
      max: stats ? timeMs(stats[5] ?? '', stats[6] ?? '') : Number.NaN,
    },
  };
}

/** Starts wrk for `durationS` against `url`; `done` resolves with its parsed summary. */
export function startWrk(wrk: string, url: string, connections: number, durationS: number): LoadRun {
  const argv = [wrk, '-t1', `-c${connections}`, `-d${durationS}s`, '--latency', url];
  const proc: Spawned = start('wrk', argv);
  const done = (async (): Promise<LoadResult> => {
    const deadline = Date.now() + (durationS + 30) * 1000;
    while (!proc.exited && Date.now() < deadline) await sleep(100);
    if (!proc.exited) {
      await stop(proc);
      throw new Error(`wrk did not finish within ${durationS + 30} s:\n${proc.output.trim()}`);
    }
    const drain = Date.now() + 2000;
    while (!proc.closed && Date.now() < drain) await sleep(10);
    if (proc.exitCode !== 0) throw new Error(`wrk exited with ${proc.exitCode}:\n${proc.output.trim()}`);
    return { tool: 'wrk', command: argv.join(' '), ...parseWrkSummary(proc.output), raw: proc.output };
  })();
  return { done, stop: () => stop(proc), pid: proc.pid };
}

const BUCKET_US = 10;
const BUCKETS = 1_000_000; // 10 us × 1e6 = 10 s; slower requests land in the last bucket
const REQUEST_TIMEOUT_MS = 5000;
const MAX_FAILURE_TIMES = 10_000;

/** The fallback client: `connections` keep-alive request loops until the deadline. */
export function startNodeClient(url: string, connections: number, durationS: number): LoadRun {
  const agent = new Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections });
  const target = new URL(url);
  const histogram = new Uint32Array(BUCKETS);
  const statuses: Record<string, number> = {};
  const errorCodes: Record<string, number> = {};
  const failureTimes: number[] = [];
  let requests = 0;
  let non2xx = 0;
  let sumMs = 0;
  let maxMs = 0;
  let stopped = false;
  const began = performance.now();
  const deadline = began + durationS * 1000;

  const fail = (): void => {
    if (failureTimes.length < MAX_FAILURE_TIMES) failureTimes.push(Date.now());
  };

  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const t0 = performance.now();
      const finish = (status: number | undefined, code: string | undefined): void => {
        const ms = performance.now() - t0;
        requests++;
        sumMs += ms;
        if (ms > maxMs) maxMs = ms;
        histogram[Math.min(BUCKETS - 1, Math.floor((ms * 1000) / BUCKET_US))]! += 1;
        if (status !== undefined) {
          statuses[status] = (statuses[status] ?? 0) + 1;
          if (status < 200 || status > 299) {
            non2xx++;
            fail();
          }
        } else {
          errorCodes[code ?? 'unknown'] = (errorCodes[code ?? 'unknown'] ?? 0) + 1;
          fail();
        }
        resolve();
      };
      const req = request({ host: target.hostname, port: target.port, path: target.pathname + target.search, agent, timeout: REQUEST_TIMEOUT_MS }, (res) => {
        res.resume();
        res.once('end', () => finish(res.statusCode, undefined));
        res.once('error', (err: NodeJS.ErrnoException) => finish(undefined, err.code ?? err.message));
      });
      req.once('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
      req.once('error', (err: NodeJS.ErrnoException) => finish(undefined, err.code ?? err.message));
      req.end();
    });

  const loop = async (): Promise<void> => {
    while (!stopped && performance.now() < deadline) await one();
  };

  const done = (async (): Promise<LoadResult> => {
    await Promise.all(Array.from({ length: connections }, loop));
    agent.destroy();
    const durationSActual = (performance.now() - began) / 1000;
    const pct = (p: number): number => {
      const rank = Math.ceil((p / 100) * requests);
      let seen = 0;
      for (let i = 0; i < BUCKETS; i++) {
        seen += histogram[i] ?? 0;
        if (seen >= rank && rank > 0) return ((i + 0.5) * BUCKET_US) / 1000;
      }
      return Number.NaN;
    };
    const connect = (errorCodes.ECONNREFUSED ?? 0) + (errorCodes.EADDRNOTAVAIL ?? 0);
    const timeout = errorCodes.ETIMEDOUT ?? 0;
    const otherErrors = Object.values(errorCodes).reduce((a, b) => a + b, 0) - connect - timeout;
    return {
      tool: 'node',
      command: `node keep-alive client, ${connections} connections, ${durationS} s, ${REQUEST_TIMEOUT_MS / 1000} s timeout`,
      requests,
      durationS: durationSActual,
      reqPerS: requests / durationSActual,
      non2xx,
      socketErrors: { connect, read: otherErrors, write: 0, timeout },
      latencyMs: { p50: pct(50), p75: pct(75), p90: pct(90), p99: pct(99), avg: requests > 0 ? sumMs / requests : Number.NaN, max: maxMs },
      statuses,
      errorCodes,
      failureTimes,
    };
  })();
  return {
    done,
    stop: async () => {
      stopped = true;
      agent.destroy();
      await done.catch(() => undefined);
    },
  };
}
