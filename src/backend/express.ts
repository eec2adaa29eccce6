import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Health } from './health.ts';

/**
 * The shape of an Express (4 or 5) middleware, declared here so the kit does
 * not depend on Express: Express's `Request` and `Response` extend node's.
 */
export type ExpressMiddleware = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;

/**
 * An Express middleware answering the health paths and passing every other
 * request on. Mount it first, before body parsers, auth and rate limits, so a
 * probe costs nothing and is never refused:
 *
 * ```ts
 * const app = express();
 * app.use(expressHealth(health));
 * const server = app.listen(3000);
 * gracefulShutdown(server, { health });
 * ```
 */
export function expressHealth(health: Health): ExpressMiddleware {
  return (req, res, next) => {
    if (!health.handle(req, res)) next();
  };
}
