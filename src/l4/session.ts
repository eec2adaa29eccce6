import { connect, type Socket } from 'node:net';
import { hashString } from '../balancer/hash-fn.ts';
import type { PickContext } from '../balancer/types.ts';
import type { BackendRuntime } from '../pool/backend-runtime.ts';
import type { PoolRuntime } from '../pool/pool-runtime.ts';
import type { Waiter } from '../pool/wait-queue.ts';
import { readServerName } from './client-hello.ts';
import { routeForServerName, type L4Route, type TcpListenerPlan } from './plan.ts';
import { encodeProxyV1, encodeProxyV2, readProxyHeader, startsWithProxySignature, type ProxyEndpoint } from './proxy-protocol.ts';
import { Tunnel, type TunnelEnd } from './tunnel.ts';

/**
 * Backends tried per connection: the first pick and up to two others after
 * connect failures, each a different backend (HAProxy `retries` with
 * `option redispatch`; Envoy tcp_proxy `max_connect_attempts`). Safe because
 * nothing has reached a backend yet: the bytes read so far are replayed.
 */
export const MAX_CONNECT_ATTEMPTS = 3;

type Phase = 'prelude' | 'pick' | 'queued' | 'connecting' | 'tunnel' | 'done';

const ZERO_BYTES = Buffer.alloc(0);
/**
 * A tcp session's read buffer for the backend's bytes starts as a slice of
 * node's shared slab (no allocation of its own: many sessions are one short
 * exchange) and doubles while reads fill it, up to what node reads at most
 * per call.
 */
const FIRST_READ_BYTES = 2 * 1024;
const MAX_READ_BYTES = 64 * 1024;

/**
 * One client connection through the phases {@link TcpProxy} documents:
 * prelude, route, pick or queue, connect with redispatch, tunnel. Used only
 * by TcpProxy, which is the entry point.
 */
export class L4Session implements Waiter {
  /** The proxy's open sessions; a session removes itself when it ends. */
  readonly #sessions: Set<L4Session>;
  readonly #plan: TcpListenerPlan;
  readonly #client: Socket;
  #phase: Phase = 'prelude';
  /** The client as usher reports it: the peer, or the PROXY header's source. */
  #source: ProxyEndpoint | undefined;
  /** Where the client connected to: the local address, or the PROXY header's destination. */
  #destination: ProxyEndpoint | undefined;
  #expectProxyHeader: boolean;
  /** An untrusted peer on a PROXY listener: refuse a PROXY header from it. */
  readonly #refuseProxyHeader: boolean;
  /** Client bytes read before the tunnel, replayed to each backend tried. */
  #buffer: Buffer = ZERO_BYTES;
  #route: L4Route | undefined;
  readonly #ctx: { hash: number; tried: number[] } & PickContext = { hash: 0, tried: [] };
  backend: BackendRuntime | undefined;
  #upstream: Socket | undefined;
  #attemptOpen = false;
  #connectStartedAt = 0;
  #connectMs = -1;
  #tunnel: Tunnel | undefined;
  #preludeTimer: NodeJS.Timeout | undefined;
  readonly #startedAt = performance.now();

  constructor(sessions: Set<L4Session>, plan: TcpListenerPlan, client: Socket) {
    this.#sessions = sessions;
    this.#plan = plan;
    this.#client = client;
    const peer = client.remoteAddress;
    this.#source = peer === undefined ? undefined : { address: peer, port: client.remotePort ?? 0 };
    const local = client.localAddress;
    this.#destination = local === undefined ? undefined : { address: local, port: client.localPort ?? 0 };
    const trusted = plan.acceptProxyProtocol && peer !== undefined && plan.isTrustedProxy(peer);
    this.#expectProxyHeader = trusted;
    this.#refuseProxyHeader = plan.acceptProxyProtocol && !trusted;
  }

