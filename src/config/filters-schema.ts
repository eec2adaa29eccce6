/**
 * The schema of a route's `filters` list (part of `schema.ts`, kept apart for
 * size). Each entry names exactly one filter: a built-in one by its key
 * (`headers`, `rewrite`, `ipAllow`, `ipDeny`, `forwardAuth`, `cache`, `compress`, `rateLimit`) or a user filter
 * module (`module` with its `options`, validated against the module's own
 * schema when it is loaded: `config/filter-modules.ts`).
 */
import { z } from 'zod';
import type { FilterConfig, HeaderEditsConfig } from './types.ts';
import { byteSize, cidr, documented, duration, editableHeaderName, headerValueText, httpUrl, integerIn, modulePath, regex, text, urlHost, urlPath } from './values.ts';
import { ALL_CODINGS, CODINGS_AVAILABLE, LEVEL_BOUNDS, type Coding } from '../compress/codec.ts';
import { DEFAULT_TYPES, TYPE_PATTERN } from '../compress/eligible.ts';
import type { EditSide } from '../filter/edits.ts';
import { rateLimitFilterSchema } from './ratelimit-schema.ts';

/** Defaults of the filters, written as in the file. */
export const FILTER_DEFAULTS = {
  forwardAuthTimeout: '1s',
  forwardAuthOnError: 503,
  forwardAuthMaxResponseBytes: '64KiB',
  cacheLockTimeout: '5s',
  compressCodings: ['zstd', 'br', 'gzip'],
  compressLevels: { zstd: 3, br: 4, gzip: 4 },
  compressMinSize: '1KiB',
} as const;

/** The filter kinds an entry can name. */
export const FILTER_KINDS = ['headers', 'rewrite', 'ipAllow', 'ipDeny', 'forwardAuth', 'cache', 'compress', 'rateLimit', 'module'] as const;

function headerEdits(side: EditSide) {
  const what = side === 'request' ? 'request sent upstream' : 'response sent to the client';
  return documented(
    z.strictObject({
      set: documented(z.record(editableHeaderName(side), headerValueText({ description: 'The value.' }), { error: 'expected a mapping of header name to value' }), { description: `Fields of the ${what} set to these values, replacing any the message had.`, examples: [side === 'request' ? { 'x-env': 'prod' } : { 'strict-transport-security': 'max-age=31536000' }] }).optional(),
      add: documented(z.record(editableHeaderName(side), z.union([headerValueText({ description: 'The value.' }), z.array(headerValueText({ description: 'A value.' }))], { error: 'expected a value or a list of values' }), { error: 'expected a mapping of header name to value' }), { description: `Fields added to the ${what}, after those it has (a list adds one field per value).`, examples: [side === 'request' ? { via: 'usher' } : { 'cache-control': 'no-store' }] }).optional(),
      remove: documented(z.array(editableHeaderName(side), { error: 'expected a list of header names' }), { description: `Fields removed from the ${what} (every field of each name).`, examples: [side === 'request' ? ['x-debug'] : ['server', 'x-powered-by']] }).optional(),
    }, { error: 'expected a mapping with set, add or remove' }),
    { description: `Edits of the ${what}: \`set\`, then \`add\`, then \`remove\`. Framing and hop-by-hop fields (Content-Length, Transfer-Encoding, Connection...), X-Request-Id${side === 'request' ? ', Host (use rewrite.host) and X-Forwarded-*' : ''} cannot be edited.`, examples: [side === 'request' ? { set: { 'x-env': 'prod' }, remove: ['x-debug'] } : { set: { 'x-frame-options': 'DENY' }, remove: ['server'] }] },
  );
}

const headersSchema = documented(
  z.strictObject({ request: headerEdits('request').optional(), response: headerEdits('response').optional() }, { error: 'expected a mapping with request or response' }),
  { description: 'Set, add and remove header fields of the request sent upstream and of the response sent back (Gateway API RequestHeaderModifier and ResponseHeaderModifier, Traefik headers). Response edits apply to the backend\'s responses and to answers of filters listed after this one.', examples: [{ request: { set: { 'x-env': 'prod' } }, response: { remove: ['server'] } }] },
);

