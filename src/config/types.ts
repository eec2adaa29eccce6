/**
 * The resolved configuration: what the schema produces after validation and
 * defaults. Durations are milliseconds; addresses are split into host and port.
 * The data plane compiles this into its snapshot; nothing here is read per request.
 */
import type { BuiltinBalancerName } from '../balancer/names.ts';
import type { BalancerFactory } from '../balancer/types.ts';
import type { FilterDefinition } from '../filter/filter.ts';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/**
 * A balancing algorithm by name: a built-in (`BUILTIN_BALANCERS`), or a name
 * registered with `registerBalancer` before the config is loaded (embedding).
 */
export type AlgorithmName = BuiltinBalancerName | (string & {});

/** `algorithm:` — a registered name, or a balancer module. */
export type AlgorithmConfig = AlgorithmName | BalancerModuleConfig;

/** `algorithm: { module, options }`: a balancer defined in a TypeScript or JavaScript module. */
export interface BalancerModuleConfig {
  /** Absolute path of the module (written relative to the config file). */
  readonly module: string;
  /** Options as written; the module's schema checks them when it is loaded. */
  readonly options?: unknown;
  /** Set by `resolveModules`: the module's balancer, its options checked and bound. */
  readonly loaded?: LoadedBalancer | undefined;
}

/** A balancer module after loading. */
export interface LoadedBalancer {
  /** The definition's `name`, shown wherever the algorithm is. */
  readonly name: string;
  readonly factory: BalancerFactory;
  /** Whether it reads `ctx.hash` (the pool then hashes its `hashKey`). */
  readonly hashes: boolean;
}

export type HashKey =
  | { readonly kind: 'client-ip' }
  | { readonly kind: 'path' }
  | { readonly kind: 'header'; readonly name: string }
  | { readonly kind: 'cookie'; readonly name: string }
  | { readonly kind: 'query'; readonly name: string };

/** A match value: exact string, or a regular expression when written `~regex`. */
export type MatchValue = string;

export interface MatchConfig {
  /** TLS server name from the ClientHello (tls-passthrough listeners only): exact or `*.example.com`. */
  readonly sni?: string | undefined;
  readonly host?: string | undefined;
  /**
   * Internal (routes from Kubernetes Ingress, never from the file): a `*.` host
   * covers exactly one label (`*.example.com` matches `a.example.com`, not
   * `a.b.example.com`), as the Ingress API says.
   */
  readonly hostOneLabel?: boolean | undefined;
  readonly path?: string | undefined;
  readonly pathPrefix?: string | undefined;
  readonly pathRegex?: string | undefined;
  readonly methods?: readonly string[] | undefined;
  readonly headers?: Readonly<Record<string, MatchValue>> | undefined;
  readonly query?: Readonly<Record<string, MatchValue>> | undefined;
  readonly cookies?: Readonly<Record<string, MatchValue>> | undefined;
}

/** Answer with a redirect instead of proxying (http and https listeners). */
export interface RedirectConfig {
  /** Scheme of the new URL; default: the request's. */
  readonly scheme?: 'http' | 'https' | undefined;
  /** Host of the new URL; default: the request's Host without its port. */
  readonly host?: string | undefined;
  /** Port of the new URL; default: none (the scheme's default). */
  readonly port?: number | undefined;
  /** 301, 302, 303, 307 or 308. Default 308 (keeps the method, as a POST must not become a GET). */
  readonly code: 301 | 302 | 303 | 307 | 308;
}

/** Each route has exactly one of `pool` and `redirect`. */
export interface RouteConfig {
  readonly name?: string | undefined;
  readonly match?: MatchConfig | undefined;
  /** Set unless the route redirects. */
  readonly pool?: string | undefined;
  readonly redirect?: RedirectConfig | undefined;
  readonly stripPrefix?: string | undefined;
  /**
   * Internal (routes from the Gateway API, never from the file): a weighted
   * split over pools, picked per request. An entry whose `pool` is undefined
   * is a backend that could not be resolved: its share is answered 500
   * (`USHER_BACKEND_INVALID`), as the Gateway API says. `pool` is then the
   * first resolved entry's, or undefined when none is.
   */
  readonly split?: readonly { readonly pool: string | undefined; readonly weight: number }[] | undefined;
  /** Filters, in the order requests go through them (http and https listeners). */
  readonly filters?: readonly FilterConfig[] | undefined;
}

