/**
 * The config file schema: the single source of truth for the file format, its
 * defaults and ranges, the resolved {@link UsherConfig} type it produces, the
 * JSON Schema (`usher schema`) and docs/config.md.
 *
 * Cross-field rules (pool references, duplicate names and binds, hash options
 * on non-hash pools) live in checks.ts, which sees the whole file at once.
 */
import { z } from 'zod';
import type { UsherConfig } from './types.ts';
import {
  backendAddress, bindAddress, cookieName, documented, duration, flag, hashKey, headerName,
  hostMatch, integerIn, matchValue, method, name, queryName, regex, text, urlPath,
} from './values.ts';

/** Algorithms a pool can use; the first is the default. */
export const ALGORITHMS = ['p2c', 'round-robin', 'least-connections', 'random', 'ewma', 'hash', 'maglev'] as const;

/** Algorithms that read the pool's `hashKey` and `hashBalanceFactor`. */
export const HASH_ALGORITHMS: readonly string[] = ['hash', 'maglev'];

/** Defaults, written as they would be in the file. */
export const DEFAULTS = {
  protocol: 'http',
  algorithm: 'p2c',
  hashKey: 'client-ip',
  weight: 1,
  connectTimeout: '5s',
  responseTimeout: '60s',
  idleTimeout: '60s',
  stickyCookie: 'usher_sticky',
  stickyTtl: '1h',
} as const;

const VALUE_DOC = { description: 'Exact value, or a regular expression after `~` that must match the whole value (`~~x` is the regex `~x`).' };

const matchSchema = documented(
  z.strictObject({
    host: hostMatch({ description: 'Host header is this name, or for `*.example.com` any name ending in `.example.com` (not `example.com` itself). Case-insensitive; the request\'s port and a trailing dot are ignored.', examples: ['api.example.com', '*.example.com'] }).optional(),
    path: urlPath({ description: 'Request path equals this exactly (the query string is not part of the path).', examples: ['/healthz'] }).optional(),
    pathPrefix: urlPath({ description: 'Request path starts with this, at a segment boundary: `/api` matches `/api` and `/api/x`, not `/apix`; `/api/` matches paths starting with `/api/`.', examples: ['/api/'] }).optional(),
    pathRegex: regex({ description: 'Request path matches this JavaScript regular expression, which must match the whole path (write `.*` to search).', examples: ['/users/[0-9]+'] }).optional(),
    methods: documented(z.array(method({ description: 'An HTTP method.' }), { error: 'expected a list of HTTP methods' }).min(1, { error: 'list at least one method, or leave out "methods"' }), { description: 'Request method is one of these (uppercase, exact: `GET` does not imply `HEAD`).', examples: [['GET', 'POST']] }).optional(),
    headers: documented(z.record(headerName(), matchValue(VALUE_DOC), { error: 'expected a mapping of header name to value' }), { description: 'Each request header has this value: exact, or `~regex`. Names are case-insensitive.', examples: [{ 'x-canary': '1' }] }).optional(),
    query: documented(z.record(queryName(), matchValue(VALUE_DOC), { error: 'expected a mapping of query parameter to value' }), { description: 'Each query parameter has this value: exact, or `~regex`.', examples: [{ version: '~v[23]' }] }).optional(),
    cookies: documented(z.record(cookieName(), matchValue(VALUE_DOC), { error: 'expected a mapping of cookie name to value' }), { description: 'Each cookie has this value: exact, or `~regex`.', examples: [{ plan: 'beta' }] }).optional(),
  }, { error: 'expected a mapping of match conditions' }),
  { description: 'Conditions a request must all meet. Leave `match` out for a catch-all route. Use at most one of `path`, `pathPrefix`, `pathRegex`.', examples: [{ pathPrefix: '/api/', methods: ['GET'] }] },
);

const routeSchema = documented(
  z.strictObject({
    name: name('route', { description: 'Name used in logs and metrics.', examples: ['api'] }).optional(),
    match: matchSchema.optional(),
    pool: text({ description: 'Name of the pool (under `pools`) that serves matching requests.', examples: ['api'] }, 'expected a pool name'),
    stripPrefix: urlPath({ description: 'Remove this prefix from the path before proxying, at a segment boundary (`/api/users?x=1` becomes `/users?x=1`, `/api` becomes `/`).', examples: ['/api'] }).optional(),
  }, { error: 'expected a route mapping with at least "pool"' }),
  { description: 'Routes are tried in order; the first whose `match` fits the request wins.' },
);