const rewriteSchema = documented(
  z.strictObject({
    path: urlPath({ description: 'Replace the whole path with this one (the query string is kept).', examples: ['/index.html'] }).optional(),
    prefix: documented(z.strictObject({
      from: urlPath({ description: 'The prefix to replace, at a segment boundary (`/api` matches `/api` and `/api/x`, not `/apix`).', examples: ['/api'] }),
      to: urlPath({ description: 'What replaces it (`/` removes it).', examples: ['/v2'] }),
    }, { error: 'expected a mapping with "from" and "to"' }), { description: 'Replace a leading path prefix: with `from: /api` and `to: /v2`, `/api/users` becomes `/v2/users`. Paths without the prefix are left alone.', examples: [{ from: '/api', to: '/v2' }] }).optional(),
    regex: documented(z.strictObject({
      pattern: regex({ description: 'A JavaScript regular expression searched in the path (not anchored: write `^` and `$` to match the whole path).', examples: ['^/users/([0-9]+)$'] }),
      replacement: text({ description: 'What replaces the first match; `$1`, `$2`... are the captures. The result must be a path starting with `/`, or the request fails with 500 `filter_error`.', examples: ['/u/$1'] }),
    }, { error: 'expected a mapping with "pattern" and "replacement"' }), { description: 'Replace what a regular expression matches in the path (Traefik ReplacePathRegex).', examples: [{ pattern: '^/users/([0-9]+)$', replacement: '/u/$1' }] }).optional(),
    host: urlHost({ description: 'The Host sent upstream (HTTP/2 backends: `:authority`). X-Forwarded-Host keeps the client\'s.', examples: ['internal.example.com'] }).optional(),
  }, { error: 'expected a mapping with path, prefix, regex or host' }),
  { description: 'Rewrite the request before proxying (Gateway API URLRewrite): at most one of `path`, `prefix` and `regex`, and/or `host`. Routing already happened: the route does not change.', examples: [{ prefix: { from: '/api', to: '/' } }, { regex: { pattern: '^/users/([0-9]+)$', replacement: '/u/$1' }, host: 'users.internal' }] },
);

const cidrList = (allow: boolean) =>
  documented(
    z.array(cidr({ description: 'An IP address or CIDR.' }), { error: 'expected a list of IP addresses or CIDRs' }).min(1, { error: 'list at least one address or CIDR' }),
    {
      description: allow
        ? 'Only clients whose address is in one of these CIDRs may use the route; others get 403 `forbidden`. The address is the one the client connection reports, never a header (http and https listeners do not read PROXY protocol headers yet: it is the peer\'s).'
        : 'Clients whose address is in one of these CIDRs get 403 `forbidden`. The address is the one the client connection reports, never a header (http and https listeners do not read PROXY protocol headers yet: it is the peer\'s).',
      examples: [allow ? ['10.0.0.0/8', '192.168.1.7'] : ['203.0.113.0/24']],
    },
  );

const forwardAuthSchema = documented(
  z.strictObject({
    url: httpUrl({ description: 'The auth service, asked with a GET per request: `http://host:port/path`. It gets X-Forwarded-Method, -Proto, -Host, -Uri, -For, X-Request-Id and the `requestHeaders`; never the body.', examples: ['http://127.0.0.1:9000/verify'] }),
    timeout: duration({ description: 'Longest wait for the auth service\'s answer; after it the request gets `onError`. Short, because every request on the route waits for it.', examples: ['500ms'] }).prefault(FILTER_DEFAULTS.forwardAuthTimeout),
    requestHeaders: documented(z.array(editableHeaderName('request', { description: 'A header name.' }), { error: 'expected a list of header names' }), { description: 'Fields of the client\'s request sent to the auth service.', examples: [['authorization', 'cookie']] }).prefault(() => []),
    copyHeaders: documented(z.array(editableHeaderName('request', { description: 'A header name.' }), { error: 'expected a list of header names' }), { description: 'Fields of a 2xx answer copied into the request sent upstream. A client\'s own copy is always removed, so a client cannot forge them.', examples: [['x-user-id', 'x-user-roles']] }).prefault(() => []),
    onError: documented(z.literal([401, 503], { error: 'expected 401 or 503' }), { description: 'Status when the auth service cannot be asked (refused, reset, slower than `timeout`, an answer body over `maxResponseBytes`): 503 `auth_unavailable` or 401 `unauthorized`. The request is never let through.', examples: [401] }).default(FILTER_DEFAULTS.forwardAuthOnError),
    maxResponseBytes: byteSize('maxResponseBytes', 0, 1024 * 1024, { description: 'Largest answer body passed on to a refused client (a login page, an error document); a longer one counts as an error (`onError`).', examples: ['16KiB'] }).prefault(FILTER_DEFAULTS.forwardAuthMaxResponseBytes),
  }, { error: 'expected a mapping with "url"' }),
  { description: 'Ask an auth service before proxying (Traefik forwardAuth, nginx auth_request, Envoy ext_authz): a 2xx answer lets the request through with `copyHeaders`; any other answer goes back to the client as the auth service sent it (status, fields, body).', examples: [{ url: 'http://127.0.0.1:9000/verify', requestHeaders: ['authorization', 'cookie'], copyHeaders: ['x-user-id'] }] },
);