/** One side's header edits (Gateway API HTTPHeaderFilter): `set` replaces, `add` appends, `remove` drops. */
export interface HeaderEditsConfig {
  readonly set?: Readonly<Record<string, string>> | undefined;
  readonly add?: Readonly<Record<string, string | readonly string[]>> | undefined;
  readonly remove?: readonly string[] | undefined;
}

/** `headers`: edit request and response header fields. */
export interface HeadersFilterConfig {
  readonly kind: 'headers';
  readonly request?: HeaderEditsConfig | undefined;
  readonly response?: HeaderEditsConfig | undefined;
}

/** `rewrite`: at most one of `path`, `prefix`, `regex`, and/or `host`. */
export interface RewriteFilterConfig {
  readonly kind: 'rewrite';
  /** Replace the whole path. */
  readonly path?: string | undefined;
  /** Replace a leading path prefix at a segment boundary. */
  readonly prefix?: { readonly from: string; readonly to: string } | undefined;
  /** Replace what a regular expression matches in the path (`$1` for captures). */
  readonly regex?: { readonly pattern: string; readonly replacement: string } | undefined;
  /** The Host sent upstream. */
  readonly host?: string | undefined;
}

/** `ipAllow` / `ipDeny`: CIDRs the client address must (not) be in. */
export interface IpFilterConfig {
  readonly kind: 'ipAllow' | 'ipDeny';
  readonly cidrs: readonly string[];
}

/** `forwardAuth`: ask an auth service before proxying. */
export interface ForwardAuthFilterConfig {
  readonly kind: 'forwardAuth';
  /** `http://host:port/path` of the auth service. */
  readonly url: string;
  readonly timeoutMs: number;
  /** Request fields sent to the auth service. */
  readonly requestHeaders: readonly string[];
  /** Fields of a 2xx answer copied into the upstream request. */
  readonly copyHeaders: readonly string[];
  /** Status when the auth service cannot be asked. */
  readonly onError: 401 | 503;
  /** Largest answer body passed to the client. */
  readonly maxResponseBytes: number;
}

/** How long after expiry a stored response may be served for each class of backend failure, in seconds (0: only the `stale-if-error` directive). */
export interface StaleIfErrorWindows {
  /** No backend reached: connect refused, failed or timed out, none available, queue full or timed out. */
  readonly connect: number;
  /** The response timeout elapsed. */
  readonly timeout: number;
  /** A 5xx answer, or a response reset or broken before any byte reached the client. */
  readonly status5xx: number;
}

/** `cache`: a shared HTTP cache on the route (src/cache/filter.ts). */
export interface CacheFilterConfig {
  readonly kind: 'cache';
  readonly lockTimeoutMs: number;
  /** Seconds per error class (see CacheFilterOptions.staleIfErrorS). */
  readonly staleIfErrorS: StaleIfErrorWindows;
  readonly key: {
    readonly includeQuery?: readonly string[];
    readonly excludeQuery?: readonly string[];
    readonly headers?: readonly string[];
    readonly cookies?: readonly string[];
  };
}

/** `compress`: code response bodies with zstd, br or gzip (src/compress/filter.ts). */
export interface CompressFilterConfig {
  readonly kind: 'compress';
  /** Codings offered, in order of preference on Accept-Encoding ties. */
  readonly codings: readonly ('zstd' | 'br' | 'gzip')[];
  /** Level of each coding (brotli: quality). */
  readonly levels: { readonly zstd: number; readonly br: number; readonly gzip: number };
  /** Responses with a smaller Content-Length go out uncoded. */
  readonly minSize: number;
  /** Media-type allow-list (`type/subtype`, `type/*`, `type/*+suffix`). */
  readonly types: readonly string[];
  /** The CPU guard (see docs/compression.md). */
  readonly guard: boolean;
}

/** The process's response cache (top-level `cache`), shared by every route's `cache` filter in a thread. */
export interface CacheConfig {
  readonly maxBytes: number;
  readonly maxObjectSize: number;
  readonly maxVariants: number;
}

