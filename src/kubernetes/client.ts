/**
 * A small Kubernetes API client over node:https: list (with paging), get,
 * watch (a chunked stream of JSON lines), create, replace, and the status
 * subresource (PUT, merge PATCH). Any {@link ResourceKind}; no code
 * generation, no dependency. Why not `@kubernetes/client-node`: see
 * docs/design.md, "Dependencies".
 *
 * Every request reads the credentials afresh (a token file is read again each
 * time, so a rotated service-account token is used by the next request), runs
 * over one keep-alive agent, and fails with a typed error
 * ({@link KubernetesApiError} for an answer, {@link KubernetesNetworkError}
 * for no answer). Retrying is the caller's business (reflector.ts).
 */
import { readFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { KubeConnection } from './connection.ts';
import { KubernetesApiError, KubernetesNetworkError, type ApiCall } from './errors.ts';
import { resourcePath, type ResourceKind } from './resources.ts';
import type { KubeList, KubeObject, Status, WatchEvent } from './types.ts';

/** Longest response body or watch event usher reads: list pages are paged (`limit`), objects are at most ~1.5 MiB in etcd. */
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

export interface ListOptions {
  /** Absent for a namespaced kind: every namespace. */
  readonly namespace?: string | undefined;
  readonly labelSelector?: string | undefined;
  readonly fieldSelector?: string | undefined;
  /** Page size; the server may return fewer and a `continue` token. */
  readonly limit?: number | undefined;
  readonly continue?: string | undefined;
  readonly resourceVersion?: string | undefined;
  readonly resourceVersionMatch?: 'Exact' | 'NotOlderThan' | undefined;
}

export interface WatchOptions {
  readonly namespace?: string | undefined;
  readonly labelSelector?: string | undefined;
  readonly fieldSelector?: string | undefined;
  /** Events after this version (a list's, or the last event's or bookmark's). */
  readonly resourceVersion: string;
  /** Ask for BOOKMARK events, which move the version on while nothing the selector sees changes. Default true. */
  readonly allowWatchBookmarks?: boolean | undefined;
  /** The server ends the stream after this long (a normal end: watch again from the last version). */
  readonly timeoutSeconds?: number | undefined;
}

export interface WatchControl {
  readonly signal?: AbortSignal | undefined;
  /** No bytes for this long (not even a bookmark) means the stream stalled: it fails with a network error. */
  readonly idleTimeoutMs?: number | undefined;
}

export interface ClientOptions {
  /** Sent as User-Agent. */
  readonly userAgent?: string;
  /** Longest a non-watch request may take. Default 30 s. */
  readonly requestTimeoutMs?: number;
}

type PatchType = 'merge' | 'json';
const PATCH_CONTENT_TYPES: Readonly<Record<PatchType, string>> = { merge: 'application/merge-patch+json', json: 'application/json-patch+json' };

/** Largest error body read; Status objects are small. */
const MAX_ERROR_BODY = 64 * 1024;

export class KubeClient {
  readonly connection: KubeConnection;
  readonly #agent: HttpsAgent | HttpAgent;
  readonly #https: boolean;
  readonly #userAgent: string;
  readonly #timeoutMs: number;
  readonly #open = new Set<ClientRequest>();

  constructor(connection: KubeConnection, options: ClientOptions = {}) {
    this.connection = connection;
    this.#https = connection.server.protocol === 'https:';
    this.#userAgent = options.userAgent ?? 'usher';
    this.#timeoutMs = options.requestTimeoutMs ?? 30_000;
    const credentials = connection.credentials;
    this.#agent = this.#https
      ? new HttpsAgent({
          keepAlive: true,
          ca: connection.ca,
          rejectUnauthorized: !connection.insecureSkipTlsVerify,
          ...(connection.tlsServerName === undefined ? {} : { servername: connection.tlsServerName }),
          ...(credentials.kind === 'clientCertificate' ? { cert: credentials.cert, key: credentials.key } : {}),
        })
      : new HttpAgent({ keepAlive: true });
  }

  /** One page of a collection (all of it when the server does not page). */
  async list<T extends KubeObject>(kind: ResourceKind, options: ListOptions = {}, signal?: AbortSignal): Promise<KubeList<T>> {
    const query = selectors(options);
    if (options.limit !== undefined) query.set('limit', String(options.limit));
    if (options.continue !== undefined) query.set('continue', options.continue);
    if (options.resourceVersion !== undefined) query.set('resourceVersion', options.resourceVersion);
    if (options.resourceVersionMatch !== undefined) query.set('resourceVersionMatch', options.resourceVersionMatch);
    const call = { verb: 'list', kind, namespace: options.namespace };
    return (await this.#json(call, 'GET', resourcePath(kind, options.namespace), query, undefined, undefined, signal)) as KubeList<T>;
  }

  /** Every page of a collection, and the version of the first page (a consistent snapshot when the server pages from one). */
  async listAll<T extends KubeObject>(kind: ResourceKind, options: Omit<ListOptions, 'continue'> = {}, signal?: AbortSignal): Promise<{ items: T[]; resourceVersion: string; pages: number }> {
    const items: T[] = [];
    let token: string | undefined;
    let resourceVersion = '';
    let pages = 0;
    do {
      const page = await this.list<T>(kind, { ...options, continue: token }, signal);
      pages++;
      if (pages === 1) resourceVersion = page.metadata?.resourceVersion ?? '';
      for (const item of page.items ?? []) items.push(item);
      token = page.metadata?.continue || undefined;
    } while (token !== undefined);
    return { items, resourceVersion, pages };
  }

  async get<T extends KubeObject>(kind: ResourceKind, namespace: string | undefined, name: string, signal?: AbortSignal): Promise<T> {
    return (await this.#json({ verb: 'get', kind, namespace, name }, 'GET', resourcePath(kind, namespace, name), new URLSearchParams(), undefined, undefined, signal)) as T;
  }

  async create<T extends KubeObject>(kind: ResourceKind, object: T, signal?: AbortSignal): Promise<T> {
    const namespace = object.metadata?.namespace;
    return (await this.#json({ verb: 'create', kind, namespace }, 'POST', resourcePath(kind, namespace), new URLSearchParams(), JSON.stringify(object), 'application/json', signal)) as T;
  }

  /** PUT: fails with 409 ({@link KubernetesApiError.conflict}) when `metadata.resourceVersion` is not the current one. */
  async replace<T extends KubeObject>(kind: ResourceKind, object: T, signal?: AbortSignal): Promise<T> {
    const { namespace, name } = identity(kind, object);
    return (await this.#json({ verb: 'update', kind, namespace, name }, 'PUT', resourcePath(kind, namespace, name), new URLSearchParams(), JSON.stringify(object), 'application/json', signal)) as T;
  }

  /** PUT to `/status`: only the status changes; 409 on a stale `metadata.resourceVersion`. */
  async replaceStatus<T extends KubeObject>(kind: ResourceKind, object: T, signal?: AbortSignal): Promise<T> {
    const { namespace, name } = identity(kind, object);
    const call = { verb: 'update', kind, namespace, name, subresource: 'status' };
    return (await this.#json(call, 'PUT', resourcePath(kind, namespace, name, 'status'), new URLSearchParams(), JSON.stringify(object), 'application/json', signal)) as T;
  }

  /** PATCH to `/status` (a JSON merge patch by default; one carrying `metadata.resourceVersion` fails with 409 when stale). */
  async patchStatus<T extends KubeObject>(kind: ResourceKind, namespace: string | undefined, name: string, patch: unknown, type: PatchType = 'merge', signal?: AbortSignal): Promise<T> {
    const call = { verb: 'patch', kind, namespace, name, subresource: 'status' };
    return (await this.#json(call, 'PATCH', resourcePath(kind, namespace, name, 'status'), new URLSearchParams(), JSON.stringify(patch), PATCH_CONTENT_TYPES[type], signal)) as T;
  }

  async delete(kind: ResourceKind, namespace: string | undefined, name: string, signal?: AbortSignal): Promise<void> {
    await this.#json({ verb: 'delete', kind, namespace, name }, 'DELETE', resourcePath(kind, namespace, name), new URLSearchParams(), undefined, undefined, signal);
  }

  /**
   * Watches from `options.resourceVersion`, calling `onEvent` for each event
   * in order (ERROR events included: the caller decides). Resolves when the
   * server ends the stream normally (`timeoutSeconds`); rejects with a
   * {@link KubernetesApiError} when the server refuses the watch (410 for a
   * compacted version, 401, 403) and with a {@link KubernetesNetworkError}
   * when the stream breaks or stalls. An abort resolves quietly.
   */
  watch<T extends KubeObject>(kind: ResourceKind, options: WatchOptions, onEvent: (event: WatchEvent<T>) => void, control: WatchControl = {}): Promise<void> {
    const query = selectors(options);
    query.set('watch', 'true');
    query.set('resourceVersion', options.resourceVersion);
    if (options.allowWatchBookmarks !== false) query.set('allowWatchBookmarks', 'true');
    if (options.timeoutSeconds !== undefined) query.set('timeoutSeconds', String(options.timeoutSeconds));
    const call: ApiCall = { verb: 'watch', kind, namespace: options.namespace };
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      let idle: NodeJS.Timeout | undefined;
      const finish = (error?: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(idle);
        control.signal?.removeEventListener('abort', onAbort);
        if (error === undefined) resolve();
        else reject(error);
      };
      const onAbort = (): void => {
        finish();
        req.destroy();
      };
      const armIdle = (): void => {
        if (control.idleTimeoutMs === undefined) return;
        clearTimeout(idle);
        idle = setTimeout(() => {
          finish(new KubernetesNetworkError(call, this.#server(), new Error(`no data for ${control.idleTimeoutMs} ms`), 'the watch stream stalled'));
          req.destroy();
        }, control.idleTimeoutMs);
        idle.unref?.();
      };
      const req = this.#send(call, 'GET', resourcePath(kind, options.namespace), query, undefined, undefined, (res) => {
        if (res.statusCode !== 200) {
          void readError(res).then((body) => finish(apiError(call, res, body)), (err: unknown) => finish(new KubernetesNetworkError(call, this.#server(), err)));
          return;
        }
        armIdle();
        res.setEncoding('utf8');
        let buffered = '';
        res.on('data', (chunk: string) => {
          if (settled) return;
          armIdle();
          buffered += chunk;
          let newline = buffered.indexOf('\n');
          while (newline !== -1) {
            const line = buffered.slice(0, newline).trim();
            buffered = buffered.slice(newline + 1);
            newline = buffered.indexOf('\n');
            if (line === '') continue;
            let event: WatchEvent<T>;
            try {
              event = JSON.parse(line) as WatchEvent<T>;
            } catch {
              finish(new KubernetesNetworkError(call, this.#server(), new Error(`a watch event is not JSON: ${line.slice(0, 80)}`), 'the watch stream broke'));
              req.destroy();
              return;
            }
            try {
              onEvent(event);
            } catch (error) {
              finish(error as Error);
              req.destroy();
              return;
            }
            if (settled) return;
          }
          // A watch event is one object (etcd caps objects at ~1.5 MiB): a longer line is not the API server talking.
          if (buffered.length > MAX_RESPONSE_BYTES) {
            finish(new KubernetesNetworkError(call, this.#server(), new Error(`a watch event is longer than ${MAX_RESPONSE_BYTES} bytes`), 'the watch stream broke'));
            req.destroy();
          }
        });
        res.on('end', () => finish());
        res.on('close', () => {
          if (!res.complete) finish(new KubernetesNetworkError(call, this.#server(), new Error('the server closed the stream mid-way'), 'the watch stream was cut'));
        });
        res.on('error', (err) => finish(new KubernetesNetworkError(call, this.#server(), err, 'the watch stream was cut')));
      });
      req.on('error', (err) => finish(err instanceof KubernetesNetworkError ? err : new KubernetesNetworkError(call, this.#server(), err)));
      // Until the first byte the request timeout applies; then only the idle one.
      req.setTimeout(this.#timeoutMs, () => {
        if (settled) return;
        finish(new KubernetesNetworkError(call, this.#server(), Object.assign(new Error('no answer'), { code: 'ETIMEDOUT' })));
        req.destroy();
      });
      req.on('response', () => req.setTimeout(0));
      if (control.signal?.aborted === true) onAbort();
      else control.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Ends every request in flight and the kept-alive connections. */
  close(): void {
    for (const req of this.#open) req.destroy();
    this.#open.clear();
    this.#agent.destroy();
  }

  #server(): string {
    return this.connection.server.origin;
  }

  async #json(call: ApiCall, method: string, path: string, query: URLSearchParams, body: string | undefined, contentType: string | undefined, signal: AbortSignal | undefined): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => {
      let settled = false;
      const finish = (error: Error | undefined, value?: unknown): void => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        if (error === undefined) resolve(value);
        else reject(error);
      };
      const onAbort = (): void => {
        finish(Object.assign(new Error('aborted'), { name: 'AbortError' }));
        req.destroy();
      };
      const req = this.#send(call, method, path, query, body, contentType, (res) => {
        const status = res.statusCode ?? 0;
        if (status < 200 || status > 299) {
          void readError(res).then((parsed) => finish(apiError(call, res, parsed)), (err: unknown) => finish(new KubernetesNetworkError(call, this.#server(), err)));
          return;
        }
        const chunks: Buffer[] = [];
        let bytes = 0;
        res.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          if (bytes > MAX_RESPONSE_BYTES) {
            finish(new KubernetesNetworkError(call, this.#server(), new Error(`the response is longer than ${MAX_RESPONSE_BYTES} bytes`), 'a response was refused'));
            req.destroy();
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          try {
            finish(undefined, text === '' ? undefined : JSON.parse(text));
          } catch {
            finish(new KubernetesNetworkError(call, this.#server(), new Error(`the answer is not JSON (${res.headers['content-type'] ?? 'no content-type'})`), 'unexpected answer from the Kubernetes API server'));
          }
        });
        res.on('error', (err) => finish(new KubernetesNetworkError(call, this.#server(), err)));
        res.on('close', () => {
          if (!res.complete) finish(new KubernetesNetworkError(call, this.#server(), new Error('the answer was cut'), 'the connection broke'));
        });
      });
      req.on('error', (err) => finish(err instanceof KubernetesNetworkError ? err : new KubernetesNetworkError(call, this.#server(), err)));
      req.setTimeout(this.#timeoutMs, () => {
        finish(new KubernetesNetworkError(call, this.#server(), Object.assign(new Error('no answer'), { code: 'ETIMEDOUT' })));
        req.destroy();
      });
      if (signal?.aborted === true) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Starts a request with fresh credentials; errors reading a token file surface as the request's error. */
  #send(call: ApiCall, method: string, path: string, query: URLSearchParams, body: string | undefined, contentType: string | undefined, onResponse: (res: IncomingMessage) => void): ClientRequest {
    const server = this.connection.server;
    const headers: OutgoingHttpHeaders = { accept: 'application/json', 'user-agent': this.#userAgent };
    let tokenError: Error | undefined;
    try {
      const token = this.#token();
      if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
    } catch (error) {
      tokenError = error as Error;
    }
    if (body !== undefined) {
      headers['content-type'] = contentType ?? 'application/json';
      headers['content-length'] = Buffer.byteLength(body);
    }
    const prefix = server.pathname.endsWith('/') ? server.pathname.slice(0, -1) : server.pathname;
    const search = query.toString();
    const send = this.#https ? httpsRequest : httpRequest;
    const req = send({
      agent: this.#agent,
      protocol: server.protocol,
      hostname: server.hostname.startsWith('[') ? server.hostname.slice(1, -1) : server.hostname,
      port: server.port === '' ? (this.#https ? 443 : 80) : Number(server.port),
      method,
      path: `${prefix}${path}${search === '' ? '' : `?${search}`}`,
      headers,
    });
    this.#open.add(req);
    req.on('close', () => this.#open.delete(req));
    req.on('response', onResponse);
    if (tokenError !== undefined) {
      process.nextTick(() => req.destroy(new KubernetesNetworkError(call, server.origin, tokenError, 'cannot read the token')));
      return req;
    }
    req.end(body);
    return req;
  }

  /** The bearer token for the next request; a token file is read each time (it rotates). */
  #token(): string | undefined {
    const credentials = this.connection.credentials;
    if (credentials.kind === 'token') return credentials.token;
    if (credentials.kind === 'tokenFile') return readFileSync(credentials.path, 'utf8').trim();
    return undefined;
  }
}

function selectors(options: { readonly labelSelector?: string | undefined; readonly fieldSelector?: string | undefined }): URLSearchParams {
  const query = new URLSearchParams();
  if (options.labelSelector !== undefined && options.labelSelector !== '') query.set('labelSelector', options.labelSelector);
  if (options.fieldSelector !== undefined && options.fieldSelector !== '') query.set('fieldSelector', options.fieldSelector);
  return query;
}

function identity(kind: ResourceKind, object: KubeObject): { namespace: string | undefined; name: string } {
  const name = object.metadata?.name;
  if (name === undefined) throw new Error(`${kind.kind}: the object has no metadata.name`);
  return { namespace: kind.namespaced ? object.metadata?.namespace : undefined, name };
}

async function readError(res: IncomingMessage): Promise<Status | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res) {
    size += (chunk as Buffer).length;
    if (size <= MAX_ERROR_BODY) chunks.push(chunk as Buffer);
  }
  try {
    const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Status;
    return typeof parsed === 'object' && parsed !== null ? parsed : undefined;
  } catch {
    return undefined;
  }
}

function apiError(call: ApiCall, res: IncomingMessage, body: Status | undefined): KubernetesApiError {
  const retryAfter = Number(res.headers['retry-after']);
  return new KubernetesApiError(call, res.statusCode ?? 0, body, Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined);
}
