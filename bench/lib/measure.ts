/**
 * One measured wrk run with the CPU accounting around it, and the quiet-machine
 * gate that precedes it. See bench/README.md for what each figure means.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { L4_BODY_BYTES, type BenchOptions, type Scenario } from './args.ts';
import { cpuJiffies, cpuTicks, descendants, rssMiB, ticksPerSecond } from './proc.ts';
import type { Measured } from './report.ts';
import type { BenchContext, Launched } from './targets.ts';
import { runWrk, type WrkOptions, type WrkResult } from './wrk.ts';

/** CPU running wrk and the origin; the balancer gets CPU 0. */
export const LOAD_CPU = 1;
/** Below this much busy CPU (all cores together, % of one core) the machine counts as quiet. */
const QUIET_PCT = 25;

function sumBusy(j: readonly { busy: number; total: number }[]): number {
  return j.reduce((sum, c) => sum + (c?.busy ?? 0), 0);
}

const GIB = 1024 ** 3;
const MIB = 1024 ** 2;

/** The wrk invocation of `scenario` against a target listening on `port`. */
export function wrkFor(opts: Pick<BenchOptions, 'threads' | 'connections' | 'pin'>, scenario: Scenario, port: number, durationS: number): WrkOptions {
  const scheme = scenario.mode === 'https' ? 'https' : 'http';
  return {
    url: `${scheme}://127.0.0.1:${port}${scenario.path}`,
    threads: opts.threads,
    connections: scenario.connections ?? opts.connections,
    durationS,
    headers: scenario.headers,
    cpu: opts.pin ? LOAD_CPU : undefined,
    ...(scenario.timeoutS !== undefined ? { timeoutS: scenario.timeoutS } : {}),
  };
}

function union(a: readonly number[], b: readonly number[]): number[] {
  return [...new Set([...a, ...b])];
}

/** One measured wrk run with CPU accounting around it. */
export async function measure(opts: BenchOptions, script: string, ctx: BenchContext, launched: Launched, scenario: Scenario): Promise<Measured> {
  const pids = [launched.cpuPid, ...descendants(launched.cpuPid)];
  const originPids = launched.cpuPid === ctx.originPid ? [] : [ctx.originPid, ...descendants(ctx.originPid)];
  const t0 = process.hrtime.bigint();
  const ticks0 = cpuTicks(pids);
  const origin0 = cpuTicks(originPids);
  const j0 = cpuJiffies();
  const wrk: WrkResult = await runWrk(wrkFor(opts, scenario, launched.port, wrkSeconds(opts.durationS)), script);
  // Every process and thread of the target counts: /proc/<pid>/stat sums all threads
  // (usher's main and worker threads, HAProxy's threads), the family covers nginx's
  // master and workers, and a process started during the run counts from its start.
  const ticks1 = cpuTicks(union(pids, descendants(launched.cpuPid)));
  const origin1 = cpuTicks(originPids);
  const j1 = cpuJiffies();
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
  const tck = ticksPerSecond();
  const balTicks = ticks1 - ticks0;
  const originTicks = origin1 - origin0;
  const otherTicks = Math.max(0, sumBusy(j1) - sumBusy(j0) - balTicks - originTicks - wrk.wrkTicks);
  const durationS = wrk.durationUs / 1e6;
  const load0 = j0[LOAD_CPU];
  const load1 = j1[LOAD_CPU];
  const loadCpuPct = opts.pin && load0 && load1 && load1.total > load0.total ? ((load1.busy - load0.busy) / (load1.total - load0.total)) * 100 : undefined;
  const e = wrk.errors;
  const perReq = (ticks: number): number => (wrk.requests > 0 ? (ticks / tck) * 1e6 / wrk.requests : 0);
  // wrk's byte count includes the headers and the part of the responses still in
  // flight when it stopped, so every completed response must account for at least
  // the full body: fewer bytes mean responses were cut short (or were not the file).
  const short = scenario.unit === 'bytes' ? Math.max(0, wrk.requests - Math.floor(wrk.bytes / (scenario.bodyBytes ?? L4_BODY_BYTES))) : 0;
  return {
    requests: wrk.requests,
    durationS,
    rps: wrk.requests / durationS,
    bytes: wrk.bytes,
    mibPerS: wrk.bytes / MIB / durationS,
    cpuSPerGiB: wrk.bytes > 0 ? balTicks / tck / (wrk.bytes / GIB) : 0,
    latencyUs: wrk.latencyUs,
    errors: { ...e, short, total: e.connect + e.read + e.write + e.status + e.timeout + short },
    cpuUsPerReq: perReq(balTicks),
    balancerCpuPct: (balTicks / tck / wallS) * 100,
    loadCpuPct,
    otherCpuPct: (otherTicks / tck / wallS) * 100,
    originCpuUsPerReq: perReq(originTicks),
    wrkCpuUsPerReq: perReq(wrk.wrkTicks),
    // Summed over the target's processes (each process's VmRSS covers all its threads).
    rssMiB: rssMiB(union(pids, descendants(launched.cpuPid))),
  };
}

/**
 * Waits (at most `maxS`) until the machine is quiet: a 500 ms sample in which
 * everything together keeps less than `QUIET_PCT` of one core busy. Other
 * tenants of a shared machine come in bursts; starting a run between bursts
 * keeps them out of most measurements. Returns the seconds waited.
 */
export async function waitForQuiet(maxS: number): Promise<number> {
  const t0 = Date.now();
  while ((Date.now() - t0) / 1000 < maxS) {
    const a = sumBusy(cpuJiffies());
    await sleep(500);
    const busyPct = ((sumBusy(cpuJiffies()) - a) / ticksPerSecond() / 0.5) * 100;
    if (busyPct < QUIET_PCT) break;
  }
  return (Date.now() - t0) / 1000;
}

export function wrkSeconds(s: number): number {
  return Math.max(1, Math.round(s));
}
