/**
 * The config file schema: the single source of truth for the file format, its
 * defaults and ranges, the resolved {@link UsherConfig} type it produces, the
 * JSON Schema (`usher schema`) and docs/config.md.
 *
 * Cross-field rules (pool references, duplicate names and binds, a listener's
 * maxUriBytes below its maxHeaderBytes, hash options on non-hash pools,
 * http-only keys on tcp health checks, fastInterval and ejection-time order,
 * the admin bind and token, what each listener protocol allows in its routes,
 * tls and PROXY protocol settings, readable certificate files) live in
 * checks.ts, which sees the whole file at once.
 */
import { z } from 'zod';
import { BUILTIN_BALANCER_SUMMARIES, BUILTIN_BALANCERS, DEFAULT_BALANCER } from '../balancer/names.ts';
import { balancerNames, hasBalancer } from '../balancer/registry.ts';
import { discoverySchema } from './discovery-schema.ts';
import { filterSchema } from './filters-schema.ts';
import { rateLimitsSchema } from './ratelimit-schema.ts';
import { redisSchema } from './redis-schema.ts';
import { kubernetesSchema } from './kubernetes-schema.ts';
import type { AccessLogFormat, AdminState, HealthCheckConfig, ListenerProtocol, LogLevel, RetryCondition, UsherConfig } from './types.ts';
import {
  CODE_ONLY, backendAddress, bindAddress, bodyMatch, byteSize, cidr, cookieName, documented, duration, filePath, flag, hashKey, headerName,
  hostHeader, hostMatch, integerIn, matchValue, method, name, percentIn, queryName, regex, secret, serverName,
  serverNameMatch, statusRanges, text, urlHost, urlPath,
} from './values.ts';

/** Health check kinds; the first is the default. */
export const HEALTH_CHECK_TYPES = ['http', 'tcp'] as const;

/** Keys of `healthCheck` that only apply to `type: http`. */
export const HTTP_CHECK_KEYS: readonly string[] = ['path', 'expectStatus', 'expectBody', 'host'];

/** Failures a pool can retry. */
export const RETRY_CONDITIONS = ['connect-failure', 'reset', 'timeout', '502', '503', '504'] as const satisfies readonly RetryCondition[];

/** A backend's operator states; the first is the default. */
export const ADMIN_STATES = ['enabled', 'draining', 'disabled'] as const satisfies readonly AdminState[];

/** What a listener speaks to clients; the first is the default. */
export const LISTENER_PROTOCOLS = ['http', 'https', 'tcp', 'tls-passthrough'] as const satisfies readonly ListenerProtocol[];

/** Listener protocols that carry HTTP requests (routes match requests, redirects, limits). */
export const HTTP_LISTENER_PROTOCOLS: readonly string[] = ['http', 'https'];

/** TLS versions an https listener can require at least; the first is the default. */
export const TLS_VERSIONS = ['TLSv1.2', 'TLSv1.3'] as const;

/** ALPN protocols an https listener can offer. */
export const ALPN_PROTOCOLS = ['h2', 'http/1.1'] as const;

/** How usher speaks HTTP to a pool's backends; the first is the default. */
export const POOL_PROTOCOLS = ['http1', 'h2c'] as const;

/** PROXY protocol versions usher can send to backends. */
export const PROXY_PROTOCOL_VERSIONS = ['v1', 'v2'] as const;

/** Access log line formats; the first is the default. */
export const ACCESS_LOG_FORMATS = ['json', 'combined'] as const satisfies readonly AccessLogFormat[];

/** Process log levels, most verbose first. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const satisfies readonly LogLevel[];

/** Redirect statuses; 308 is the default. */
export const REDIRECT_CODES = [301, 302, 303, 307, 308] as const;

/** Schemes a redirect can send clients to. */
export const REDIRECT_SCHEMES = ['http', 'https'] as const;

/** Defaults, written as they would be in the file. */
export const DEFAULTS = {
  protocol: 'http',
  maxHeaderBytes: '32KiB',
  maxHeaders: 100,
  maxUriBytes: '8KiB',
  /** Unlimited. */
  maxBodyBytes: 0,
  maxRequestsPerConnection: 1000,
  listenerMaxConnections: 10_000,
  /** Unlimited. */
  maxConnectionsPerClient: 0,
  headerTimeout: '10s',
  bodyIdleTimeout: '60s',
  keepAliveTimeout: '60s',
  sendTimeout: '60s',
  tunnelIdleTimeout: '1h',
  acceptProxyProtocol: false,
  tlsMinVersion: 'TLSv1.2',
  alpn: ['h2', 'http/1.1'],
  redirectCode: 308,
  poolProtocol: 'http1',
  drainTimeout: '30s',
  insecureSkipVerify: false,
  algorithm: DEFAULT_BALANCER,
  hashKey: 'client-ip',
  weight: 1,
  backup: false,
  state: 'enabled',
  connectTimeout: '5s',
  responseTimeout: '60s',
  idleTimeout: '60s',
  stickyCookie: 'usher_sticky',
  stickyTtl: '1h',
  healthCheckType: 'http',
  healthCheckPath: '/health',
  healthCheckInterval: '2s',
  /** Capped at the interval when `fastInterval` is left out. */
  healthCheckFastInterval: '500ms',
  healthCheckTimeout: '1s',
  rise: 2,
  fall: 3,
  expectStatus: '200-399',
  consecutiveFailures: 5,
  ejectionTime: '30s',
  maxEjectionTime: '300s',
  maxEjectionPercent: 50,
  retryAttempts: 2,
  /** Safe for every request: a connect failure reached no backend; a reset is retried only for idempotent requests with no body sent. */
  retryOn: ['connect-failure', 'reset'],
  unreachableBackoff: '1s',
  unreachableMaxBackoff: '10s',
  retryBudget: 20,
  minRetriesPerSecond: 3,
  queueSize: 128,
  queueTimeout: '5s',
  accessLogFormat: 'json',
  logLevel: 'info',
  logDestination: 'stderr',
  shutdownTimeout: '30s',
} as const;