const listenerSchema = documented(
  z.strictObject({
    name: name('listener', { description: 'Unique name used in logs, metrics and the admin API.', examples: ['web'] }),
    bind: bindAddress({ description: 'Address and port to listen on (`host:port`; port 0 picks a free port).', examples: ['0.0.0.0:8080', '[::]:8080'] }),
    protocol: documented(z.literal('http', { error: 'expected "http"' }), { description: 'Protocol spoken to clients.', examples: ['http'] }).default(DEFAULTS.protocol),
    routes: documented(z.array(routeSchema, { error: 'expected a list of routes' }).min(1, { error: 'a listener needs at least one route' }), { description: 'Ordered routes; the first that matches wins.', examples: [[{ match: { pathPrefix: '/api' }, pool: 'api' }, { pool: 'web' }]] }),
  }, { error: 'expected a listener mapping' }),
  { description: 'A socket that accepts client connections and routes their requests.' },
);

const backendSchema = documented(
  z.strictObject({
    address: backendAddress({ description: 'Backend `host:port`.', examples: ['10.0.0.5:3000', 'app.internal:8080'] }),
    weight: integerIn('weight', 1, 1000, { description: 'Relative share of requests.', examples: [3] }).default(DEFAULTS.weight),
  }, { error: 'expected a backend mapping with "address"' }),
  { description: 'One upstream server.' },
);

const stickySchema = documented(
  z.strictObject({
    cookie: cookieName({ description: 'Cookie that pins a client to a backend.', examples: ['usher_sticky'] }).default(DEFAULTS.stickyCookie),
    ttl: duration({ description: 'How long the pin lasts: the cookie\'s Max-Age, in whole seconds.', examples: ['30m', '1d'] }, { ms: 1000, why: 'it is the cookie\'s Max-Age in seconds' }).prefault(DEFAULTS.stickyTtl),
    secret: text({ description: 'HMAC key signing the cookie (at least 16 characters; use `${ENV_VAR}`). Without it a random key is made at start, so pins do not survive a restart.', examples: ['${STICKY_SECRET}'] })
      .min(16, { error: 'secret must be at least 16 characters' })
      .optional(),
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

const poolSchema = documented(
  z.strictObject({
    algorithm: documented(z.enum(ALGORITHMS, { error: `expected one of ${ALGORITHMS.join(', ')}` }), { description: 'How a backend is chosen per request.', examples: ['round-robin'] }).default(DEFAULTS.algorithm),
    hashKey: hashKey({ description: 'What `hash` and `maglev` hash: `client-ip`, `path`, `header:NAME`, `cookie:NAME` or `query:NAME`.', examples: ['header:x-user-id'] }).prefault(DEFAULTS.hashKey),
    hashBalanceFactor: integerIn('hashBalanceFactor', 100, 1000, { description: 'Bounded loads for `hash` and `maglev`: no backend takes more than this percent of the average load (125 is a common choice). Unset means unbounded.', examples: [125] }).optional(),
    sticky: stickySchema.optional(),
    timeouts: timeoutsSchema.prefault({}),
    backends: documented(z.array(backendSchema, { error: 'expected a list of backends' }).min(1, { error: 'a pool needs at least one backend' }), { description: 'The upstream servers.', examples: [[{ address: '10.0.0.5:3000' }, { address: '10.0.0.6:3000', weight: 2 }]] }),
  }, { error: 'expected a pool mapping with "backends"' }),
  { description: 'A named group of backends and how to balance across them.' },
);

const accessLogSchema = documented(
  z.strictObject({
    enabled: flag({ description: 'Write one line per request.', examples: [false] }).default(true),
    path: text({ description: 'File to append to; `-` (or leaving it out) means standard output.', examples: ['/var/log/usher/access.log'] }).min(1, { error: 'expected a file path, or "-" for standard output' }).optional(),
  }, { error: 'expected an accessLog mapping' }),
  { description: 'The access log.', examples: [{ path: '/var/log/usher/access.log' }] },
);

/** The whole config file. Parse output is the resolved {@link UsherConfig}. */
export const configSchema = z
  .strictObject({
    $schema: text({ description: 'Optional URL or path of the JSON Schema, for editors. Ignored by usher.' }).optional(),
    listeners: documented(z.array(listenerSchema, { error: 'expected a list of listeners' }).min(1, { error: 'define at least one listener' }), { description: 'Where usher accepts connections.', examples: [[{ name: 'web', bind: '0.0.0.0:8080', routes: [{ pool: 'web' }] }]] }),
    pools: documented(z.record(name('pool', { description: 'Pool name.' }), poolSchema, { error: 'expected a mapping of pool name to pool' }), { description: 'Backend pools by name; routes refer to them.', examples: [{ web: { backends: [{ address: '10.0.0.5:3000' }] } }] }),
    accessLog: accessLogSchema.prefault({}),
  }, { error: 'expected a mapping with "listeners" and "pools"' })
  .transform(({ listeners, pools, accessLog }) => ({ listeners, pools, accessLog }));

/** The YAML/JSON input shape (durations and addresses as strings). */
export type ConfigInput = z.input<typeof configSchema>;

// Compile-time check: the schema's output is the resolved config the program consumes.
type Assignable<T extends U, U> = T;
export type ConfigOutputIsUsherConfig = Assignable<z.output<typeof configSchema>, UsherConfig>;
