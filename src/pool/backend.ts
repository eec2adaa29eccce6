import type { Endpoint } from '../balancer/types.ts';
import type { HostPort } from '../config/types.ts';
import type { UpstreamConnectionPool } from './upstream-connection.ts';

/**
 * Why a backend is or is not in rotation. Only `healthy` backends take new
 * requests; later phases (health checks, drain, admin) move backends between states.
 */
export type BackendState = 'healthy' | 'unhealthy' | 'draining' | 'disabled';

/** Counters the admin API, metrics and dashboard read. Plain numbers: the data plane only increments. */
export interface BackendCounters {
  requests: number;
  failures: number;
  bytesOut: number;
}

/**
 * One upstream server of a pool: its address, weight, live state and the
 * kept-alive connection pool to it. It is the `Endpoint` its pool's balancer sees,
 * so the balancer reads `inFlight` and `weight` without any copying.
 */
export class Backend implements Endpoint {
  readonly index: number;
  readonly key: string;
  readonly address: HostPort;
  /** Opaque id written into sticky cookies; never reveals the address. */
  readonly stickyToken: string;
  readonly connections: UpstreamConnectionPool;
  readonly configuredWeight: number;
  weight: number;
  inFlight = 0;
  state: BackendState = 'healthy';
  readonly counters: BackendCounters = { requests: 0, failures: 0, bytesOut: 0 };

  constructor(init: {
    index: number;
    address: HostPort;
    weight: number;
    stickyToken: string;
    connections: UpstreamConnectionPool;
  }) {
    this.index = init.index;
    this.address = init.address;
    this.key = formatHostPort(init.address);
    this.configuredWeight = init.weight;
    this.weight = init.weight;
    this.stickyToken = init.stickyToken;
    this.connections = init.connections;
  }

  /** True when the backend may take a new request. */
  get available(): boolean {
    return this.state === 'healthy';
  }
}

/** `host:port`, with IPv6 hosts in brackets. */
export function formatHostPort(address: HostPort): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}