/** {@link DEFAULTS}.healthCheckFastInterval in milliseconds. */
const DEFAULT_FAST_INTERVAL_MS = 500;

/** Most connections (or queued requests) any limit may name. */
const MAX_CONNECTIONS = 1_000_000;

/** Ranges of a listener's size limits in bytes, shared with the rule across them in checks.ts. */
export const LISTENER_SIZE_RANGES = {
  maxHeaderBytes: { min: 1024, max: 1024 * 1024 },
  maxUriBytes: { min: 256, max: 1024 * 1024 },
} as const;

const VALUE_DOC = { description: 'Exact value, or a regular expression after `~` that must match the whole value (`~~x` is the regex `~x`).' };

const matchSchema = documented(
  z.strictObject({
    sni: serverNameMatch({ description: 'tls-passthrough listeners only (the one key they can match): the server name the client asked for in its TLS ClientHello is this name, or for `*.example.com` any name ending in `.example.com`. Case-insensitive. A connection without SNI only reaches a route without `match`.', examples: ['db.example.com', '*.example.com'] }).optional(),
    host: hostMatch({ description: 'Host header is this name, or for `*.example.com` any name ending in `.example.com` (not `example.com` itself). Case-insensitive; the request\'s port and a trailing dot are ignored.', examples: ['api.example.com', '*.example.com'] }).optional(),
    path: urlPath({ description: 'Request path equals this exactly (the query string is not part of the path).', examples: ['/healthz'] }).optional(),
    pathPrefix: urlPath({ description: 'Request path starts with this, at a segment boundary: `/api` matches `/api` and `/api/x`, not `/apix`; `/api/` matches paths starting with `/api/`.', examples: ['/api/'] }).optional(),
    pathRegex: regex({ description: 'Request path matches this JavaScript regular expression, which must match the whole path (write `.*` to search).', examples: ['/users/[0-9]+'] }).optional(),
    methods: documented(z.array(method({ description: 'An HTTP method.' }), { error: 'expected a list of HTTP methods' }).min(1, { error: 'list at least one method, or leave out "methods"' }), { description: 'Request method is one of these (uppercase, exact: `GET` does not imply `HEAD`).', examples: [['GET', 'POST']] }).optional(),
    headers: documented(z.record(headerName(), matchValue(VALUE_DOC), { error: 'expected a mapping of header name to value' }), { description: 'Each request header has this value: exact, or `~regex`. Names are case-insensitive.', examples: [{ 'x-canary': '1' }] }).optional(),
    query: documented(z.record(queryName(), matchValue(VALUE_DOC), { error: 'expected a mapping of query parameter to value' }), { description: 'Each query parameter has this value: exact, or `~regex`.', examples: [{ version: '~v[23]' }] }).optional(),
    cookies: documented(z.record(cookieName(), matchValue(VALUE_DOC), { error: 'expected a mapping of cookie name to value' }), { description: 'Each cookie has this value: exact, or `~regex`.', examples: [{ plan: 'beta' }] }).optional(),
  }, { error: 'expected a mapping of match conditions' }),
  { description: 'Conditions a request must all meet. Leave `match` out for a catch-all route. Use at most one of `path`, `pathPrefix`, `pathRegex`. tls-passthrough listeners match only `sni`; tcp listeners do not match.', examples: [{ pathPrefix: '/api/', methods: ['GET'] }] },
);

const redirectSchema = documented(
  z.strictObject({
    scheme: documented(z.enum(REDIRECT_SCHEMES, { error: `expected one of ${REDIRECT_SCHEMES.join(', ')}` }), { description: 'Scheme of the new URL. Default: the request\'s (`https` on an https listener).', examples: ['https'] }).optional(),
    host: urlHost({ description: 'Host of the new URL, without a port (set `port`). Default: the request\'s Host, without its port.', examples: ['www.example.com'] }).optional(),
    port: integerIn('port', 1, 65535, { description: 'Port of the new URL. Default: none, so the scheme\'s default port (the request\'s port is not kept).', examples: [8443] }).optional(),
    code: documented(z.literal(REDIRECT_CODES, { error: `expected one of ${REDIRECT_CODES.join(', ')}` }), { description: 'Redirect status. 308 and 307 keep the method and body (a POST stays a POST); 301, 302 and 303 let clients retry with GET. 301 and 308 are cached by browsers.', examples: [301] }).default(DEFAULTS.redirectCode),
  }, { error: 'expected a redirect mapping' }),
  { description: 'Answer matching requests with a redirect to the same path and query on another scheme, host or port, instead of proxying (http and https listeners). Give either `pool` or `redirect`.', examples: [{ scheme: 'https' }, { host: 'www.example.com', code: 301 }] },
);

const routeSchema = documented(
  z.strictObject({
    name: name('route', { description: 'Name used in logs and metrics.', examples: ['api'] }).optional(),
    match: matchSchema.optional(),
    pool: text({ description: 'Name of the pool (under `pools`) that serves matching requests (or connections, on tcp and tls-passthrough listeners). Give either `pool` or `redirect`.', examples: ['api'] }, 'expected a pool name').optional(),
    redirect: redirectSchema.optional(),
    stripPrefix: urlPath({ description: 'Remove this prefix from the path before proxying, at a segment boundary (`/api/users?x=1` becomes `/users?x=1`, `/api` becomes `/`). http and https listeners; not with `redirect`. Runs before the route\'s `filters`.', examples: ['/api'] }).optional(),
    filters: documented(z.array(filterSchema, { error: 'expected a list of filters' }), { description: 'Filters the route\'s requests go through, in this order, before the pool (or the `redirect`); responses go back through them in reverse (http and https listeners). A route without filters pays nothing for them.', examples: [[{ ipAllow: ['10.0.0.0/8'] }, { headers: { request: { set: { 'x-env': 'prod' } } } }, { module: './filters/tenant.ts', options: { header: 'x-tenant' } }]] }).optional(),
  }, { error: 'expected a route mapping with "pool" or "redirect"' }),
  { description: 'Routes are tried in order; the first whose `match` fits the request (or, on tls-passthrough listeners, the connection) wins. A tcp listener has exactly one route, without `match`.' },
);

