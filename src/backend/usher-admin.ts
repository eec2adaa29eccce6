import { setTimeout as sleep } from 'node:timers/promises';
import { safeLog, type Logger } from './logger.ts';
import { count, describeValue, milliseconds } from './options.ts';

/**
 * Direct drain: the service tells usher's admin API itself that it is leaving
 * (`POST …/drain` on shutdown) and back (`POST …/enable` once listening),
 * instead of waiting for usher's health checks to notice.
 */
export interface UsherDrainOptions {
  /** usher's admin API base URL, e.g. `http://10.0.0.2:9090` (the config's `admin.bind`). */
  readonly admin: string;
  /** The admin token (`admin.token`), sent as `Authorization: Bearer`; omit when usher has none. */
  readonly token?: string;
  /** The pool this service is a backend of. */
  readonly pool: string;
  /** This service's address exactly as usher's config lists it, `host:port` (e.g. `10.0.0.5:3000`). */
  readonly backend: string;
  /** Timeout of each admin request in ms (default 1000). */
  readonly requestTimeoutMs?: number;
  /**
   * After a successful drain, how long in ms to keep serving before closing
   * (default 500): requests usher had already sent are still arriving.
   */
  readonly settleDelayMs?: number;
  /** Enable this backend once the server listens (default true). */
  readonly enableOnStart?: boolean;
  /** Tries of the enable call when usher cannot be reached or answers 5xx (default 6). */
  readonly enableAttempts?: number;
  /** First wait between enable tries in ms, doubled after each (default 250; 250+500+1000+2000+4000 ≈ 8 s in all). */
  readonly retryDelayMs?: number;
}

/** Default timeout of one admin request: the drain must not eat much of the shutdown. */
export const DEFAULT_ADMIN_TIMEOUT_MS = 1000;
/** Default settle delay after a drain: usher stops picking the backend at once; 500 ms covers requests already on their way. */
export const DEFAULT_SETTLE_DELAY_MS = 500;

const MAX_RETRY_DELAY_MS = 4000;

type CallResult = { readonly ok: true; readonly adminState: string | undefined } | { readonly ok: false; readonly retry: boolean; readonly message: string };

/** A tiny client for the two admin calls the kit needs. Never throws: failures are logged and reported as `false`. */
export class UsherAdmin {
  readonly #base: string;
  readonly #token: string | undefined;
  readonly #pool: string;
  readonly #backend: string;
  readonly #timeoutMs: number;
  readonly #attempts: number;
  readonly #retryDelayMs: number;
  readonly #logger: Logger;
  /** Settle delay after a successful drain, in ms. */
  readonly settleDelayMs: number;
  /** Whether to enable the backend once the server listens. */
  readonly enableOnStart: boolean;

