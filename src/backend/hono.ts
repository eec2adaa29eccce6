import { Server as HttpServer } from 'node:http';
import { Server as HttpsServer } from 'node:https';
import type { Http2SecureServer, Http2Server } from 'node:http2';
import type { NodeServer } from './connections.ts';
import type { Health } from './health.ts';
import { describeValue } from './options.ts';
import { gracefulShutdown, type Shutdown, type ShutdownOptions } from './shutdown.ts';

/** What the kit uses of a Hono context. */
export interface HonoContextLike {
  readonly req: {
    readonly method: string;
    /** The path without query (Hono's `c.req.path`). */
    readonly path: string;
  };
}

/** The shape of a Hono (4) middleware, declared here so the kit does not depend on Hono. */
export type HonoMiddleware = (c: HonoContextLike, next: () => Promise<void>) => Promise<Response | undefined>;

/**
 * A Hono middleware answering the health paths with Web `Response`s and
 * passing every other request on. Works on any runtime Hono runs on; the
 * shutdown part ({@link honoShutdown}) needs `@hono/node-server`.
 *
 * ```ts
 * const app = new Hono();
 * app.use(honoHealth(health));
 * const server = serve({ fetch: app.fetch, port: 3000 });
 * honoShutdown(server, { health });
 * ```
 */
export function honoHealth(health: Health): HonoMiddleware {
  return async (c, next) => {
    const answer = health.answer(c.req.method, c.req.path);
    if (answer === undefined) {
      await next();
      return undefined;
    }
    const { status, headers, body } = await answer;
    return new Response(c.req.method === 'HEAD' ? null : body, { status, headers });
  };
}

/**
 * {@link gracefulShutdown} for the server `serve()` of `@hono/node-server`
 * returns. Its type also allows HTTP/2 servers, which the kit cannot stop
 * connection by connection: those are refused with a TypeError.
 */
export function honoShutdown(server: NodeServer | Http2Server | Http2SecureServer, options: ShutdownOptions = {}): Shutdown {
  if (!(server instanceof HttpServer) && !(server instanceof HttpsServer)) {
    throw new TypeError(`usher/backend: honoShutdown needs the node:http or node:https server serve() returns (HTTP/2 servers are not supported), got ${describeValue(server)}`);
  }
  return gracefulShutdown(server, options);
}