const limitsSchema = documented(
  z.strictObject({
    maxHeaderBytes: byteSize('maxHeaderBytes', LISTENER_SIZE_RANGES.maxHeaderBytes.min, LISTENER_SIZE_RANGES.maxHeaderBytes.max, { description: 'Largest request head (request line and header fields); a larger one is answered 431. Must be more than `maxUriBytes`.', examples: ['64KiB', 65536] }).prefault(DEFAULTS.maxHeaderBytes),
    maxHeaders: integerIn('maxHeaders', 1, 10_000, { description: 'Most header fields in one request; more are answered 431.', examples: [200] }).default(DEFAULTS.maxHeaders),
    maxUriBytes: byteSize('maxUriBytes', LISTENER_SIZE_RANGES.maxUriBytes.min, LISTENER_SIZE_RANGES.maxUriBytes.max, { description: 'Longest request target (path and query); a longer one is answered 414. Less than `maxHeaderBytes`, which it is part of.', examples: ['16KiB'] }).prefault(DEFAULTS.maxUriBytes),
    maxBodyBytes: byteSize('maxBodyBytes', 0, undefined, { description: 'Largest request body; a larger one is answered 413. 0 means unlimited, the default: bodies are streamed to the backend, never buffered.', examples: ['10MiB'] }).prefault(DEFAULTS.maxBodyBytes),
    maxRequestsPerConnection: integerIn('maxRequestsPerConnection', 1, MAX_CONNECTIONS, { description: 'Requests served on one kept-alive connection; the last is answered with `Connection: close`, so clients reconnect and spread over instances (nginx `keepalive_requests`).', examples: [100] }).default(DEFAULTS.maxRequestsPerConnection),
    maxConnections: integerIn('maxConnections', 1, MAX_CONNECTIONS, { description: 'Open client connections on this listener; past it a new connection is answered 503 and closed.', examples: [50_000] }).default(DEFAULTS.listenerMaxConnections),
    maxConnectionsPerClient: integerIn('maxConnectionsPerClient', 0, MAX_CONNECTIONS, { description: 'Open connections from one client IP address; past it a new one is answered 503 and closed. 0 means unlimited, the default, since many clients can share one NAT address.', examples: [100] }).default(DEFAULTS.maxConnectionsPerClient),
  }, { error: 'expected a limits mapping' }),
  { description: 'What one client may send and hold open. Every key has a default.', examples: [{ maxHeaderBytes: '64KiB', maxBodyBytes: '10MiB' }] },
);

const listenerTimeoutsSchema = documented(
  z.strictObject({
    header: duration({ description: 'A request head must be complete within this long of its first byte, or it is answered 408 (against slowloris).', examples: ['5s'] }).prefault(DEFAULTS.headerTimeout),
    bodyIdle: duration({ description: 'Longest pause between two reads of a request body before it is answered 408 (against slow POSTs; nginx `client_body_timeout`).', examples: ['30s'] }).prefault(DEFAULTS.bodyIdleTimeout),
    keepAlive: duration({ description: 'An idle kept-alive client connection is closed after this long.', examples: ['75s'] }).prefault(DEFAULTS.keepAliveTimeout),
    send: duration({ description: 'A client that stops reading its response is disconnected after this long without progress (nginx `send_timeout`).', examples: ['30s'] }).prefault(DEFAULTS.sendTimeout),
    tunnelIdle: duration({ description: 'A tunnel (a tcp or tls-passthrough connection, a WebSocket) with no bytes either way for this long is closed (Envoy `tcp_proxy` `idle_timeout`). Applies to every listener protocol.', examples: ['10m'] }).prefault(DEFAULTS.tunnelIdleTimeout),
  }, { error: 'expected a timeouts mapping' }).transform((t) => ({ headerMs: t.header, bodyIdleMs: t.bodyIdle, keepAliveMs: t.keepAlive, sendMs: t.send, tunnelIdleMs: t.tunnelIdle })),
  { description: 'Client-side timeouts. Every key has a default.', examples: [{ header: '5s', keepAlive: '75s' }] },
);

const certificateSchema = documented(
  z.strictObject({
    cert: filePath({ description: 'PEM file with the certificate chain, leaf first. A relative path is relative to the config file\'s directory.', examples: ['/etc/usher/tls/example.com.crt'] }),
    key: filePath({ description: 'PEM file with the certificate\'s private key. A relative path is relative to the config file\'s directory.', examples: ['/etc/usher/tls/example.com.key'] }),
  }, { error: 'expected a certificate mapping with "cert" and "key"' }).transform((c) => ({ certFile: c.cert, keyFile: c.key })),
  { description: 'One certificate and its key; both files must be readable when the config is loaded.', examples: [{ cert: 'tls/example.com.crt', key: 'tls/example.com.key' }] },
);

const tlsSchema = documented(
  z.strictObject({
    certificates: documented(z.array(certificateSchema, { error: 'expected a list of certificates' }).min(1, { error: 'list at least one certificate' }), { description: 'Certificates, chosen by the SNI the client sends: each serves the names in its SAN (or CN), exact and `*.` wildcards. The first one is served when no name matches or the client sends none. The files are read again on every reload.', examples: [[{ cert: '/etc/usher/tls/example.com.crt', key: '/etc/usher/tls/example.com.key' }]] }),
    minVersion: documented(z.enum(TLS_VERSIONS, { error: `expected one of ${TLS_VERSIONS.join(', ')}` }), { description: 'Oldest TLS version accepted.', examples: ['TLSv1.3'] }).default(DEFAULTS.tlsMinVersion),
    alpn: documented(
      z.array(z.enum(ALPN_PROTOCOLS, { error: `expected one of ${ALPN_PROTOCOLS.join(', ')}` }), { error: 'expected a list of ALPN protocols' }).min(1, { error: `list at least one of ${ALPN_PROTOCOLS.join(', ')}` }),
      { description: 'Application protocols offered in the TLS handshake (ALPN), in order of preference, each listed once. `[http/1.1]` keeps clients on HTTP/1.1.', examples: [['http/1.1']] },
    ).prefault(() => [...DEFAULTS.alpn]),
  }, { error: 'expected a tls mapping with "certificates"' }),
  { description: 'TLS termination: required for `https` listeners and allowed on no other (a tls-passthrough listener forwards TLS untouched).', examples: [{ certificates: [{ cert: '/etc/usher/tls/example.com.crt', key: '/etc/usher/tls/example.com.key' }] }] },
);

