/**
 * The config hash each instance publishes in the registry, so instances that
 * serve different configs are flagged (`configMismatch`).
 *
 * It hashes the effective config (after defaults and `${ENV}`), because two
 * files that differ only in comments, key order or a default written out
 * behave the same. Left out, because they differ between instances that
 * behave the same, or must not leave the process:
 * - per-instance settings: `admin` (its bind, its token), `log`, `accessLog`
 *   (destinations), `runtime` (worker threads follow the machine's cores),
 *   `redis.instance`, and how this instance reaches Redis (`redis.url`,
 *   `sentinel`, `cluster`, `username`, `password`, `tls`);
 * - secrets: `admin.token`, `pools.*.sticky.secret`, the Redis passwords.
 *   A differing sticky secret is therefore not flagged (pins made by one
 *   instance are then not honoured by another): the hash is published to
 *   Redis and the admin API, and a secret must not be guessable from it.
 * - loaded module code (only the module paths and options count).
 * Kept: listeners, routes and filters, pools and backends, timeouts,
 * `shutdownTimeout`, `cache`, `rateLimits`, and the shared Redis settings
 * (`keyPrefix`, `timeout`, `shareAdminActions`, `heartbeat`, `peerTimeout`).
 */
import { createHash } from 'node:crypto';
import type { UsherConfig } from '../config/types.ts';
import { peerSettings } from './settings.ts';

/** Hex digits of SHA-256 kept: 64 bits tell configs apart, and fit a table column. */
const HASH_DIGITS = 16;

/** The part of `config` that must agree across instances (see the module comment). */
export function sharedConfig(config: UsherConfig): unknown {
  const { admin: _admin, log: _log, accessLog: _accessLog, runtime: _runtime, redis, pools, ...rest } = config;
  return {
    ...rest,
    pools: Object.fromEntries(
      Object.entries(pools).map(([name, pool]) => {
        if (pool.sticky?.secret === undefined) return [name, pool];
        const { secret: _secret, ...sticky } = pool.sticky;
        return [name, { ...pool, sticky }];
      }),
    ),
    ...(redis === undefined
      ? {}
      : (({ keyPrefix, timeoutMs, shareAdminActions, heartbeatMs, peerTimeoutMs }) => ({ redis: { keyPrefix, timeoutMs, shareAdminActions, heartbeatMs, peerTimeoutMs } }))(peerSettings(redis))),
  };
}

/** JSON with object keys sorted at every level; functions, loaded modules and undefined left out; regular expressions as text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(canonical(value));
}

function canonical(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return typeof value === 'function' ? undefined : value;
  if (value instanceof RegExp) return `/${value.source}/${value.flags}`;
  if (Array.isArray(value)) return value.map((item) => canonical(item) ?? null);
  if (value instanceof Map) return canonical(Object.fromEntries(value));
  if (value instanceof Set) return [...value].map(canonical);
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    if (key === 'loaded') continue; // a loaded balancer or filter module: code, not config
    const item = canonical((value as Record<string, unknown>)[key]);
    if (item !== undefined) out[key] = item;
  }
  return out;
}

/** The config hash instances compare: 16 hex digits of SHA-256 over {@link sharedConfig}, canonically serialised. */
export function configHash(config: UsherConfig): string {
  return createHash('sha256').update(canonicalJson(sharedConfig(config))).digest('hex').slice(0, HASH_DIGITS);
}
