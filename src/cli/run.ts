import type { UsherConfig } from '../config/types.ts';
import { createLogger } from '../observe/logger.ts';
import type { AccessLog } from '../observe/access-log.ts';
import { Usher } from '../runtime/usher.ts';
import { exitCodes } from './exit-codes.ts';

/**
 * Runs usher in the foreground until SIGTERM or SIGINT: the first signal stops
 * gracefully (in-flight requests finish), a second one exits at once.
 */
export async function runUntilSignal(
  config: UsherConfig,
  options: { accessLog?: AccessLog; onStarted?: (usher: Usher) => void; onStop?: () => void } = {},
): Promise<number> {
  const logger = createLogger();
  let usher: Usher;
  try {
    usher = await Usher.start(config, { logger, ...(options.accessLog ? { accessLog: options.accessLog } : {}) });
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
  });
}
