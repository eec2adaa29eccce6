import { parseHostPort } from '../config/hostport.ts';
import { NAME_PATTERN } from '../config/values.ts';
import { formatHostPort } from '../config/hostport.ts';
import type { AddressInfo } from 'node:net';
import type { AdminState } from '../config/types.ts';
import type { BackendControl } from '../pool/backend-control.ts';
import type { Pool } from '../pool/pool.ts';
import type { ReloadResult } from '../runtime/usher.ts';
import type { Snapshot } from '../runtime/snapshot.ts';
import type { WorkerView } from '../workers/group.ts';
import { primaryKey } from '../cache/key.ts';
import type { CachePurge, CacheStats } from '../cache/report.ts';
import type { RateLimitReport, TopKeysReport } from '../ratelimit/report.ts';
import type { ShareResult } from '../peers/bus.ts';
import type { PeersView } from '../peers/peers.ts';
import { backendView, listenerView, poolView, type ListenerView } from './views.ts';

/** What the admin API drives: the running usher. */
export interface AdminTarget {
  readonly snapshot: Snapshot;
  reload(): Promise<ReloadResult>;
  /** The bound address of a listener; throws when it is not bound. */
  address?(listener: string): AddressInfo;
  /** Resolves once every data plane applied the changes made so far (worker threads); a change is answered only then. */
  settled?(): Promise<void>;
  /** The data-plane worker threads; absent or empty when the main thread serves. */
  readonly workers?: readonly WorkerView[];
  /** Brings the data planes' numbers up to date (worker threads report them each second): the admin API's answers are as of the request. */
  refresh?(): Promise<void>;
  /** A planned restart of one worker thread: its sockets pass to the next thread, no connection is lost. */
  restartWorker?(index: number): Promise<void>;
  /** Every rate-limit policy with its counters (one budget per process: the tables are shared by the threads). */
  rateLimitReports?(): readonly RateLimitReport[];
  /** Forgets what `policy` counted for `key`: undefined when there is no such policy, false when the key had no state. */
  resetRateLimit?(policy: string, key: string): boolean | undefined;
  /** The most limited, then busiest keys of `policy` (at most 20); undefined when there is no such policy. */
  rateLimitTopKeys?(policy: string): TopKeysReport | undefined;
  /** The response cache's numbers as last reported, without asking the workers; undefined when no route caches. */
  cacheStats?(): CacheStats | undefined;
  /** The response cache over every thread, after a purge if given. */
  cache?(purge?: CachePurge): Promise<{ purged: number; stats: CacheStats }>;
  /** The instances sharing this usher's Redis (`GET /api/peers`); undefined without a `redis` section. */
  peersView?(): PeersView | undefined;
  /** Sends a purge body (as validated here) to every peer; undefined without a `redis` section. */
  sharePurge?(body: Readonly<Record<string, unknown>>): Promise<ShareResult> | undefined;
  /** Sends a backend's new operator state to every peer (with `shareAdminActions`); undefined without a `redis` section. */
  shareBackendState?(pool: string, backend: string, state: AdminState): Promise<ShareResult> | undefined;
  /** Whether usher should get traffic (`GET /readyz`); absent: always ready. */
  readiness?(): { readonly ready: boolean; readonly reasons: readonly string[] };
}

/** A worker thread as the admin API shows it. */
export interface WorkerAdminView {
  readonly index: number;
  readonly state: WorkerView['state'];
  readonly restarts: number;
  /** Client connections open now. */
  readonly connections: number;
  /** HTTP requests answered and L4 connections ended so far (a counter, carried over restarts). */
  readonly requests: number;
  /** `requests` per second between the worker's last two usage reports (one a second). */
  readonly requestsPerSecond: number;
  /** Thread CPU time over wall time between the last two usage reports, in % of one core. */
  readonly cpuPercent: number;
}

/** An admin API answer: status and a JSON body. */
export interface AdminReply {
  readonly status: number;
  readonly body: unknown;
}

/** An admin request usher refuses, with a stable code and a message an operator can act on. */
export class AdminError extends Error {
  readonly status: number;
  readonly code: string;
  /** Extra response headers (e.g. `allow` on 405). */
  readonly headers: Readonly<Record<string, string>>;