const listenerSchema = documented(
  z.strictObject({
    name: name('listener', { description: 'Unique name used in logs, metrics and the admin API.', examples: ['web'] }),
    bind: bindAddress({ description: 'Address and port to listen on (`host:port`; port 0 picks a free port).', examples: ['0.0.0.0:8080', '[::]:8080'] }),
    protocol: documented(z.enum(LISTENER_PROTOCOLS, { error: `expected one of ${LISTENER_PROTOCOLS.join(', ')}` }), { description: 'Protocol spoken to clients: `http` (HTTP/1.1), `https` (TLS terminated by usher; needs `tls`), `tcp` (each connection is forwarded to one pool) or `tls-passthrough` (TLS forwarded untouched, routed by the SNI of the ClientHello).', examples: ['https'] }).default(DEFAULTS.protocol),
    tls: tlsSchema.optional(),
    acceptProxyProtocol: flag({ description: 'Read a PROXY protocol header (v1 or v2) at the start of each connection and use the client address it carries. Only peers in `trustedProxies` may send one; others are refused.', examples: [true] }).default(DEFAULTS.acceptProxyProtocol),
    trustedProxies: documented(z.array(cidr({ description: 'An IP address or CIDR.', examples: ['10.0.0.0/8'] }), { error: 'expected a list of IP addresses or CIDRs' }), { description: 'Addresses (IPv4 and IPv6 CIDRs, or single addresses) of the load balancers allowed to send a PROXY protocol header; required with `acceptProxyProtocol`.', examples: [['10.0.0.0/8', '127.0.0.1', '::1/128']] }).prefault(() => []),
    routes: documented(z.array(routeSchema, { error: 'expected a list of routes' }).min(1, { error: 'a listener needs at least one route' }), { description: 'Ordered routes; the first that matches wins.', examples: [[{ match: { pathPrefix: '/api' }, pool: 'api' }, { pool: 'web' }]] }),
    limits: limitsSchema.prefault({}),
    timeouts: listenerTimeoutsSchema.prefault({}),
  }, { error: 'expected a listener mapping' }),
  { description: 'A socket that accepts client connections and routes their requests (or, for tcp and tls-passthrough, the connections themselves).' },
);

const backendTlsSchema = documented(
  z.union([
    z.boolean({ error: 'expected true or a tls mapping' }).transform((on) => (on ? { insecureSkipVerify: DEFAULTS.insecureSkipVerify } : undefined)),
    z.strictObject({
      servername: serverName({ description: 'Server name sent in the handshake (SNI), which the backend\'s certificate must also match. Default: the backend\'s host, when it is a name.', examples: ['api.internal'] }).optional(),
      ca: filePath({ description: 'PEM file with the CA certificates to verify the backend with, instead of the system\'s. A relative path is relative to the config file\'s directory.', examples: ['/etc/usher/tls/internal-ca.pem'] }).optional(),
      insecureSkipVerify: flag({ description: 'Accept any certificate: the connection is encrypted but the backend is not authenticated. For testing only.', examples: [true] }).default(DEFAULTS.insecureSkipVerify),
    }, { error: 'expected a tls mapping' }).transform((t) => ({
      ...(t.servername === undefined ? {} : { servername: t.servername }),
      ...(t.ca === undefined ? {} : { caFile: t.ca }),
      insecureSkipVerify: t.insecureSkipVerify,
    })),
  ], { error: 'expected true (TLS with the default settings) or a tls mapping' }),
  { description: 'Connect to this backend over TLS (health checks too). `true` uses the defaults: verify the certificate against the system\'s CAs for the backend\'s host name. `false`, like leaving the key out, connects in cleartext.', examples: [true, { servername: 'api.internal', ca: '/etc/usher/tls/internal-ca.pem' }] },
);

const backendSchema = documented(
  z.strictObject({
    address: backendAddress({ description: 'Backend `host:port`: its identity in the pool, the admin API and metrics.', examples: ['10.0.0.5:3000', 'app.internal:8080'] }),
    name: name('backend', { description: 'A name for people, shown beside the address by the dashboard, `usher status` and the access log (`backendName`). Unique within the pool.', examples: ['alpha'] }).optional(),
    tls: backendTlsSchema.optional(),
    weight: integerIn('weight', 1, 1000, { description: 'Relative share of requests.', examples: [3] }).default(DEFAULTS.weight),
    backup: flag({ description: 'A backup receives requests only while no primary (non-backup) backend of the pool is available.', examples: [true] }).default(DEFAULTS.backup),
    state: documented(z.enum(ADMIN_STATES, { error: `expected one of ${ADMIN_STATES.join(', ')}` }), { description: 'Operator intent, separate from health: `draining` takes no new requests but finishes those in flight; `disabled` takes nothing.', examples: ['draining'] }).default(DEFAULTS.state),
    maxConnections: integerIn('maxConnections', 1, MAX_CONNECTIONS, { description: 'Most requests in flight to this backend; overrides the pool\'s `maxConnections`.', examples: [50] }).optional(),
  }, { error: 'expected a backend mapping with "address"' }).transform(({ tls, ...backend }) => (tls === undefined ? backend : { ...backend, tls })),
  { description: 'One upstream server.' },
);