const headerNameList = (what: string) => documented(z.array(editableHeaderName('request', { description: 'A header name.' }), { error: 'expected a list of header names' }), { description: what, examples: [['accept-language']] });
const nameList = (what: string, example: string) => documented(z.array(text({ description: 'A name.' }), { error: 'expected a list of names' }), { description: what, examples: [[example]] });

const cacheSchema = documented(
  z.strictObject({
    staleIfError: documented(z.union([
      duration({ description: 'The window for every error class.' }),
      z.strictObject({
        connect: duration({ description: 'No backend could be reached: connect refused, failed or timed out, none available, the queue full or timed out.' }).optional(),
        timeout: duration({ description: 'A backend accepted the request but did not answer within its response timeout.' }).optional(),
        '5xx': duration({ description: 'A backend answered 5xx, or reset or broke its response before any byte reached the client.' }).optional(),
      }, { error: 'expected connect, timeout or 5xx' }),
    ], { error: 'expected a duration (10m) or a mapping of error classes to durations ({ connect: 10m, 5xx: 1m })' }), { description: 'How long after expiry a stored response may still be served when the backends fail, besides what a `stale-if-error` directive allows: one duration for every error class, or per class (`connect`, `timeout`, `5xx`). When no backend is available at all the stale response is served at once, without waiting for the 503. `must-revalidate`, `proxy-revalidate`, `s-maxage` and `no-cache` responses are never served stale. Absent: only the directive.', examples: ['10m', { connect: '1h', timeout: '10m', '5xx': '1m' }] }).optional(),
    lockTimeout: duration({ description: 'When several requests miss the same key at once, one goes upstream and the others wait for its response (and are answered from the cache) for at most this long; then each goes upstream itself, and may still store what it gets.', examples: ['2s'] }).prefault(FILTER_DEFAULTS.cacheLockTimeout),
    key: documented(z.strictObject({
      queryInclude: nameList('Only these query parameters are part of the key (all when absent).', 'page'),
      queryExclude: nameList('Query parameters left out of the key (tracking parameters).', 'utm_source'),
      headers: headerNameList('Request header fields whose values are part of the key (besides what the response\'s Vary names).'),
      cookies: nameList('Cookies whose values are part of the key.', 'lang'),
    }, { error: 'expected a mapping with queryInclude, queryExclude, headers or cookies' }).partial(), { description: 'What is in the cache key besides scheme, host, path and the query (parameters sorted).', examples: [{ queryExclude: ['utm_source', 'utm_medium'], cookies: ['lang'] }] }).prefault({}),
  }, { error: 'expected a cache mapping' }),
  { description: 'A shared HTTP cache (RFC 9111) for the route\'s GET and HEAD responses, in the process\'s memory (sized by the top-level `cache`). Freshness comes from the response (Usher-Cache-Control, CDN-Cache-Control, Cache-Control s-maxage/max-age, Expires; a capped heuristic for Last-Modified); there is no default TTL. Responses with Set-Cookie, `private`, `no-store` or `Vary: *` are not stored. See docs/cache.md.', examples: [{}, { lockTimeout: '2s', key: { queryExclude: ['utm_source'] } }] },
);

const level = (coding: Coding, what: string) =>
  integerIn(`levels.${coding}`, LEVEL_BOUNDS[coding].min, LEVEL_BOUNDS[coding].max, { description: `${what} (${LEVEL_BOUNDS[coding].min}-${LEVEL_BOUNDS[coding].max}; default ${FILTER_DEFAULTS.compressLevels[coding]}).`, examples: [FILTER_DEFAULTS.compressLevels[coding]] });

