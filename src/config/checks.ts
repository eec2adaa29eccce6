/**
 * Rules that span keys, run on the file as read (before defaults) so they can
 * tell what the user wrote, and run even when the schema found errors so every
 * problem is reported at once. Each rule skips values of the wrong shape: the
 * schema reports those.
 *
 * Errors: unknown pool references, unknown rate-limit policies in a route, duplicate listener names, duplicate or
 * overlapping binds (the admin API's included), a listener's maxUriBytes not
 * below its maxHeaderBytes, more than one of
 * path/pathPrefix/pathRegex, hash options on a pool whose algorithm does not
 * hash, duplicate backend addresses, http-only health check keys on a tcp
 * check, a fastInterval longer than the interval, a maxEjectionTime shorter
 * than the ejectionTime, a retry condition listed twice, an admin API on a
 * non-loopback address without a token; an https listener without tls, tls on
 * any other listener, an ALPN protocol listed twice, a certificate, key or CA
 * file that cannot be read; a route with neither or both of pool and redirect,
 * a redirect, stripPrefix or filters on a tcp or tls-passthrough listener, stripPrefix
 * with a redirect, a tcp listener with more than one route or with match, a
 * match key other than sni on a tls-passthrough listener, sni on any other
 * listener, limits on a tcp or tls-passthrough listener; acceptProxyProtocol
 * without trustedProxies; tls on a backend of an h2c pool; a process log
 * written to the access log's file.
 * Warnings: routes after a catch-all (never reached), rate-limit policies no route uses, a stripPrefix that the
 * route's path condition rules out, pools no route uses, pools whose backends
 * are all backups, a redirect back to the same scheme and host, trustedProxies
 * without acceptProxyProtocol, sticky and retry statuses on a pool that a tcp
 * or tls-passthrough listener uses (they are ignored there), process log and
 * access log both on standard output.
 */
import { BlockList, isIP } from 'node:net';
import { resolve } from 'node:path';
import { checkByteCount, parseByteSize } from './byte-size.ts';
import { parseDuration } from './duration.ts';
import { parseHostPort } from './hostport.ts';
import { resolveConfigPath, unreadableReason } from './files.ts';
import type { KeyPath } from './issues.ts';
import type { Reporter } from './report.ts';
import { balancerHashes, balancerNames, hasBalancer } from '../balancer/registry.ts';
import { DEFAULTS, HTTP_CHECK_KEYS, HTTP_LISTENER_PROTOCOLS, LISTENER_PROTOCOLS, LISTENER_SIZE_RANGES } from './schema.ts';
import { didYouMean } from './suggest.ts';

type Entries = readonly (readonly [string, unknown])[];

