import { pino, type Logger } from 'pino';

/**
 * Process logs (start-up, errors, state changes): JSON lines on stderr, so
 * stdout stays free for the access log. pino writes asynchronously through a
 * buffered destination, which keeps logging off the request's critical path.
 */
export function createLogger(options: { level?: string; destination?: number | string } = {}): Logger {
  return pino(
    {
      level: options.level ?? process.env['USHER_LOG_LEVEL'] ?? 'info',
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({ dest: options.destination ?? 2, sync: false }),
  );
}

/** A logger that drops everything, for embedding and tests that do not read logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

export type { Logger };
