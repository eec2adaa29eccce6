/**
 * The top-level `redis` config → node-redis (`redis@6`) options and
 * connections, for everything in usher that talks to Redis: the instance
 * registry and event bus (src/peers/) and, once switched over, the rate
 * limiter's store (src/ratelimit/redis.ts).
 *
 * - **Standalone** (`url`): `createClient`. **Sentinel**: `createSentinel`
 *   (the client finds the master and follows failovers). **Cluster**:
 *   `createCluster` (the client follows the slot map and MOVED/ASK).
 * - **Credentials**: `username`/`password` (or in the URL; the loader refuses
 *   both). Sentinels can have their own (`sentinel.username/password`).
 * - **TLS**: `rediss://`, or a `tls` mapping for Sentinel and Cluster; its
 *   files are read when the connection is made (a missing file throws then,
 *   and `usher check` reports it before).
 * - **Defaults** as the rate limiter's `makeClient`: a per-command timeout
 *   (`redis.timeout`, also for a command already sent), no offline queue (a
 *   command while disconnected fails at once), reconnects every 50 ms
 *   doubling to 1 s, with jitter.
 *
 * Nothing here logs, and {@link describeRedis} is the only text about a
 * connection meant for logs and the admin API: it never holds a password.
 */
import { readFileSync } from 'node:fs';
import {
  createClient,
  createCluster,
  createSentinel,
  type RedisClientOptions,
  type RedisClientType,
  type RedisClusterOptions,
  type RedisClusterType,
  type RedisScripts,
  type RedisSentinelOptions,
  type RedisSentinelType,
} from 'redis';
import { formatHostPort } from '../config/hostport.ts';
import type { HostPort, RedisConfig } from '../config/types.ts';

/** What a caller may change from the defaults. */
export interface RedisConnectionTuning {
  /** Per-command timeout, ms; default `redis.timeout` (20 ms). Off the request path (the registry) a longer one suits better. */
  readonly commandTimeoutMs?: number;
  /** `CLIENT SETNAME` of every connection, for `CLIENT LIST` on the server (letters, digits, `-_.:`). */
  readonly clientName?: string;
  /** Reads a TLS file (tests pass their own). */
  readonly readFile?: (path: string) => Buffer;
}

/** The longest pause between two reconnection attempts, plus up to 50 ms of jitter (the rate limiter's `RECONNECT_MAX_MS`). */
export const RECONNECT_MAX_MS = 1000;

/** Reconnect delay after `retries` failed attempts: 50 ms doubling up to 1 s, plus up to 50 ms of jitter so instances do not reconnect in step. */
export function reconnectDelay(retries: number): number {
  return Math.min(RECONNECT_MAX_MS, 50 * 2 ** Math.min(retries, 5)) + Math.floor(Math.random() * 50);
}

/** node-redis options for one connection, by the kind of deployment. */
export type RedisConnectionOptions<S extends RedisScripts = {}> =
  | { readonly kind: 'standalone'; readonly options: RedisClientOptions<{}, {}, S> }
  | { readonly kind: 'sentinel'; readonly options: RedisSentinelOptions<{}, {}, S> }
  | { readonly kind: 'cluster'; readonly options: RedisClusterOptions<{}, {}, S> };

/** A connection made by {@link createRedisConnection}: one of node-redis's three client types, with `S`'s scripts. */
export type RedisConnection<S extends RedisScripts = {}> = RedisClientType<{}, {}, S> | RedisSentinelType<{}, {}, S> | RedisClusterType<{}, {}, S>;

/** TLS socket options from `redis.tls` (files read now). */
function tlsOptions(config: RedisConfig, readFile: (path: string) => Buffer) {
  const tls = config.tls;
  if (tls === undefined) return {};
  return {
    ...(tls.ca === undefined ? {} : { ca: readFile(tls.ca) }),
    ...(tls.cert === undefined ? {} : { cert: readFile(tls.cert) }),
    ...(tls.key === undefined ? {} : { key: readFile(tls.key) }),
    ...(tls.servername === undefined ? {} : { servername: tls.servername }),
    rejectUnauthorized: tls.rejectUnauthorized,
  };
}

/**
 * node-redis options for `config`: which factory to call and what to give it.
 * `scripts` are registered on the connection (EVALSHA, loaded again on NOSCRIPT).
 * Pure but for reading the TLS files.
 */
