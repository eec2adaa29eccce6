import type { ConfigResult } from '../config/index.ts';
import type { UsherConfig } from '../config/types.ts';
import { createLogger } from '../observe/logger.ts';
import type { AccessLog } from '../observe/access-log.ts';
import { Usher } from '../runtime/usher.ts';
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
  let usher: Usher;
  try {
    usher = await Usher.start(config, {
      logger,
      ...(options.accessLog ? { accessLog: options.accessLog } : {}),
      ...(options.configSource ? { configSource: options.configSource } : {}),
    });
  } catch (err) {
    process.stderr.write(`usher: ${(err as Error).message}\n`);
    return exitCodes.configOrStartup;
  }
  options.onStarted?.(usher);
  return new Promise<number>((resolve) => {
    let signalled = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (signalled) {
        logger.warn({ signal }, 'second signal: stopping now');
        logger.flush();
        process.exit(exitCodes.forced);
      }
      signalled = true;
      logger.info({ signal }, 'stopping: finishing in-flight requests');
      options.onStop?.();
      usher.stop().then(
        () => resolve(exitCodes.ok),
        (err: unknown) => {
          logger.error({ err }, 'stop failed');
          resolve(exitCodes.configOrStartup);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    process.on('SIGHUP', () => {
      logger.info('SIGHUP: reloading the config');
      void usher.reload(); // the outcome is logged by reload itself
    });
  });
}