/** A user filter from a TypeScript module (see docs/api.md). */
export interface ModuleFilterConfig {
  readonly kind: 'module';
  /** The path as written in the file. */
  readonly module: string;
  /** Absolute path of the module (relative ones are taken from the config file's directory). */
  readonly path: string;
  /** `options` as written; validated against the module's schema when it is loaded. */
  readonly options: unknown;
  /** Set by `loadFilterModules` (resolveModules: loadConfig, parseConfigAsync): the module's definition and its validated options. */
  readonly loaded?: LoadedFilterModule | undefined;
}

/** A loaded filter module. */
export interface LoadedFilterModule {
  readonly definition: FilterDefinition;
  readonly options: unknown;
}

/** `rateLimit`: the named policies (top-level `rateLimits`) a route's requests must all pass (src/ratelimit/filter.ts). */
export interface RateLimitFilterConfig {
  readonly kind: 'rateLimit';
  readonly policies: readonly string[];
}

/** What every rate-limit policy has, whatever its algorithm. */
export interface RateLimitPolicyCommon {
  /** Key parts as written: `client-ip`, `header:<name>`, `cookie:<name>`, `route`, `method`, `host`. */
  readonly key: readonly string[];
  /** Bits of an IPv6 client address kept in a `client-ip` key. Default 64. */
  readonly ipv6Prefix: number;
  /** Count and report, never refuse. */
  readonly dryRun: boolean;
  /** Status of a refusal: 429 (default) or 503. */
  readonly status: 429 | 503;
  /** Also send X-RateLimit-Limit, -Remaining and -Reset. */
  readonly xRateLimitHeaders: boolean;
  /** Keys the process's table holds before it evicts. Default 100 000. */
  readonly maxKeys: number;
  /** Where the budget lives: `local` (this process's table, the default) or `redis` (shared by every instance; gcra only). */
  readonly store: 'local' | 'redis';
  /** `store: redis` when Redis fails or its breaker is open: `local` (the local table decides, the default), `open` (admit), `closed` (503). */
  readonly onStoreError: 'local' | 'open' | 'closed';
}

/** TLS to Redis (file paths absolute once loaded). */
export interface RedisTlsConfig {
  /** PEM CA bundle; absent: the system's trusted CAs. */
  readonly ca?: string | undefined;
  /** PEM client certificate and its key, for servers that require one. */
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
  /** Name checked against the server's certificate and sent as SNI. */
  readonly servername?: string | undefined;
  /** Refuse a server whose certificate does not verify. Default true. */
  readonly rejectUnauthorized: boolean;
}

/** Redis Sentinel: the master's name and sentinels to ask. */
export interface RedisSentinelConfig {
  readonly name: string;
  readonly nodes: readonly HostPort[];
  /** Credentials of the sentinels themselves (the master uses `RedisConfig.username/password`). */
  readonly username?: string | undefined;
  readonly password?: string | undefined;
}

/**
 * Top-level `redis`: the server usher instances share, for `store: redis`
 * rate-limit policies, the instance registry and the event bus (src/peers/).
 * Exactly one of `url`, `sentinel` and `cluster`. Turned into node-redis
 * options by `src/redis/options.ts`.
 */
export interface RedisConfig {
  /** A standalone server: `redis://[user:password@]host:port[/db]` or `rediss://…`. May hold a password: never log it. */
  readonly url?: string | undefined;
  readonly sentinel?: RedisSentinelConfig | undefined;
  readonly cluster?: { readonly nodes: readonly HostPort[] } | undefined;
  /** ACL user and password (also possible in `url`, not both). */
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  /** TLS: with `rediss://`, or for Sentinel and Cluster when present. */
  readonly tls?: RedisTlsConfig | undefined;
  /** First part of every key and channel. Default `usher`. */
  readonly keyPrefix: string;
  /** Longest a rate-limit decision waits for Redis, ms. Default 20. */
  readonly timeoutMs: number;
  /** This instance's id among its peers; default `<hostname>:<pid>`. */
  readonly instance?: string | undefined;
  /**
   * Share backend drains, disables and enables with every peer (cache purges are always shared). Default false.
   * This and the two below are always set by the loader; optional for configs built in code.
   */
  readonly shareAdminActions?: boolean | undefined;
  /** How often the registry entry is written, ms. Default 1000. */
  readonly heartbeatMs?: number | undefined;
  /** An instance not heard from for this long is gone (its entry's TTL), ms. Default 5000. */
  readonly peerTimeoutMs?: number | undefined;
}