  start(): void {
    const client = this.#client;
    // Set on the socket as well as the server: half-close support must not depend on how the runtime created the server.
    client.allowHalfOpen = true;
    client.setNoDelay(true);
    client.on('error', this.#onClientError);
    client.on('close', this.#onClientClose);
    client.on('end', this.#onClientEnd);
    if (this.#expectProxyHeader || this.#plan.protocol === 'tls-passthrough') {
      // A deadline for the whole prelude, not an inactivity timeout: a client trickling one byte at a time must not hold it open.
      this.#preludeTimer = setTimeout(this.#onPreludeTimeout, this.#plan.preludeTimeoutMs);
      client.on('data', this.#onPreludeData);
      // A server created with `pauseOnConnect` hands over paused sockets, which a 'data' listener alone does not start.
      client.resume();
      return;
    }
    // Plain tcp: route and connect at once; the client's bytes wait in its socket until the tunnel reads them.
    client.pause();
    this.#route = this.#plan.routes[0];
    this.#pick();
  }

  // ---- prelude -------------------------------------------------------------------

  #onPreludeData = (chunk: Buffer): void => {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    if (this.#expectProxyHeader) {
      const result = readProxyHeader(this.#buffer);
      if (result === 'incomplete') return;
      if ('error' in result) {
        this.#close(`PROXY header from trusted peer refused: ${result.error}`);
        return;
      }
      this.#expectProxyHeader = false;
      const { header, length } = result;
      if (header.source !== undefined) this.#source = header.source;
      if (header.destination !== undefined) this.#destination = header.destination;
      this.#buffer = this.#buffer.subarray(length);
    }
    if (this.#plan.protocol === 'tcp') {
      this.#endPrelude(this.#plan.routes[0]);
      return;
    }
    if (this.#buffer.length === 0) return;
    if (this.#refuseProxyHeader && startsWithProxySignature(this.#buffer)) {
      this.#close('PROXY header from an untrusted peer refused');
      return;
    }
    const hello = readServerName(this.#buffer);
    if (hello === 'incomplete') return;
    if ('error' in hello) {
      this.#close(`invalid ClientHello: ${hello.error}`);
      return;
    }
    const route = routeForServerName(this.#plan, hello.serverName);
    if (route === undefined) {
      this.#close(`no route for SNI ${hello.serverName === undefined ? '(none)' : JSON.stringify(hello.serverName)}`);
      return;
    }
    this.#endPrelude(route);
  };

  #endPrelude(route: L4Route | undefined): void {
    const client = this.#client;
    clearTimeout(this.#preludeTimer);
    this.#preludeTimer = undefined;
    client.off('data', this.#onPreludeData);
    client.pause();
    this.#route = route;
    this.#pick();
  }

  #onPreludeTimeout = (): void => {
    this.#close(`no complete ${this.#expectProxyHeader ? 'PROXY header' : 'ClientHello'} within ${this.#plan.preludeTimeoutMs} ms`);
  };

  // ---- pick, queue, connect --------------------------------------------------------

  #pick(): void {
    this.#phase = 'pick';
    const pool = this.#route!.pool;
    // L4 knows only the client's address: every hash key hashes it (hash-key.ts reads HTTP features).
    if (pool.hashKey !== undefined && this.#ctx.tried.length === 0) this.#ctx.hash = hashString(this.#source?.address ?? '');
    const selection = pool.select(this.#ctx, undefined);
    if (selection === 'none') {
      this.#close(`pool ${pool.name} has no available backend`);
    } else if (selection === 'failed') {
      this.#close(`pool ${pool.name}: the balancer failed to pick a backend`);
    } else if (selection === 'full') {
      if (pool.enqueue(this)) this.#phase = 'queued';
      else this.#close(`pool ${pool.name}: every backend is at maxConnections and the queue is full`);
    } else {
      this.#attempt(pool, selection);
    }
  }

  /** Waiter: a slot may have freed up. */
  retry(): boolean {
    const pool = this.#route!.pool;
    const selection = pool.select(this.#ctx, undefined);
    if (selection === 'full') return false;
    this.#phase = 'pick'; // the queue removes this waiter itself
    if (selection === 'none') this.#close(`pool ${pool.name} has no available backend`);
    else if (selection === 'failed') this.#close(`pool ${pool.name}: the balancer failed to pick a backend`);
    else this.#attempt(pool, selection);
    return true;
  }

  /** Waiter: the queue timeout passed (the queue has removed this waiter). */
  expire(): void {
    this.#phase = 'pick';
    this.#close(`pool ${this.#route!.pool.name}: no backend slot within ${this.#route!.pool.config.queueTimeoutMs} ms`);
  }

  #attempt(pool: PoolRuntime, backend: BackendRuntime): void {
    this.#phase = 'connecting';
    this.backend = backend;
    pool.attemptStarted(backend);
    this.#attemptOpen = true;
    this.#connectStartedAt = performance.now();
    const upstream = connect({ host: backend.address.host, port: backend.address.port, allowHalfOpen: true, noDelay: true, onread: { buffer: this.#nextReadBuffer, callback: this.#onUpstreamRead } });
    this.#upstream = upstream;
    upstream.setTimeout(pool.config.timeouts.connectMs);
    upstream.on('connect', this.#onConnect);
    upstream.on('error', this.#onConnectError);
    upstream.on('timeout', this.#onConnectTimeout);
  }

  /**
   * The backend's bytes are read into a buffer this session reuses while
   * each read leaves at once (upstream/connection.ts, "Read buffers"): a
   * fresh 64 KiB buffer per read is what drives V8's mark-compacts under
   * bulk transfers. The tunnel reads 'data' events, so the read is given to
   * it as one; when the client's socket then holds none of it, the next
   * read reuses the buffer.
   */
  #readBuffer: Buffer | undefined;
  #readSize = FIRST_READ_BYTES;
  #readReleased = false;

  readonly #nextReadBuffer = (): Buffer => {
    const current = this.#readBuffer;
    if (this.#readReleased && current !== undefined && current.length === this.#readSize) return current;
    this.#readBuffer = this.#readSize === FIRST_READ_BYTES ? Buffer.allocUnsafe(FIRST_READ_BYTES) : Buffer.allocUnsafeSlow(this.#readSize);
    return this.#readBuffer;
  };

  readonly #onUpstreamRead = (nread: number, buffer: Uint8Array): boolean => {
    this.#readReleased = false;
    if (nread === buffer.length && this.#readSize < MAX_READ_BYTES) this.#readSize *= 2; // a full read: more is coming
    const upstream = this.#upstream;
    if (upstream === undefined) return false;
    upstream.emit('data', (buffer as Buffer).subarray(0, nread));
    this.#readReleased = this.#tunnel !== undefined && this.#client.writableLength === 0;
    return true;
  };

  #detachConnectListeners(upstream: Socket): void {
    upstream.setTimeout(0);
    upstream.off('connect', this.#onConnect);
    upstream.off('error', this.#onConnectError);
    upstream.off('timeout', this.#onConnectTimeout);
  }

  #onConnectError = (error: Error): void => {
    this.#connectFailed(`connect to ${this.backend!.key} failed: ${(error as NodeJS.ErrnoException).code ?? error.message}`);
  };

  #onConnectTimeout = (): void => {
    this.#connectFailed(`connect to ${this.backend!.key} timed out after ${this.#route!.pool.config.timeouts.connectMs} ms`);
  };

  #connectFailed(reason: string): void {
    const upstream = this.#upstream!;
    const backend = this.backend!;
    const pool = this.#route!.pool;
    this.#detachConnectListeners(upstream);
    upstream.on('error', ignoreLateError);
    upstream.destroy();
    this.#upstream = undefined;
    this.#attemptOpen = false;
    this.#ctx.tried.push(backend.index);
    pool.attemptEnded(backend, 'unreachable', 0, -1);
    const logger = this.#plan.logger;
    if (logger.isLevelEnabled('debug')) logger.debug(this.#logFields(), reason);
    if (this.#phase === 'done') return;
    if (this.#ctx.tried.length >= MAX_CONNECT_ATTEMPTS) {
      this.#close(`${reason}; gave up after ${MAX_CONNECT_ATTEMPTS} backends`);
      return;
    }
    this.backend = undefined;
    this.#pick();
  }

  #onConnect = (): void => {
    const upstream = this.#upstream!;
    const pool = this.#route!.pool;
    this.#detachConnectListeners(upstream);
    this.#connectMs = performance.now() - this.#connectStartedAt;
    const version = pool.config.proxyProtocol;
    if (version !== undefined) {
      upstream.write(version === 'v1' ? encodeProxyV1(this.#source, this.#destination) : encodeProxyV2(this.#source, this.#destination));
    }
    if (this.#buffer.length > 0) upstream.write(this.#buffer);
    this.#buffer = ZERO_BYTES;
    const client = this.#client;
    client.off('error', this.#onClientError);
    client.off('close', this.#onClientClose);
    client.off('end', this.#onClientEnd);
    this.#phase = 'tunnel';
    // A plain-tcp connection from an untrusted peer has not been looked at yet: judge its first chunk.
    const judgeFirst = this.#refuseProxyHeader && this.#plan.protocol === 'tcp';
    const tunnel = new Tunnel(client, upstream, {
      idleMs: this.#plan.tunnelIdleMs,
      onEnd: this.#onTunnelEnd,
      acceptFirstClientChunk: judgeFirst ? acceptNonProxyChunk : undefined,
    });
    this.#tunnel = tunnel;
    // The pool closes a backend's tunnels drainTimeout after a drain, disable or removal (pool-runtime.ts).
    this.backend!.tunnels.add(tunnel);
  };

  #onTunnelEnd = (tunnel: Tunnel): void => {
    const backend = this.backend!;
    const end = tunnel.end!;
    const outcome = tunnelOutcome(end);
    backend.tunnels.delete(tunnel);
    this.#attemptOpen = false;
    backend.metrics.bytesIn += tunnel.bytesFromClient;
    backend.counters.bytesOut += tunnel.bytesFromUpstream;
    this.#route!.metrics.observe(performance.now() - this.#startedAt, tunnel.bytesFromClient, tunnel.bytesFromUpstream);
    this.#route!.pool.attemptEnded(backend, outcome, 0, outcome === 'success' ? this.#connectMs : -1);
    this.#phase = 'done';
    this.#sessions.delete(this);
    const logger = this.#plan.logger;
    if (logger.isLevelEnabled('debug')) {
      logger.debug(
        { ...this.#logFields(), end, bytesFromClient: tunnel.bytesFromClient, bytesFromUpstream: tunnel.bytesFromUpstream, error: tunnel.error?.message },
        end === 'rejected' ? 'PROXY header from an untrusted peer refused' : 'tunnel closed',
      );
    }
  };

  // ---- client events before the tunnel and the end ------------------------------------

  #onClientError = (error: Error): void => {
    this.#close(`client error: ${(error as NodeJS.ErrnoException).code ?? error.message}`);
  };

  #onClientClose = (): void => {
    this.#close('client closed');
  };

  /** FIN before the tunnel: fatal only while the prelude still needs bytes; otherwise the tunnel passes it on. */
  #onClientEnd = (): void => {
    if (this.#phase === 'prelude') this.#close('client closed before the prelude was complete');
  };

  /** Closes the client (and a backend connection in progress) before or instead of a tunnel. */
  #close(reason: string): void {
    if (this.#phase === 'done') return;
    if (this.#preludeTimer !== undefined) clearTimeout(this.#preludeTimer);
    if (this.#tunnel !== undefined) {
      this.#tunnel.close();
      return;
    }
    const previous = this.#phase;
    this.#phase = 'done';
    if (previous === 'queued') this.#route!.pool.dequeue(this);
    const upstream = this.#upstream;
    if (upstream !== undefined) {
      this.#detachConnectListeners(upstream);
      upstream.on('error', ignoreLateError);
      upstream.destroy();
    }
    if (this.#attemptOpen) {
      this.#attemptOpen = false;
      this.#route!.pool.attemptEnded(this.backend!, 'unknown', 0, -1);
    }
    this.#client.destroy();
    this.#sessions.delete(this);
    (this.#route?.metrics ?? this.#plan.unrouted).observe(performance.now() - this.#startedAt, 0, 0);
    const logger = this.#plan.logger;
    if (logger.isLevelEnabled('debug')) logger.debug({ ...this.#logFields(), phase: previous }, reason);
  }

  /** Ends the connection from outside (drain, shutdown). */
  destroy(reason: string): void {
    this.#close(reason);
  }

  #logFields(): Record<string, unknown> {
    return {
      listener: this.#plan.name,
      client: this.#source === undefined ? undefined : `${this.#source.address}:${this.#source.port}`,
      route: this.#route?.name,
      pool: this.#route?.pool.name,
      backend: this.backend?.key,
    };
  }
}

function acceptNonProxyChunk(chunk: Buffer): boolean {
  return !startsWithProxySignature(chunk);
}

/** After a connection is abandoned its late errors carry no information (and must not be unhandled). */
function ignoreLateError(): void {
  // Nothing to do: the attempt was already ended and accounted for.
}

function tunnelOutcome(end: TunnelEnd): 'success' | 'failure' | 'unknown' {
  switch (end) {
    case 'complete':
    case 'idle-timeout':
      return 'success';
    case 'client-error':
    case 'upstream-error':
    case 'client-closed':
    case 'upstream-closed':
    case 'closed':
    case 'rejected':
      return 'unknown';
    default: {
      const never: never = end;
      return never;
    }
  }
}
