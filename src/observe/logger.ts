import { pino, type Logger } from 'pino';

/** Where the process log goes, as the config's `log` section says it. */
export interface LoggerOptions {
  /** A pino level (`trace` ... `fatal`, `silent`); the `USHER_LOG_LEVEL` environment variable overrides it. Default `info`. */
  readonly level?: string | undefined;
  /** `stderr` (the default), `stdout`, a file path to append to, or a file descriptor. */
  readonly destination?: number | string | undefined;
}

/**
 * Process logs (start-up, errors, state changes): JSON lines, on stderr by
 * default so stdout stays free for the access log. pino writes asynchronously
 * through a buffered destination, which keeps logging off the request's
 * critical path. The environment variable wins over the config so an operator
 * can turn on debug logs for one run without editing the file.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const destination = options.destination === 'stderr' ? 2 : options.destination === 'stdout' ? 1 : (options.destination ?? 2);
  return pino(
    {
      level: process.env['USHER_LOG_LEVEL'] ?? options.level ?? 'info',
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({ dest: destination, sync: false, mkdir: typeof destination === 'string' }),
  );
}

/** A logger that drops everything, for embedding and tests that do not read logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

export type { Logger };