  constructor(status: number, code: string, message: string, headers: Readonly<Record<string, string>> = {}) {
    super(message);
    this.name = 'AdminError';
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

/** `GET /api/ratelimits`, `GET /api/ratelimits/{policy}/top` and `POST /api/ratelimits/{policy}/reset`. */
function rateLimitRequest(target: AdminTarget, method: string, path: string, parts: readonly string[], body: unknown): AdminReply {
  if (target.rateLimitReports === undefined || target.resetRateLimit === undefined) throw new AdminError(404, 'not_found', 'this usher has no rate limits');
  if (parts.length === 2) {
    allow(method, ['GET'], path);
    return { status: 200, body: { policies: target.rateLimitReports() } };
  }
  if (parts.length === 4 && parts[3] === 'top' && target.rateLimitTopKeys !== undefined) {
    allow(method, ['GET'], path);
    const top = target.rateLimitTopKeys(parts[2]!);
    if (top === undefined) throw new AdminError(404, 'not_found', `no rate-limit policy ${JSON.stringify(parts[2])}; see GET /api/ratelimits`);
    return { status: 200, body: top };
  }
  if (parts.length !== 4 || parts[3] !== 'reset') throw new AdminError(404, 'not_found', `no admin endpoint ${path}; see GET /api/ratelimits`);
  allow(method, ['POST'], path);
  const policy = parts[2]!;
  const key = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)['key'] : undefined;
  if (typeof key !== 'string' || key === '') throw new AdminError(400, 'bad_request', 'expected {"key": "..."}: the key as the policy builds it (GET /api/ratelimits lists the policies)');
  const reset = target.resetRateLimit(policy, key);
  if (reset === undefined) throw new AdminError(404, 'not_found', `no rate-limit policy ${JSON.stringify(policy)}; see GET /api/ratelimits`);
  return { status: 200, body: { policy, key, reset } };
}

/** `GET /api/cache` and `POST /api/cache/purge`. */
async function cacheRequest(target: AdminTarget, method: string, path: string, parts: readonly string[], body: unknown): Promise<AdminReply> {
  if (target.cache === undefined) throw new AdminError(404, 'not_found', 'this usher has no response cache');
  if (parts.length === 2) {
    allow(method, ['GET'], path);
    return { status: 200, body: (await target.cache()).stats };
  }
  if (parts.length !== 3 || parts[2] !== 'purge') throw new AdminError(404, 'not_found', `no admin endpoint ${path}; see GET /api/cache`);
  allow(method, ['POST'], path);
  const purge = purgeOf(body);
  // Peers purge while this instance does (docs/peers.md); a Redis that is away makes this a local purge.
  const [{ purged, stats }, shared] = await Promise.all([target.cache(purge), target.sharePurge?.(sharedPurgeBody(body as Record<string, unknown>))]);
  return { status: 200, body: { purged, mode: purge.mode, entries: stats.entries, ...(shared === undefined ? {} : { peers: shared }) } };
}

/** The fields of a purge body that travel to peers (each validates them again). */
function sharedPurgeBody(body: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return Object.fromEntries((['key', 'prefix', 'tag', 'mode'] as const).filter((name) => body[name] !== undefined).map((name) => [name, body[name]]));
}

/** `GET /api/peers`. */
function peersRequest(target: AdminTarget, method: string, path: string, parts: readonly string[]): AdminReply {
  if (parts.length !== 2) throw new AdminError(404, 'not_found', `no admin endpoint ${path}; see GET /api/peers`);
  allow(method, ['GET'], path);
  const view = target.peersView?.();
  if (view === undefined) throw new AdminError(404, 'not_found', 'this usher has no redis section: instances share state (peers, purges, drains) through one (docs/peers.md)');
  return { status: 200, body: view };
}

/**
 * The body of a purge: exactly one of `key` (a URL, every variant and key extra), `prefix` (of keys: `scheme://host/path`), `tag` (a Surrogate-Key or Cache-Tag value); `mode` hard (remove, the default) or soft (mark stale).
 * Peers check a purge they receive with it too. Throws an {@link AdminError} (400).
 */
export function purgeOf(body: unknown): CachePurge {
  if (typeof body !== 'object' || body === null) throw new AdminError(400, 'bad_request', 'expected a JSON object with one of key, prefix or tag');
  const given = body as Record<string, unknown>;
  const modeValue = given['mode'] ?? 'hard';
  if (modeValue !== 'hard' && modeValue !== 'soft') throw new AdminError(400, 'bad_request', `mode is hard (remove) or soft (mark stale), got ${JSON.stringify(modeValue)}`);
  const mode = modeValue;
  const named = (['key', 'prefix', 'tag'] as const).filter((name) => given[name] !== undefined);
  if (named.length !== 1) throw new AdminError(400, 'bad_request', `give exactly one of key, prefix and tag (got ${named.length === 0 ? 'none' : named.join(' and ')})`);
  const what = named[0]!;
  const value = given[what];
  if (typeof value !== 'string' || value === '') throw new AdminError(400, 'bad_request', `${what} is a non-empty string`);
  if (what === 'key') {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new AdminError(400, 'bad_request', `key is a URL as clients request it, e.g. http://example.com/path?q=1; got ${JSON.stringify(value)}`);
    }
    return { key: primaryKey({ scheme: url.protocol.slice(0, -1), authority: url.host, target: `${url.pathname}${url.search}`, method: 'GET', fields: {} }), mode };
  }
  return what === 'prefix' ? { prefix: value, mode } : { tag: value, mode };
}

