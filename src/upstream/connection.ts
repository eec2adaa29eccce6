import { readFileSync } from 'node:fs';
import { connect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { deadlines, type Expiring } from '../runtime/deadlines.ts';
import type { BackendTlsConfig, HostPort, TimeoutsConfig } from '../config/types.ts';
import { Http1Upstream } from './http1.ts';

/**
 * A plain connection's read buffer starts at FIRST_READ_BYTES and doubles
 * after each read that fills it, up to MAX_READ_BYTES (what node reads at
 * most per call anyway): many idle pooled connections cost little, a large
 * body soon reads in full-size pieces.
 */
const FIRST_READ_BYTES = 16 * 1024;
const MAX_READ_BYTES = 64 * 1024;
/** Reads up to this size are copied into node's pooled slab (Buffer.from uses it below 4 KiB). */
const COPY_READS_UP_TO = 4 * 1024 - 1;

/**
 * What an upstream connection reports to its user: {@link Http1Upstream}, the
 * HTTP/1.1 client that speaks over it. The connection only moves bytes,
 * keeps its deadlines and signals events.
 */
export interface UpstreamListener {
  onUpstreamConnect(): void;
  /** Bytes read; returns true when nothing keeps `chunk` afterwards (its buffer may then be read into again). */
  onUpstreamData(chunk: Buffer): boolean;
  onUpstreamEnd(): void;
  onUpstreamError(error: NodeJS.ErrnoException | undefined, phase: 'connect' | 'exchange'): void;
  onUpstreamTimeout(phase: 'connect' | 'exchange'): void;
  onUpstreamDrain(): void;
  /** One of the handlers above threw: the connection is already destroyed. */
  onUpstreamInternalError(error: unknown): void;
}

/**
 * One TCP connection to a backend, reused across requests (keep-alive).
 * Socket listeners are bound once per connection, not per request; the
 * current exchange is a field that changes hands.
 *
 * Timeouts (connect, response, idle) are coarse deadlines swept by
 * runtime/deadlines.ts, not `socket.setTimeout`, which allocates a timer per
 * arming. The response timeout keeps node's inactivity meaning: it restarts
 * on every chunk read and every body write, and is suspended while the
 * exchange holds the socket paused for a slow client.
 *
 * **Read buffers.** A plain TCP connection reads into its own buffer
 * (`onread`) instead of a fresh 64 KiB one per read. Under large responses
 * those fresh buffers were most of the process's allocation, and V8 pays for
 * external memory with mark-compacts: about a third of usher's CPU moving
 * 1 MiB responses (docs/design.md, "Read buffers"). A small read is copied
 * out (into node's pooled slab, as cheap as node's own read path), so the
 * buffer is free again at once. A large one is handed over in place, and the
 * buffer is read into again only when the listener says nothing keeps those
 * bytes (they went out to the client in a write that completed at once);
 * otherwise the next read gets a new buffer and the old one lives as long as
 * its readers. TLS connections read as before (node's TLS socket reads
 * through its own layer).
 */
export class UpstreamConnection implements Expiring {
  readonly socket: Socket;
  /** The HTTP/1.1 client over this connection, reused for every request it carries. */
  readonly http: Http1Upstream;
  readonly #pool: UpstreamConnectionPool;
  #listener: UpstreamListener | undefined;
  connected = false;
  /** How many requests this connection has carried; > 0 means it was reused. */
  uses = 0;
  /**
   * Longest idle time before the backend itself would close the connection,
   * from its last `Keep-Alive: timeout=N` (see {@link retireAfterMs}); Infinity
   * while it advertised nothing.
   */
  idleLimitMs = Number.POSITIVE_INFINITY;
  #closed = false;
  /** Expiring: when the current timeout fires (0 = none armed); see {@link onDeadline}. */
  deadline = 0;
  /** Length of the armed inactivity timeout, restarted on activity. */
  #timeoutMs = 0;
  /** The buffer the next read goes into (plain TCP only), and its size: it grows while reads fill it. */
  #readBuffer: Buffer | undefined;
  #readSize = FIRST_READ_BYTES;
  /** The listener released the last read's bytes: {@link #nextReadBuffer} may hand the same buffer out again. */
  #readReleased = false;
  #detached = false;

  constructor(pool: UpstreamConnectionPool) {
    this.#pool = pool;
    const { host, port } = pool.address;
    const tls = pool.tls;
    const socket =
      tls === undefined
        ? connect({ host, port, noDelay: true, onread: { buffer: this.#nextReadBuffer, callback: this.#onRead } })
        : tlsConnect({ ...tls, host, port });
    if (tls !== undefined) socket.setNoDelay(true);
    this.socket = socket;
    this.http = new Http1Upstream(this);
    this.#arm(pool.timeouts.connectMs);
    deadlines.add(this);
    // A TLS backend is connected once its handshake is done: the request head waits for it.
    socket.on(tls === undefined ? 'connect' : 'secureConnect', this.#onConnect);
    if (tls !== undefined) socket.on('data', this.#onData); // a plain socket reads through #onRead
    socket.on('end', this.#onEnd);
    socket.on('error', this.#onError);
    socket.on('close', this.#onClose);
    socket.on('drain', this.#onDrain);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Whether the connection still reads for its listener (not handed over as a tunnel). */
  get attached(): boolean {
    return !this.#detached;
  }

  /** The backend's key (`host:port`). */
  get key(): string {
    return this.#pool.key;
  }

  /** Binds the connection to a request; its response deadline starts now. */
  attach(listener: UpstreamListener, responseTimeoutMs: number): void {
    this.#listener = listener;
    this.uses++;
    if (this.connected) this.#arm(responseTimeoutMs);
  }

  /** Request body bytes went out: progress, so the response timeout restarts (as node's socket timeout did on writes). */
  touch(): void {
    if (this.deadline !== 0) this.deadline = deadlines.at(this.#timeoutMs);
  }

  /** The exchange paused this socket for a slow client: no response timeout until {@link resumeTimeout}. */
  suspendTimeout(): void {
    this.deadline = 0;
  }

  resumeTimeout(responseTimeoutMs: number): void {
    this.#arm(responseTimeoutMs);
  }

  #arm(ms: number): void {
    this.#timeoutMs = ms;
    this.deadline = deadlines.at(ms);
  }

  /** The backend's response said `Keep-Alive: timeout=N` (-1: it said nothing, the last hint stands). */
  advertisedKeepAlive(seconds: number): void {
    if (seconds >= 0) this.idleLimitMs = retireAfterMs(seconds);
  }

  /** The exchange is done with the connection: back to the idle pool when reusable, else closed. */
  release(reusable: boolean): void {
    this.#listener = undefined;
    if (!reusable || this.#closed) {
      this.destroy();
      return;
    }
    if (this.socket.isPaused()) this.socket.resume();
    this.#pool.putIdle(this);
  }

  /**
   * Hands the socket over (a WebSocket upgrade turns it into a tunnel): the
   * connection stops listening to it, leaves its pool and is never reused.
   */
  detach(): Socket {
    const socket = this.socket;
    this.#listener = undefined;
    this.#detached = true;
    socket.removeListener('connect', this.#onConnect);
    socket.removeListener('secureConnect', this.#onConnect);
    socket.removeListener('data', this.#onData);
    socket.removeListener('end', this.#onEnd);
    socket.removeListener('error', this.#onError);
    socket.removeListener('close', this.#onClose);
    socket.removeListener('drain', this.#onDrain);
    // markClosed also leaves the deadline sweep: a tunnel's socket must never be timed out by it.
    this.#markClosed();
    return socket;
  }

  /** Back in the idle pool: closed if not reused within `idleMs`. */
  armIdle(idleMs: number): void {
    this.#arm(idleMs);
  }

  destroy(): void {
    this.#listener = undefined;
    this.#markClosed();
    this.socket.destroy();
  }

  #onConnect = (): void => {
    this.connected = true;
    this.#arm(this.#pool.timeouts.responseMs);
    const listener = this.#listener;
    try {
      listener?.onUpstreamConnect();
    } catch (error) {
      if (listener !== undefined) this.#internalError(listener, error);
    }
  };

  /** `onread`: where the next read goes. Node calls it once at the start and after every read. */
  readonly #nextReadBuffer = (): Buffer => {
    const current = this.#readBuffer;
    if (this.#readReleased && current !== undefined && current.length === this.#readSize) return current;
    this.#readBuffer = Buffer.allocUnsafeSlow(this.#readSize);
    return this.#readBuffer;
  };

  /** `onread`: `nread` bytes arrived in `buffer` (the one {@link #nextReadBuffer} gave). */
  readonly #onRead = (nread: number, buffer: Uint8Array): boolean => {
    const view = (buffer as Buffer).subarray(0, nread);
    if (nread === buffer.length && this.#readSize < MAX_READ_BYTES) this.#readSize *= 2; // a full read: more is coming
    if (this.#detached) {
      // A tunnel took the socket over: it reads 'data' events, and keeps what it is given.
      this.#readReleased = false;
      this.socket.emit('data', view);
      return true;
    }
    // A small read is copied into node's pooled slab (no allocation of its own), so the
    // buffer is free again at once whatever the listener keeps; a large one is handed
    // over as it is, and the buffer is reused only if the listener released it.
    const copied = nread <= COPY_READS_UP_TO;
    this.#readReleased = false;
    const released = this.#onData(copied ? Buffer.from(view) : view);
    this.#readReleased = copied || released;
    return true; // keep reading; backpressure pauses the socket itself
  };

  /** Bytes read; returns whether nothing keeps `chunk` afterwards. */
  #onData = (chunk: Buffer): boolean => {
    const listener = this.#listener;
    if (listener === undefined) {
      // Bytes from an idle connection: the backend is confused; never reuse it.
      this.destroy();
      return false;
    }
    if (this.deadline !== 0) this.deadline = deadlines.at(this.#timeoutMs);
    try {
      return listener.onUpstreamData(chunk);
    } catch (error) {
      this.#internalError(listener, error);
      return false;
    }
  };

  /** A bug in one exchange must cut that exchange, not the process. */
  #internalError(listener: UpstreamListener, error: unknown): void {
    this.destroy();
    listener.onUpstreamInternalError(error);
  }

  #onEnd = (): void => {
    const listener = this.#listener;
    if (listener === undefined) {
      this.destroy();
      return;
    }
    try {
      listener.onUpstreamEnd();
    } catch (error) {
      this.#internalError(listener, error);
    }
  };

  #onError = (error: NodeJS.ErrnoException): void => {
    const listener = this.#listener;
    this.#listener = undefined;
    this.#markClosed();
    try {
      listener?.onUpstreamError(error, this.connected ? 'exchange' : 'connect');
    } catch (thrown) {
      if (listener !== undefined) this.#internalError(listener, thrown);
    }
  };

  #onClose = (): void => {
    const listener = this.#listener;
    this.#listener = undefined;
    this.#markClosed();
    try {
      listener?.onUpstreamError(undefined, this.connected ? 'exchange' : 'connect');
    } catch (thrown) {
      if (listener !== undefined) this.#internalError(listener, thrown);
    }
  };

  /** Expiring: the armed timeout (connect, response or idle) passed. */
  onDeadline(): void {
    const listener = this.#listener;
    if (listener === undefined) {
      this.destroy(); // idle too long
      return;
    }
    try {
      listener.onUpstreamTimeout(this.connected ? 'exchange' : 'connect');
    } catch (error) {
      this.#internalError(listener, error);
    }
  }

  #onDrain = (): void => {
    this.touch();
    const listener = this.#listener;
    try {
      listener?.onUpstreamDrain();
    } catch (error) {
      if (listener !== undefined) this.#internalError(listener, error);
    }
  };

  #markClosed(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.deadline = 0;
    deadlines.delete(this);
    this.#pool.forget(this);
  }
}

/**
 * Kept-alive connections to one backend. Most recently used first (LIFO): warm
 * connections stay warm and surplus ones age out on the idle timeout.
 */
export class UpstreamConnectionPool {
  /** The backend's key (`host:port`), for error messages. */
  readonly key: string;
  readonly address: HostPort;
  /** Replaced on reload; new connections and the next request use the new values. */
  timeouts: TimeoutsConfig;
  readonly #idle: UpstreamConnection[] = [];
  /** Open connections, idle or busy. */
  open = 0;
  #closed = false;

  /** TLS options when the backend speaks TLS (see {@link backendTlsOptions}). */
  readonly tls: ConnectionOptions | undefined;

  constructor(key: string, address: HostPort, timeouts: TimeoutsConfig, tls?: ConnectionOptions) {
    this.key = key;
    this.address = address;
    this.timeouts = timeouts;
    this.tls = tls;
  }

  /**
   * An idle connection, or a new one (connecting). `fresh` skips the idle
   * ones: a replay after a kept-alive connection was found closed must not
   * land on another connection that may have gone stale the same way.
   * `nowMs` is the caller's performance.now().
   */
  acquire(fresh: boolean, nowMs: number): UpstreamConnection {
    if (!fresh) {
      let idle = this.#idle.pop();
      // Past its idle deadline but not yet swept (event-loop lag): the backend may be closing it, never reuse it.
      while (idle !== undefined && idle.deadline !== 0 && idle.deadline <= nowMs) {
        idle.destroy();
        idle = this.#idle.pop();
      }
      if (idle !== undefined) return idle;
    }
    this.open++;
    return new UpstreamConnection(this);
  }

  /** Number of idle connections ready for reuse. */
  get idleCount(): number {
    return this.#idle.length;
  }

  /** Keeps a connection for reuse for `timeouts.idle`, or less when the backend closes idle connections sooner. */
  putIdle(connection: UpstreamConnection): void {
    const idleMs = Math.min(this.timeouts.idleMs, connection.idleLimitMs);
    if (this.#closed || idleMs <= 0) {
      connection.destroy();
      return;
    }
    connection.armIdle(idleMs);
    this.#idle.push(connection);
  }

  forget(connection: UpstreamConnection): void {
    this.open--;
    const i = this.#idle.lastIndexOf(connection);
    if (i !== -1) this.#idle.splice(i, 1);
  }

  /** Closes idle connections now; the pool stays usable. */
  closeIdle(): void {
    for (const connection of this.#idle.splice(0)) connection.destroy();
  }

  /** Closes idle connections now; busy ones close when their exchange releases them. */
  close(): void {
    this.#closed = true;
    this.closeIdle();
  }
}

/**
 * How long usher keeps a connection idle when the backend advertised
 * `Keep-Alive: timeout=N`: a margin before N, so usher retires it before the
 * backend closes it. A backend that closes an idle connection just as usher
 * sends a request on it fails that request (the best-known source of sporadic
 * 502s behind load balancers); node:http advertises `timeout=5` and closes
 * about a second later. The margin covers the request's trip to the backend,
 * the backend's timer starting when it finished writing the response (before
 * usher read it) and usher's 25 ms deadline sweep: 2 s, as undici's
 * `keepAliveTimeoutThreshold`, but at most half of N so short timeouts still
 * allow reuse. `timeout=0` means "do not reuse".
 */
export function retireAfterMs(advertisedSeconds: number): number {
  const ms = advertisedSeconds * 1000;
  return ms - Math.min(2000, ms / 2);
}

/**
 * Node TLS options for a backend with `tls`. The CA file is read here, when
 * the pool is built (start, reload, admin add), never per connection. SNI is
 * the configured servername, else the backend's host unless it is an IP
 * (RFC 6066 forbids IP literals in SNI).
 */
export function backendTlsOptions(address: HostPort, tls: BackendTlsConfig): ConnectionOptions {
  const servername = tls.servername ?? (isIP(address.host) === 0 ? address.host : undefined);
  return {
    ...(servername !== undefined ? { servername } : {}),
    ...(tls.caFile !== undefined ? { ca: readFileSync(tls.caFile) } : {}),
    rejectUnauthorized: !tls.insecureSkipVerify,
    ALPNProtocols: ['http/1.1'],
  };
}