function mapping(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function list(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : [];
}

/**
 * Run every cross-key rule on the root value. Files the config names must be
 * readable; relative paths are taken from `directory` (the config file's).
 */
export function checkConfig(root: unknown, reporter: Reporter, directory: string = process.cwd()): void {
  const top = mapping(root);
  if (top === undefined) return;
  const pools = mapping(top['pools']);
  const poolEntries: Entries = pools === undefined ? [] : Object.entries(pools);
  const context: ListenerContext = { pools: pools === undefined ? undefined : new Set(Object.keys(pools)), directory, used: new Set(), l4Users: new Map() };
  const binds = checkListeners(list(top['listeners']), context, reporter);
  checkAdmin(mapping(top['admin']), binds, reporter);
  checkLogs(mapping(top['accessLog']), mapping(top['log']), reporter);
  checkRateLimitNames(list(top['listeners']), mapping(top['rateLimits']), reporter);
  const redisTls = mapping(mapping(top['redis'])?.['tls']);
  for (const key of ['ca', 'cert', 'key']) checkReadable(['redis', 'tls', key], redisTls?.[key], directory, reporter);
  for (const [name, pool] of poolEntries) {
    checkPool(name, mapping(pool), context.l4Users.get(name), directory, reporter);
    if (!context.used.has(name)) reporter.warn(['pools', name], `pool "${name}" is not used by any route`, { target: 'key' });
  }
}

/** What the listener checks need and collect. */
interface ListenerContext {
  /** Pool names defined, or undefined when `pools` is not a mapping (the schema reports that). */
  readonly pools: ReadonlySet<string> | undefined;
  /** Directory relative file paths are resolved against. */
  readonly directory: string;
  /** Pool names some route refers to. */
  readonly used: Set<string>;
  /** Pools used by a tcp or tls-passthrough listener: the first such listener's index. */
  readonly l4Users: Map<string, number>;
}

type ListenerProtocolName = (typeof LISTENER_PROTOCOLS)[number];

/** A listener's protocol as written, or the default; undefined when it is not one (the schema reports that). */
function protocolOf(listener: Record<string, unknown>): ListenerProtocolName | undefined {
  const protocol = listener['protocol'] === undefined ? DEFAULTS.protocol : listener['protocol'];
  return LISTENER_PROTOCOLS.find((known) => known === protocol);
}

/** `"tcp"` as written, or `"http" (the default)`, for messages. */
function describeProtocol(path: KeyPath, listener: Record<string, unknown>, reporter: Reporter): string {
  return listener['protocol'] === undefined ? `"${DEFAULTS.protocol}" (the default)` : reporter.describe([...path, 'protocol']);
}

function isHttp(protocol: ListenerProtocolName): boolean {
  return HTTP_LISTENER_PROTOCOLS.includes(protocol);
}

/** A listener's bind address (port 0 left out: it never clashes). */
interface Bind {
  readonly index: number;
  readonly host: string;
  readonly port: number;
}

/** Checks listeners and their routes, filling `context`; returns the listeners' binds. */
function checkListeners(listeners: readonly unknown[], context: ListenerContext, reporter: Reporter): readonly Bind[] {
  const names = new Map<string, number>();
  const binds: Bind[] = [];
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
    const path = ['listeners', index];
    const protocol = protocolOf(listener);
    if (protocol !== undefined && !isHttp(protocol) && listener['limits'] !== undefined) {
      reporter.error([...path, 'limits'], `limits only apply to "http" and "https" listeners, but this one uses ${describeProtocol(path, listener, reporter)}; remove limits (timeouts.tunnelIdle closes idle connections)`, { target: 'key' });
    } else {
      checkLimits([...path, 'limits'], mapping(listener['limits']), reporter);
    }
    checkListenerTls(path, listener, protocol, context.directory, reporter);
    checkProxyProtocol(path, listener, reporter);
    checkRoutes(path, listener, protocol, context, reporter);
  });
  return binds;
}

/** `https` needs `tls` and nothing else takes it; ALPN protocols are listed once; certificate files must be readable. */
function checkListenerTls(
  path: KeyPath,
  listener: Record<string, unknown>,
  protocol: ListenerProtocolName | undefined,
  directory: string,
  reporter: Reporter,
): void {
  const tls = listener['tls'];
  if (protocol === 'https' && tls === undefined) {
    reporter.error([...path, 'protocol'], `protocol "https" requires "tls" with the certificates to serve, e.g. tls: { certificates: [{ cert: example.com.crt, key: example.com.key }] }`);
  }
  if (protocol !== undefined && protocol !== 'https' && tls !== undefined) {
    const hint = protocol === 'tls-passthrough' ? 'a tls-passthrough listener forwards TLS untouched to backends that terminate it; remove tls' : protocol === 'http' ? 'set protocol: https to terminate TLS' : 'remove tls, or use protocol https or tls-passthrough';
    reporter.error([...path, 'tls'], `tls only applies to protocol "https", but this listener uses ${describeProtocol(path, listener, reporter)}; ${hint}`, { target: 'key' });
  }
  const settings = mapping(tls);
  if (settings === undefined) return;
  const tlsPath = [...path, 'tls'];
  const seen = new Map<string, number>();
  list(settings['alpn']).forEach((protocolName, index) => {
    if (typeof protocolName !== 'string') return;
    const first = seen.get(protocolName);
    if (first === undefined) seen.set(protocolName, index);
    else reporter.error([...tlsPath, 'alpn', index], `ALPN protocol ${reporter.describe([...tlsPath, 'alpn', index])} is listed twice (also alpn[${first}])`);
  });
  list(settings['certificates']).forEach((raw, index) => {
    const certificate = mapping(raw);
    if (certificate === undefined) return;
    for (const key of ['cert', 'key']) checkReadable([...tlsPath, 'certificates', index, key], certificate[key], directory, reporter);
  });
}