const ACTIONS: Readonly<Record<string, AdminState>> = { drain: 'draining', disable: 'disabled', enable: 'enabled' };
const STATES: readonly AdminState[] = ['enabled', 'draining', 'disabled'];

/**
 * The admin API's routes. Runtime changes here apply at once and need no
 * reload; a later reload resets every pool to the file (docs/operations.md).
 *
 *   GET    /api/listeners
 *   GET    /api/workers
 *   POST   /api/workers/{index}/restart
 *   GET    /api/pools
 *   GET    /api/pools/{pool}
 *   POST   /api/pools/{pool}/backends                  {address, name?, weight?, backup?, state?, maxConnections?}
 *   GET    /api/pools/{pool}/backends/{address}
 *   PATCH  /api/pools/{pool}/backends/{address}        {weight?, state?}
 *   DELETE /api/pools/{pool}/backends/{address}
 *   POST   /api/pools/{pool}/backends/{address}/drain | disable | enable
 *   POST   /api/reload
 *   GET    /api/ratelimits
 *   GET    /api/ratelimits/{policy}/top
 *   POST   /api/ratelimits/{policy}/reset                {key}
 *   GET    /api/cache
 *   POST   /api/cache/purge                            {key | prefix | tag, mode?: hard | soft}
 *   GET    /api/peers
 */
