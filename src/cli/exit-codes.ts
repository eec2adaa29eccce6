/** Process exit codes: documented in the README and `usher --help`; scripts rely on them. */
export const exitCodes = {
  ok: 0,
  /** The config is invalid, or usher could not start (e.g. a port is taken). */
  configOrStartup: 1,
  /** `usher doctor` found at least one problem. */
  problemsFound: 1,
  /** `usher explain`: no route matches the request. */
  noRouteMatches: 1,
  /** The command line itself is wrong. */
  usage: 2,
  /** A signal asked for an immediate stop (second SIGTERM/SIGINT). */
  forced: 130,
} as const;

/** A command-line mistake: printed with a hint to run --help, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