/** A named rate-limit policy (top-level `rateLimits`). */
export type RateLimitPolicyConfig =
  | (RateLimitPolicyCommon & {
      readonly algorithm: 'gcra';
      /** `count` requests per `periodMs`. */
      readonly rate: { readonly count: number; readonly periodMs: number };
      readonly burst: number;
      /** Longest a request is delayed instead of refused; 0: never. */
      readonly maxDelayMs: number;
    })
  | (RateLimitPolicyCommon & { readonly algorithm: 'sliding-window'; readonly limit: number; readonly windowMs: number })
  | (RateLimitPolicyCommon & { readonly algorithm: 'concurrency'; readonly limit: number; readonly leaseTimeoutMs: number });

/** One entry of a route's `filters`. */
export type FilterConfig = HeadersFilterConfig | RewriteFilterConfig | IpFilterConfig | ForwardAuthFilterConfig | CacheFilterConfig | CompressFilterConfig | RateLimitFilterConfig | ModuleFilterConfig;

/** What one client may send and hold open. Exceeding a limit gives the status named. */
export interface ListenerLimitsConfig {
  /** Request line plus header fields, in bytes. Default 32 KiB (431). */
  readonly maxHeaderBytes: number;
  /** Header fields per request. Default 100 (431). */
  readonly maxHeaders: number;
  /** Request target (path and query) in bytes. Default 8 KiB (414). */
  readonly maxUriBytes: number;
  /** Request body in bytes; 0 = unlimited (the default: bodies stream, usher never buffers them) (413). */
  readonly maxBodyBytes: number;
  /** Requests on one kept-alive connection before usher answers with `Connection: close`. Default 1000 (nginx). */
  readonly maxRequestsPerConnection: number;
  /** Open client connections on this listener; past it new ones get 503 and are closed. Default 10000. */
  readonly maxConnections: number;
  /** Open connections from one client IP; 0 = unlimited (the default: many clients share a NAT address) (503). */
  readonly maxConnectionsPerClient: number;
}

/** Client-side timeouts of a listener. */
export interface ListenerTimeoutsConfig {
  /** A request head must be complete within this long of its first byte (slowloris). Default 10s (408). */
  readonly headerMs: number;
  /** Longest pause between two reads of a request body (slow POST). Default 60s (nginx client_body_timeout) (408). */
  readonly bodyIdleMs: number;
  /** An idle kept-alive connection is closed after this long. Default 60s. */
  readonly keepAliveMs: number;
  /** A client that stops reading its response is cut after this long without progress. Default 60s (nginx send_timeout). */
  readonly sendMs: number;
  /** A tunnel (L4 connection, WebSocket) with no bytes either way for this long is closed. Default 1h (Envoy tcp_proxy idle_timeout). */
  readonly tunnelIdleMs: number;
}

/**
 * `http`: HTTP/1.1 in clear. `https`: TLS terminated by usher (HTTP/1.1 and h2 via ALPN).
 * `tcp`: L4, each connection to one pool. `tls-passthrough`: L4 routed by the ClientHello's SNI.
 */
export type ListenerProtocol = 'http' | 'https' | 'tcp' | 'tls-passthrough';

export interface CertificateConfig {
  /** PEM certificate chain file. */
  readonly certFile: string;
  /** PEM private key file. */
  readonly keyFile: string;
  /** Internal (certificates from Kubernetes Secrets): the PEM itself; `certFile`/`keyFile` then only name where it came from. */
  readonly pem?: { readonly cert: string; readonly key: string } | undefined;
}

export interface TlsListenerConfig {
  /** Served by SNI (names from each certificate's SAN/CN, exact and wildcard); the first is the default. */
  readonly certificates: readonly CertificateConfig[];
  /** Default 'TLSv1.2'. */
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
  /** ALPN protocols offered, in preference order. Default ['h2', 'http/1.1']. */
  readonly alpn: readonly ('h2' | 'http/1.1')[];
}

export interface ListenerConfig {
  readonly name: string;
  readonly bind: HostPort;
  readonly protocol: ListenerProtocol;
  /** Required for `https`, not allowed otherwise. */
  readonly tls?: TlsListenerConfig | undefined;
  /** Read a PROXY protocol v1/v2 header first, from `trustedProxies` only. Default false. */
  readonly acceptProxyProtocol: boolean;
  /** CIDRs allowed to send a PROXY header (required when acceptProxyProtocol). */
  readonly trustedProxies: readonly string[];
  readonly routes: readonly RouteConfig[];
  readonly limits: ListenerLimitsConfig;
  readonly timeouts: ListenerTimeoutsConfig;
}

