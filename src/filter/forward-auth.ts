/**
 * `forwardAuth` (Traefik forwardAuth, nginx `auth_request`, Envoy ext_authz
 * over HTTP): before proxying, ask an auth service about the request.
 *
 * The auth service gets a `GET` of its own URL with the request described in
 * `X-Forwarded-Method`, `-Proto`, `-Host`, `-Uri` and `-For` (and the
 * request's `X-Request-Id`), plus the request's own fields named in
 * `requestHeaders` (`authorization`, `cookie`...); never the request body.
 *
 * - 2xx: the request continues. Each field named in `copyHeaders` is taken
 *   from the answer into the upstream request; a client's own copy is always
 *   removed first, so a client cannot forge `x-user-id` when the auth service
 *   leaves it out.
 * - any other status: the client gets the auth service's answer (status,
 *   fields minus framing and hop-by-hop ones, body up to
 *   `maxResponseBytes`): a 401 with `WWW-Authenticate`, a 302 to a login page.
 * - no answer (refused, reset, slower than `timeout`, a body over the bound):
 *   503 `auth_unavailable`, or 401 `unauthorized` with `onError: 401`
 *   (fail closed either way, as Traefik and nginx do). Logged at most once a
 *   second per filter, with the number of such failures.
 *
 * Connections to the auth service are kept alive (a node:http Agent per
 * filter: no dependency, and its pooling is enough for one small GET per
 * request). The client leaving aborts the call.
 */
import { Agent, request as httpRequest, type IncomingMessage } from 'node:http';
import type { ForwardAuthFilterConfig } from '../config/types.ts';
import { UsherError } from '../errors.ts';
import type { Logger } from '../observe/logger.ts';
import type { InternalFilter, InternalVerdict } from './chain.ts';
import { headerNameProblem } from './edits.ts';
import type { FilterRequest } from './filter.ts';

/** What a forwardAuth filter needs besides its config. */
export interface ForwardAuthContext {
  readonly logger: Logger;
  readonly listener: string;
  readonly route: string;
}

/** The `forwardAuth` filter of one route. */
export function forwardAuthFilter(config: ForwardAuthFilterConfig, context: ForwardAuthContext): InternalFilter {
  const url = new URL(config.url);
  const agent = new Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 32 });
  const path = `${url.pathname}${url.search}`;
  const copy = config.copyHeaders.map((name) => name.toLowerCase());
  const forward = config.requestHeaders.map((name) => name.toLowerCase());
  const failures = new FailureLog(context, config.url);
  const failed = (why: string): UsherError => {
    failures.note(why);
    return config.onError === 401
      ? new UsherError('USHER_AUTH_UNAUTHORIZED', `auth service ${config.url}: ${why}`)
      : new UsherError('USHER_AUTH_UNAVAILABLE', `auth service ${config.url}: ${why}`);
  };

  return Object.freeze({
    name: 'forwardAuth',
    onRequest(request: FilterRequest): Promise<InternalVerdict> {
      const headers: Record<string, string | string[]> = {
        host: url.host,
        'x-forwarded-method': request.method,
        'x-forwarded-proto': request.scheme,
        'x-forwarded-uri': request.target,
        'x-forwarded-for': request.clientIp,
        'x-request-id': request.requestId,
      };
      if (request.host !== undefined) headers['x-forwarded-host'] = request.host;
      for (const name of forward) {
        const values = request.headerValues(name);
        if (values.length > 0) headers[name] = values.length === 1 ? values[0]! : [...values];
      }
      return new Promise<InternalVerdict>((resolve) => {
        let settled = false;
        const signal = request.signal;
        const finish = (verdict: InternalVerdict): void => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          signal.removeEventListener('abort', onAbort);
          resolve(verdict);
        };
        const call = httpRequest({ host: url.hostname, port: url.port === '' ? 80 : Number(url.port), path, method: 'GET', headers, agent }, (response) => {
          const status = response.statusCode ?? 0;
          if (status >= 200 && status < 300) {
            response.on('error', ignore); // a reset after the answer changes nothing, and must not reach the process
            response.resume(); // drained, so the connection is reused
            for (const name of copy) copyHeader(request, name, response.headers[name]);
            finish(undefined);
            return;
          }
          readBounded(response, config.maxResponseBytes, (body) => {
            if (body === undefined) {
              call.destroy();
              finish(failed(`answer body over ${config.maxResponseBytes} bytes`));
            } else finish({ status: status < 200 || status > 599 ? 502 : status, headers: passedHeaders(response.rawHeaders), body });
          });
        });
        const timer = setTimeout(() => {
          call.destroy();
          finish(failed(`no answer within ${config.timeoutMs} ms`));
        }, config.timeoutMs);
        const onAbort = (): void => {
          call.destroy();
          finish(undefined); // the run discards the outcome of a request whose client left
        };
        signal.addEventListener('abort', onAbort, { once: true });
        call.on('error', (error: Error) => finish(failed(error.message)));
        call.end();
      });
    },
  });
}

function ignore(): void {}

/** A field the auth service decides: its value(s) replace the client's, and its absence removes the client's. */
function copyHeader(request: FilterRequest, name: string, value: string | string[] | undefined): void {
  if (value === undefined) {
    request.removeHeader(name);
    return;
  }
  const values = typeof value === 'string' ? [value] : value;
  request.setHeader(name, values[0]!);
  for (let i = 1; i < values.length; i++) request.addHeader(name, values[i]!);
}

/** The auth service's fields a client may get: framing, hop-by-hop and usher's own ones are dropped. */
function passedHeaders(raw: readonly string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (headerNameProblem(name, 'response') !== undefined) continue;
    (out[name.toLowerCase()] ??= []).push(raw[i + 1]!);
  }
  return out;
}

/** Reads a body of at most `max` bytes; `done(undefined)` when it is longer (or the stream fails). */
function readBounded(response: IncomingMessage, max: number, done: (body: Buffer | undefined) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let over = false;
  response.on('data', (chunk: Buffer) => {
    if (over) return;
    size += chunk.length;
    if (size > max) {
      over = true;
      done(undefined);
      return;
    }
    chunks.push(chunk);
  });
  response.on('end', () => {
    if (!over) done(Buffer.concat(chunks));
  });
  response.on('error', () => {
    if (!over) done(undefined);
  });
}

/** At most one log line a second per filter when the auth service cannot be asked, with the count since the last one. */
class FailureLog {
  readonly #context: ForwardAuthContext;
  readonly #url: string;
  #count = 0;
  #loggedAt = -Infinity;

  constructor(context: ForwardAuthContext, url: string) {
    this.#context = context;
    this.#url = url;
  }

  note(why: string): void {
    this.#count++;
    const now = performance.now();
    if (now - this.#loggedAt < 1000) return;
    this.#loggedAt = now;
    const { logger, listener, route } = this.#context;
    logger.warn({ listener, route, filter: 'forwardAuth', url: this.#url, failures: this.#count, reason: why }, 'auth service unavailable; requests refused');
    this.#count = 0;
  }
}
