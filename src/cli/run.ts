import type { ConfigResult } from '../config/index.ts';
import type { UsherConfig } from '../config/types.ts';
import { createLogger } from '../observe/logger.ts';
import type { AccessLog } from '../observe/access-log.ts';
import { Usher } from '../runtime/usher.ts';
import { UsherConfigError } from '../errors.ts';
import { exitCodes } from './exit-codes.ts';

/**
 * Runs usher in the foreground until SIGTERM or SIGINT: the first signal stops
 * gracefully (in-flight requests finish, up to `shutdownTimeout`), a second
 * one exits at once. SIGHUP reloads the config file.
 */
export async function runUntilSignal(
  config: UsherConfig,
  options: {
    accessLog?: AccessLog;
    /** Re-reads the config file: SIGHUP and the admin API reload from it. */
    configSource?: () => ConfigResult | Promise<ConfigResult>;
    onStarted?: (usher: Usher) => void;
    onStop?: () => void;
  } = {},
): Promise<number> {
  const logger = createLogger(config.log);
  let usher: Usher | undefined;
  let signalled = false;
  let resolveExit: (code: number) => void = () => undefined;
  const exited = new Promise<number>((resolve) => (resolveExit = resolve));
  const stop = (running: Usher): void => {
    options.onStop?.();
    running.stop().then(
      () => resolveExit(exitCodes.ok),
      (err: unknown) => {
        logger.error({ err }, 'stop failed');
        resolveExit(exitCodes.configOrStartup);
      },
    );
  };
  // Installed before the listeners are bound: a SIGTERM that arrives while usher starts (a supervisor
  // stopping it at once, a test that signals as soon as the port accepts) is a graceful stop, not a kill.
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled) {
      logger.warn({ signal }, 'second signal: stopping now');
      logger.flush();
      process.exit(exitCodes.forced);
    }
    signalled = true;
    logger.info({ signal }, 'stopping: finishing in-flight requests');
    if (usher !== undefined) stop(usher); // else: stopped as soon as the start completes
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    usher = await Usher.start(config, {
      logger,
      defaultWorkers: 'auto',
      ...(options.accessLog ? { accessLog: options.accessLog } : {}),
      ...(options.configSource ? { configSource: options.configSource } : {}),
    });
  } catch (err) {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    // A config error lists each problem as `usher check` does.
    for (const detail of err instanceof UsherConfigError ? err.details : []) process.stderr.write(`${detail}\n`);
    process.stderr.write(`usher: ${(err as Error).message}\n`);
    return exitCodes.configOrStartup;
  }
  const running = usher;
  options.onStarted?.(running);
  process.on('SIGHUP', () => {
    logger.info('SIGHUP: reloading the config');
    void running.reload(); // the outcome is logged by reload itself
  });
  if (signalled) stop(running);
  return exited;
}
