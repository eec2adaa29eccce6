/**
 * The resolved configuration: what the schema produces after validation and
 * defaults. Durations are milliseconds; addresses are split into host and port.
 * The data plane compiles this into its snapshot; nothing here is read per request.
 */

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export type AlgorithmName =
  | 'p2c'
  | 'round-robin'
  | 'least-connections'
  | 'random'
  | 'ewma'
  | 'hash'
  | 'maglev';

export type HashKey =
  | { readonly kind: 'client-ip' }
  | { readonly kind: 'path' }
  | { readonly kind: 'header'; readonly name: string }
  | { readonly kind: 'cookie'; readonly name: string }
  | { readonly kind: 'query'; readonly name: string };

/** A match value: exact string, or a regular expression when written `~regex`. */
export type MatchValue = string;

export interface MatchConfig {
  readonly host?: string | undefined;
  readonly path?: string | undefined;
  readonly pathPrefix?: string | undefined;
  readonly pathRegex?: string | undefined;
  readonly methods?: readonly string[] | undefined;
  readonly headers?: Readonly<Record<string, MatchValue>> | undefined;
  readonly query?: Readonly<Record<string, MatchValue>> | undefined;
  readonly cookies?: Readonly<Record<string, MatchValue>> | undefined;
}

export interface RouteConfig {
  readonly name?: string | undefined;
  readonly match?: MatchConfig | undefined;
  readonly pool: string;
  readonly stripPrefix?: string | undefined;
}

export interface ListenerConfig {
  readonly name: string;
  readonly bind: HostPort;
  readonly protocol: 'http';
  readonly routes: readonly RouteConfig[];
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

export interface BackendConfig {
  readonly address: HostPort;
  readonly weight: number;
}

export interface PoolConfig {
  readonly algorithm: AlgorithmName;
  readonly hashKey: HashKey;
  readonly hashBalanceFactor?: number | undefined;
  readonly sticky?: StickyConfig | undefined;
  readonly timeouts: TimeoutsConfig;
  readonly backends: readonly BackendConfig[];
}

export interface AccessLogConfig {
  readonly enabled: boolean;
  /** File path; '-' or absent means stdout. */
  readonly path?: string | undefined;
}

export interface UsherConfig {
  readonly listeners: readonly ListenerConfig[];
  readonly pools: Readonly<Record<string, PoolConfig>>;
  readonly accessLog: AccessLogConfig;
}