export async function handleAdminRequest(target: AdminTarget, method: string, path: string, body: unknown): Promise<AdminReply> {
  const parts = path.split('/').filter((part) => part !== '').map(decodeSegment);
  if (parts[0] !== 'api') throw new AdminError(404, 'not_found', `no admin endpoint ${path}; see GET /api/pools`);
  const [, resource, poolName, sub, backendKey, action] = parts;
  if (resource === 'reload' && parts.length === 2) {
    allow(method, ['POST'], path);
    const result = await target.reload();
    return result.ok ? { status: 200, body: { reloaded: true, warnings: result.warnings } } : { status: 422, body: { reloaded: false, errors: result.errors } };
  }
  if (resource === 'cache') return cacheRequest(target, method, path, parts, body);
  if (resource === 'ratelimits') return rateLimitRequest(target, method, path, parts, body);
  if (resource === 'peers') return peersRequest(target, method, path, parts);
  if (method === 'GET' && (resource === 'pools' || resource === 'workers')) await target.refresh?.();
  if (resource === 'listeners' && parts.length === 2) {
    allow(method, ['GET'], path);
    return { status: 200, body: { listeners: listenerViews(target) } };
  }
  if (resource === 'workers' && parts.length === 2) {
    allow(method, ['GET'], path);
    return { status: 200, body: { workers: workerViews(target) } };
  }
  if (resource === 'workers' && parts.length === 4 && parts[3] === 'restart') {
    allow(method, ['POST'], path);
    const index = Number(poolName);
    const workers = target.workers ?? [];
    if (!/^\d+$/.test(poolName ?? '') || index >= workers.length) {
      throw new AdminError(404, 'not_found', workers.length === 0 ? 'usher runs no worker threads (runtime.workers: 0)' : `no worker ${poolName}; workers are 0 to ${workers.length - 1}`);
    }
    if (workers[index]!.state !== 'serving' || target.restartWorker === undefined) throw new AdminError(409, 'not_serving', `worker ${index} is ${workers[index]!.state}; try again once it serves`);
    try {
      await target.restartWorker(index);
    } catch (error) {
      throw new AdminError(409, 'restart_failed', (error as Error).message);
    }
    return { status: 200, body: { restarted: index, workers: workerViews(target) } };
  }
  if (resource !== 'pools') throw new AdminError(404, 'not_found', `no admin endpoint ${path}; see GET /api/pools`);
  if (poolName === undefined) {
    allow(method, ['GET'], path);
    return { status: 200, body: { pools: [...target.snapshot.pools.values()].map(poolView) } };
  }
  const pool = poolOf(target, poolName);
  if (sub === undefined) {
    allow(method, ['GET'], path);
    return { status: 200, body: poolView(pool) };
  }
  if (sub !== 'backends' || parts.length > 6) throw new AdminError(404, 'not_found', `no admin endpoint ${path}`);
  if (backendKey === undefined) {
    allow(method, ['GET', 'POST'], path);
    if (method === 'GET') return { status: 200, body: { backends: poolView(pool).backends } };
    const added = addBackend(pool, body);
    await settle(target);
    return { status: 201, body: backendView(pool, added) };
  }
  const backend = backendOf(pool, backendKey);
  if (action !== undefined) {
    allow(method, ['POST'], path);
    const state = ACTIONS[action];
    if (state === undefined) throw new AdminError(404, 'not_found', `unknown action "${action}"; use drain, disable or enable`);
    pool.control.setAdminState(backend, state);
    const [, shared] = await Promise.all([settle(target), target.shareBackendState?.(pool.name, backend.key, state)]);
    return { status: 200, body: withShared(backendView(pool, backend), shared) };
  }
  allow(method, ['GET', 'PATCH', 'DELETE'], path);
  if (method === 'GET') return { status: 200, body: backendView(pool, backend) };
  if (method === 'DELETE') {
    pool.control.remove(backend);
    await settle(target);
    return { status: 200, body: { removed: backend.key, inFlight: backend.inFlight } };
  }
  const state = patchBackend(pool, backend, body);
  const [, shared] = await Promise.all([settle(target), state === undefined ? undefined : target.shareBackendState?.(pool.name, backend.key, state)]);
  return { status: 200, body: withShared(backendView(pool, backend), shared) };
}

/** A backend's view, with what sharing its new state with peers achieved (when this usher has peers). */
function withShared(view: object, shared: ShareResult | undefined): object {
  return shared === undefined ? view : { ...view, peers: shared };
}

/** Every configured listener with its routes, in file order. */
export function listenerViews(target: AdminTarget): ListenerView[] {
  const { config, listeners, tcpListeners } = target.snapshot;
  return config.listeners.map((listener) => {
    const http = listeners.get(listener.name);
    const names = http !== undefined ? http.routes.routes.map((r) => r.name) : (tcpListeners.get(listener.name)?.routes.map((r) => r.name) ?? []);
    return listenerView(listener, names, boundAddress(target, listener.name));
  });
}

/** The worker threads in index order; empty without them. */
export function workerViews(target: AdminTarget): WorkerAdminView[] {
  return (target.workers ?? []).map((w) => ({
    index: w.index,
    state: w.state,
    restarts: w.restarts,
    connections: w.connections,
    requests: w.requests,
    requestsPerSecond: w.requestsPerSecond,
    cpuPercent: w.cpuPercent,
  }));
}

function boundAddress(target: AdminTarget, listener: string): string | null {
  if (target.address === undefined) return null;
  try {
    const { address, port } = target.address(listener);
    return formatHostPort({ host: address, port });
  } catch {
    return null; // not bound (yet): a reload is adding it
  }
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new AdminError(400, 'bad_path', `path segment "${segment}" is not valid percent-encoding`);
  }
}

function allow(method: string, methods: readonly string[], path: string): void {
  if (!methods.includes(method)) {
    throw new AdminError(405, 'method_not_allowed', `${method} is not allowed on ${path}; use ${methods.join(' or ')}`, {
      allow: methods.join(', '),
    });
  }
}