export interface StickyConfig {
  readonly cookie: string;
  readonly ttlMs: number;
  /** HMAC key for the cookie; when absent a per-process random key is used. */
  readonly secret?: string | undefined;
}

export interface TimeoutsConfig {
  /** TCP connect to a backend. Default 5s (Envoy). */
  readonly connectMs: number;
  /** From request sent to response headers received. Default 60s (nginx proxy_read_timeout). */
  readonly responseMs: number;
  /** Idle pooled upstream connection lifetime. Default 60s. */
  readonly idleMs: number;
}

/**
 * Operator intent for a backend, separate from its health: `draining` takes no
 * new requests but finishes in-flight ones; `disabled` takes nothing.
 */
export type AdminState = 'enabled' | 'draining' | 'disabled';

/** TLS from usher to a backend. */
export interface BackendTlsConfig {
  /** SNI and the name the certificate must match; default: the backend's host. */
  readonly servername?: string | undefined;
  /** PEM CA bundle file to verify the backend with; default: the system's CAs. */
  readonly caFile?: string | undefined;
  /** Skip certificate verification (testing only). Default false. */
  readonly insecureSkipVerify: boolean;
}

export interface BackendConfig {
  readonly address: HostPort;
  /** A name for people (dashboard, `usher status`, access log); the address stays the backend's identity. */
  readonly name?: string | undefined;
  /** Speak TLS to this backend. */
  readonly tls?: BackendTlsConfig | undefined;
  readonly weight: number;
  /** Receives traffic only when no primary (non-backup) backend is available. Default false. */
  readonly backup: boolean;
  /** Default 'enabled'. */
  readonly state: AdminState;
  /** Overrides the pool's `maxConnections` for this backend. */
  readonly maxConnections?: number | undefined;
}

/** Inclusive status range, e.g. [200, 399]. */
export type StatusRange = readonly [number, number];

export interface HealthCheckConfig {
  readonly type: 'http' | 'tcp';
  /** Request path for http checks. Default '/health'. */
  readonly path: string;
  /** Time between checks of one backend in a steady state. Default 2s (HAProxy `inter`). */
  readonly intervalMs: number;
  /** Time between checks while a backend is changing state (HAProxy `fastinter`). Default 500ms, at most `intervalMs`. */
  readonly fastIntervalMs: number;
  /** A check that has not completed after this long fails. Default 1s. */
  readonly timeoutMs: number;
  /** Consecutive successes that bring an unhealthy backend back. Default 2. */
  readonly rise: number;
  /** Consecutive failures that take a healthy backend out. Default 3. */
  readonly fall: number;
  /** Accepted statuses for http checks. Default [[200, 399]]. */
  readonly expectStatus: readonly StatusRange[];
  /** Response body must contain this text, or match this regex when written `~regex`. */
  readonly expectBody?: string | undefined;
  /** Host header for http checks. Default: the backend's address. */
  readonly host?: string | undefined;
  /** Port to check instead of the backend's. */
  readonly port?: number | undefined;
}

export interface OutlierConfig {
  /** Consecutive failed requests (connect errors, resets, timeouts, 5xx) that eject a backend. Default 5. */
  readonly consecutiveFailures: number;
  /** First ejection lasts this long; the n-th lasts n times as long. Default 30s (Envoy). */
  readonly ejectionTimeMs: number;
  /** Cap on one ejection's length. Default 300s (Envoy). */
  readonly maxEjectionTimeMs: number;
  /** Never eject more than this percent of a pool's backends (at least one may always be ejected). Default 50. */
  readonly maxEjectionPercent: number;
}

/**
 * Passive ejection of backends that refuse connections (nginx `max_fails=1`):
 * out of rotation at once for `backoffMs`, doubling on each refusal after a
 * return, up to `maxBackoffMs`.
 */
export interface UnreachableConfig {
  /** First time out of rotation. Default 1s. */
  readonly backoffMs: number;
  /** Longest time out of rotation. Default 10s (nginx `fail_timeout`). */
  readonly maxBackoffMs: number;
}

