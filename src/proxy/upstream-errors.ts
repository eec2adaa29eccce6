import { UsherError, type ErrorCode } from '../errors.ts';

/**
 * Maps what the upstream client (undici) or the socket layer reports onto
 * usher's error catalogue. The distinction between "never connected" and
 * "failed after sending" matters: only the former is safe to retry for any method.
 */
const byCode: Readonly<Record<string, ErrorCode>> = {
  ECONNREFUSED: 'USHER_UPSTREAM_CONNECT_REFUSED',
  UND_ERR_CONNECT_TIMEOUT: 'USHER_UPSTREAM_CONNECT_TIMEOUT',
  ETIMEDOUT: 'USHER_UPSTREAM_CONNECT_TIMEOUT',
  ENOTFOUND: 'USHER_UPSTREAM_CONNECT_FAILED',
  EAI_AGAIN: 'USHER_UPSTREAM_CONNECT_FAILED',
  EHOSTUNREACH: 'USHER_UPSTREAM_CONNECT_FAILED',
  ENETUNREACH: 'USHER_UPSTREAM_CONNECT_FAILED',
  EADDRNOTAVAIL: 'USHER_UPSTREAM_CONNECT_FAILED',
  UND_ERR_HEADERS_TIMEOUT: 'USHER_UPSTREAM_RESPONSE_TIMEOUT',
  UND_ERR_BODY_TIMEOUT: 'USHER_UPSTREAM_RESPONSE_TIMEOUT',
  UND_ERR_SOCKET: 'USHER_UPSTREAM_RESET',
  ECONNRESET: 'USHER_UPSTREAM_RESET',
  EPIPE: 'USHER_UPSTREAM_RESET',
  UND_ERR_CLOSED: 'USHER_UPSTREAM_RESET',
  UND_ERR_DESTROYED: 'USHER_UPSTREAM_RESET',
  UND_ERR_HEADERS_OVERFLOW: 'USHER_UPSTREAM_BAD_RESPONSE',
  UND_ERR_RES_CONTENT_LENGTH_MISMATCH: 'USHER_UPSTREAM_BAD_RESPONSE',
  UND_ERR_RES_EXCEEDED_MAX_SIZE: 'USHER_UPSTREAM_BAD_RESPONSE',
  UND_ERR_INFO: 'USHER_UPSTREAM_BAD_RESPONSE',
  UND_ERR_REQ_CONTENT_LENGTH_MISMATCH: 'USHER_DOWNSTREAM_BAD_REQUEST',
  UND_ERR_INVALID_ARG: 'USHER_DOWNSTREAM_BAD_REQUEST',
};

/** The usher error for a failure of the exchange with `backendKey`. */
export function upstreamError(err: unknown, backendKey: string): UsherError {
  if (err instanceof UsherError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : String(err);
  let usherCode: ErrorCode = 'USHER_UPSTREAM_RESET';
  if (typeof code === 'string') {
    usherCode = byCode[code] ?? (code.startsWith('HPE_') ? 'USHER_UPSTREAM_BAD_RESPONSE' : usherCode);
  } else if (err instanceof Error && err.name === 'HTTPParserError') {
    usherCode = 'USHER_UPSTREAM_BAD_RESPONSE';
  }
  return new UsherError(usherCode, `backend ${backendKey}: ${message}`, { cause: err });
}
