/**
 * An asynchronous user filter: checks the request's API key against a key
 * store (here a map behind a simulated network delay; in real life a cache,
 * a database or an HTTP call, given `request.signal` so a client that leaves
 * cancels it). The request waits, its body unread, until the promise settles.
 *
 *   filters:
 *     - module: ./filters/api-keys.ts
 *       options: { keys: { k-123: team-a }, delayMs: 5 }
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { defineFilter, z } from 'usher';

export default defineFilter({
  name: 'api-keys',
  options: z.strictObject({
    keys: z.record(z.string(), z.string()),
    delayMs: z.number().int().min(0).max(1000).default(5),
  }),
  timeoutMs: 2000,
  create({ keys, delayMs }) {
    const owners = new Map(Object.entries(keys));
    return {
      async onRequest(request) {
        const key = request.header('x-api-key');
        await sleep(delayMs, undefined, { signal: request.signal });
        const owner = key === undefined ? undefined : owners.get(key);
        if (owner === undefined) return { status: 401, headers: { 'www-authenticate': 'ApiKey' }, body: 'missing or unknown API key\n' };
        request.removeHeader('x-api-key'); // the backend gets the owner, never the secret
        request.setHeader('x-api-owner', owner);
        return undefined;
      },
    };
  },
});
