import { createHmac, randomBytes } from 'node:crypto';
import type { StickyConfig } from '../config/types.ts';

/**
 * Cookie-based session affinity.
 *
 * The cookie names a backend opaquely: its value is an HMAC of the pool and the
 * backend address, so a client can neither read the address nor forge a value
 * that reaches a backend it was never given. Tokens are computed once per
 * backend at config time; a request only does a map lookup.
 *
 * When the pinned backend is unavailable the request is balanced as if it had
 * no cookie and the cookie is re-set (nginx "as if not bound", HAProxy
 * `redispatch`), so a dead backend never holds its clients hostage.
 */

/** One key per process when the config gives none: stable across reloads, not across restarts. */
const processKey = randomBytes(32);

export class StickyCookie {
  readonly name: string;
  readonly #key: Buffer | string;
  readonly #attributes: string;

  constructor(config: StickyConfig) {
    this.name = config.cookie;
    this.#key = config.secret ?? processKey;
    const maxAge = Math.floor(config.ttlMs / 1000);
    this.#attributes = `; Path=/; Max-Age=${maxAge}; HttpOnly; SameSite=Lax`;
  }

  /** The opaque value that pins a client to `backendKey` in `poolName`. */
  token(poolName: string, backendKey: string): string {
    return createHmac('sha256', this.#key).update(poolName).update('\0').update(backendKey).digest('base64url').slice(0, 22);
  }

  /** The `Set-Cookie` value pinning a client to the backend with `token`. */
  setCookie(token: string): string {
    return `${this.name}=${token}${this.#attributes}`;
  }
}