const stickySchema = documented(
  z.strictObject({
    cookie: cookieName({ description: 'Cookie that pins a client to a backend.', examples: ['usher_sticky'] }).default(DEFAULTS.stickyCookie),
    ttl: duration({ description: 'How long the pin lasts: the cookie\'s Max-Age, in whole seconds.', examples: ['30m', '1d'] }, { ms: 1000, why: 'it is the cookie\'s Max-Age in seconds' }).prefault(DEFAULTS.stickyTtl),
    secret: secret('secret', { description: 'HMAC key signing the cookie (at least 16 characters; use `${ENV_VAR}`). Without it a random key is made at start, so pins do not survive a restart. Never shown in messages.', examples: ['${STICKY_SECRET}'] }).optional(),
  }, { error: 'expected a sticky mapping' }).transform((s) => ({ cookie: s.cookie, ttlMs: s.ttl, secret: s.secret })),
  { description: 'Session affinity: a signed cookie sends a client back to the same backend while it is available (otherwise it is balanced as usual and re-pinned).', examples: [{ ttl: '12h', secret: '${STICKY_SECRET}' }] },
);

const timeoutsSchema = documented(
  z.strictObject({
    connect: duration({ description: 'TCP connect to a backend.', examples: ['2s'] }).prefault(DEFAULTS.connectTimeout),
    response: duration({ description: 'From sending the request to receiving the response headers.', examples: ['30s'] }).prefault(DEFAULTS.responseTimeout),
    idle: duration({ description: 'How long an unused upstream connection is kept open.', examples: ['90s'] }).prefault(DEFAULTS.idleTimeout),
  }, { error: 'expected a timeouts mapping' }).transform((t) => ({ connectMs: t.connect, responseMs: t.response, idleMs: t.idle })),
  { description: 'Upstream timeouts.', examples: [{ connect: '2s', response: '30s' }] },
);

const healthCheckSchema = documented(
  z.strictObject({
    type: documented(z.enum(HEALTH_CHECK_TYPES, { error: `expected one of ${HEALTH_CHECK_TYPES.join(', ')}` }), { description: '`http` sends `GET path` and checks the status (and body); `tcp` only opens a connection.', examples: ['tcp'] }).default(DEFAULTS.healthCheckType),
    path: urlPath({ description: 'Request path for `http` checks.', examples: ['/healthz'] }).prefault(DEFAULTS.healthCheckPath),
    interval: duration({ description: 'Time between checks of one backend while its state is steady (HAProxy `inter`).', examples: ['5s'] }).prefault(DEFAULTS.healthCheckInterval),
    fastInterval: duration({ description: 'Time between checks while a backend is changing state, so it goes out and comes back sooner (HAProxy `fastinter`). At most `interval`; left out, it is 500ms or `interval` if that is shorter.', examples: ['250ms'], shownDefault: DEFAULTS.healthCheckFastInterval }).optional(),
    timeout: duration({ description: 'A check that has not completed after this long fails.', examples: ['2s'] }).prefault(DEFAULTS.healthCheckTimeout),
    rise: integerIn('rise', 1, 100, { description: 'Consecutive successful checks that bring an unhealthy backend back.', examples: [3] }).default(DEFAULTS.rise),
    fall: integerIn('fall', 1, 100, { description: 'Consecutive failed checks that take a healthy backend out.', examples: [2] }).default(DEFAULTS.fall),
    expectStatus: statusRanges({ description: 'Statuses that pass an `http` check: one code, or codes and inclusive ranges separated by commas.', examples: ['200,204,300-399', 200] }).prefault(DEFAULTS.expectStatus),
    expectBody: bodyMatch({ description: 'The response body must contain this text, or match the regular expression after `~` anywhere (`~~x` is the regex `~x`).', examples: ['ok', '~"status": ?"up"'] }).optional(),
    host: hostHeader({ description: 'Host header of `http` checks. Default: the backend\'s address.', examples: ['health.internal'] }).optional(),
    port: integerIn('port', 1, 65535, { description: 'Check this port instead of the backend\'s.', examples: [9000] }).optional(),
  }, { error: 'expected a healthCheck mapping' }).transform((h) => ({
    type: h.type,
    path: h.path,
    intervalMs: h.interval,
    fastIntervalMs: h.fastInterval ?? Math.min(DEFAULT_FAST_INTERVAL_MS, h.interval),
    timeoutMs: h.timeout,
    rise: h.rise,
    fall: h.fall,
    expectStatus: h.expectStatus,
    expectBody: h.expectBody,
    host: h.host,
    port: h.port,
  })),
  { description: 'Active health checks: each backend is probed on its own schedule and taken out of rotation after `fall` failures in a row, back after `rise` successes. Without this key backends are not probed.', examples: [{ path: '/healthz', interval: '5s' }, { type: 'tcp' }] },
);

/** The health check a pool gets from `healthCheck: {}`: every default, from the schema itself. */
export function defaultHealthCheck(): HealthCheckConfig {
  return healthCheckSchema.parse({});
}

const outlierSchema = documented(
  z.strictObject({
    consecutiveFailures: integerIn('consecutiveFailures', 1, 1000, { description: 'Failed requests in a row (connect errors, resets, timeouts, 5xx) that eject a backend.', examples: [3] }).default(DEFAULTS.consecutiveFailures),
    ejectionTime: duration({ description: 'How long the first ejection lasts; the n-th lasts n times as long.', examples: ['10s'] }).prefault(DEFAULTS.ejectionTime),
    maxEjectionTime: duration({ description: 'Cap on one ejection\'s length; at least `ejectionTime`.', examples: ['10m'] }).prefault(DEFAULTS.maxEjectionTime),
    maxEjectionPercent: percentIn('maxEjectionPercent', 0, 100, { description: 'Never eject more than this percent of the pool\'s backends at once (one backend may always be ejected).', examples: [30, '30%'] }).prefault(DEFAULTS.maxEjectionPercent),
  }, { error: 'expected an outlier mapping' }).transform((o) => ({
    consecutiveFailures: o.consecutiveFailures,
    ejectionTimeMs: o.ejectionTime,
    maxEjectionTimeMs: o.maxEjectionTime,
    maxEjectionPercent: o.maxEjectionPercent,
  })),
  { description: 'Passive outlier detection: a backend whose requests keep failing is ejected for a while, without waiting for a health check.', examples: [{ consecutiveFailures: 3, ejectionTime: '10s' }] },
);

