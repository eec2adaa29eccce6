/**
 * What `usher doctor` reports: findings, grouped by pool and backend. Plain
 * data, the same for the text and the `--json` output.
 */

/**
 * `problem`: the backend will misbehave behind usher (the exit code is 1).
 * `warning`: worth fixing, not failing. `ok`: checked and fine. `skip`: the
 * check does not apply here; the message says why.
 */
export type Severity = 'problem' | 'warning' | 'ok' | 'skip';

/** The checks, named as in docs/operations.md ("usher doctor"). */
export type CheckName = 'config' | 'connect' | 'health' | 'request' | 'reuse' | 'keep-alive' | 'sessions';

/** Numbers and words measured by a check, for `--json` (milliseconds end in `Ms`). */
export type Measured = Readonly<Record<string, number | string | boolean | null>>;

/** One line of the report. */
export interface Finding {
  readonly check: CheckName;
  readonly severity: Severity;
  /** What was measured or seen, in one sentence. */
  readonly message: string;
  /** A concrete change that removes the problem or warning. */
  readonly fix?: string | undefined;
  readonly measured?: Measured | undefined;
}

/** The findings of one backend of one pool. */
export interface BackendReport {
  /** `host:port` as the config and the admin API show it. */
  readonly address: string;
  /** The backend's `name` in the config, null without one (as in the admin API). */
  readonly name: string | null;
  readonly tls: boolean;
  readonly findings: readonly Finding[];
}

/** The findings of one pool: its own (config, sessions) and its backends'. */
export interface PoolReport {
  readonly name: string;
  /** `http1`, `h2c`, or `tcp` for pools that only tcp/tls-passthrough listeners use. */
  readonly kind: 'http1' | 'h2c' | 'tcp';
  readonly idleTimeoutMs: number;
  readonly sticky: boolean;
  readonly findings: readonly Finding[];
  readonly backends: readonly BackendReport[];
}

/** Findings counted by severity. */
export interface Summary {
  readonly problems: number;
  readonly warnings: number;
  readonly ok: number;
  readonly skipped: number;
}

/** The whole report of one run. */
export interface DoctorReport {
  /** The config file, as given on the command line. */
  readonly config: string;
  readonly pools: readonly PoolReport[];
  readonly summary: Summary;
}

/** Counts the findings of every pool and backend by severity. */
export function summarize(pools: readonly PoolReport[]): Summary {
  const counts = { problems: 0, warnings: 0, ok: 0, skipped: 0 };
  const add = (finding: Finding): void => {
    if (finding.severity === 'problem') counts.problems++;
    else if (finding.severity === 'warning') counts.warnings++;
    else if (finding.severity === 'ok') counts.ok++;
    else counts.skipped++;
  };
  for (const pool of pools) {
    pool.findings.forEach(add);
    for (const backend of pool.backends) backend.findings.forEach(add);
  }
  return counts;
}
