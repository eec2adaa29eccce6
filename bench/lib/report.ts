/**
 * Turns measured runs into the printed tables, the ratio lines, and the
 * target check for the product (see bench/README.md for the definitions).
 */
import type { Role } from './targets.ts';

/** What one measured wrk run produced, with the CPU accounting around it. */
export interface Measured {
  readonly requests: number;
  readonly durationS: number;
  readonly rps: number;
  /** Bytes wrk read (headers, bodies, and responses still in flight at the end). */
  readonly bytes: number;
  /** bytes / duration, MiB/s. */
  readonly mibPerS: number;
  /** Balancer CPU seconds per GiB wrk received (the l4 scenario's CPU figure). */
  readonly cpuSPerGiB: number;
  readonly latencyUs: { readonly p50: number; readonly p90: number; readonly p99: number; readonly p999: number; readonly mean: number; readonly max: number };
  /** `short`: completed responses not covered by the bytes received (bytes scenarios only; see measure.ts). */
  readonly errors: { readonly connect: number; readonly read: number; readonly write: number; readonly status: number; readonly timeout: number; readonly short: number; readonly total: number };
  /** Balancer CPU time (user+system, all threads and child processes) per completed request. */
  readonly cpuUsPerReq: number;
  /** Balancer CPU time over wall time, percent of one core. */
  readonly balancerCpuPct: number;
  /** Busy percent of the CPU running wrk + origins (undefined without pinning). */
  readonly loadCpuPct: number | undefined;
  /**
   * CPU used by anything other than the balancer, the origin and wrk while the
   * run lasted, percent of one core: other tenants of a shared machine. Runs
   * with a high value are suspect. (Contention from outside the VM is invisible here.)
   */
  readonly otherCpuPct: number;
  /** Origin and wrk CPU per request, for the record. */
  readonly originCpuUsPerReq: number;
  readonly wrkCpuUsPerReq: number;
  readonly rssMiB: number;
}

/**
 * One (target, scenario) pair. The top-level figures are, with --pick median
 * (default), the per-metric medians over the rounds (errors and RSS: the
 * maximum); with --pick quietest, the round with the least foreign CPU.
 */
export interface RunRecord extends Measured {
  readonly target: string;
  readonly role: Role;
  readonly scenario: string;
  /** Spread over the rounds of the scenario's CPU figure (us/req, or s/GiB for bytes scenarios). */
  readonly cpuMin: number;
  readonly cpuMax: number;
  /** Rounds in which the target completed no request at all (excluded from the figures). */
  readonly stalledRounds: number;
  /** Spawn → port accepting, ms, of the target's process for this scenario's mode (undefined: not started by the bench). */
  readonly startMs: number | undefined;
  /** Spawn → first correct answer to GET /small, ms. */
  readonly readyMs: number | undefined;
  readonly rounds: readonly RoundResult[];
}

