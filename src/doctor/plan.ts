/**
 * What `usher doctor` checks, decided from the config alone (no I/O): which
 * pools, how usher talks to each (HTTP/1.1, h2c, or bytes for tcp and
 * tls-passthrough listeners), and which checks apply to it.
 */
import type { BackendTlsConfig, HealthCheckConfig, HostPort, PoolConfig, UsherConfig } from '../config/types.ts';
import { defaultHealthCheck } from '../config/schema.ts';
import { formatHostPort } from '../config/hostport.ts';
import type { PoolReport } from './findings.ts';

/** One backend to examine. */
export interface BackendPlan {
  /** `host:port`, as the config and the admin API show it. */
  readonly address: string;
  /** The backend's `name` in the file, if any. */
  readonly name: string | undefined;
  readonly target: HostPort;
  readonly tls: BackendTlsConfig | undefined;
}

/** One pool to examine. */
export interface PoolPlan {
  readonly name: string;
  readonly kind: PoolReport['kind'];
  readonly pool: PoolConfig;
  readonly backends: readonly BackendPlan[];
  /** Why the cross-backend session check does not run, or undefined when it does. */
  readonly sessionsSkipped: string | undefined;
}

/** The health check usher runs with `healthCheck: {}`: what the doctor tries when the pool has none. */
export const GUESSED_HEALTH: HealthCheckConfig = defaultHealthCheck();

/** Paths tried, in order, on a pool without `healthCheck`: the first that answers is suggested. */
export const GUESSED_HEALTH_PATHS: readonly string[] = ['/health', '/healthz'];

/**
 * The pools to examine, in config order: all, or the one named `only`.
 * Returns an error message (listing the pools) when `only` names none.
 */
export function planPools(config: UsherConfig, only?: string): readonly PoolPlan[] | { readonly error: string } {
  const names = Object.keys(config.pools);
  if (only !== undefined && !Object.hasOwn(config.pools, only)) {
    return { error: `no pool named ${JSON.stringify(only)}; pools: ${names.length === 0 ? '(none)' : names.join(', ')}` };
  }
  const usage = poolUsage(config);
  return names
    .filter((name) => only === undefined || name === only)
    .map((name) => {
      const pool = config.pools[name]!;
      const kind = kindOf(pool, usage.get(name));
      return {
        name,
        kind,
        pool,
        backends: pool.backends.map((backend) => ({ address: formatHostPort(backend.address), name: backend.name, target: backend.address, tls: backend.tls })),
        sessionsSkipped: sessionsSkipReason(pool, kind),
      };
    });
}

/** Per pool: whether HTTP listeners (http, https) and L4 listeners (tcp, tls-passthrough) route to it. */
function poolUsage(config: UsherConfig): Map<string, { http: boolean; l4: boolean }> {
  const usage = new Map<string, { http: boolean; l4: boolean }>();
  for (const listener of config.listeners) {
    const l4 = listener.protocol === 'tcp' || listener.protocol === 'tls-passthrough';
    for (const route of listener.routes) {
      if (route.pool === undefined) continue;
      const entry = usage.get(route.pool) ?? { http: false, l4: false };
      if (l4) entry.l4 = true;
      else entry.http = true;
      usage.set(route.pool, entry);
    }
  }
  return usage;
}

/**
 * A pool only L4 listeners use carries bytes, not HTTP; one that no route
 * uses is examined as HTTP, which is what it would carry once routed to.
 */
function kindOf(pool: PoolConfig, usage: { http: boolean; l4: boolean } | undefined): PoolReport['kind'] {
  if (usage !== undefined && usage.l4 && !usage.http) return 'tcp';
  return pool.protocol;
}

function sessionsSkipReason(pool: PoolConfig, kind: PoolReport['kind']): string | undefined {
  if (kind === 'tcp') return undefined; // the whole HTTP family is skipped with one line instead
  if (kind === 'h2c') return undefined;
  if (pool.sticky !== undefined) return `the pool has sticky (cookie ${pool.sticky.cookie}): each client stays on one backend, so backends need not share sessions`;
  if (pool.backends.length < 2) return 'one backend: there is no other backend to lose a session to';
  return undefined;
}

/** `--path` and the like must be an origin-form path: a request line cannot carry anything else safely. */
export function validRequestPath(path: string): boolean {
  return /^\/[\x21-\x7e]*$/.test(path);
}
