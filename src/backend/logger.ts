/**
 * Where the kit reports what it does during start-up and shutdown. Structural,
 * so `console`, a pino logger or any object with these three methods fits.
 */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** The default: one plain line per event on stderr, prefixed so it stands out from the service's own logs. */
export const stderrLogger: Logger = {
  info: (message) => write('info', message),
  warn: (message) => write('warn', message),
  error: (message) => write('error', message),
};

function write(level: string, message: string): void {
  try {
    process.stderr.write(`${new Date().toISOString()} usher/backend ${level}: ${message}\n`);
  } catch {
    // A closed stderr must not turn a shutdown into a crash.
  }
}

/** Calls a user-supplied logger without letting a throwing one break the caller. */
export function safeLog(logger: Logger, level: keyof Logger, message: string): void {
  try {
    logger[level](message);
  } catch {
    // Nothing sensible to do: the message is lost, the shutdown goes on.
  }
}
