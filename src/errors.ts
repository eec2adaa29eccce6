/**
 * Typed errors. Every failure on the request path becomes an `UsherError` with a
 * stable `code`, the side that caused it, whether a retry could help, and the
 * status the client gets. One function (`proxy/error-response.ts`) turns them
 * into responses, so a status code is decided in exactly one place.
 */

/** Which side of the proxy the failure came from. */
export type ErrorSource = 'downstream' | 'upstream' | 'internal' | 'config';

/**
 * How a failed attempt is retried (`retry.on`, proxy/retry-policy.ts), for the
 * errors that may be: `connect-failure` means the request reached no
 * application, so it is safe for any method; the others only for idempotent
 * requests with no body sent.
 */
export type RetryAs = 'connect-failure' | 'reset' | 'timeout' | '502';

export interface ErrorSpec {
  readonly httpStatus: number;
  readonly source: ErrorSource;
  /** The `retry.on` condition this failure is; absent: never retried. */
  readonly retryAs?: RetryAs;
  /** The backend could not be reached at all: it leaves rotation (the pool's `unreachable`). */
  readonly unreachable?: true;
  /** Short reason sent to clients in `x-usher-error`; never contains addresses or secrets. */
  readonly reason: string;
}

/** The catalogue of request-path failures. Codes are stable: logs and dashboards key on them. */
export const errorSpecs = {
  USHER_NO_ROUTE: { httpStatus: 404, source: 'downstream', reason: 'no_route' },
  USHER_NO_BACKEND: { httpStatus: 503, source: 'upstream', reason: 'no_backend' },
  USHER_QUEUE_FULL: { httpStatus: 503, source: 'upstream', reason: 'queue_full' },
  USHER_QUEUE_TIMEOUT: { httpStatus: 503, source: 'upstream', reason: 'queue_timeout' },
  USHER_UPSTREAM_CONNECT_REFUSED: { httpStatus: 502, source: 'upstream', retryAs: 'connect-failure', unreachable: true, reason: 'connect_refused' },
  USHER_UPSTREAM_CONNECT_FAILED: { httpStatus: 502, source: 'upstream', retryAs: 'connect-failure', unreachable: true, reason: 'connect_failed' },
  USHER_UPSTREAM_CONNECT_TIMEOUT: { httpStatus: 504, source: 'upstream', retryAs: 'connect-failure', unreachable: true, reason: 'connect_timeout' },
  USHER_UPSTREAM_RESPONSE_TIMEOUT: { httpStatus: 504, source: 'upstream', retryAs: 'timeout', reason: 'response_timeout' },
  USHER_UPSTREAM_RESET: { httpStatus: 502, source: 'upstream', retryAs: 'reset', reason: 'upstream_reset' },
  /** An h2c backend refused the stream (REFUSED_STREAM): RFC 9113 §8.7 guarantees it did not process it. */
  USHER_UPSTREAM_STREAM_REFUSED: { httpStatus: 502, source: 'upstream', retryAs: 'connect-failure', reason: 'stream_refused' },
  USHER_UPSTREAM_BAD_RESPONSE: { httpStatus: 502, source: 'upstream', retryAs: '502', reason: 'bad_response' },
  USHER_DOWNSTREAM_ABORTED: { httpStatus: 499, source: 'downstream', reason: 'client_closed' },
  USHER_DOWNSTREAM_BAD_REQUEST: { httpStatus: 400, source: 'downstream', reason: 'bad_request' },
  USHER_DOWNSTREAM_HOST_MISMATCH: { httpStatus: 400, source: 'downstream', reason: 'host_mismatch' },
  USHER_DOWNSTREAM_MISDIRECTED: { httpStatus: 421, source: 'downstream', reason: 'misdirected_request' },
  USHER_DOWNSTREAM_CONNECT_REFUSED: { httpStatus: 405, source: 'downstream', reason: 'connect_not_allowed' },
  USHER_DOWNSTREAM_CONNECT_UNSUPPORTED: { httpStatus: 501, source: 'downstream', reason: 'connect_not_supported' },
  USHER_DOWNSTREAM_BODY_TOO_LARGE: { httpStatus: 413, source: 'downstream', reason: 'body_too_large' },
  USHER_DOWNSTREAM_BODY_TIMEOUT: { httpStatus: 408, source: 'downstream', reason: 'body_timeout' },
  USHER_H2C_REQUIRES_H2: { httpStatus: 502, source: 'upstream', reason: 'h2c_requires_h2' },
  USHER_DOWNSTREAM_SEND_TIMEOUT: { httpStatus: 499, source: 'downstream', reason: 'send_timeout' },
  USHER_INTERNAL: { httpStatus: 500, source: 'internal', reason: 'internal_error' },
  /** A route from the Gateway API picked a backendRef that could not be resolved (no such Service, or a cross-namespace reference no ReferenceGrant allows): 500, as the Gateway API says. */
  USHER_BACKEND_INVALID: { httpStatus: 500, source: 'internal', reason: 'backend_invalid' },
  /** The pool's balancer threw while picking (a bug in a custom balancer); logged by the pool. */
  USHER_BALANCER_FAILED: { httpStatus: 500, source: 'internal', reason: 'balancer_error' },
  /** A route filter threw (or returned something that is not a verdict); logged with the route and filter. */
  USHER_FILTER_ERROR: { httpStatus: 500, source: 'internal', reason: 'filter_error' },
  /** An asynchronous filter did not settle within its time. */
  USHER_FILTER_TIMEOUT: { httpStatus: 504, source: 'internal', reason: 'filter_timeout' },
  /** `ipAllow`/`ipDeny`: the client's address may not use this route. */
  USHER_FORBIDDEN: { httpStatus: 403, source: 'downstream', reason: 'forbidden' },
  /** `forwardAuth`: the auth service could not be asked (down, slow, bad answer) and `onError` is 503. */
  USHER_AUTH_UNAVAILABLE: { httpStatus: 503, source: 'upstream', reason: 'auth_unavailable' },
  /** `forwardAuth`: the auth service could not be asked and `onError` is 401. */
  USHER_AUTH_UNAUTHORIZED: { httpStatus: 401, source: 'upstream', reason: 'unauthorized' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof errorSpecs;

export class UsherError extends Error {
  readonly code: ErrorCode;
  readonly source: ErrorSource;
  /** A retry on another backend may succeed (the spec's `retryAs` is set). */
  readonly retryable: boolean;
  readonly httpStatus: number;
  readonly reason: string;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    const spec: ErrorSpec = errorSpecs[code];
    this.name = 'UsherError';
    this.code = code;
    this.source = spec.source;
    this.retryable = spec.retryAs !== undefined;
    this.httpStatus = spec.httpStatus;
    this.reason = spec.reason;
  }
}

/** A configuration or start-up problem the operator must fix; the CLI prints it and exits non-zero. */
export class UsherConfigError extends Error {
  readonly code = 'USHER_CONFIG_INVALID';
  readonly details: readonly string[];

  constructor(message: string, details: readonly string[] = []) {
    super(message);
    this.name = 'UsherConfigError';
    this.details = details;
  }
}
