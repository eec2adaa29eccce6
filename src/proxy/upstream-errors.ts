import { UsherError, type ErrorCode } from '../errors.ts';

/**
 * Maps what the socket layer reports (and `UND_ERR_SOCKET`, which the exchange uses for a backend that closed without answering) onto
 * usher's error catalogue. The distinction between "never connected" and
 * "failed after sending" matters: only the former is safe to retry for any method.
 */
const byCode: Readonly<Record<string, ErrorCode>> = {
  ECONNREFUSED: 'USHER_UPSTREAM_CONNECT_REFUSED',
  ETIMEDOUT: 'USHER_UPSTREAM_CONNECT_TIMEOUT',
  ENOTFOUND: 'USHER_UPSTREAM_CONNECT_FAILED',
  EAI_AGAIN: 'USHER_UPSTREAM_CONNECT_FAILED',
  EHOSTUNREACH: 'USHER_UPSTREAM_CONNECT_FAILED',
  ENETUNREACH: 'USHER_UPSTREAM_CONNECT_FAILED',
  EADDRNOTAVAIL: 'USHER_UPSTREAM_CONNECT_FAILED',
  UND_ERR_SOCKET: 'USHER_UPSTREAM_RESET',
  ECONNRESET: 'USHER_UPSTREAM_RESET',
  EPIPE: 'USHER_UPSTREAM_RESET',
};

/** The usher error for a failure of the exchange with `backendKey`. */
export function upstreamError(err: unknown, backendKey: string): UsherError {
  if (err instanceof UsherError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : String(err);
  let usherCode: ErrorCode = 'USHER_UPSTREAM_RESET';
  if (typeof code === 'string') {
    usherCode = byCode[code] ?? (code.startsWith('HPE_') ? 'USHER_UPSTREAM_BAD_RESPONSE' : usherCode);
  }
  return new UsherError(usherCode, `backend ${backendKey}: ${message}`, { cause: err });
}

/** A failure before the request reached the backend: an unmapped code still means it could not connect (safe to retry for any method). */
export function connectFailure(cause: unknown, backendKey: string): UsherError {
  const error = upstreamError(cause, backendKey);
  return error.code === 'USHER_UPSTREAM_RESET' ? new UsherError('USHER_UPSTREAM_CONNECT_FAILED', error.message, { cause }) : error;
}

/** An upstream connection failed (`error`) or closed without answering (no error), while connecting or during the exchange. */
export function connectionLost(error: NodeJS.ErrnoException | undefined, phase: 'connect' | 'exchange', backendKey: string): UsherError {
  const cause = error ?? Object.assign(new Error('backend closed the connection'), { code: 'UND_ERR_SOCKET' });
  return phase === 'connect' ? connectFailure(cause, backendKey) : upstreamError(cause, backendKey);
}

/** The connect or response timeout of an attempt ran out after `afterMs`. */
export function upstreamTimeout(phase: 'connect' | 'exchange', backendKey: string, afterMs: number): UsherError {
  return phase === 'connect'
    ? new UsherError('USHER_UPSTREAM_CONNECT_TIMEOUT', `backend ${backendKey}: no connection within ${afterMs} ms`)
    : new UsherError('USHER_UPSTREAM_RESPONSE_TIMEOUT', `backend ${backendKey}: no response within ${afterMs} ms`);
}