const unreachableSchema = documented(
  z.union([
    z.literal(false, { error: 'expected false (off) or an unreachable mapping' }),
    z.strictObject({
      backoff: duration({ description: 'How long a backend that refused a connection stays out of rotation the first time; each refusal after it returns doubles this.', examples: ['500ms'] }).prefault(DEFAULTS.unreachableBackoff),
      maxBackoff: duration({ description: 'Longest time out of rotation; at least `backoff`.', examples: ['30s'] }).prefault(DEFAULTS.unreachableMaxBackoff),
    }, { error: 'expected false (off) or an unreachable mapping' }).transform((u) => ({ backoffMs: u.backoff, maxBackoffMs: u.maxBackoff })),
  ], { error: 'expected false (off) or an unreachable mapping' }),
  { description: 'Passive ejection of backends that cannot be reached (connection refused, connect error or timeout): such a backend leaves rotation at once, without waiting for a health check, and is tried again after `backoff` (nginx `max_fails=1 fail_timeout=10s`). A passing health check brings it back sooner. The last available backend of a pool is never taken out this way. On by default; `false` turns it off.', examples: [{ backoff: '2s', maxBackoff: '30s' }, false] },
);

const retrySchema = documented(
  z.strictObject({
    attempts: integerIn('attempts', 0, 10, { description: 'Retries after the first try (so up to `attempts` + 1 tries). 0 turns retries off.', examples: [1] }).default(DEFAULTS.retryAttempts),
    on: documented(
      z.array(
        z.union([
          z.literal(RETRY_CONDITIONS),
          z.literal([502, 503, 504]).transform((code) => `${code}` as const),
        ], { error: `expected one of ${RETRY_CONDITIONS.join(', ')}` }),
        { error: 'expected a list of retry conditions' },
      ).min(1, { error: 'list at least one condition, or set attempts: 0 to turn retries off' }),
      { description: 'Failures that are retried: `connect-failure` (the backend could not be reached; safe for every method), `reset` (the connection broke before a response; idempotent requests only), `timeout` (no response headers within `timeouts.response`), and the statuses `502`, `503`, `504`. Listed once each. The default retries what never costs a second execution of a request that had an effect.', examples: [['connect-failure', 'reset', 503]], shownDefault: DEFAULTS.retryOn },
    ).prefault(() => [...DEFAULTS.retryOn]),
    budget: percentIn('budget', 0, 100, { description: 'Retries that send a request to a backend again (after a reset, timeout or status) may be at most this percent of the pool\'s requests over the last 10 s, so retries cannot multiply the load on a failing pool. Retries after a connect failure are not counted: the request reached no backend, so sending it elsewhere adds no work.', examples: ['10%', 10] }).prefault(DEFAULTS.retryBudget),
    minRetriesPerSecond: integerIn('minRetriesPerSecond', 0, 1000, { description: 'Retries always allowed per second regardless of `budget`, so a quiet pool can still retry.', examples: [10] }).default(DEFAULTS.minRetriesPerSecond),
  }, { error: 'expected a retry mapping' }).transform((r) => ({
    attempts: r.attempts,
    on: r.on,
    budgetPercent: r.budget,
    minRetriesPerSecond: r.minRetriesPerSecond,
  })),
  { description: 'Retry failed requests on another backend. On by default for connect failures and resets; `attempts: 0` turns retries off.', examples: [{ attempts: 1, on: ['connect-failure', 'reset', 503] }, { attempts: 0 }] },
);

/** `{ module: ./x.ts, options }`: a balancer written in TypeScript; the module is loaded and its options checked by `resolveModules`. */
const balancerModuleSchema = documented(
  z.strictObject({
    module: filePath({ description: 'TypeScript (or JavaScript) module whose default export is a balancer: `export default defineBalancer({ name, options, create })`. A relative path is relative to the config file\'s directory. `.ts` files run through Node\'s type stripping (erasable syntax only).', examples: ['./balancers/least-latency.ts'] }),
    options: documented(z.unknown(), { description: 'Options for the balancer, checked by the schema its module exports (errors point at the line here).', examples: [{ explore: 0.05 }] }).optional(),
  }, { error: 'expected a mapping with "module" (and "options")' }),
  { description: 'A custom balancer from a module. See docs/api.md.', examples: [{ module: './balancers/least-latency.ts', options: { explore: 0.05 } }] },
);

/** `expected one of p2c, …, or a balancer module`: built-ins and names registered so far. */
const expectedAlgorithm = (): string => `expected one of ${balancerNames().join(', ')}, or a balancer module ({ module: ./balancer.ts })`;

/**
 * Any name `registerBalancer` has registered (checked when the config is read,
 * so embedders register first). `suggest` feeds the "did you mean". Left out
 * of the JSON Schema (`CODE_ONLY`): a file edited with it should flag a
 * misspelt built-in, and registered names exist only where usher is embedded.
 */
const registeredBalancerSchema = z
  .string()
  .refine((value) => hasBalancer(value), { error: expectedAlgorithm, params: { suggest: BUILTIN_BALANCERS } })
  .meta({ [CODE_ONLY]: true });

// The enum is there for editors (the JSON Schema lists the built-ins); the refine accepts registered names.
const algorithmSchema = documented(
  z.union([z.enum(BUILTIN_BALANCERS), registeredBalancerSchema, balancerModuleSchema], { error: expectedAlgorithm }),
  {
    description: `How a backend is chosen per request: ${BUILTIN_BALANCERS.map((name) => `\`${name}\` (${BUILTIN_BALANCER_SUMMARIES[name]})`).join(', ')}; or a custom balancer, \`{ module: ./balancer.ts, options }\` (or, when usher is embedded, a name given to \`registerBalancer\`).`,
    examples: ['round-robin', { module: './balancers/least-latency.ts', options: { explore: 0.05 } }],
  },
);

