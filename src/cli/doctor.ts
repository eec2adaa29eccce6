/**
 * `usher doctor`: checks the backends of a config for the mistakes that make
 * services misbehave behind a load balancer, and prints each finding with
 * its fix. The checks live in src/doctor/; this file turns the command line
 * into a run and the report into output and an exit code.
 */
import type { UsherConfig } from '../config/types.ts';
import { formatReport, reportJson } from '../doctor/format.ts';
import { planPools } from '../doctor/plan.ts';
import { longestIdleWaitMs, runDoctor } from '../doctor/run.ts';
import { measured, plural } from '../doctor/units.ts';
import { exitCodes, UsageError } from './exit-codes.ts';

/** What the command line asked for. */
export interface DoctorCommand {
  /** The config file, as given (shown in the report). */
  readonly file: string;
  /** Only this pool, or every pool. */
  readonly pool: string | undefined;
  readonly path: string;
  readonly requestTimeoutMs: number;
  readonly maxWaitMs: number | undefined;
  readonly json: boolean;
}

/**
 * Runs the doctor on a loaded config and prints the report (text, or JSON
 * with `json`). Returns the exit code: 0 without problems (warnings allowed),
 * 1 with at least one.
 *
 * @throws UsageError when `--pool` names no pool of the config.
 */
export async function runDoctorCommand(config: UsherConfig, command: DoctorCommand): Promise<number> {
  const plans = planPools(config, command.pool);
  if ('error' in plans) throw new UsageError(`${command.file}: ${plans.error}`);
  const backends = plans.reduce((sum, plan) => sum + plan.backends.length, 0);
  const waitMs = longestIdleWaitMs(plans, command.maxWaitMs);
  // stderr, so --json output stays one document; the note tells why it takes a while.
  process.stderr.write(
    `usher doctor: checking ${plural(backends, 'backend')} in ${plural(plans.length, 'pool')}` +
      (waitMs > 0 ? `; holding idle connections up to ${measured(waitMs)} to measure keep-alive timeouts${command.maxWaitMs === undefined ? ' (--max-wait shortens it)' : ''}` : '') +
      '\n',
  );
  const report = await runDoctor(command.file, plans, { path: command.path, requestTimeoutMs: command.requestTimeoutMs, maxWaitMs: command.maxWaitMs });
  if (command.json) process.stdout.write(`${JSON.stringify(reportJson(report), null, 2)}\n`);
  else process.stdout.write(formatReport(report, { color: process.stdout.isTTY === true && process.env['NO_COLOR'] === undefined }));
  return report.summary.problems > 0 ? exitCodes.problemsFound : exitCodes.ok;
}