  constructor(options: UsherDrainOptions, logger: Logger) {
    if (options === null || typeof options !== 'object') throw new TypeError(`usher/backend: usher must be { admin, pool, backend, token? }, got ${describeValue(options)}`);
    let url: URL;
    try {
      url = new URL(options.admin);
    } catch {
      throw new TypeError(`usher/backend: usher.admin must be the admin API's URL like "http://127.0.0.1:9090", got ${describeValue(options.admin)}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`usher/backend: usher.admin must be an http(s) URL, got ${describeValue(options.admin)}`);
    for (const key of ['pool', 'backend'] as const) {
      if (typeof options[key] !== 'string' || options[key] === '') throw new TypeError(`usher/backend: usher.${key} is required, got ${describeValue(options[key])}`);
    }
    if (!/^(\[[0-9a-fA-F:.]+\]|[^:\s/]+):\d{1,5}$/.test(options.backend)) {
      throw new TypeError(`usher/backend: usher.backend must be "host:port" as usher's config lists it, got ${describeValue(options.backend)}`);
    }
    if (options.token !== undefined && typeof options.token !== 'string') throw new TypeError('usher/backend: usher.token must be a string');
    this.#base = url.href.replace(/\/+$/, '');
    this.#token = options.token === '' ? undefined : options.token;
    this.#pool = options.pool;
    this.#backend = options.backend;
    this.#timeoutMs = milliseconds('usher.requestTimeoutMs', options.requestTimeoutMs, DEFAULT_ADMIN_TIMEOUT_MS, 1);
    this.settleDelayMs = milliseconds('usher.settleDelayMs', options.settleDelayMs, DEFAULT_SETTLE_DELAY_MS);
    this.enableOnStart = options.enableOnStart ?? true;
    this.#attempts = count('usher.enableAttempts', options.enableAttempts, 6);
    this.#retryDelayMs = milliseconds('usher.retryDelayMs', options.retryDelayMs, 250);
    this.#logger = logger;
  }

  /** `pool/backend` for log lines. */
  get label(): string {
    return `backend ${this.#backend} of pool ${this.#pool} at ${this.#base}`;
  }

  /** Takes this backend out of rotation (state `draining`); one try, it is the shutdown's critical path. */
  async drain(): Promise<boolean> {
    const result = await this.#call('POST', 'drain');
    if (result.ok) safeLog(this.#logger, 'info', `usher drained ${this.label}`);
    else safeLog(this.#logger, 'warn', `could not drain ${this.label} through usher's admin API: ${result.message}`);
    return result.ok;
  }

  /**
   * Puts this backend back in rotation (state `enabled`), retrying with
   * backoff while usher is unreachable or answers 5xx. A backend an operator
   * set `disabled` is left alone: that state means "out of service" in usher,
   * and a restart should not override it.
   */
  async enable(signal: AbortSignal): Promise<boolean> {
    let delay = this.#retryDelayMs;
    for (let attempt = 1; attempt <= this.#attempts; attempt++) {
      if (signal.aborted) return false;
      const current = await this.#call('GET', undefined);
      let result: CallResult = current;
      if (current.ok && current.adminState === 'disabled') {
        safeLog(this.#logger, 'warn', `${this.label} is disabled in usher (an operator's choice): not enabling it`);
        return false;
      }
      if (current.ok) result = await this.#call('POST', 'enable');
      if (result.ok) {
        safeLog(this.#logger, 'info', `usher enabled ${this.label}`);
        return true;
      }
      if (!result.retry || attempt === this.#attempts) {
        safeLog(this.#logger, 'error', `could not enable ${this.label} through usher's admin API: ${result.message}${result.retry ? ` (gave up after ${attempt} tries)` : ''}`);
        return false;
      }
      safeLog(this.#logger, 'warn', `could not enable ${this.label} yet (${result.message}); retrying in ${delay} ms`);
      try {
        await sleep(delay, undefined, { signal });
      } catch {
        return false; // the shutdown started: enabling is moot
      }
      delay = Math.min(delay * 2, MAX_RETRY_DELAY_MS);
    }
    return false;
  }

  async #call(method: 'GET' | 'POST', action: 'drain' | 'enable' | undefined): Promise<CallResult> {
    const path = `/api/pools/${encodeURIComponent(this.#pool)}/backends/${encodeURIComponent(this.#backend)}${action === undefined ? '' : `/${action}`}`;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.#token !== undefined) headers['authorization'] = `Bearer ${this.#token}`;
    let res: Response;
    let text: string;
    try {
      res = await fetch(`${this.#base}${path}`, { method, headers, signal: AbortSignal.timeout(this.#timeoutMs) });
      text = await res.text();
    } catch (err) {
      if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) {
        return { ok: false, retry: true, message: `${method} ${path}: no answer within ${this.#timeoutMs} ms` };
      }
      const reason = networkError(err);
      if (reason === 'bad port') {
        // The Fetch standard blocks some ports (6000, 6665-6669, 10080, most below 1024…) before connecting: retrying cannot help.
        return { ok: false, retry: false, message: `${method} ${path}: fetch refuses to connect to port ${new URL(this.#base).port} (a port blocked by the Fetch standard); give usher's admin API another port` };
      }
      return { ok: false, retry: true, message: `${method} ${path}: ${reason}` };
    }
    const body = parseJson(text);
    if (res.ok) {
      const state = body !== null && typeof body === 'object' && 'adminState' in body ? body.adminState : undefined;
      return { ok: true, adminState: typeof state === 'string' ? state : undefined };
    }
    // usher's errors are {"error":{"code","message"}}; the message says what to fix (token, pool, backend).
    const error = body !== null && typeof body === 'object' && 'error' in body ? body.error : undefined;
    const message = error !== null && typeof error === 'object' && 'message' in error && typeof error.message === 'string' ? error.message : text.slice(0, 200);
    return { ok: false, retry: res.status >= 500 || res.status === 429, message: `${method} ${path}: HTTP ${res.status}: ${message}` };
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}

/** fetch hides the network error in `cause` ("fetch failed"); the cause says "ECONNREFUSED 127.0.0.1:9090". */
function networkError(err: unknown): string {
  if (!(err instanceof Error)) return describeValue(err);
  const cause: unknown = err.cause;
  if (cause instanceof AggregateError && cause.errors.length > 0) {
    return cause.errors.map((inner: unknown) => (inner instanceof Error ? inner.message : describeValue(inner))).join('; ');
  }
  if (cause instanceof Error && cause.message !== '') return cause.message;
  return err.message;
}