/** Reports a file path (relative to `directory`) that cannot be opened for reading. */
function checkReadable(path: KeyPath, file: unknown, directory: string, reporter: Reporter): void {
  if (typeof file !== 'string' || file === '') return;
  const resolved = resolveConfigPath(directory, file);
  const reason = unreadableReason(resolved);
  if (reason !== undefined) reporter.error(path, `cannot read ${JSON.stringify(resolved)}: ${reason}`);
}

/** A PROXY header is only accepted from trusted peers, so `acceptProxyProtocol` needs them; listing them alone does nothing. */
function checkProxyProtocol(path: KeyPath, listener: Record<string, unknown>, reporter: Reporter): void {
  const accept = listener['acceptProxyProtocol'] === true;
  const trusted = listener['trustedProxies'];
  if (accept && trusted === undefined) {
    reporter.error([...path, 'acceptProxyProtocol'], 'acceptProxyProtocol: true requires "trustedProxies": the addresses or CIDRs of the load balancers allowed to send a PROXY header (anyone else could forge client addresses), e.g. trustedProxies: [10.0.0.0/8]');
  } else if (accept && Array.isArray(trusted) && trusted.length === 0) {
    reporter.error([...path, 'trustedProxies'], 'acceptProxyProtocol: true requires at least one trusted proxy: list the addresses or CIDRs of the load balancers allowed to send a PROXY header');
  } else if (!accept && Array.isArray(trusted) && trusted.length > 0) {
    reporter.warn([...path, 'trustedProxies'], 'trustedProxies has no effect without acceptProxyProtocol: true', { target: 'key' });
  }
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

/**
 * The process log and the access log must not share a file (two writers
 * interleave partial lines, and log pipelines parse each file one way); both
 * on standard output is allowed but warned about.
 */
function checkLogs(accessLog: Record<string, unknown> | undefined, log: Record<string, unknown> | undefined, reporter: Reporter): void {
  const destination = log?.['destination'];
  if (typeof destination !== 'string' || destination === 'stderr' || accessLog?.['enabled'] === false) return;
  const path = ['log', 'destination'];
  const file = accessLog?.['path'];
  const accessToStdout = file === undefined || file === '-';
  if (destination === 'stdout') {
    if (accessToStdout) reporter.warn(path, 'the process log and the access log both go to standard output, so their lines interleave; set accessLog.path, or log.destination: stderr');
    return;
  }
  if (typeof file === 'string' && !accessToStdout && resolve(file) === resolve(destination)) {
    reporter.error(path, `log.destination ${reporter.describe(path)} is the access log's file (accessLog.path); write the process log to another file, stderr or stdout`);
  }
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::';
}

function checkRoutes(
  listenerPath: KeyPath,
  listener: Record<string, unknown>,
  protocol: ListenerProtocolName | undefined,
  context: ListenerContext,
  reporter: Reporter,
): void {
  const path = [...listenerPath, 'routes'];
  const routes = list(listener['routes']);
  const l4 = protocol !== undefined && !isHttp(protocol);
  const uses = (): string => describeProtocol(listenerPath, listener, reporter);
  if (protocol === 'tcp' && routes.length > 1) {
    reporter.error([...path, 1], `a tcp listener has exactly one route (a connection carries nothing to route on), found ${routes.length}; use one tcp listener per pool, or tls-passthrough to route TLS by SNI`);
  }
  let catchAll: number | undefined;
  routes.forEach((raw, index) => {
    const route = mapping(raw);
    if (route === undefined) return;
    const routePath = [...path, index];
    if (catchAll !== undefined && protocol !== 'tcp') {
      reporter.warn(routePath, `this route is never reached: routes[${catchAll}] before it matches every ${protocol === 'tls-passthrough' ? 'connection' : 'request'}`);
    }
    const pool = route['pool'];
    const hasPool = pool !== undefined;
    const hasRedirect = route['redirect'] !== undefined;
    if (!hasPool && !hasRedirect) reporter.error(routePath, l4 ? 'a route needs "pool"' : 'a route needs "pool" or "redirect"');
    if (hasPool && hasRedirect) reporter.error([...routePath, 'redirect'], 'give either "pool" or "redirect", not both', { target: 'key' });
    if (typeof pool === 'string') {
      context.used.add(pool);
      if (l4 && !context.l4Users.has(pool)) context.l4Users.set(pool, listenerPath[1] as number);
      if (context.pools !== undefined && !context.pools.has(pool)) reportUnknownPool([...routePath, 'pool'], context.pools, reporter);
    }
    if (l4) {
      for (const key of ['redirect', 'stripPrefix', 'filters']) {
        if (route[key] !== undefined) reporter.error([...routePath, key], `${key} only applies to "http" and "https" listeners, but this one uses ${uses()}`, { target: 'key' });
      }
    } else if (hasRedirect) {
      if (route['stripPrefix'] !== undefined) {
        reporter.error([...routePath, 'stripPrefix'], 'stripPrefix does not apply to a redirect: the new URL keeps the request\'s path; remove stripPrefix', { target: 'key' });
      }
      if (protocol !== undefined) checkRedirectTarget([...routePath, 'redirect'], mapping(route['redirect']), protocol, reporter);
    }
    if (protocol === 'tcp') {
      if (route['match'] !== undefined) {
        reporter.error([...routePath, 'match'], 'a tcp listener does not match: every connection goes to its route\'s pool; remove match (tls-passthrough listeners route TLS by sni)', { target: 'key' });
      }
      return;
    }
    const match = route['match'] === undefined || route['match'] === null ? {} : mapping(route['match']);
    if (match === undefined) return;
    if (Object.keys(match).length === 0) catchAll ??= index;
    if (protocol === 'tls-passthrough') {
      for (const key of Object.keys(match)) {
        if (key !== 'sni') {
          reporter.error([...routePath, 'match', key], `only "sni" can be matched on a tls-passthrough listener (the rest of the connection is encrypted), found "${key}"`, { target: 'key' });
        }
      }
      return;
    }
    if (match['sni'] !== undefined && protocol !== undefined) {
      const hint = protocol === 'https' ? '; on an https listener match "host"' : '';
      reporter.error([...routePath, 'match', 'sni'], `sni only applies to tls-passthrough listeners, but this one uses ${uses()}${hint}`, { target: 'key' });
    }
    const pathKeys = ['path', 'pathPrefix', 'pathRegex'].filter((key) => match[key] !== undefined);
    if (pathKeys.length > 1) {
      reporter.error([...routePath, 'match', pathKeys[1] ?? ''], `use only one of path, pathPrefix and pathRegex (found ${pathKeys.join(' and ')})`, { target: 'key' });
    }
    checkStripPrefix(routePath, route['stripPrefix'], match, reporter);
  });
}

/** Warns about a redirect that keeps the scheme and host: clients may be sent straight back. */
function checkRedirectTarget(path: KeyPath, redirect: Record<string, unknown> | undefined, protocol: ListenerProtocolName, reporter: Reporter): void {
  if (redirect === undefined || redirect['host'] !== undefined || redirect['port'] !== undefined) return;
  const scheme = redirect['scheme'];
  if (scheme !== undefined && scheme !== protocol) return;
  reporter.warn(path, `this redirect keeps the request's scheme ("${protocol}") and host, so clients may be sent back here in a loop; set scheme, host or port`, { target: 'key' });
}

/** Every policy a route's `rateLimit` filter names is defined in the top-level `rateLimits`; warns about policies no route uses. */
function checkRateLimitNames(listeners: readonly unknown[], policies: Record<string, unknown> | undefined, reporter: Reporter): void {
  const defined = new Set(Object.keys(policies ?? {}));
  const used = new Set<string>();
  listeners.forEach((rawListener, l) => {
    list(mapping(rawListener)?.['routes']).forEach((rawRoute, r) => {
      list(mapping(rawRoute)?.['filters']).forEach((rawFilter, f) => {
        list(mapping(rawFilter)?.['rateLimit']).forEach((name, n) => {
          if (typeof name !== 'string') return;
          used.add(name);
          if (defined.has(name)) return;
          const path: KeyPath = ['listeners', l, 'routes', r, 'filters', f, 'rateLimit', n];
          const hint = reporter.isInterpolated(path) ? '' : didYouMean(name, defined);
          const known = defined.size === 0 ? 'no rateLimits are defined (add a top-level rateLimits mapping)' : `defined policies: ${[...defined].join(', ')}`;
          reporter.error(path, `unknown rate-limit policy ${reporter.describe(path)}${hint}; ${known}`);
        });
      });
    });
  });
  for (const name of defined) if (!used.has(name)) reporter.warn(['rateLimits', name], `rate-limit policy "${name}" is not used by any route`, { target: 'key' });
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

/** `"hash" or "maglev"`: the registered algorithms that read the hash key. */
function hashingNames(): string {
  const names = balancerNames().filter(balancerHashes).map((name) => `"${name}"`);
  return names.length <= 1 ? names.join('') : `${names.slice(0, -1).join(', ')} or ${names.at(-1)}`;
}

function checkPool(name: string, pool: Record<string, unknown> | undefined, l4User: number | undefined, directory: string, reporter: Reporter): void {
  if (pool === undefined) return;
  const path = ['pools', name];
  const algorithm = pool['algorithm'] === undefined ? DEFAULTS.algorithm : pool['algorithm'];
  // A balancer module's `hashes` is known only once it is loaded: resolveModules checks those.
  if (typeof algorithm === 'string' && hasBalancer(algorithm) && !balancerHashes(algorithm)) {
    const uses = pool['algorithm'] === undefined ? `"${algorithm}" (the default)` : reporter.describe([...path, 'algorithm']);
    for (const key of ['hashKey', 'hashBalanceFactor']) {
      if (pool[key] !== undefined) {
        reporter.error([...path, key], `${key} only applies to algorithm ${hashingNames()}, but this pool uses ${uses}`, { target: 'key' });
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
  const names = new Map<string, number>();
  list(pool['backends']).forEach((raw, index) => {
    const backendName = mapping(raw)?.['name'];
    if (typeof backendName !== 'string') return;
    const first = names.get(backendName);
    if (first === undefined) names.set(backendName, index);
    else reporter.error([...path, 'backends', index, 'name'], `duplicate backend name "${backendName}" (also backends[${first}]); names tell backends apart in the dashboard and logs`);
  });
  const backends = list(pool['backends']);
  // Discovered members are primaries: a pool whose members come from discovery needs no file backends.
  const discovers = pool['discovery'] !== undefined;
  if (!discovers && (Array.isArray(pool['backends']) || pool['backends'] === undefined)) {
    if (backends.length === 0) {
      reporter.warn(pool['backends'] === undefined ? path : [...path, 'backends'], `pool "${name}" has no backends: requests routed to it get 503 no_backend until backends are added through the admin API`, { target: 'key' });
    }
  }
  if (!discovers && backends.length > 0 && backends.every((backend) => mapping(backend)?.['backup'] === true)) {
    reporter.warn([...path, 'backends'], 'every backend has backup: true, so the pool has no primary; backups only stand in for primaries (set backup: false on at least one)');
  }
  checkBackendTls(path, pool, backends, directory, reporter);
  checkHealthCheck([...path, 'healthCheck'], mapping(pool['healthCheck']), reporter);
  checkOutlier([...path, 'outlier'], mapping(pool['outlier']), reporter);
  checkUnreachable([...path, 'unreachable'], mapping(pool['unreachable']), reporter);
  checkRetry([...path, 'retry'], mapping(pool['retry']), reporter);
  if (l4User !== undefined) checkL4Pool(path, pool, l4User, reporter);
}

/** h2c is HTTP/2 without TLS, so its backends cannot use TLS; CA files must be readable. */
function checkBackendTls(path: KeyPath, pool: Record<string, unknown>, backends: readonly unknown[], directory: string, reporter: Reporter): void {
  backends.forEach((raw, index) => {
    const tls = mapping(raw)?.['tls'];
    const tlsPath = [...path, 'backends', index, 'tls'];
    if (pool['protocol'] === 'h2c' && tls !== undefined && tls !== false) {
      reporter.error(tlsPath, `h2c is cleartext; for TLS backends use protocol http1 (this pool has protocol ${reporter.describe([...path, 'protocol'])})`, { target: 'key' });
    }
    const ca = mapping(tls)?.['ca'];
    if (ca !== undefined) checkReadable([...tlsPath, 'ca'], ca, directory, reporter);
  });
}

const HTTP_RETRY_STATUSES: ReadonlySet<string> = new Set(['502', '503', '504']);

/** A tcp or tls-passthrough listener forwards bytes: cookies and HTTP statuses never exist there. */
function checkL4Pool(path: KeyPath, pool: Record<string, unknown>, listener: number, reporter: Reporter): void {
  const where = `on connections from tcp and tls-passthrough listeners (listeners[${listener}] uses this pool)`;
  if (pool['sticky'] !== undefined) {
    reporter.warn([...path, 'sticky'], `sticky is ignored ${where}: they carry no cookies`, { target: 'key' });
  }
  const on = mapping(pool['retry'])?.['on'];
  const statuses = [...new Set(list(on).map(String).filter((condition) => HTTP_RETRY_STATUSES.has(condition)))];
  if (statuses.length > 0) {
    reporter.warn([...path, 'retry', 'on'], `retry on ${statuses.join(', ')} is ignored ${where}: they see no HTTP status (connect-failure still applies)`, { target: 'key' });
  }
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
  checkCap(path, outlier, { key: 'ejectionTime', fallback: DEFAULTS.ejectionTime }, { key: 'maxEjectionTime', fallback: DEFAULTS.maxEjectionTime }, 'it caps how long one ejection lasts', reporter);
}

function checkUnreachable(path: KeyPath, unreachable: Record<string, unknown> | undefined, reporter: Reporter): void {
  if (unreachable === undefined) return;
  checkCap(path, unreachable, { key: 'backoff', fallback: DEFAULTS.unreachableBackoff }, { key: 'maxBackoff', fallback: DEFAULTS.unreachableMaxBackoff }, 'it caps how long a backend stays out', reporter);
}

/** A duration and the cap on it (`ejectionTime` and `maxEjectionTime`): the cap must not be shorter. The message lands on the key the user wrote. */
function checkCap(
  path: KeyPath,
  parent: Record<string, unknown>,
  base: { readonly key: string; readonly fallback: string },
  cap: { readonly key: string; readonly fallback: string },
  why: string,
  reporter: Reporter,
): void {
  const baseMs = durationAt(parent, base.key, base.fallback);
  const capMs = durationAt(parent, cap.key, cap.fallback);
  if (baseMs === undefined || capMs === undefined || capMs >= baseMs) return;
  if (parent[cap.key] !== undefined) {
    const capPath = [...path, cap.key];
    reporter.error(capPath, `${cap.key} ${reporter.describe(capPath)} is shorter than ${base.key} ${shown(path, parent, base.key, base.fallback, reporter)}; ${why}`);
  } else {
    const basePath = [...path, base.key];
    reporter.error(basePath, `${base.key} ${reporter.describe(basePath)} is longer than ${cap.key} ("${cap.fallback}", the default); raise ${cap.key} too`);
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

