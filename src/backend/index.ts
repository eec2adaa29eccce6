/**
 * `usher/backend`: the kit for Node services behind usher (or any balancer).
 * No dependencies, only `node:` built-ins; it never imports the rest of usher.
 *
 * ```ts
 * import { createHealth, gracefulShutdown } from 'usher/backend';
 *
 * const health = createHealth({ checks: { db: () => pool.query('select 1') } });
 * const server = createServer((req, res) => health.handle(req, res) || app(req, res));
 * gracefulShutdown(server, { health, onShutdown: () => pool.end() });
 * server.listen(3000);
 * ```
 *
 * Guide: docs/backend-kit.md.
 */
export { createHealth, Health, DEFAULT_LIVENESS_PATHS, DEFAULT_READINESS_PATHS, type HealthAnswer, type HealthOptions } from './health.ts';
export { Readiness, DEFAULT_CACHE_MS, DEFAULT_CHECK_TIMEOUT_MS, type Check, type CheckFunction, type CheckResult, type CheckSpec, type ReadinessOptions, type ReadinessReport } from './checks.ts';
export {
  gracefulShutdown,
  shutdownExitCodes,
  DEFAULT_DRAIN_DELAY_MS,
  DEFAULT_SHUTDOWN_TIMEOUT_MS,
  type Shutdown,
  type ShutdownOptions,
  type ShutdownState,
} from './shutdown.ts';
export { DEFAULT_ADMIN_TIMEOUT_MS, DEFAULT_SETTLE_DELAY_MS, type UsherDrainOptions } from './usher-admin.ts';
export type { NodeServer } from './connections.ts';
export type { Logger } from './logger.ts';
export { expressHealth, type ExpressMiddleware } from './express.ts';
export { fastifyHealth, fastifyShutdown, type FastifyLike, type FastifyReplyLike, type FastifyRequestLike } from './fastify.ts';
export { honoHealth, honoShutdown, type HonoContextLike, type HonoMiddleware } from './hono.ts';