const poolSchema = documented(
  z.strictObject({
    protocol: documented(z.enum(POOL_PROTOCOLS, { error: `expected one of ${POOL_PROTOCOLS.join(', ')}` }), { description: 'How usher speaks HTTP to the backends: `http1` (HTTP/1.1, over TLS for backends with `tls`), or `h2c` (HTTP/2 in cleartext, e.g. gRPC servers). tcp and tls-passthrough listeners forward bytes and ignore it.', examples: ['h2c'] }).default(DEFAULTS.poolProtocol),
    proxyProtocol: documented(z.enum(PROXY_PROTOCOL_VERSIONS, { error: `expected one of ${PROXY_PROTOCOL_VERSIONS.join(', ')}` }), { description: 'Send a PROXY protocol header (`v1` text, `v2` binary) with the client\'s address at the start of each new backend connection. The backends must expect it. Unset means none.', examples: ['v2'] }).optional(),
    drainTimeout: duration({ description: 'Tunnels (WebSockets, tcp and tls-passthrough connections) to a backend that is draining or removed may stay open this long, then are closed.', examples: ['5m'] }).prefault(DEFAULTS.drainTimeout),
    algorithm: algorithmSchema.default(DEFAULTS.algorithm),
    hashKey: hashKey({ description: 'What `hash`, `maglev` and custom balancers that hash read: `client-ip`, `path`, `header:NAME`, `cookie:NAME` or `query:NAME`.', examples: ['header:x-user-id'] }).prefault(DEFAULTS.hashKey),
    hashBalanceFactor: integerIn('hashBalanceFactor', 100, 1000, { description: 'Bounded loads for `hash`, `maglev` and custom balancers that hash: no backend takes more than this percent of the average load (125 is a common choice). Unset means unbounded.', examples: [125] }).optional(),
    sticky: stickySchema.optional(),
    timeouts: timeoutsSchema.prefault({}),
    healthCheck: healthCheckSchema.optional(),
    outlier: outlierSchema.optional(),
    unreachable: unreachableSchema.prefault({}),
    slowStart: duration({ description: 'Ramp a backend that returns to rotation (healthy again, un-ejected or re-enabled) from 10% to its full weight over this long. Unset means no ramp.', examples: ['30s'] }).optional(),
    panicThreshold: percentIn('panicThreshold', 1, 100, { description: 'When fewer than this percent of the pool\'s backends are available, balance over all of them (healthy or not) instead of answering 503 (Envoy\'s panic mode). Unset means never.', examples: [50, '50%'] }).optional(),
    retry: retrySchema.prefault({}),
    maxConnections: integerIn('maxConnections', 1, MAX_CONNECTIONS, { description: 'Most requests in flight to one backend (HAProxy `maxconn`); a backend\'s own `maxConnections` overrides it. Unset means unlimited.', examples: [100] }).optional(),
    queueSize: integerIn('queueSize', 0, MAX_CONNECTIONS, { description: 'Requests that may wait for a free backend slot when every backend is at `maxConnections`; more are answered 503. 0 means no queue.', examples: [1000] }).default(DEFAULTS.queueSize),
    queueTimeout: duration({ description: 'How long a request waits in that queue before it is answered 503.', examples: ['2s'] }).prefault(DEFAULTS.queueTimeout),
    backends: documented(z.array(backendSchema, { error: 'expected a list of backends' }), { description: 'The upstream servers. May be empty or left out when `discovery` finds them (otherwise `usher check` warns): requests routed to an empty pool get 503 `no_backend` at once, and backends can be added through the admin API.', examples: [[{ address: '10.0.0.5:3000', name: 'alpha' }, { address: '10.0.0.6:3000', weight: 2 }]] }).prefault(() => []),
    discovery: discoverySchema.optional(),
  }, { error: 'expected a pool mapping' }).transform(({ drainTimeout, slowStart, panicThreshold, queueTimeout, ...pool }) => ({
    ...pool,
    drainTimeoutMs: drainTimeout,
    ...(slowStart === undefined ? {} : { slowStartMs: slowStart }),
    ...(panicThreshold === undefined ? {} : { panicThresholdPercent: panicThreshold }),
    queueTimeoutMs: queueTimeout,
  })),
  { description: 'A named group of backends and how to balance across them.' },
);

const accessLogSchema = documented(
  z.strictObject({
    enabled: flag({ description: 'Write one line per request.', examples: [false] }).default(true),
    path: text({ description: 'File to append to; `-` (or leaving it out) means standard output.', examples: ['/var/log/usher/access.log'] }).min(1, { error: 'expected a file path, or "-" for standard output' }).optional(),
    format: documented(z.enum(ACCESS_LOG_FORMATS, { error: `expected one of ${ACCESS_LOG_FORMATS.join(', ')}` }), { description: '`json`: one JSON object per line (client, method, path, protocol, status, listener, route, pool, backend, upstreamMs, totalMs, bytesIn, bytesOut, error, requestId). `combined`: the Apache/nginx combined format (time in UTC, `-` for no body) with the request id appended in quotes, for tools that read it.', examples: ['combined'] }).default(DEFAULTS.accessLogFormat),
  }, { error: 'expected an accessLog mapping' }),
  { description: 'The access log.', examples: [{ path: '/var/log/usher/access.log' }, { format: 'combined' }] },
);

const logSchema = documented(
  z.strictObject({
    level: documented(z.enum(LOG_LEVELS, { error: `expected one of ${LOG_LEVELS.join(', ')}` }), { description: 'Least severe entries written: `trace`, `debug`, `info`, `warn`, `error`, `fatal`, or `silent` for none. The `USHER_LOG_LEVEL` environment variable overrides it.', examples: ['debug'] }).default(DEFAULTS.logLevel),
    destination: text({ description: '`stderr`, `stdout`, or a file to append to (its directory is created). A relative path is relative to the working directory.', examples: ['/var/log/usher/usher.log'] }).min(1, { error: 'expected stderr, stdout or a file path' }).default(DEFAULTS.logDestination),
  }, { error: 'expected a log mapping' }),
  { description: 'The process log: start-up, state changes (backends healthy, ejected, reloads) and errors, as JSON lines. Changes apply at the next start.', examples: [{ level: 'warn', destination: 'stdout' }] },
);

