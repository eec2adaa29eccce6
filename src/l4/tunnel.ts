import type { Socket } from 'node:net';

/**
 * Why a tunnel ended. `complete`: both sides finished their byte streams
 * (FIN both ways). `idle-timeout`: no byte moved either way for `idleMs`.
 * `*-error`: that socket failed (reset, write error). `*-closed`: that socket
 * closed before both streams finished, without an error (e.g. destroyed
 * elsewhere). `closed`: {@link Tunnel.close} (drain, shutdown).
 * `rejected`: the first client bytes were refused by `acceptFirstClientChunk`.
 */
export type TunnelEnd =
  | 'complete'
  | 'idle-timeout'
  | 'client-error'
  | 'upstream-error'
  | 'client-closed'
  | 'upstream-closed'
  | 'closed'
  | 'rejected';

export interface TunnelOptions {
  /** Close both sides after this long without a byte either way; 0 disables it. */
  readonly idleMs: number;
  /** Called once, after both sockets have closed. */
  readonly onEnd: (tunnel: Tunnel) => void;
  /** Sees the first chunk read from the client; returning false ends the tunnel as `rejected`. */
  readonly acceptFirstClientChunk?: ((chunk: Buffer) => boolean) | undefined;
}

/**
 * Joins a client socket and an upstream socket into one bidirectional byte
 * pipe (Envoy `tcp_proxy`, HAProxy `mode tcp`), for any `net.Socket`
 * (TLS sockets included).
 *
 * - Backpressure: a reader is paused when the opposite writer's `write()`
 *   returns false and resumed on its `'drain'`, so at most one chunk plus the
 *   writer's high-water mark is buffered per direction, however slow a side reads.
 * - Half-close (RFC 9293 §3.6): when one side sends FIN, the other side's
 *   write half is ended after the bytes already queued, and the reverse
 *   direction keeps flowing until it ends too. Both sockets must be created
 *   with `allowHalfOpen: true`, or Node would end their write half on FIN.
 * - Idle timeout: one timer per tunnel that re-arms itself lazily from the
 *   time of the last activity (a read on either side, or a writer draining),
 *   instead of resetting a timer per chunk.
 * - Errors: an error or premature close on either side destroys both.
 *
 * Both sockets are fully owned by the tunnel from construction on; nothing
 * else should read from them.
 */
/**
 * Writes `chunk`; false when the writer holds a high-water mark's worth or
 * more. Node's write() answers false for any chunk above the mark, even one
 * the kernel took whole at once, and pausing the reader for that costs a
 * stop and a start of reading per chunk; its 'drain' still comes, and finds
 * nothing paused.
 */
function writeHolds(socket: Socket, chunk: Buffer): boolean {
  socket.write(chunk);
  return socket.writableLength < socket.writableHighWaterMark;
}

export class Tunnel {
  readonly client: Socket;
  readonly upstream: Socket;
  /** Bytes read from the client and written upstream. */
  bytesFromClient = 0;
  /** Bytes read from upstream and written to the client. */
  bytesFromUpstream = 0;
  /** Why the tunnel ended; set once the first terminating event happens. */
  end: TunnelEnd | undefined;
  /** The socket error that ended the tunnel, if one did. */
  error: Error | undefined;

  readonly #options: TunnelOptions;
  #clientEnded = false;
  #upstreamEnded = false;
  #clientClosed = false;
  #upstreamClosed = false;
  /** A reader paused by this tunnel because the opposite writer was full. */
  #clientPaused = false;
  #upstreamPaused = false;
  #firstChunkChecked: boolean;
  #lastActivity = performance.now();
  #timer: NodeJS.Timeout | undefined;
  #finished = false;

