/**
 * The soak's end: usher's access log scanned for failed requests (each
 * attributed to the chaos event that most recently started before it), and
 * the printed summary.
 */
import { createReadStream, existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { ChaosEvent } from './soak-chaos.ts';
import type { LoadResult } from './soak-load.ts';

export interface Sample {
  /** Seconds since the load started (negative: before). */
  readonly t: number;
  readonly rssMiB: number;
  /** usher's CPU seconds (user+system) since it started. */
  readonly cpuS: number;
  /** Share of one core since the previous sample, percent. */
  readonly cpuPct: number;
}

export interface FailureGroup {
  /** The chaos event (seq, kind, target) or `before any chaos event`. */
  readonly cause: string;
  count: number;
  /** Seconds after the event started: first and last failure. */
  firstAfterS: number;
  lastAfterS: number;
  /** `status error` → count, e.g. `502 upstream_reset`. */
  readonly kinds: Record<string, number>;
}

export interface AccessLogScan {
  readonly lines: number;
  readonly failed: number;
  /**
   * 499s (client went away) logged from one second before the load's end on:
   * the load generator closing its connections with requests in flight when
   * its time is up. Not failures; a 499 earlier would be (wrk also counts it).
   */
  readonly clientShutdown: number;
  /** status (and error code) → count, over every failed line. */
  readonly byKind: Record<string, number>;
  readonly byCause: FailureGroup[];
  /** The first failed lines, verbatim. */
  readonly samples: string[];
}

interface AccessLine {
  readonly time: string;
  readonly status: number;
  readonly error?: string;
  readonly backend?: string;
}

/** A line is a success when its status is 2xx and usher recorded no error (e.g. a cut body). */
function succeeded(line: string): boolean {
  return /"status":2\d\d,/.test(line) && !line.includes('"error":');
}

export async function scanAccessLog(path: string, events: readonly ChaosEvent[], loadEndsAt: number): Promise<AccessLogScan | undefined> {
  if (!existsSync(path)) return undefined;
  const byKind: Record<string, number> = {};
  const groups = new Map<string, FailureGroup>();
  const samples: string[] = [];
  let lines = 0;
  let failed = 0;
  let clientShutdown = 0;
  const sorted = [...events].sort((a, b) => a.startedAt - b.startedAt);
  const rl = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  for await (const line of rl) {
    if (line === '') continue;
    lines++;
    if (succeeded(line)) continue;
    let rec: AccessLine;
    try {
      rec = JSON.parse(line) as AccessLine;
    } catch {
      failed++;
      byKind.unparsable = (byKind.unparsable ?? 0) + 1;
      continue;
    }
    const t = Date.parse(rec.time);
    if (rec.status === 499 && t >= loadEndsAt - 1000) {
      clientShutdown++;
      continue;
    }
    failed++;
    if (samples.length < 50) samples.push(line);
    const kind = `${rec.status}${rec.error === undefined ? '' : ` ${rec.error}`}`;
    byKind[kind] = (byKind[kind] ?? 0) + 1;
    let cause: ChaosEvent | undefined;
    for (const e of sorted) {
      if (e.startedAt <= t) cause = e;
      else break;
    }
    const key = cause === undefined ? 'before any chaos event' : `#${cause.seq} ${cause.kind} ${cause.target}`;
    const after = cause === undefined ? 0 : (t - cause.startedAt) / 1000;
    let group = groups.get(key);
    if (group === undefined) {
      group = { cause: key, count: 0, firstAfterS: after, lastAfterS: after, kinds: {} };
      groups.set(key, group);
    }
    group.count++;
    group.firstAfterS = Math.min(group.firstAfterS, after);
    group.lastAfterS = Math.max(group.lastAfterS, after);
    group.kinds[kind] = (group.kinds[kind] ?? 0) + 1;
  }
  return { lines, failed, clientShutdown, byKind, byCause: [...groups.values()], samples };
}

/** Node-client failures (wall-clock times) attributed the same way. */
export function attributeTimes(times: readonly number[], events: readonly ChaosEvent[]): Record<string, number> {
  const out: Record<string, number> = {};
  const sorted = [...events].sort((a, b) => a.startedAt - b.startedAt);
  for (const t of times) {
    let cause: ChaosEvent | undefined;
    for (const e of sorted) {
      if (e.startedAt <= t) cause = e;
      else break;
    }
    const key = cause === undefined ? 'before any chaos event' : `#${cause.seq} ${cause.kind} ${cause.target}`;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}

export interface RssSummary {
  readonly startMiB: number;
  readonly baselineMiB: number;
  readonly baselineAtS: number;
  readonly peakMiB: number;
  readonly endMiB: number;
  /** Highest sample at or after the baseline, minus the baseline. */
  readonly growthMiB: number;
}

export function rssSummary(samples: readonly Sample[], warmupS: number): RssSummary {
  const first = samples[0];
  const last = samples[samples.length - 1];
  if (first === undefined || last === undefined) return { startMiB: NaN, baselineMiB: NaN, baselineAtS: NaN, peakMiB: NaN, endMiB: NaN, growthMiB: NaN };
  const base = samples.find((s) => s.t >= warmupS) ?? last;
  const after = samples.filter((s) => s.t >= base.t);
  const peakAfter = Math.max(...after.map((s) => s.rssMiB));
  return {
    startMiB: first.rssMiB,
    baselineMiB: base.rssMiB,
    baselineAtS: base.t,
    peakMiB: Math.max(...samples.map((s) => s.rssMiB)),
    endMiB: last.rssMiB,
    growthMiB: peakAfter - base.rssMiB,
  };
}

const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const mib = (n: number): string => `${n.toFixed(1)} MiB`;
const ms = (n: number): string => (Number.isFinite(n) ? (n < 1 ? `${(n * 1000).toFixed(0)} us` : `${n.toFixed(2)} ms`) : 'n/a');

export interface SummaryInput {
  readonly wallS: number;
  readonly load: LoadResult | undefined;
  readonly loadError: string | undefined;
  readonly rss: RssSummary;
  readonly rssLimitMiB: number;
  readonly cpuS: number;
  /** usher's --workers. */
  readonly workers: number;
  readonly events: readonly ChaosEvent[];
  readonly accessLog: AccessLogScan | undefined;
  readonly clientFailures: Record<string, number> | undefined;
  readonly upstream: readonly { name: string; requests: number; failures: number; retriedAway: number; ejections: number; starts: number }[];
  readonly reasons: readonly string[];
  readonly resultFile: string;
}

export function formatSummary(s: SummaryInput): string {
  const out: string[] = ['', '== usher soak summary =='];
  const l = s.load;
  out.push(`duration      ${s.wallS.toFixed(0)} s wall; load ${l ? `${l.durationS.toFixed(1)} s` : 'n/a'}`);
  out.push(`usher         --workers ${s.workers} (${s.workers === 0 ? 'the main thread serves' : `${s.workers} data-plane worker thread${s.workers === 1 ? '' : 's'} + the main thread`}; RSS and CPU cover every thread)`);
  if (l) {
    out.push(`load          ${l.command}`);
    out.push(`requests      ${int(l.requests)} (${int(l.reqPerS)} req/s)`);
    const se = l.socketErrors;
    const sock = se.connect + se.read + se.write + se.timeout;
    out.push(`failures      ${int(l.non2xx)} non-2xx${l.tool === 'wrk' ? ' (wrk: "Non-2xx or 3xx responses")' : ''}, ${int(sock)} socket errors (connect ${se.connect}, read ${se.read}, write ${se.write}, timeout ${se.timeout})`);
    if (l.statuses !== undefined) out.push(`statuses      ${JSON.stringify(l.statuses)} errors ${JSON.stringify(l.errorCodes ?? {})}`);
    out.push(`latency       p50 ${ms(l.latencyMs.p50)}, p99 ${ms(l.latencyMs.p99)} (avg ${ms(l.latencyMs.avg)}, max ${ms(l.latencyMs.max)})`);
  } else {
    out.push(`load          FAILED: ${s.loadError ?? 'unknown'}`);
  }
  const r = s.rss;
  out.push(`usher RSS     start ${mib(r.startMiB)}, baseline ${mib(r.baselineMiB)} (t=${r.baselineAtS.toFixed(0)} s), peak ${mib(r.peakMiB)}, end ${mib(r.endMiB)}; growth ${r.growthMiB >= 0 ? '+' : ''}${r.growthMiB.toFixed(1)} MiB (limit ${s.rssLimitMiB})`);
  out.push(`usher CPU     ${s.cpuS.toFixed(1)} s (${l ? ((100 * s.cpuS) / l.durationS).toFixed(0) : '?'}% of one core over the load)`);
  const counts: Record<string, number> = {};
  for (const e of s.events) counts[e.kind] = (counts[e.kind] ?? 0) + 1;
  const bad = s.events.filter((e) => !e.ok);
  out.push(`chaos         ${s.events.length} events (${Object.entries(counts).map(([k, n]) => `${k} ${n}`).join(', ')}); ${bad.length === 0 ? 'all behaved' : `${bad.length} misbehaved`}`);
  const kills = s.events.filter((e) => e.kind === 'kill' && e.ok).map((e) => e.timings.recovered ?? 0);
  const drains = s.events.filter((e) => e.kind === 'drain' && e.ok).map((e) => e.timings.drained ?? 0);
  if (kills.length > 0) out.push(`              kill: healthy again ${Math.min(...kills)}-${Math.max(...kills)} ms after restart; drain: inFlight 0 in ${drains.length ? `${Math.min(...drains)}-${Math.max(...drains)} ms` : 'n/a'}`);
  for (const e of bad) out.push(`              MISBEHAVED #${e.seq} ${e.kind} ${e.target}: ${e.detail}`);
  out.push(`upstream      ${s.upstream.map((u) => `${u.name} ${int(u.requests)} req/${u.failures} failed/${u.retriedAway} retried away/${u.ejections} ejections/${u.starts} starts`).join('; ')}`);
  if (s.accessLog !== undefined) {
    const a = s.accessLog;
    out.push(`access log    ${int(a.lines)} lines, ${int(a.failed)} failed${a.failed > 0 ? ` ${JSON.stringify(a.byKind)}` : ''}${a.clientShutdown > 0 ? `; ${a.clientShutdown} x 499 as the load generator stopped (not counted)` : ''}`);
    for (const g of a.byCause) out.push(`              ${g.count} after ${g.cause} (+${g.firstAfterS.toFixed(2)}..+${g.lastAfterS.toFixed(2)} s): ${JSON.stringify(g.kinds)}`);
  }
  if (s.clientFailures !== undefined && Object.keys(s.clientFailures).length > 0) {
    for (const [cause, n] of Object.entries(s.clientFailures)) out.push(`client fails  ${n} after ${cause}`);
  }
  out.push(`result        ${s.reasons.length === 0 ? 'PASS' : `FAIL: ${s.reasons.join('; ')}`}`);
  out.push(`json          ${s.resultFile}`);
  return `${out.join('\n')}\n`;
}