const adminSchema = documented(
  z.strictObject({
    bind: bindAddress({ description: 'Address and port of the admin API (`host:port`; port 0 picks a free port). Anything but a loopback address (127.0.0.0/8, `::1`, `localhost`) requires `token`.', examples: ['127.0.0.1:9090'] }),
    token: secret('token', { description: 'Bearer token every admin request must carry (`Authorization: Bearer TOKEN`), at least 16 characters; use `${ENV_VAR}`. Never shown in messages.', examples: ['${USHER_ADMIN_TOKEN}'] }).optional(),
  }, { error: 'expected an admin mapping with "bind"' }).transform((a) => ({ bind: a.bind, token: a.token })),
  { description: 'The admin HTTP API. Without this key it is not served.', examples: [{ bind: '127.0.0.1:9090' }] },
);

const runtimeSchema = documented(
  z.strictObject({
    workers: documented(
      z.union([z.literal('auto'), z.number().int().min(0).max(64)], { error: 'expected auto or a whole number from 0 to 64' }),
      { description: 'Data-plane worker threads: `auto` (one per CPU the process may use, `os.availableParallelism()`), a number, or 0 to serve from the main thread alone. Health checks, the admin API and reloads stay on the main thread. `usher start` uses `auto` when the file has no `runtime`; `--workers` and the `USHER_WORKERS` environment variable override the file. Changes apply at the next start.', examples: [2, 0] },
    ).default('auto'),
  }, { error: 'expected a runtime mapping' }),
  { description: 'How usher uses the machine.', examples: [{ workers: 'auto' }] },
);

const cacheStoreSchema = documented(
  z.strictObject({
    maxSize: byteSize('maxSize', 1024 * 1024, 32 * 1024 ** 3, { description: 'Memory for stored responses (bodies, headers and keys): one store for the process, shared by every worker thread. Beyond it, the responses not hit lately are evicted (FIFO with reinsertion, docs/cache.md).', examples: ['1GiB'] }).prefault('256MiB'),
    maxObjectSize: byteSize('maxObjectSize', 1, 1024 ** 3, { description: 'Largest response body stored; larger ones pass through uncached. Below `maxSize`, and lowered to what a quarter of it holds when `maxSize` is under four times `maxObjectSize` + 64 KiB (docs/cache.md, "Store").', examples: ['16MiB'] }).prefault('8MiB'),
    maxVariants: documented(z.number({ error: 'expected a whole number' }).int().min(1).max(1000), { description: 'Variants (per Vary) kept for one URL; the least recently used goes beyond it.', examples: [8] }).default(16),
  }, { error: 'expected a cache mapping' }).transform(({ maxSize, maxObjectSize, maxVariants }, ctx) => {
    if (maxObjectSize >= maxSize) ctx.issues.push({ code: 'custom', message: 'maxObjectSize must be below maxSize', input: maxObjectSize, path: ['maxObjectSize'] });
    return { maxBytes: maxSize, maxObjectSize, maxVariants };
  }),
  { description: 'The response cache that routes\' `cache` filters share: its size. One store per process, in shared memory: every worker thread uses it.', examples: [{ maxSize: '1GiB', maxObjectSize: '16MiB' }] },
);

/** The whole config file. Parse output is the resolved {@link UsherConfig}. */
export const configSchema = z
  .strictObject({
    $schema: text({ description: 'Optional URL or path of the JSON Schema, for editors. Ignored by usher.' }).optional(),
    listeners: documented(z.array(listenerSchema, { error: 'expected a list of listeners' }).min(1, { error: 'define at least one listener' }), { description: 'Where usher accepts connections.', examples: [[{ name: 'web', bind: '0.0.0.0:8080', routes: [{ pool: 'web' }] }]] }),
    pools: documented(z.record(name('pool', { description: 'Pool name.' }), poolSchema, { error: 'expected a mapping of pool name to pool' }), { description: 'Backend pools by name; routes refer to them.', examples: [{ web: { backends: [{ address: '10.0.0.5:3000' }] } }] }),
    accessLog: accessLogSchema.prefault({}),
    log: logSchema.prefault({}),
    admin: adminSchema.optional(),
    shutdownTimeout: duration({ description: 'How long a graceful stop waits for requests in flight.', examples: ['10s'] }).prefault(DEFAULTS.shutdownTimeout),
    runtime: runtimeSchema.optional(),
    cache: cacheStoreSchema.optional(),
    rateLimits: rateLimitsSchema.optional(),
    redis: redisSchema.optional(),
    kubernetes: kubernetesSchema.optional(),
  }, { error: 'expected a mapping with "listeners" and "pools"' })
  .transform(({ listeners, pools, accessLog, log, admin, shutdownTimeout, runtime, cache, rateLimits, redis, kubernetes }, ctx) => {
    if (redis === undefined) {
      for (const [policy, config] of Object.entries(rateLimits ?? {})) {
        if (config.store === 'redis') ctx.issues.push({ code: 'custom', message: `store: redis needs the top-level redis section (redis: { url: redis://host:6379 })`, input: config.store, path: ['rateLimits', policy, 'store'] });
      }
    }
    return {
    listeners,
    pools,
    accessLog,
    log,
    ...(admin === undefined ? {} : { admin }),
    shutdownTimeoutMs: shutdownTimeout,
    ...(runtime === undefined ? {} : { runtime }),
    ...(cache === undefined ? {} : { cache }),
    ...(rateLimits === undefined ? {} : { rateLimits }),
    ...(redis === undefined ? {} : { redis }),
    ...(kubernetes === undefined ? {} : { kubernetes }),
  };
  });

/** The YAML/JSON input shape (durations and addresses as strings). */
export type ConfigInput = z.input<typeof configSchema>;

// Compile-time check: the schema's output is the resolved config the program consumes.
type Assignable<T extends U, U> = T;
export type ConfigOutputIsUsherConfig = Assignable<z.output<typeof configSchema>, UsherConfig>;