  constructor(client: Socket, upstream: Socket, options: TunnelOptions) {
    this.client = client;
    this.upstream = upstream;
    this.#options = options;
    this.#firstChunkChecked = options.acceptFirstClientChunk === undefined;
    client.on('data', this.#onClientData);
    upstream.on('data', this.#onUpstreamData);
    client.on('end', this.#onClientEnd);
    upstream.on('end', this.#onUpstreamEnd);
    client.on('drain', this.#onClientDrain);
    upstream.on('drain', this.#onUpstreamDrain);
    client.on('error', this.#onClientError);
    upstream.on('error', this.#onUpstreamError);
    client.on('close', this.#onClientClose);
    upstream.on('close', this.#onUpstreamClose);
    if (options.idleMs > 0) this.#armIdleTimer(options.idleMs);
    // Either socket may have changed state before the tunnel took it over.
    if (client.closed || upstream.closed) {
      this.#clientClosed = client.closed;
      this.#upstreamClosed = upstream.closed;
      this.#abort(client.closed ? 'client-closed' : 'upstream-closed', undefined);
      // No 'close' event comes for a socket that has already closed; finish after the caller holds the tunnel.
      process.nextTick(() => this.#maybeFinish());
      return;
    }
    if (client.readableEnded) this.#onClientEnd();
    if (upstream.readableEnded) this.#onUpstreamEnd();
    // A reader paused before (while connecting) does not flow again just because a 'data' listener was added.
    client.resume();
    upstream.resume();
  }

  /** Whether both sockets have closed and `onEnd` has run. */
  get finished(): boolean {
    return this.#finished;
  }

  /** Destroys both sides now (drain timeout, shutdown); `onEnd` follows once both have closed. */
  close(): void {
    this.#abort('closed', undefined);
  }

  // ---- byte flow ---------------------------------------------------------------

  #onClientData = (chunk: Buffer): void => {
    if (!this.#firstChunkChecked) {
      this.#firstChunkChecked = true;
      if (!this.#options.acceptFirstClientChunk!(chunk)) {
        this.#abort('rejected', undefined);
        return;
      }
    }
    this.bytesFromClient += chunk.length;
    this.#lastActivity = performance.now();
    if (!writeHolds(this.upstream, chunk) && !this.#clientPaused) {
      this.#clientPaused = true;
      this.client.pause();
    }
  };

  #onUpstreamData = (chunk: Buffer): void => {
    this.bytesFromUpstream += chunk.length;
    this.#lastActivity = performance.now();
    if (!writeHolds(this.client, chunk) && !this.#upstreamPaused) {
      this.#upstreamPaused = true;
      this.upstream.pause();
    }
  };

  /** The upstream writer emptied its buffer: the client may be read again. */
  #onUpstreamDrain = (): void => {
    this.#lastActivity = performance.now();
    if (!this.#clientPaused) return;
    this.#clientPaused = false;
    this.client.resume();
  };

  #onClientDrain = (): void => {
    this.#lastActivity = performance.now();
    if (!this.#upstreamPaused) return;
    this.#upstreamPaused = false;
    this.upstream.resume();
  };

  // ---- half-close ----------------------------------------------------------------

  /** The client sent FIN: pass it on after the bytes already queued upstream. */
  #onClientEnd = (): void => {
    if (this.#clientEnded) return;
    this.#clientEnded = true;
    this.upstream.end();
  };

  #onUpstreamEnd = (): void => {
    if (this.#upstreamEnded) return;
    this.#upstreamEnded = true;
    this.client.end();
  };

  // ---- errors, closes and the end ------------------------------------------------

  #onClientError = (error: Error): void => {
    this.error ??= error;
    this.#abort('client-error', error);
  };

  #onUpstreamError = (error: Error): void => {
    this.error ??= error;
    this.#abort('upstream-error', error);
  };

  #onClientClose = (): void => {
    this.#clientClosed = true;
    // Closed with both streams done is the normal end; anything earlier cuts the other side too.
    if (!(this.#clientEnded && this.#upstreamEnded)) this.#abort('client-closed', undefined);
    this.#maybeFinish();
  };

  #onUpstreamClose = (): void => {
    this.#upstreamClosed = true;
    if (!(this.#clientEnded && this.#upstreamEnded)) this.#abort('upstream-closed', undefined);
    this.#maybeFinish();
  };

  #abort(end: TunnelEnd, error: Error | undefined): void {
    this.end ??= end;
    if (error !== undefined) this.error ??= error;
    this.client.destroy();
    this.upstream.destroy();
  }

  #maybeFinish(): void {
    if (this.#finished || !this.#clientClosed || !this.#upstreamClosed) return;
    this.#finished = true;
    this.end ??= 'complete';
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#options.onEnd(this);
  }

  #armIdleTimer(delayMs: number): void {
    this.#timer = setTimeout(this.#onIdleTimer, delayMs);
    // The sockets keep the process alive while they are open; the timer alone must not.
    this.#timer.unref();
  }

  #onIdleTimer = (): void => {
    if (this.#finished) return;
    const idleMs = this.#options.idleMs;
    const quietFor = performance.now() - this.#lastActivity;
    if (quietFor >= idleMs) this.#abort('idle-timeout', undefined);
    else this.#armIdleTimer(idleMs - quietFor);
  };
}