const compressSchema = documented(
  z.strictObject({
    codings: documented(
      z.array(z.enum(ALL_CODINGS, { error: `expected one of ${ALL_CODINGS.join(', ')}` }), { error: 'expected a list of codings' })
        .min(1, { error: `list at least one of ${ALL_CODINGS.join(', ')}` })
        .refine((list) => new Set(list).size === list.length, { error: 'list each coding once' }),
      { description: 'Codings offered, in order of preference when the client\'s Accept-Encoding ranks several equally (browsers send `gzip, deflate, br, zstd` with no qvalues). zstd is left out on a Node without `zlib.createZstdCompress`.', examples: [['br', 'gzip']] },
    ).prefault(() => [...FILTER_DEFAULTS.compressCodings]),
    levels: documented(z.strictObject({
      zstd: level('zstd', 'zstd level'),
      br: level('br', 'Brotli quality; above 5 the CPU per byte grows far faster than the ratio (11, Node\'s default, costs ~100× quality 4), so it is refused on the fly'),
      gzip: level('gzip', 'gzip level'),
    }, { error: 'expected a mapping with zstd, br or gzip' }).partial(), { description: 'Level of each coding, for on-the-fly compression.', examples: [{ br: 5, gzip: 6 }] }).prefault({}),
    minSize: byteSize('minSize', 0, 1024 * 1024 * 1024, { description: 'Responses whose Content-Length is below this go out uncoded. A response without Content-Length is coded (its size is not known when the decision is made).', examples: ['512B'] }).prefault(FILTER_DEFAULTS.compressMinSize),
    types: documented(
      z.array(text({ description: 'A media-type pattern.' }).refine((pattern) => TYPE_PATTERN.test(pattern.trim().toLowerCase()) && (!pattern.trim().startsWith('*/') || pattern.trim().startsWith('*/*+')), { error: 'expected a media-type pattern: type/subtype, type/*, type/*+suffix or */*+suffix' }), { error: 'expected a list of media types' })
        .min(1, { error: 'list at least one media type' }),
      { description: `Media types coded (parameters ignored): \`type/subtype\`, \`type/*\`, \`type/*+suffix\` or \`*/*+suffix\`. Replaces the default list (text, JSON, XML, JavaScript, SVG, wasm and uncompressed fonts, after Caddy). Leave out types that are compressed already (images, video, archives, WOFF fonts).`, examples: [['text/*', 'application/json', 'application/*+json']] },
    ).prefault(() => [...DEFAULT_TYPES]),
    guard: documented(z.boolean({ error: 'expected true or false' }), { description: 'The CPU guard: when the thread\'s event loop is busy 90 % of the time or more, levels drop to the fastest, then new responses go out uncoded, and come back below 60 %. `false` keeps compressing at the configured levels however busy the thread is (as nginx does).', examples: [false] }).default(true),
  }, { error: 'expected a compress mapping' }),
  { description: 'Compress response bodies with zstd, br or gzip as the client\'s Accept-Encoding allows (RFC 9110 §12.5.3), chunk by chunk; streams and server-sent events are flushed per upstream chunk. Skips HEAD, Range requests, 1xx/204/304/206, bodies already coded or marked `no-transform`, types off `types` and bodies under `minSize`. Strong ETags get a coding suffix. Under event-loop pressure levels drop, then new responses go uncoded. See docs/compression.md.', examples: [{}, { codings: ['br', 'gzip'], levels: { br: 5 }, minSize: '2KiB' }] },
);

