/**
 * Contracts of usher's own HTTP/1.1 codec (RFC 9112). usher parses HTTP/1.1
 * itself on both sides instead of using node:http and undici: the benchmark
 * showed node:http's server alone costs more CPU per request than the product
 * target allows (docs/design.md), and owning the parser lets usher reject
 * every ambiguous message precisely (request smuggling) with one set of rules.
 */

/** Size limits applied while parsing a head. */
export interface HeadLimits {
  /** Max bytes of the whole head (request/status line + headers + final CRLF). Exceeding → 431 (request) / bad response. */
  readonly maxHeadBytes: number;
  /** Max number of header fields. Exceeding → 431. */
  readonly maxHeaders: number;
  /** Max bytes of the request target. Exceeding → 414. */
  readonly maxTargetBytes: number;
}

export const defaultHeadLimits: HeadLimits = { maxHeadBytes: 32 * 1024, maxHeaders: 100, maxTargetBytes: 8 * 1024 };

/** How a message body is delimited (RFC 9112 §6.3). */
export type BodyFraming =
  | { readonly kind: 'none' }
  | { readonly kind: 'length'; readonly length: number }
  | { readonly kind: 'chunked' }
  /** Response only: body runs until the upstream closes the connection. */
  | { readonly kind: 'until-close' };

/** Fields common to request and response heads. */
export interface MessageHead {
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  readonly minorVersion: 0 | 1;
  /** Header fields as received: [name, value, name, value, ...]; names keep their case, values are trimmed of OWS. */
  readonly rawHeaders: readonly string[];
  /** Body framing; `Content-Length: 0` is reported as `none`. */
  readonly framing: BodyFraming;
  /**
   * Whether the connection may carry another message after this one (version
   * default + Connection header). Responses: also false when the body runs
   * until close, and for a 204 or 304 that carried Content-Length or
   * Transfer-Encoding (a body may follow that must not be read as the next response).
   */
  readonly keepAlive: boolean;
  /** Lowercased tokens of the Connection header(s), e.g. ['keep-alive'] or ['close', 'x-foo']. */
  readonly connectionTokens: readonly string[];
  /** Bytes the head occupied in the input, including the final CRLFCRLF: the body starts here. */
  readonly headLength: number;
}

export interface RequestHead extends MessageHead {
  /** Method token exactly as received. Methods are case-sensitive and any token is accepted (`get` too): the router decides. */
  readonly method: string;
  /** Request target exactly as received (origin-form, absolute-form, authority-form for CONNECT, or `*`). */
  readonly target: string;
  /** The single Host header value, or undefined when absent (only allowed for HTTP/1.0). */
  readonly host: string | undefined;
  /**
   * `Upgrade` requested: HTTP/1.1, Connection: upgrade and a non-empty Upgrade
   * field that is a list of protocols naming neither `h2c` nor `h2` (those are
   * never upgrades: the request is proxied as a plain one, without Upgrade).
   */
  readonly upgrade: boolean;
  /** `Expect: 100-continue` present. */
  readonly expectContinue: boolean;
}

export interface ResponseHead extends MessageHead {
  readonly status: number;
  readonly reason: string;
  /**
   * Seconds from `Keep-Alive: timeout=N` (RFC 2068 §19.7.1.1, still sent by
   * node:http, Apache and others): how long the backend keeps an idle
   * connection open. -1 when absent or unreadable.
   */
  readonly keepAliveTimeoutSeconds: number;
}

/** Why a message was rejected. `status` is what usher answers downstream for a bad request (and logs for a bad response). */
export interface Http1ParseError {
  readonly error: true;
  /** Stable code, e.g. 'HTTP1_CL_AND_TE', 'HTTP1_BAD_CHUNK_SIZE'. */
  readonly code: string;
  /** Requests: 400, 414, 417, 431, 501 or 505. Responses: always 502. BodyFramer: its `errorStatus` option (400 by default). */
  readonly status: number;
  /** Human-readable detail for logs (never echoes more than a few bytes of input). */
  readonly message: string;
}

/** Result of trying to parse a head from the bytes received so far. */
export type HeadResult<T> = T | Http1ParseError | undefined; // undefined = incomplete, need more bytes