export function redisConnectionOptions<S extends RedisScripts = {}>(config: RedisConfig, scripts?: S, tuning: RedisConnectionTuning = {}): RedisConnectionOptions<S> {
  const timeoutMs = tuning.commandTimeoutMs ?? config.timeoutMs;
  const readFile = tuning.readFile ?? ((path: string) => readFileSync(path));
  const socketCommon = {
    // A connect waits at least 1 s whatever the command timeout: a TLS handshake on a busy server takes longer than 20 ms.
    connectTimeout: Math.max(1000, timeoutMs),
    reconnectStrategy: reconnectDelay,
  };
  const commandOptions = { timeout: timeoutMs, rejectInFlight: true };
  const credentials = {
    ...(config.username === undefined ? {} : { username: config.username }),
    ...(config.password === undefined ? {} : { password: config.password }),
  };
  const name = tuning.clientName === undefined ? {} : { name: tuning.clientName };
  const withScripts = scripts === undefined ? {} : { scripts };
  const tls = tlsOptions(config, readFile);
  const tlsOn = config.tls !== undefined;

  if (config.sentinel !== undefined) {
    const sentinel = config.sentinel;
    const node = { ...credentials, ...name, disableOfflineQueue: true, socket: tlsOn ? { ...socketCommon, tls: true as const, ...tls } : { ...socketCommon } };
    const sentinelCredentials = {
      ...(sentinel.username === undefined ? {} : { username: sentinel.username }),
      ...(sentinel.password === undefined ? {} : { password: sentinel.password }),
    };
    return {
      kind: 'sentinel',
      options: {
        name: sentinel.name,
        sentinelRootNodes: sentinel.nodes.map(({ host, port }) => ({ host, port })),
        nodeClientOptions: node,
        sentinelClientOptions: { ...sentinelCredentials, ...name, socket: tlsOn ? { ...socketCommon, tls: true as const, ...tls } : { ...socketCommon } },
        commandOptions,
        // Errors of the master, replica and sentinel connections reach the one 'error' listener the caller sets.
        passthroughClientErrorEvents: true,
        ...withScripts,
      } satisfies RedisSentinelOptions<{}, {}, S>,
    };
  }
  if (config.cluster !== undefined) {
    return {
      kind: 'cluster',
      options: {
        rootNodes: config.cluster.nodes.map(({ host, port }) => ({ socket: { host, port } })),
        // `defaults` apply to every connection, the root nodes' and the discovered nodes' alike.
        defaults: { ...credentials, ...name, disableOfflineQueue: true, socket: tlsOn ? { ...socketCommon, tls: true as const, ...tls } : { ...socketCommon } },
        commandOptions,
        ...withScripts,
      } satisfies RedisClusterOptions<{}, {}, S>,
    };
  }
  if (config.url === undefined) throw new Error('redis: give one of url, sentinel or cluster');
  const secure = new URL(config.url).protocol === 'rediss:';
  return {
    kind: 'standalone',
    options: {
      url: config.url,
      ...credentials,
      ...name,
      disableOfflineQueue: true,
      commandOptions,
      // node-redis takes host, port and TLS on/off from the URL and keeps the rest of `socket`.
      socket: secure ? { ...socketCommon, tls: true as const, ...tls } : { ...socketCommon, tls: false as const },
      ...withScripts,
    } satisfies RedisClientOptions<{}, {}, S>,
  };
}

/**
 * A connection to the configured Redis (not connected yet: call `connect()`,
 * and set an `error` listener first, or an error event crashes the process).
 */
export function createRedisConnection<S extends RedisScripts = {}>(config: RedisConfig, scripts?: S, tuning: RedisConnectionTuning = {}): RedisConnection<S> {
  const made = redisConnectionOptions(config, scripts, tuning);
  switch (made.kind) {
    case 'standalone':
      return createClient(made.options) as RedisConnection<S>;
    case 'sentinel':
      return createSentinel(made.options) as RedisConnection<S>;
    case 'cluster':
      return createCluster(made.options) as RedisConnection<S>;
  }
}

/**
 * The Redis `config` points at, for logs and the admin API: the URL without
 * its user and password, or the Sentinel master and sentinels, or the Cluster
 * nodes. Never a secret.
 */
export function describeRedis(config: RedisConfig): string {
  const list = (nodes: readonly HostPort[]): string => nodes.map((node) => formatHostPort(node)).join(', ');
  if (config.sentinel !== undefined) return `sentinel master ${config.sentinel.name} via ${list(config.sentinel.nodes)}${config.tls === undefined ? '' : ' (tls)'}`;
  if (config.cluster !== undefined) return `cluster ${list(config.cluster.nodes)}${config.tls === undefined ? '' : ' (tls)'}`;
  if (config.url === undefined) return 'redis (no address)';
  try {
    const url = new URL(config.url);
    return `${url.protocol}//${url.host}${url.pathname.length > 1 ? url.pathname : ''}`;
  } catch {
    return 'redis (unreadable url)';
  }
}

/**
 * `text` (an error message, say) with every password of `config` replaced by
 * `***`: node-redis's messages carry none today, but a message is shown in
 * the admin API and the log, and a future one must not leak a password.
 */
export function redactSecrets(text: string, config: RedisConfig): string {
  const secrets = [config.password, config.sentinel?.password];
  if (config.url !== undefined) {
    try {
      const url = new URL(config.url);
      if (url.password !== '') secrets.push(url.password, decodeURIComponent(url.password));
    } catch {
      secrets.push(config.url);
    }
  }
  let out = text;
  for (const secret of secrets) if (secret !== undefined && secret !== '') out = out.split(secret).join('***');
  return out;
}