function poolOf(target: AdminTarget, name: string): Pool {
  const pool = target.snapshot.pools.get(name);
  if (pool === undefined) {
    const names = [...target.snapshot.pools.keys()].join(', ');
    throw new AdminError(404, 'unknown_pool', `no pool named "${name}"; pools: ${names}`);
  }
  return pool;
}

function backendOf(pool: Pool, key: string): BackendControl {
  const backend = pool.control.find(key);
  if (backend === undefined) {
    const keys = pool.control.backends.map((b) => b.key).join(', ') || 'none';
    throw new AdminError(404, 'unknown_backend', `pool "${pool.name}" has no backend "${key}"; backends: ${keys}`);
  }
  return backend;
}

function objectBody(body: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new AdminError(400, 'bad_body', 'expected a JSON object body');
  }
  const record = body as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!allowed.includes(key)) throw new AdminError(400, 'bad_body', `unknown field "${key}"; allowed: ${allowed.join(', ')}`);
  }
  return record;
}

function integerField(record: Record<string, unknown>, key: string, min: number, max: number): number | undefined {
  const value = record[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new AdminError(400, 'bad_body', `${key} must be an integer in [${min}, ${max}], got ${JSON.stringify(value)}`);
  }
  return value;
}

function stateField(record: Record<string, unknown>): AdminState | undefined {
  const value = record['state'];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !(STATES as readonly string[]).includes(value)) {
    throw new AdminError(400, 'bad_body', `state must be one of ${STATES.join(', ')}, got ${JSON.stringify(value)}`);
  }
  return value as AdminState;
}

function addBackend(pool: Pool, body: unknown): BackendControl {
  const record = objectBody(body, ['address', 'name', 'weight', 'backup', 'state', 'maxConnections']);
  const text = record['address'];
  if (typeof text !== 'string') throw new AdminError(400, 'bad_body', 'address is required, as "host:port"');
  const address = parseHostPort(text);
  if (!address.ok) throw new AdminError(400, 'bad_body', `address: ${address.message}, got ${JSON.stringify(text)}`);
  const backup = record['backup'];
  if (backup !== undefined && typeof backup !== 'boolean') throw new AdminError(400, 'bad_body', 'backup must be true or false');
  // One backend per address: `[0:0:0:0:0:0:0:1]:80` is `[::1]:80`.
  const host = address.value.host.includes(':') ? new URL(`http://[${address.value.host}]/`).hostname.slice(1, -1) : address.value.host;
  const name = record['name'];
  if (name !== undefined && (typeof name !== 'string' || !NAME_PATTERN.test(name))) {
    throw new AdminError(400, 'bad_body', `name must start with a letter or digit and contain only letters, digits, "_", "." and "-" (at most 63), got ${JSON.stringify(name)}`);
  }
  const spec = {
    address: { host, port: address.value.port },
    name,
    weight: integerField(record, 'weight', 1, 1000) ?? 1,
    backup: backup ?? false,
    state: stateField(record) ?? 'enabled',
    maxConnections: integerField(record, 'maxConnections', 1, 1_000_000),
  };
  const candidate = pool.control.find(formatHostPort(spec.address));
  if (candidate !== undefined) throw new AdminError(409, 'duplicate_backend', `pool "${pool.name}" already has backend ${candidate.key}`);
  return pool.control.add(spec);
}

/** Applies a PATCH; returns the operator state it set, if it set one (peers may share it). */
function patchBackend(pool: Pool, backend: BackendControl, body: unknown): AdminState | undefined {
  const record = objectBody(body, ['weight', 'state']);
  const weight = integerField(record, 'weight', 1, 1000);
  const state = stateField(record);
  if (weight === undefined && state === undefined) throw new AdminError(400, 'bad_body', 'give weight and/or state');
  if (weight !== undefined) pool.control.setWeight(backend, weight);
  if (state !== undefined) pool.control.setAdminState(backend, state);
  return state;
}

/** Waits until every data plane applied the change; a worker that does not confirm in time makes the answer 503, the change stays. */
async function settle(target: AdminTarget): Promise<void> {
  try {
    await target.settled?.();
  } catch (error) {
    throw new AdminError(503, 'not_settled', (error as Error).message);
  }
}