/** One entry of a route's `filters`: exactly one kind. */
export const filterSchema = documented(
  z.strictObject({
    headers: headersSchema.optional(),
    rewrite: rewriteSchema.optional(),
    ipAllow: cidrList(true).optional(),
    ipDeny: cidrList(false).optional(),
    forwardAuth: forwardAuthSchema.optional(),
    cache: cacheSchema.optional(),
    compress: compressSchema.optional(),
    rateLimit: rateLimitFilterSchema.optional(),
    module: modulePath({ description: 'A user filter: a TypeScript (or JavaScript) module whose default export is `defineFilter({...})` (see docs/api.md). Relative to the config file\'s directory. Loaded by `usher check`, at start and at each reload; a module that fails to load is a config error.', examples: ['./filters/tenant.ts'] }).optional(),
    options: documented(z.unknown(), { description: 'Options of a `module` filter, checked against the zod schema the module declares.', examples: [{ header: 'x-tenant' }] }).optional(),
  }, { error: 'expected a filter mapping such as { headers: {...} } or { module: ./filters/x.ts }' }).transform((entry, ctx): FilterConfig => {
    const kinds = FILTER_KINDS.filter((kind) => entry[kind] !== undefined);
    if (kinds.length !== 1) {
      ctx.issues.push({ code: 'custom', message: kinds.length === 0 ? `a filter names one of ${FILTER_KINDS.join(', ')}` : `a filter names one kind, found ${kinds.join(' and ')}: write one list entry each (they run in list order)`, input: entry });
      return z.NEVER;
    }
    if (entry.options !== undefined && entry.module === undefined) {
      ctx.issues.push({ code: 'custom', message: '"options" goes with "module" (built-in filters take their settings under their own key)', input: entry, path: ['options'] });
      return z.NEVER;
    }
    const { headers, rewrite, ipAllow, ipDeny, forwardAuth, cache, compress, rateLimit, module } = entry;
    if (headers !== undefined) return { kind: 'headers', request: edits(headers.request), response: edits(headers.response) };
    if (rewrite !== undefined) {
      const forms = (['path', 'prefix', 'regex'] as const).filter((key) => rewrite[key] !== undefined);
      if (forms.length > 1) {
        ctx.issues.push({ code: 'custom', message: `use only one of path, prefix and regex (found ${forms.join(' and ')})`, input: entry, path: ['rewrite', forms[1]!] });
        return z.NEVER;
      }
      if (forms.length === 0 && rewrite.host === undefined) {
        ctx.issues.push({ code: 'custom', message: 'a rewrite changes at least one of path, prefix, regex and host', input: entry, path: ['rewrite'] });
        return z.NEVER;
      }
      return { kind: 'rewrite', ...rewrite };
    }
    if (ipAllow !== undefined) return { kind: 'ipAllow', cidrs: ipAllow };
    if (ipDeny !== undefined) return { kind: 'ipDeny', cidrs: ipDeny };
    if (forwardAuth !== undefined) {
      const { timeout, ...rest } = forwardAuth;
      return { kind: 'forwardAuth', ...rest, timeoutMs: timeout };
    }
    if (cache !== undefined) {
      const { queryInclude, queryExclude, headers: keyHeaders, cookies } = cache.key;
      return {
        kind: 'cache',
        lockTimeoutMs: cache.lockTimeout,
        staleIfErrorS: staleWindows(cache.staleIfError),
        key: {
          ...(queryInclude === undefined ? {} : { includeQuery: queryInclude }),
          ...(queryExclude === undefined ? {} : { excludeQuery: queryExclude }),
          ...(keyHeaders === undefined ? {} : { headers: keyHeaders.map((h) => h.toLowerCase()) }),
          ...(cookies === undefined ? {} : { cookies }),
        },
      };
    }
    if (compress !== undefined) {
      return {
        kind: 'compress',
        codings: compress.codings.filter((coding) => CODINGS_AVAILABLE.includes(coding)),
        levels: { ...FILTER_DEFAULTS.compressLevels, ...compress.levels },
        minSize: compress.minSize,
        types: compress.types.map((type) => type.trim().toLowerCase()),
        guard: compress.guard,
      };
    }
    if (rateLimit !== undefined) return { kind: 'rateLimit', policies: rateLimit };
    return { kind: 'module', module: module!, path: module!, options: entry.options };
  }),
  { description: 'A filter: one key naming its kind. Requests go through a route\'s filters in list order, responses in reverse.' },
);

function edits(side: { set?: Record<string, string> | undefined; add?: Record<string, string | string[]> | undefined; remove?: string[] | undefined } | undefined): HeaderEditsConfig | undefined {
  return side === undefined ? undefined : { set: side.set, add: side.add, remove: side.remove };
}

/** `staleIfError` as seconds per error class (0: only the directive). */
function staleWindows(option: number | { readonly connect?: number | undefined; readonly timeout?: number | undefined; readonly '5xx'?: number | undefined } | undefined): { readonly connect: number; readonly timeout: number; readonly status5xx: number } {
  const seconds = (ms: number | undefined): number => (ms === undefined ? 0 : Math.floor(ms / 1000));
  if (typeof option === 'number' || option === undefined) return { connect: seconds(option), timeout: seconds(option), status5xx: seconds(option) };
  return { connect: seconds(option.connect), timeout: seconds(option.timeout), status5xx: seconds(option['5xx']) };
}