/** One round's measurement, tagged with its round number (for pairing). */
export interface RoundResult extends Measured {
  readonly round: number;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Aggregates rounds into one record's figures (see RunRecord). */
export function aggregate(all: readonly Measured[], pick: 'quietest' | 'median'): Measured | undefined {
  const rounds = all.filter((r) => r.requests > 0);
  if (rounds.length === 0) return all[0];
  if (pick === 'quietest') return [...rounds].sort((x, y) => x.otherCpuPct - y.otherCpuPct)[0];
  const m = (f: (r: Measured) => number): number => median(rounds.map(f));
  const max = (f: (r: Measured) => number): number => Math.max(...rounds.map(f));
  const loads = rounds.map((r) => r.loadCpuPct).filter((x): x is number => x !== undefined);
  return {
    requests: m((r) => r.requests),
    durationS: m((r) => r.durationS),
    rps: m((r) => r.rps),
    bytes: m((r) => r.bytes),
    mibPerS: m((r) => r.mibPerS),
    cpuSPerGiB: m((r) => r.cpuSPerGiB),
    latencyUs: { p50: m((r) => r.latencyUs.p50), p90: m((r) => r.latencyUs.p90), p99: m((r) => r.latencyUs.p99), p999: m((r) => r.latencyUs.p999), mean: m((r) => r.latencyUs.mean), max: max((r) => r.latencyUs.max) },
    errors: { connect: max((r) => r.errors.connect), read: max((r) => r.errors.read), write: max((r) => r.errors.write), status: max((r) => r.errors.status), timeout: max((r) => r.errors.timeout), short: max((r) => r.errors.short), total: max((r) => r.errors.total) },
    cpuUsPerReq: m((r) => r.cpuUsPerReq),
    balancerCpuPct: m((r) => r.balancerCpuPct),
    loadCpuPct: loads.length > 0 ? median(loads) : undefined,
    otherCpuPct: m((r) => r.otherCpuPct),
    originCpuUsPerReq: m((r) => r.originCpuUsPerReq),
    wrkCpuUsPerReq: m((r) => r.wrkCpuUsPerReq),
    rssMiB: max((r) => r.rssMiB),
  };
}

/** usher-style ratios for one candidate in one scenario. */
export interface Ratio {
  readonly scenario: string;
  readonly candidate: string;
  readonly rpsVsHttpProxy: number | undefined;
  readonly rpsVsNginx: number | undefined;
  readonly rpsVsHaproxy: number | undefined;
  readonly p99VsNginx: number | undefined;
  readonly cpuVsNginx: number | undefined;
  readonly p99VsHaproxy: number | undefined;
  readonly cpuVsHaproxy: number | undefined;
  /** Bytes scenarios: MiB/s and CPU s/GiB against HAProxy and against no proxy at all. */
  readonly mibpsVsHaproxy: number | undefined;
  readonly mibpsVsDirect: number | undefined;
  readonly cpuPerGiBVsHaproxy: number | undefined;
  /** Against the origin's own CPU per GiB (serving with sendfile): what proxying costs relative to serving. */
  readonly cpuPerGiBVsDirect: number | undefined;
}

function pad(text: string, width: number, right: boolean): string {
  return right ? text.padStart(width) : text.padEnd(width);
}

/** Microseconds as a short human value. */
export function fmtLatency(us: number): string {
  if (us >= 1_000_000) return `${(us / 1_000_000).toFixed(2)}s`;
  if (us >= 1000) return `${(us / 1000).toFixed(2)}ms`;
  return `${Math.round(us)}us`;
}

/** Milliseconds, whole, or `-` when unknown. */
export function fmtMs(ms: number | undefined): string {
  return ms === undefined ? '-' : ms.toFixed(0);
}

function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function fmtRatio(n: number | undefined, digits = 2): string {
  return n === undefined || !Number.isFinite(n) ? '-' : `${n.toFixed(digits)}x`;
}

/** A fixed-width table of the runs of one scenario. */
export function scenarioTable(runs: readonly RunRecord[]): string {
  const head = ['peer', 'req/s', 'p50', 'p99', 'CPU us/req', 'CPU min-max', 'bal CPU%', 'load CPU%', 'other CPU%', 'RSS MiB', 'start ms', 'ready ms', 'errors'];
  const rows = runs.map((r) => [
    r.target,
    fmtInt(r.rps),
    fmtLatency(r.latencyUs.p50),
    fmtLatency(r.latencyUs.p99),
    r.cpuUsPerReq.toFixed(1),
    r.rounds.length > 1 ? `${r.cpuMin.toFixed(0)}-${r.cpuMax.toFixed(0)}` : '-',
    r.balancerCpuPct.toFixed(0),
    r.loadCpuPct === undefined ? '-' : r.loadCpuPct.toFixed(0),
    r.otherCpuPct.toFixed(0),
    r.rssMiB.toFixed(0),
    fmtMs(r.startMs),
    fmtMs(r.readyMs),
    r.errors.total === 0 && r.stalledRounds === 0 ? '0' : errorText(r),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => pad(c, widths[i] ?? 0, i > 0 && i < cells.length - 1)).join('  ').trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** The table of a bytes scenario (l4): throughput and CPU per GiB instead of per request. */
export function byteTable(runs: readonly RunRecord[]): string {
  const head = ['peer', 'MiB/s', 'resp/s', 'p50', 'p99', 'CPU s/GiB', 'CPU min-max', 'bal CPU%', 'load CPU%', 'other CPU%', 'RSS MiB', 'start ms', 'ready ms', 'errors'];
  const rows = runs.map((r) => [
    r.target,
    fmtInt(r.mibPerS),
    r.rps.toFixed(1),
    fmtLatency(r.latencyUs.p50),
    fmtLatency(r.latencyUs.p99),
    r.cpuSPerGiB.toFixed(3),
    r.rounds.length > 1 ? `${r.cpuMin.toFixed(3)}-${r.cpuMax.toFixed(3)}` : '-',
    r.balancerCpuPct.toFixed(0),
    r.loadCpuPct === undefined ? '-' : r.loadCpuPct.toFixed(0),
    r.otherCpuPct.toFixed(0),
    r.rssMiB.toFixed(0),
    fmtMs(r.startMs),
    fmtMs(r.readyMs),
    r.errors.total === 0 && r.stalledRounds === 0 ? '0' : errorText(r),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => pad(c, widths[i] ?? 0, i > 0 && i < cells.length - 1)).join('  ').trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

function errorText(r: RunRecord): string {
  const parts: string[] = [];
  const e = r.errors;
  if (e.short > 0) parts.push(`${e.short} short`);
  if (e.status > 0) parts.push(`${e.status} non-2xx`);
  if (e.connect > 0) parts.push(`${e.connect} connect`);
  if (e.read > 0) parts.push(`${e.read} read`);
  if (e.write > 0) parts.push(`${e.write} write`);
  if (e.timeout > 0) parts.push(`${e.timeout} timeout`);
  if (r.stalledRounds > 0) parts.push(`${r.stalledRounds} round(s) with 0 requests`);
  return parts.join(', ');
}

/** Ratios of every candidate to the peers measured in the same invocation. */
export function ratios(runs: readonly RunRecord[]): Ratio[] {
  const out: Ratio[] = [];
  const scenarios = [...new Set(runs.map((r) => r.scenario))];
  for (const scenario of scenarios) {
    const of = (name: string): RunRecord | undefined => runs.find((r) => r.scenario === scenario && r.target === name);
    const hp = of('http-proxy');
    const ng = of('nginx');
    const ha = of('haproxy');
    const di = of('direct');
    for (const c of runs.filter((r) => r.scenario === scenario && r.role === 'candidate')) {
      out.push({
        scenario,
        candidate: c.target,
        rpsVsHttpProxy: paired(c, hp, (m) => m.rps),
        rpsVsNginx: paired(c, ng, (m) => m.rps),
        rpsVsHaproxy: paired(c, ha, (m) => m.rps),
        p99VsNginx: paired(c, ng, (m) => m.latencyUs.p99),
        cpuVsNginx: paired(c, ng, (m) => m.cpuUsPerReq),
        p99VsHaproxy: paired(c, ha, (m) => m.latencyUs.p99),
        cpuVsHaproxy: paired(c, ha, (m) => m.cpuUsPerReq),
        mibpsVsHaproxy: paired(c, ha, (m) => m.mibPerS),
        mibpsVsDirect: paired(c, di, (m) => m.mibPerS),
        cpuPerGiBVsHaproxy: paired(c, ha, (m) => m.cpuSPerGiB),
        cpuPerGiBVsDirect: paired(c, di, (m) => m.cpuSPerGiB),
      });
    }
  }
  return out;
}

/**
 * a/b for a metric: the median of per-round ratios when both were measured in
 * the same rounds (interleaved rounds are minutes apart at most, so this
 * cancels slow drifts in machine speed), else the ratio of the aggregates.
 */
function paired(a: RunRecord, b: RunRecord | undefined, f: (m: Measured) => number): number | undefined {
  if (b === undefined) return undefined;
  const ratiosByRound: number[] = [];
  for (const ra of a.rounds) {
    const rb = b.rounds.find((x) => x.round === ra.round);
    if (rb !== undefined && ra.requests > 0 && rb.requests > 0 && f(rb) > 0) ratiosByRound.push(f(ra) / f(rb));
  }
  return ratiosByRound.length > 0 ? median(ratiosByRound) : f(a) / f(b);
}

/** usher (at --workers N) against usher-w0 (--workers 0) in one scenario, paired by round. */
export interface WorkersRatio {
  readonly scenario: string;
  readonly workers: number;
  /** req/s (bytes scenarios: MiB/s), usher / usher-w0. */
  readonly throughput: number | undefined;
  readonly p99: number | undefined;
  /** CPU us/req (bytes scenarios: CPU s/GiB), usher / usher-w0. */
  readonly cpu: number | undefined;
}

/** usher / usher-w0 per scenario where both were measured (the cost or gain of --workers N over the single-threaded design). */
export function workersRatios(runs: readonly RunRecord[], workers: number, bytesScenarios: ReadonlySet<string>): WorkersRatio[] {
  const out: WorkersRatio[] = [];
  for (const scenario of [...new Set(runs.map((r) => r.scenario))]) {
    const u = runs.find((r) => r.scenario === scenario && r.target === 'usher');
    const w0 = runs.find((r) => r.scenario === scenario && r.target === 'usher-w0');
    if (u === undefined || w0 === undefined) continue;
    const bytes = bytesScenarios.has(scenario);
    out.push({
      scenario,
      workers,
      throughput: paired(u, w0, (m) => (bytes ? m.mibPerS : m.rps)),
      p99: paired(u, w0, (m) => m.latencyUs.p99),
      cpu: paired(u, w0, (m) => (bytes ? m.cpuSPerGiB : m.cpuUsPerReq)),
    });
  }
  return out;
}

/** The line printed under a scenario's ratios when usher and usher-w0 both ran. */
export function workersRatioLine(r: WorkersRatio, unit: 'requests' | 'bytes'): string {
  // The goal for N = 1: no more than 5 % worse than the single-threaded design.
  const within = (x: number | undefined, better: 'higher' | 'lower'): string =>
    x === undefined || !Number.isFinite(x) ? '?' : better === 'higher' ? (x >= 0.95 ? 'ok, >=0.95x' : 'MISS, <0.95x') : x <= 1.05 ? 'ok, <=1.05x' : 'MISS, >1.05x';
  const [tp, cpu] = unit === 'bytes' ? ['MiB/s', 'CPU/GiB'] : ['req/s', 'CPU/req'];
  return (
    `usher --workers ${r.workers} vs usher-w0 (--workers 0): ${tp} ${fmtRatio(r.throughput)} [${within(r.throughput, 'higher')}], ` +
    `p99 ${fmtRatio(r.p99)}, ${cpu} ${fmtRatio(r.cpu)} [${within(r.cpu, 'lower')}]`
  );
}

/** The ratio lines printed under a scenario table. */
export function ratioTable(rs: readonly Ratio[]): string {
  if (rs.length === 0) return '(no candidate targets measured: no ratios)';
  const head = ['candidate', 'req/s vs http-proxy', 'vs nginx', 'vs haproxy', 'p99 vs nginx', 'CPU/req vs nginx'];
  const rows = rs.map((r) => [r.candidate, fmtRatio(r.rpsVsHttpProxy), fmtRatio(r.rpsVsNginx), fmtRatio(r.rpsVsHaproxy), fmtRatio(r.p99VsNginx), fmtRatio(r.cpuVsNginx)]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => pad(c, widths[i] ?? 0, i > 0)).join('  ');
  return [line(head), ...rows.map(line)].join('\n');
}

/** Ratio lines for the l4 scenario: throughput and CPU per GiB against HAProxy and no proxy. */
export function byteRatioTable(rs: readonly Ratio[]): string {
  if (rs.length === 0) return '(no candidate targets measured: no ratios)';
  const head = ['candidate', 'MiB/s vs haproxy', 'vs direct', 'CPU/GiB vs haproxy', 'CPU/GiB vs direct (origin)', 'p99 vs haproxy'];
  const rows = rs.map((r) => [
    r.candidate,
    fmtRatio(r.mibpsVsHaproxy),
    fmtRatio(r.mibpsVsDirect),
    fmtRatio(r.cpuPerGiBVsHaproxy),
    fmtRatio(r.cpuPerGiBVsDirect),
    fmtRatio(r.p99VsHaproxy),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => pad(c, widths[i] ?? 0, i > 0)).join('  ');
  return [line(head), ...rows.map(line)].join('\n');
}

/** Ratio lines for the https scenario: against both TLS-terminating peers. */
export function tlsRatioTable(rs: readonly Ratio[]): string {
  if (rs.length === 0) return '(no candidate targets measured: no ratios)';
  const head = ['candidate', 'req/s vs nginx', 'vs haproxy', 'p99 vs nginx', 'vs haproxy', 'CPU/req vs nginx', 'vs haproxy'];
  const rows = rs.map((r) => [r.candidate, fmtRatio(r.rpsVsNginx), fmtRatio(r.rpsVsHaproxy), fmtRatio(r.p99VsNginx), fmtRatio(r.p99VsHaproxy), fmtRatio(r.cpuVsNginx), fmtRatio(r.cpuVsHaproxy)]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => pad(c, widths[i] ?? 0, i > 0)).join('  ');
  return [line(head), ...rows.map(line)].join('\n');
}

/** The product target on small keep-alive GETs, checked for each candidate. */
export function targetCheck(rs: readonly Ratio[], runs: readonly RunRecord[]): string[] {
  const lines: string[] = [];
  for (const r of rs.filter((x) => x.scenario === 'small')) {
    const run = runs.find((x) => x.scenario === 'small' && x.target === r.candidate);
    const mark = (ok: boolean | undefined): string => (ok === undefined ? '?' : ok ? 'ok' : 'MISS');
    const hp = r.rpsVsHttpProxy;
    const ng = r.rpsVsNginx;
    const p99 = r.p99VsNginx;
    lines.push(
      `${r.candidate}: ${fmtRatio(hp)} http-proxy [${mark(hp === undefined ? undefined : hp >= 2)}], ` +
        `${ng === undefined ? '-' : `${(ng * 100).toFixed(0)}%`} of nginx [${mark(ng === undefined ? undefined : ng >= 0.6)}], ` +
        `p99 ${fmtRatio(p99)} nginx [${mark(p99 === undefined ? undefined : p99 <= 2)}], ` +
        `${run ? run.cpuUsPerReq.toFixed(1) : '-'} us CPU/req [${mark(run ? run.cpuUsPerReq <= 40 : undefined)}]`,
    );
  }
  return lines;
}