export type RetryCondition = 'connect-failure' | 'reset' | 'timeout' | '502' | '503' | '504';

export interface RetryConfig {
  /** Retries after the first try (so up to attempts + 1 tries). Default 2; 0 turns retries off. */
  readonly attempts: number;
  /** Failures that are retried. Default connect-failure and reset. */
  readonly on: readonly RetryCondition[];
  /** Retries may be at most this percent of the pool's requests (Envoy: 20). Default 20. */
  readonly budgetPercent: number;
  /** Retries always allowed per second regardless of the budget, so a quiet pool can still retry (Envoy: 3 concurrent). Default 3. */
  readonly minRetriesPerSecond: number;
}

export interface PoolConfig {
  /** How usher speaks HTTP to the backends: 'http1' (default) or 'h2c' (cleartext HTTP/2, e.g. gRPC). */
  readonly protocol: 'http1' | 'h2c';
  /** Send a PROXY protocol header on each new backend connection. */
  readonly proxyProtocol?: 'v1' | 'v2' | undefined;
  /** Tunnels (WebSocket, L4) to a draining backend may live this long after the drain. Default 30s. */
  readonly drainTimeoutMs: number;
  readonly algorithm: AlgorithmConfig;
  readonly hashKey: HashKey;
  readonly hashBalanceFactor?: number | undefined;
  readonly sticky?: StickyConfig | undefined;
  readonly timeouts: TimeoutsConfig;
  readonly backends: readonly BackendConfig[];
  readonly healthCheck?: HealthCheckConfig | undefined;
  readonly outlier?: OutlierConfig | undefined;
  /** Passive ejection of backends that refuse connections; `false` turns it off. On by default. */
  readonly unreachable: UnreachableConfig | false;
  /** Ramp a backend that returns to rotation from 10% to full weight over this long. */
  readonly slowStartMs?: number | undefined;
  /**
   * When fewer than this percent of backends are available, balance over all
   * backends (Envoy's panic mode) instead of answering 503. Unset means off.
   */
  readonly panicThresholdPercent?: number | undefined;
  /** Always present: connect failures and resets are retried by default. */
  readonly retry: RetryConfig;
  /** Most requests in flight to one backend; unset means unlimited (HAProxy `maxconn`). */
  readonly maxConnections?: number | undefined;
  /** Requests that may wait for a backend slot when all are at `maxConnections`. Default 128. */
  readonly queueSize: number;
  /** How long a request waits in that queue before 503. Default 5s. */
  readonly queueTimeoutMs: number;
  /** Members found at run time (DNS, Kubernetes), besides `backends`; see docs/discovery.md and docs/kubernetes.md. */
  readonly discovery?: DiscoveryConfig | undefined;
}

/** Where a pool's discovered members come from: one key per kind of source. */
export interface DiscoveryConfig {
  readonly dns?: DnsDiscoveryConfig | undefined;
  /** Members from a Service's EndpointSlices (src/kubernetes/). */
  readonly kubernetes?: KubernetesDiscoveryConfig | undefined;
}

/** A pool's `discovery.kubernetes`. */
export interface KubernetesDiscoveryConfig {
  /** Absent: usher's own namespace (see `kubernetes/connection.ts`). */
  readonly namespace?: string | undefined;
  readonly service: string;
  /** The endpoint port by name (the Service port's name) or number (the endpoints' port). */
  readonly port: string | number;
}

/** Top-level `kubernetes`: how usher reaches the API server. */
export interface KubernetesConfig {
  /** `in-cluster`, or an absolute kubeconfig path (relative ones are resolved against the config file's directory). */
  readonly kubeconfig: string;
  readonly context?: string | undefined;
  /** Routes from Ingresses of usher's IngressClasses (src/kubernetes/routes.ts). */
  readonly ingress?: KubernetesIngressConfig | undefined;
  /** Routes from HTTPRoutes attached to Gateways of usher's GatewayClasses. */
  readonly gateway?: KubernetesGatewayConfig | undefined;
}

/** `kubernetes.ingress`. */
export interface KubernetesIngressConfig {
  /** IngressClasses whose `spec.controller` is this are usher's. Default `usher.dev/ingress-controller`. */
  readonly controller: string;
  /** The http listener the routes go on (after the file's routes). */
  readonly listener: string;
  /** The https listener Ingress `tls` hosts are served on, with the Secrets' certificates (after the file's routes and certificates). */
  readonly tlsListener?: string | undefined;
  /** Written to `status.loadBalancer.ingress` (an IP, or a host name). */
  readonly address?: string | undefined;
}

