import { Pool as UndiciPool, type Dispatcher } from 'undici';
import type { HostPort, TimeoutsConfig } from '../config/types.ts';
import { formatHostPort } from './backend.ts';

/**
 * The kept-alive connection pool to one backend. undici's Pool reuses idle
 * connections (LIFO), frames HTTP/1.1 with llhttp and enforces the connect timeout.
 * No pipelining: a request never waits behind another's response.
 */
export function createConnections(address: HostPort, timeouts: TimeoutsConfig): Dispatcher {
  return new UndiciPool(`http://${formatHostPort(address)}`, {
    connections: null,
    pipelining: 1,
    connectTimeout: timeouts.connectMs,
    keepAliveTimeout: timeouts.idleMs,
    keepAliveMaxTimeout: timeouts.idleMs,
    headersTimeout: timeouts.responseMs,
    bodyTimeout: timeouts.responseMs,
    // Backends send what they send: a proxy must not cap response headers below the client's limits.
    maxHeaderSize: 64 * 1024,
    strictContentLength: true,
  });
}
