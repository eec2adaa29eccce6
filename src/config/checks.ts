/**
 * Rules that span keys, run on the file as read (before defaults) so they can
 * tell what the user wrote, and run even when the schema found errors so every
 * problem is reported at once. Each rule skips values of the wrong shape: the
 * schema reports those.
 *
 * Errors: unknown pool references, duplicate listener names, duplicate or
 * overlapping binds (the admin API's included), a listener's maxUriBytes not
 * below its maxHeaderBytes, more than one of
 * path/pathPrefix/pathRegex, hash options on a pool whose algorithm does not
 * hash, duplicate backend addresses, http-only health check keys on a tcp
 * check, a fastInterval longer than the interval, a maxEjectionTime shorter
 * than the ejectionTime, a retry condition listed twice, an admin API on a
 * non-loopback address without a token.
 * Warnings: routes after a catch-all (never reached), a stripPrefix that the
 * route's path condition rules out, pools no route uses, pools whose backends
 * are all backups.
 */
import { BlockList, isIP } from 'node:net';
import { checkByteCount, parseByteSize } from './byte-size.ts';
import { parseDuration } from './duration.ts';
import { parseHostPort } from './hostport.ts';
import type { KeyPath } from './issues.ts';
import type { Reporter } from './report.ts';
import { ALGORITHMS, DEFAULTS, HASH_ALGORITHMS, HTTP_CHECK_KEYS, LISTENER_SIZE_RANGES } from './schema.ts';
import { didYouMean } from './suggest.ts';

type Entries = readonly (readonly [string, unknown])[];

