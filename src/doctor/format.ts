/**
 * The doctor's report as text (grouped by pool and backend, one line per
 * finding, its fix on the next) and as JSON. Pure: no I/O, no clock.
 */
import type { DoctorReport, Finding, PoolReport, Severity, Summary } from './findings.ts';
import { configured, plural } from './units.ts';

/** ANSI colours for the severity word; off unless asked for (a TTY without NO_COLOR). */
const COLORS: Readonly<Record<Severity, string>> = { problem: '\x1b[31m', warning: '\x1b[33m', ok: '\x1b[32m', skip: '\x1b[2m' };
const RESET = '\x1b[0m';

/** Width of the severity column (`problem`, `warning`). */
const SEVERITY_WIDTH = 7;
/** Width of the check column (`keep-alive`). */
const CHECK_WIDTH = 10;

/** The report as text, ending in a summary line. */
export function formatReport(report: DoctorReport, options: { readonly color?: boolean } = {}): string {
  const color = options.color === true;
  const lines: string[] = [`usher doctor: ${report.config}`];
  for (const pool of report.pools) {
    lines.push('', poolTitle(pool));
    lines.push(...findingLines(pool.findings, '  ', color));
    for (const backend of pool.backends) {
      // As `usher status` shows it: the name, if any, before the address.
      lines.push(`  backend ${backend.name === null ? '' : `${backend.name} `}${backend.address}${backend.tls ? ' (tls)' : ''}`);
      lines.push(...findingLines(backend.findings, '    ', color));
    }
  }
  lines.push('', summaryLine(report));
  return `${lines.join('\n')}\n`;
}

/** `pool web: http1, 2 backends, idle timeout 60s, sticky`. */
function poolTitle(pool: PoolReport): string {
  const parts: string[] = [pool.kind === 'tcp' ? 'tcp/tls-passthrough' : pool.kind, plural(pool.backends.length, 'backend')];
  if (pool.kind === 'http1') parts.push(`idle timeout ${configured(pool.idleTimeoutMs)}`);
  if (pool.sticky) parts.push('sticky');
  return `pool ${pool.name}: ${parts.join(', ')}`;
}

/**
 * One line per finding, its fix indented below the message. Consecutive
 * skips with the same reason share one line (`reuse, keep-alive, sessions`).
 */
function findingLines(findings: readonly Finding[], indent: string, color: boolean): string[] {
  const lines: string[] = [];
  const messageColumn = indent.length + SEVERITY_WIDTH + 2 + CHECK_WIDTH + 2;
  for (let i = 0; i < findings.length; i++) {
    const finding = findings[i]!;
    const checks = [finding.check as string];
    while (finding.severity === 'skip' && findings[i + 1]?.severity === 'skip' && findings[i + 1]!.message === finding.message) {
      checks.push(findings[++i]!.check);
    }
    const severity = finding.severity.padEnd(SEVERITY_WIDTH);
    const label = checks.join(', ');
    lines.push(`${indent}${color ? `${COLORS[finding.severity]}${severity}${RESET}` : severity}  ${label.padEnd(CHECK_WIDTH)}  ${finding.message}`);
    if (finding.fix !== undefined) lines.push(`${' '.repeat(messageColumn)}fix: ${finding.fix}`);
  }
  return lines;
}

/** `2 problems, 1 warning (7 ok, 3 skipped) in 2 pools, 3 backends` or `no problems (...)`. */
export function summaryLine(report: DoctorReport): string {
  const { summary } = report;
  const backends = report.pools.reduce((sum, pool) => sum + pool.backends.length, 0);
  const counts = summary.problems === 0 ? (summary.warnings === 0 ? 'no problems' : `no problems, ${plural(summary.warnings, 'warning')}`) : `${plural(summary.problems, 'problem')}${summary.warnings === 0 ? '' : `, ${plural(summary.warnings, 'warning')}`}`;
  return `${counts} (${summary.ok} ok, ${summary.skipped} skipped) in ${plural(report.pools.length, 'pool')}, ${plural(backends, 'backend')}`;
}

/** The `--json` document: the report with `ok` (no problems) first. */
export function reportJson(report: DoctorReport): { readonly ok: boolean; readonly config: string; readonly summary: Summary; readonly pools: readonly PoolReport[] } {
  return { ok: report.summary.problems === 0, config: report.config, summary: report.summary, pools: report.pools };
}
