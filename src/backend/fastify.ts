import type { NodeServer } from './connections.ts';
import type { Health } from './health.ts';
import { gracefulShutdown, type Shutdown, type ShutdownOptions } from './shutdown.ts';

/** What the kit uses of a Fastify request. */
export interface FastifyRequestLike {
  readonly method: string;
  readonly url: string;
}

/** What the kit uses of a Fastify reply. */
export interface FastifyReplyLike {
  code(statusCode: number): FastifyReplyLike;
  header(key: string, value: string): FastifyReplyLike;
  send(payload?: string): FastifyReplyLike;
}

/**
 * What the kit uses of a Fastify (5) instance, declared here so the kit does
 * not depend on Fastify. A `FastifyInstance` on node:http or node:https fits.
 */
export interface FastifyLike {
  /** The node server Fastify owns and listens with. */
  readonly server: NodeServer;
  get(path: string, handler: (request: FastifyRequestLike, reply: FastifyReplyLike) => Promise<FastifyReplyLike>): unknown;
  /** Fastify's own close: stops the server, waits for its connections, runs `onClose` hooks. */
  close(): PromiseLike<unknown>;
}

/**
 * Registers the health paths as Fastify routes (GET; Fastify adds HEAD), so
 * they go through Fastify's logging and hooks like any route. Call it before
 * `listen()`.
 */
export function fastifyHealth(fastify: FastifyLike, health: Health): void {
  const route = async (request: FastifyRequestLike, reply: FastifyReplyLike): Promise<FastifyReplyLike> => {
    const answer = health.answer(request.method, request.url);
    // Only GET reaches this handler (and HEAD, which Fastify runs as GET), so an answer always exists.
    const { status, headers, body } = (await answer) ?? { status: 404, headers: {}, body: '' };
    reply.code(status);
    for (const [name, value] of Object.entries(headers)) if (name !== 'content-length') reply.header(name, value);
    return reply.send(body);
  };
  for (const path of [...health.readinessPaths, ...health.livenessPaths]) fastify.get(path, route);
}

/**
 * {@link gracefulShutdown} for Fastify: it follows `fastify.server`'s
 * connections and stops with `fastify.close()` (which closes the server and
 * runs Fastify's `onClose` hooks, e.g. plugins' database pools) instead of a
 * bare `server.close()`. Call it before `listen()` when using direct drain, so
 * the enable call runs once Fastify listens.
 */
export function fastifyShutdown(fastify: FastifyLike, options: ShutdownOptions = {}): Shutdown {
  return gracefulShutdown(fastify.server, { ...options, close: () => Promise.resolve(fastify.close()) });
}
