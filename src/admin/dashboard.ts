import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AdminTarget } from './api.ts';

/**
 * The live dashboard: static assets served without a token (they hold no
 * data; the page asks for the token and sends it with every API call), and
 * the event stream the page reads.
 */

/** A static dashboard asset for `path` (`/`, `/assets/...`), or undefined. */
export function dashboardAsset(_path: string): { readonly contentType: string; readonly body: Buffer } | undefined {
  return undefined; // TODO(dashboard): assets bundled into dist/ at build time
}

/** Streams pool and backend state as server-sent events until the client leaves. */
export function streamEvents(_req: IncomingMessage, res: ServerResponse, _target: AdminTarget): void {
  res.writeHead(501, { 'content-type': 'text/plain' }).end('not implemented yet');
}