function mapping(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function list(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : [];
}

/** Run every cross-key rule on the root value. */
export function checkConfig(root: unknown, reporter: Reporter): void {
  const top = mapping(root);
  if (top === undefined) return;
  const pools = mapping(top['pools']);
  const poolEntries: Entries = pools === undefined ? [] : Object.entries(pools);
  const { used, binds } = checkListeners(list(top['listeners']), pools === undefined ? undefined : new Set(Object.keys(pools)), reporter);
  checkAdmin(mapping(top['admin']), binds, reporter);
  for (const [name, pool] of poolEntries) {
    checkPool(name, mapping(pool), reporter);
    if (!used.has(name)) reporter.warn(['pools', name], `pool "${name}" is not used by any route`, { target: 'key' });
  }
}

/** A listener's bind address (port 0 left out: it never clashes). */
interface Bind {
  readonly index: number;
  readonly host: string;
  readonly port: number;
}

/** Checks listeners and their routes; returns the pool names routes refer to and the listeners' binds. */
function checkListeners(
  listeners: readonly unknown[],
  pools: ReadonlySet<string> | undefined,
  reporter: Reporter,
): { readonly used: Set<string>; readonly binds: readonly Bind[] } {
  const names = new Map<string, number>();
  const binds: Bind[] = [];
  const used = new Set<string>();
  listeners.forEach((raw, index) => {
    const listener = mapping(raw);
    if (listener === undefined) return;
    const name = listener['name'];
    if (typeof name === 'string') {
      const first = names.get(name);
      if (first !== undefined) reporter.error(['listeners', index, 'name'], `duplicate listener name ${reporter.describe(['listeners', index, 'name'])} (also listeners[${first}])`);
      else names.set(name, index);
    }
    const bind = listener['bind'];
    if (typeof bind === 'string') {
      const address = parseHostPort(bind, { allowPortZero: true });
      if (address.ok && address.value.port !== 0) {
        const host = address.value.host.toLowerCase();
        const port = address.value.port;
        reportClash(['listeners', index, 'bind'], host, port, binds, reporter);
        binds.push({ index, host, port });
      }
    }
    checkLimits(['listeners', index, 'limits'], mapping(listener['limits']), reporter);
    checkRoutes(['listeners', index, 'routes'], list(listener['routes']), pools, used, reporter);
  });
  return { used, binds };
}

/** The request target is part of the request head, so its limit must be the smaller. */
function checkLimits(path: KeyPath, limits: Record<string, unknown> | undefined, reporter: Reporter): void {
  if (limits === undefined) return;
  const uri = sizeAt(limits, 'maxUriBytes', DEFAULTS.maxUriBytes);
  const header = sizeAt(limits, 'maxHeaderBytes', DEFAULTS.maxHeaderBytes);
  if (uri === undefined || header === undefined || uri < header) return;
  const why = 'the request target is part of the request head that maxHeaderBytes limits';
  if (limits['maxUriBytes'] !== undefined) {
    const uriPath = [...path, 'maxUriBytes'];
    reporter.error(uriPath, `maxUriBytes ${reporter.describe(uriPath)} must be less than maxHeaderBytes ${shown(path, limits, 'maxHeaderBytes', DEFAULTS.maxHeaderBytes, reporter)}: ${why}; lower maxUriBytes or raise maxHeaderBytes`);
  } else {
    const headerPath = [...path, 'maxHeaderBytes'];
    reporter.error(headerPath, `maxHeaderBytes ${reporter.describe(headerPath)} must be more than maxUriBytes ("${DEFAULTS.maxUriBytes}", the default): ${why}; raise maxHeaderBytes or set a lower maxUriBytes`);
  }
}

/** Reports the bind at `path` if a listener already binds the same port on the same or an overlapping address. */
function reportClash(path: KeyPath, host: string, port: number, binds: readonly Bind[], reporter: Reporter): void {
  const clash = binds.find((other) => other.port === port && (other.host === host || isWildcard(other.host) || isWildcard(host)));
  if (clash === undefined) return;
  const how = clash.host === host ? 'is also used by' : 'overlaps';
  reporter.error(path, `bind ${reporter.describe(path)} ${how} listeners[${clash.index}] (same port)`);
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** 127.0.0.0/8, ::1 (also written in full or IPv4-mapped) and localhost. */
function isLoopback(host: string): boolean {
  const lower = host.toLowerCase();
  if (lower === 'localhost' || lower === 'localhost.') return true;
  if (isIP(lower) === 4) return LOOPBACK.check(lower, 'ipv4');
  return isIP(lower) === 6 && LOOPBACK.check(lower, 'ipv6');
}

/** The admin API must not share a listener's port, and needs a token unless it is only reachable from this machine. */
function checkAdmin(admin: Record<string, unknown> | undefined, binds: readonly Bind[], reporter: Reporter): void {
  const bind = admin?.['bind'];
  if (admin === undefined || typeof bind !== 'string') return;
  const address = parseHostPort(bind, { allowPortZero: true });
  if (!address.ok) return;
  const path = ['admin', 'bind'];
  const host = address.value.host.toLowerCase();
  if (address.value.port !== 0) reportClash(path, host, address.value.port, binds, reporter);
  if (admin['token'] === undefined && !isLoopback(host)) {
    reporter.error(path, `admin.bind ${reporter.describe(path)} is not a loopback address; set admin.token (e.g. \${USHER_ADMIN_TOKEN}) or bind 127.0.0.1`);
  }
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::';
}

function checkRoutes(
  path: KeyPath,
  routes: readonly unknown[],
  pools: ReadonlySet<string> | undefined,
  used: Set<string>,
  reporter: Reporter,
): void {
  let catchAll: number | undefined;
  routes.forEach((raw, index) => {
    const route = mapping(raw);
    if (route === undefined) return;
    const routePath = [...path, index];
    if (catchAll !== undefined) {
      reporter.warn(routePath, `this route is never reached: routes[${catchAll}] before it matches every request`);
    }
    const pool = route['pool'];
    if (typeof pool === 'string') {
      used.add(pool);
      if (pools !== undefined && !pools.has(pool)) reportUnknownPool([...routePath, 'pool'], pools, reporter);
    }
    const match = route['match'] === undefined || route['match'] === null ? {} : mapping(route['match']);
    if (match === undefined) return;
    if (Object.keys(match).length === 0) catchAll ??= index;
    const pathKeys = ['path', 'pathPrefix', 'pathRegex'].filter((key) => match[key] !== undefined);
    if (pathKeys.length > 1) {
      reporter.error([...routePath, 'match', pathKeys[1] ?? ''], `use only one of path, pathPrefix and pathRegex (found ${pathKeys.join(' and ')})`, { target: 'key' });
    }
    checkStripPrefix(routePath, route['stripPrefix'], match, reporter);
  });
}

function reportUnknownPool(path: KeyPath, pools: ReadonlySet<string>, reporter: Reporter): void {
  const value = reporter.valueAt(path);
  const hint = reporter.isInterpolated(path) || typeof value !== 'string' ? '' : didYouMean(value, pools);
  const known = pools.size === 0 ? 'no pools are defined' : `defined pools: ${[...pools].join(', ')}`;
  reporter.error(path, `unknown pool ${reporter.describe(path)}${hint}; ${known}`);
}

/** Warns when the route's path condition means the prefix can never be stripped. */
function checkStripPrefix(routePath: KeyPath, strip: unknown, match: Record<string, unknown>, reporter: Reporter): void {
  if (typeof strip !== 'string' || !strip.startsWith('/')) return;
  const prefix = strip.replace(/\/+$/, '');
  if (prefix === '') return;
  const key = typeof match['path'] === 'string' ? 'path' : typeof match['pathPrefix'] === 'string' ? 'pathPrefix' : undefined;
  const condition = key === undefined ? undefined : match[key];
  if (key === undefined || typeof condition !== 'string') return;
  const applies = condition.startsWith(prefix) && (condition.length === prefix.length || condition[prefix.length] === '/');
  if (!applies) {
    const shown = reporter.describe([...routePath, 'match', key]);
    reporter.warn([...routePath, 'stripPrefix'], `stripPrefix never applies: every matching path starts with ${shown}`);
  }
}

function checkPool(name: string, pool: Record<string, unknown> | undefined, reporter: Reporter): void {
  if (pool === undefined) return;
  const path = ['pools', name];
  const algorithm = pool['algorithm'] === undefined ? DEFAULTS.algorithm : pool['algorithm'];
  if (typeof algorithm === 'string' && isAlgorithm(algorithm) && !HASH_ALGORITHMS.includes(algorithm)) {
    const uses = pool['algorithm'] === undefined ? `"${algorithm}" (the default)` : reporter.describe([...path, 'algorithm']);
    for (const key of ['hashKey', 'hashBalanceFactor']) {
      if (pool[key] !== undefined) {
        reporter.error([...path, key], `${key} only applies to algorithm "hash" or "maglev", but this pool uses ${uses}`, { target: 'key' });
      }
    }
  }
  const seen = new Map<string, number>();
  list(pool['backends']).forEach((raw, index) => {
    const address = mapping(raw)?.['address'];
    if (typeof address !== 'string') return;
    const parsed = parseHostPort(address);
    if (!parsed.ok) return;
    const key = `${parsed.value.host.toLowerCase()}:${parsed.value.port}`;
    const first = seen.get(key);
    if (first === undefined) seen.set(key, index);
    else {
      const addressPath = [...path, 'backends', index, 'address'];
      reporter.error(addressPath, `duplicate backend ${reporter.describe(addressPath)} (also backends[${first}]); raise its weight instead`);
    }
  });
  const backends = list(pool['backends']);
  if (backends.length > 0 && backends.every((backend) => mapping(backend)?.['backup'] === true)) {
    reporter.warn([...path, 'backends'], 'every backend has backup: true, so the pool has no primary; backups only stand in for primaries (set backup: false on at least one)');
  }
  checkHealthCheck([...path, 'healthCheck'], mapping(pool['healthCheck']), reporter);
  checkOutlier([...path, 'outlier'], mapping(pool['outlier']), reporter);
  checkRetry([...path, 'retry'], mapping(pool['retry']), reporter);
}

function checkHealthCheck(path: KeyPath, check: Record<string, unknown> | undefined, reporter: Reporter): void {
  if (check === undefined) return;
  if (check['type'] === 'tcp') {
    for (const key of HTTP_CHECK_KEYS) {
      if (check[key] !== undefined) {
        reporter.error([...path, key], `${key} only applies to type "http" health checks, but this one uses ${reporter.describe([...path, 'type'])}`, { target: 'key' });
      }
    }
  }
  if (check['fastInterval'] !== undefined) {
    const fast = durationAt(check, 'fastInterval');
    const interval = durationAt(check, 'interval', DEFAULTS.healthCheckInterval);
    if (fast !== undefined && interval !== undefined && fast > interval) {
      reporter.error(
        [...path, 'fastInterval'],
        `fastInterval ${reporter.describe([...path, 'fastInterval'])} is longer than interval ${shown(path, check, 'interval', DEFAULTS.healthCheckInterval, reporter)}; it is the shorter interval used while a backend changes state`,
      );
    }
  }
}

function checkOutlier(path: KeyPath, outlier: Record<string, unknown> | undefined, reporter: Reporter): void {
  if (outlier === undefined) return;
  const ejection = durationAt(outlier, 'ejectionTime', DEFAULTS.ejectionTime);
  const max = durationAt(outlier, 'maxEjectionTime', DEFAULTS.maxEjectionTime);
  if (ejection === undefined || max === undefined || max >= ejection) return;
  if (outlier['maxEjectionTime'] !== undefined) {
    const maxPath = [...path, 'maxEjectionTime'];
    reporter.error(maxPath, `maxEjectionTime ${reporter.describe(maxPath)} is shorter than ejectionTime ${shown(path, outlier, 'ejectionTime', DEFAULTS.ejectionTime, reporter)}; it caps how long one ejection lasts`);
  } else {
    const ejectionPath = [...path, 'ejectionTime'];
    reporter.error(ejectionPath, `ejectionTime ${reporter.describe(ejectionPath)} is longer than maxEjectionTime ("${DEFAULTS.maxEjectionTime}", the default); raise maxEjectionTime too`);
  }
}

function checkRetry(path: KeyPath, retry: Record<string, unknown> | undefined, reporter: Reporter): void {
  const seen = new Map<string, number>();
  list(retry?.['on']).forEach((condition, index) => {
    if (typeof condition !== 'string' && typeof condition !== 'number') return;
    const key = String(condition);
    const first = seen.get(key);
    if (first === undefined) seen.set(key, index);
    else reporter.error([...path, 'on', index], `retry condition ${reporter.describe([...path, 'on', index])} is listed twice (also on[${first}])`);
  });
}

/** The duration written at `key` (or `fallback` when left out), in ms; undefined when it does not parse (the schema reports that). */
function durationAt(parent: Record<string, unknown>, key: string, fallback?: string): number | undefined {
  const value = parent[key] === undefined ? fallback : parent[key];
  if (typeof value !== 'string') return undefined;
  const result = parseDuration(value);
  return result.ok ? result.value : undefined;
}

/**
 * The size in bytes written at `key` (or `fallback` when left out); undefined when it
 * does not parse or is outside the key's own range (the schema reports those).
 */
function sizeAt(parent: Record<string, unknown>, key: keyof typeof LISTENER_SIZE_RANGES, fallback: string): number | undefined {
  const value = parent[key] === undefined ? fallback : parent[key];
  const result = typeof value === 'number' ? checkByteCount(value) : typeof value === 'string' ? parseByteSize(value) : undefined;
  const { min, max } = LISTENER_SIZE_RANGES[key];
  return result?.ok === true && result.value >= min && result.value <= max ? result.value : undefined;
}

/** The value of `key` for a message, or the default it falls back to. */
function shown(path: KeyPath, parent: Record<string, unknown>, key: string, fallback: string, reporter: Reporter): string {
  return parent[key] === undefined ? `("${fallback}", the default)` : reporter.describe([...path, key]);
}

function isAlgorithm(name: string): boolean {
  return (ALGORITHMS as readonly string[]).includes(name);
}
