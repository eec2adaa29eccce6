/**
 * Rules that span keys, run on the file as read (before defaults) so they can
 * tell what the user wrote, and run even when the schema found errors so every
 * problem is reported at once. Each rule skips values of the wrong shape: the
 * schema reports those.
 *
 * Errors: unknown pool references, duplicate listener names, duplicate or
 * overlapping binds, more than one of path/pathPrefix/pathRegex, hash options
 * on a pool whose algorithm does not hash, duplicate backend addresses.
 * Warnings: routes after a catch-all (never reached), a stripPrefix that the
 * route's path condition rules out, pools no route uses.
 */
import { parseHostPort } from './hostport.ts';
import type { KeyPath } from './issues.ts';
import type { Reporter } from './report.ts';
import { ALGORITHMS, DEFAULTS, HASH_ALGORITHMS } from './schema.ts';
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
  const used = checkListeners(list(top['listeners']), pools === undefined ? undefined : new Set(Object.keys(pools)), reporter);
  for (const [name, pool] of poolEntries) {
    checkPool(name, mapping(pool), reporter);
    if (!used.has(name)) reporter.warn(['pools', name], `pool "${name}" is not used by any route`, { target: 'key' });
  }
}

/** Checks listeners and their routes; returns the pool names routes refer to. */
function checkListeners(listeners: readonly unknown[], pools: ReadonlySet<string> | undefined, reporter: Reporter): Set<string> {
  const names = new Map<string, number>();
  const binds: { readonly index: number; readonly host: string; readonly port: number }[] = [];
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
        const clash = binds.find((other) => other.port === port && (other.host === host || isWildcard(other.host) || isWildcard(host)));
        if (clash !== undefined) {
          const how = clash.host === host ? 'is also used by' : 'overlaps';
          const bindPath = ['listeners', index, 'bind'];
          reporter.error(bindPath, `bind ${reporter.describe(bindPath)} ${how} listeners[${clash.index}] (same port)`);
        }
        binds.push({ index, host, port });
      }
    }
    checkRoutes(['listeners', index, 'routes'], list(listener['routes']), pools, used, reporter);
  });
  return used;
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
}

function isAlgorithm(name: string): boolean {
  return (ALGORITHMS as readonly string[]).includes(name);
}