/** `kubernetes.gateway`. */
export interface KubernetesGatewayConfig {
  /** GatewayClasses whose `spec.controllerName` is this are usher's. Default `usher.dev/gateway-controller`. */
  readonly controllerName: string;
  /** The http listener routes attached to a Gateway's HTTP listeners go on. */
  readonly listener: string;
  /** Written to Gateways' `status.addresses` (an IP, or a host name). */
  readonly address?: string | undefined;
}

/** Which address records DNS discovery asks for: A, AAAA or both. */
export type DnsFamily = 'ipv4' | 'ipv6' | 'any';

/** What DNS discovery asks for, and how often (src/discovery/dns-source.ts). */
export type DnsDiscoveryConfig = DnsDiscoverySettings & (
  /** A/AAAA records of `name`; every address serves on `port`. */
  | { readonly type: 'address'; readonly name: string; readonly port: number }
  /** SRV records of `name` (`_service._proto.domain`), then each target's A/AAAA records. */
  | { readonly type: 'srv'; readonly name: string }
);

export interface DnsDiscoverySettings {
  /** A (`ipv4`), AAAA (`ipv6`) or both (`any`, the default). */
  readonly family: DnsFamily;
  /** Fixed time between lookups; absent: each answer's TTL, clamped to 1-300 s (A/AAAA), or 30 s (the SRV records themselves). */
  readonly refreshMs?: number | undefined;
  /** How long the last answer is kept after NXDOMAIN or an empty answer, before the members go. Default 30s. */
  readonly holdMs: number;
  /** Name servers to ask (`ip` or `ip:port`, as `Resolver.setServers` takes them); absent: the system's (/etc/resolv.conf). */
  readonly resolvers?: readonly string[] | undefined;
  /** Longest one lookup may take before it counts as a timeout. Default 2s. */
  readonly timeoutMs: number;
}

/** `json`: one JSON object per line; `combined`: the Apache/nginx combined format plus the request id. */
export type AccessLogFormat = 'json' | 'combined';

export interface AccessLogConfig {
  readonly enabled: boolean;
  /** File path; '-' or absent means stdout. */
  readonly path?: string | undefined;
  /** Line format. Default `json`. */
  readonly format: AccessLogFormat;
}

/** Process log levels, most verbose first; `silent` writes nothing. */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

/** The process log (start-up, state changes, errors), as opposed to the access log. */
export interface LogConfig {
  /** Least severe level written. Default `info`. */
  readonly level: LogLevel;
  /** `stderr` (the default), `stdout`, or a file path to append to. */
  readonly destination: string;
}

export interface AdminConfig {
  readonly bind: HostPort;
  /** Bearer token required on every admin request when set; required for a non-loopback bind. */
  readonly token?: string | undefined;
}

export interface UsherConfig {
  readonly listeners: readonly ListenerConfig[];
  readonly pools: Readonly<Record<string, PoolConfig>>;
  readonly accessLog: AccessLogConfig;
  readonly log: LogConfig;
  readonly admin?: AdminConfig | undefined;
  /** How long a graceful stop waits for in-flight requests. Default 30s. */
  readonly shutdownTimeoutMs: number;
  /** Threads: absent in configs built in code, which then run on the main thread alone. */
  readonly runtime?: RuntimeConfig | undefined;
  /** The response cache's limits; absent: the defaults, when a route has a `cache` filter. */
  readonly cache?: CacheConfig | undefined;
  /** Named rate-limit policies, used by routes' `rateLimit` filters. */
  readonly rateLimits?: Readonly<Record<string, RateLimitPolicyConfig>> | undefined;
  /** The Redis instances share: `store: redis` rate-limit policies, the instance registry, the event bus. */
  readonly redis?: RedisConfig | undefined;
  /** How usher reaches the Kubernetes API server (pools with `discovery.kubernetes`). */
  readonly kubernetes?: KubernetesConfig | undefined;
}

export interface RuntimeConfig {
  /** Data-plane worker threads; `auto` is one per available CPU; 0 serves from the main thread. */
  readonly workers: 'auto' | number;
}
