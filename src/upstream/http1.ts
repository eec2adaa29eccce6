import type { Socket } from 'node:net';
import { UsherError } from '../errors.ts';
import { BodyFramer } from '../http1/body-framer.ts';
import { parseResponseHead } from '../http1/response-head.ts';
import { chunkedTrailers } from '../http1/trailers.ts';
import type { HeadLimits, ResponseHead } from '../http1/types.ts';
import { corkUntilTurnEnd } from '../runtime/turn-flush.ts';
import type { UpstreamConnection, UpstreamListener } from './connection.ts';

/**
 * How the exchange takes the response body from {@link Http1Upstream}:
 * - `raw`: the bytes as the backend framed them (chunk lines included), for
 *   an HTTP/1.1 client that gets the same framing;
 * - `payload`: the payload only (de-chunked), for HTTP/2 clients, HTTP/1.0
 *   clients and body transforms;
 * - `payload-and-trailers`: the payload, and the trailers of a chunked body
 *   at its end (HTTP/2 clients);
 * - `stop`: the exchange did something else with the head (retried, failed):
 *   the codec reads no further.
 */
export type ResponseBodyMode = 'raw' | 'payload' | 'payload-and-trailers' | 'stop';

/**
 * What an exchange implements to speak HTTP/1.1 to a backend through
 * {@link Http1Upstream}: the HTTP/1.1 client's semantic events, for the
 * HTTP/1.1 front (`proxy/exchange.ts`) and the HTTP/2 front
 * (`h2/h2-exchange.ts`) alike. Each may end the exchange; the codec touches
 * nothing of the exchange's afterwards.
 */
export interface Http1UpstreamHandler {
  /** The request's method: a HEAD response has no body. */
  readonly method: string;
  /** Whether the client has sent its whole request body (the last chunk then follows held bytes). */
  readonly requestBodyDone: boolean;
  /** Body bytes no connection has taken yet: the codec takes them at `begin` and gives back what it could not send. */
  heldBody: Buffer[] | undefined;
  /** Set once a request body byte went to the backend: no retry can resend it. */
  bodySent: boolean;
  /** Bounds on the response head. */
  readonly responseLimits: HeadLimits;
  /** The request body may flow again: held bytes went out, or the backend's socket drained. */
  onRequestBodyFlowing(): void;
  /** An interim response (1xx other than 101). */
  onInterim(head: ResponseHead): void;
  /**
   * A 101 Switching Protocols, with the bytes read after it: the handler takes
   * the socket ({@link Http1Upstream.detach}) and returns true, or returns
   * false and the codec reports a bad response (usher asked for no upgrade).
   */
  onSwitchingProtocols(head: ResponseHead, rest: Buffer): boolean;
  /** The final response head; the body follows as the returned mode says. */
  onResponseHead(head: ResponseHead): ResponseBodyMode;
  /** Body bytes `buffer[start, end)`, raw or payload as chosen; backpressure through {@link Http1Upstream.pauseResponse}. */
  onResponseData(buffer: Buffer, start: number, end: number): void;
  /**
   * The body bytes read with the head have been delivered and the body goes
   * on: a head the handler held back (to send it in one write with a small
   * body) must go now.
   */
  onResponseHeadRead(): void;
  /** The response ended; `trailers` (raw list) only in `payload-and-trailers` mode. */
  onResponseEnd(trailers: string[] | undefined): void;
  /**
   * Whether the handler kept none of the bytes delivered since the last call
   * (they left the process in a write that completed at once, or were
   * copied), so the buffer they were read into may be read into again (see
   * UpstreamConnection, "Read buffers"). Resets the tally.
   */
  responseBytesReleased(): boolean;
  /** The backend answered something that is not HTTP/1.1: the attempt failed. */
  onUpstreamFailed(error: UsherError): void;
  /** The connection closed or failed before the response ended; `answered`: some of the response was read. */
  onUpstreamLost(error: NodeJS.ErrnoException | undefined, phase: 'connect' | 'exchange', answered: boolean, uses: number): void;
  onUpstreamTimeout(phase: 'connect' | 'exchange'): void;
  /** A handler call threw: the connection is already destroyed. */
  onUpstreamInternalError(error: unknown): void;
}

const LAST_CHUNK = '0\r\n\r\n';

/**
 * The HTTP/1.1 client side of one upstream connection: writes a request head
 * and body (raw, or chunk-framed for HTTP/2 clients' bodies), holds body bytes
 * until the connection is up, reads interim and final response heads, finds
 * where the body ends (strictly, `BodyFramer`), applies backpressure to the
 * backend while the client is slow, and says whether the connection can carry
 * another request. Both fronts' exchanges use it, so HTTP/1.1 and HTTP/2
 * clients get the same upstream behaviour from the same code.
 *
 * One per {@link UpstreamConnection}, made with it and reused for every request
 * it carries: a request allocates nothing here.
 */
export class Http1Upstream implements UpstreamListener {
  readonly connection: UpstreamConnection;
  #handler: Http1UpstreamHandler | undefined;
  #responseTimeoutMs = 0;
  /** The request body is chunk-framed here (an HTTP/2 client's body of unknown length). */
  #chunked = false;
  /** Body bytes to send once the connection is up (the client is paused meanwhile). */
  #held: Buffer[] | undefined;
  #responseBuffer: Buffer | undefined;
  #head: ResponseHead | undefined;
  #mode: ResponseBodyMode = 'raw';
  readonly #framer = new BodyFramer({ errorStatus: 502 });
  /** In `payload-and-trailers` mode: the bytes after the last payload byte, where a chunked body's trailers are. */
  #tail: Buffer | undefined;
  #payloadEnd = -1;
  /** Some response head (interim or final) was read: a loss from here on is never replayed. */
  #answered = false;
  #done = false;
  #reusable = false;
  #paused = false;

  constructor(connection: UpstreamConnection) {
    this.connection = connection;
  }

  /**
   * Starts a request: `head` is the whole request head (final CRLF included);
   * the handler's held body bytes go once the connection is up. `chunked`:
   * frame the body bytes as chunks.
   */
  begin(handler: Http1UpstreamHandler, head: string, chunked: boolean, responseTimeoutMs: number): void {
    this.#handler = handler;
    this.#responseTimeoutMs = responseTimeoutMs;
    this.#chunked = chunked;
    this.#held = handler.heldBody;
    handler.heldBody = undefined;
    this.#responseBuffer = undefined;
    this.#head = undefined;
    this.#answered = false;
    this.#done = false;
    this.#reusable = false;
    this.#paused = false;
    this.#tail = undefined;
    const connection = this.connection;
    connection.attach(this, responseTimeoutMs);
    const socket = connection.socket;
    corkUntilTurnEnd(socket);
    socket.write(head, 'latin1');
    if (connection.connected) this.#flushHeld();
  }

  // ---- request body ---------------------------------------------------------------

  /** Request body bytes; false: pause the client until `onRequestBodyFlowing`. */
  sendBody(chunk: Buffer): boolean {
    const connection = this.connection;
    if (!connection.connected) {
      (this.#held ??= []).push(chunk);
      return false;
    }
    if (connection.closed) return true;
    this.#handler!.bodySent = true;
    return this.#write(chunk);
  }

  /** The client's body ended: a chunked body gets its last chunk (after the held bytes, if the connection is not up yet). */
  endBody(): void {
    const connection = this.connection;
    if (!this.#chunked || !connection.connected || connection.closed) return; // #flushHeld sends it
    corkUntilTurnEnd(connection.socket);
    connection.socket.write(LAST_CHUNK, 'latin1');
  }

  #write(chunk: Buffer): boolean {
    const connection = this.connection;
    const socket = connection.socket;
    connection.touch(); // body progress restarts the response timeout, as node's socket timeout did on writes
    corkUntilTurnEnd(socket);
    if (!this.#chunked) return socket.write(chunk);
    socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
    socket.write(chunk);
    return socket.write('\r\n', 'latin1');
  }

  #flushHeld(): void {
    const handler = this.#handler!;
    const held = this.#held;
    this.#held = undefined;
    let flowing = true;
    if (held !== undefined) {
      handler.bodySent = true;
      for (const chunk of held) flowing = this.#write(chunk);
    }
    if (this.#chunked && handler.requestBodyDone) flowing = this.connection.socket.write(LAST_CHUNK, 'latin1');
    if (held !== undefined && flowing) handler.onRequestBodyFlowing(); // else 'drain' does
  }

  // ---- response -----------------------------------------------------------------------

  /** The client's socket or stream is full: stop reading the backend. Returns false when already stopped. */
  pauseResponse(): boolean {
    if (this.#paused) return false;
    this.#paused = true;
    this.connection.socket.pause();
    this.connection.suspendTimeout();
    return true;
  }

  /** The client drained: read the backend again. */
  resumeResponse(): void {
    if (!this.#paused) return;
    this.#paused = false;
    const connection = this.connection;
    if (connection.closed) return;
    connection.resumeTimeout(this.#responseTimeoutMs);
    connection.socket.resume();
  }

  /** Returns whether nothing keeps `chunk` now: neither this codec (a partial head, a trailer tail, bytes after a 101) nor the handler. */
  onUpstreamData(chunk: Buffer): boolean {
    const handler = this.#handler;
    if (this.#head === undefined) this.#readHead(chunk);
    else this.#readBody(chunk, 0);
    const released = handler?.responseBytesReleased() === true; // asked every time: it resets the handler's tally
    return released && this.#responseBuffer === undefined && this.#tail === undefined && this.connection.attached;
  }

  #readHead(chunk: Buffer): void {
    const handler = this.#handler!;
    let buffer = this.#responseBuffer === undefined ? chunk : Buffer.concat([this.#responseBuffer, chunk]);
    for (;;) {
      const head = parseResponseHead(buffer, 0, handler.responseLimits, handler.method);
      if (head === undefined) {
        this.#responseBuffer = buffer;
        return;
      }
      if ('error' in head) {
        handler.onUpstreamFailed(this.#badResponse(head.message));
        return;
      }
      if (head.status < 200) {
        if (head.status === 101) {
          this.#responseBuffer = undefined;
          if (!handler.onSwitchingProtocols(head, buffer.subarray(head.headLength))) handler.onUpstreamFailed(this.#badResponse('unexpected 101 Switching Protocols'));
          return;
        }
        // 100 Continue, 103 Early Hints: the final head follows.
        this.#answered = true;
        handler.onInterim(head);
        if (this.#handler !== handler) return;
        buffer = buffer.subarray(head.headLength);
        if (buffer.length === 0) {
          this.#responseBuffer = undefined;
          return;
        }
        continue;
      }
      this.#responseBuffer = undefined;
      this.connection.advertisedKeepAlive(head.keepAliveTimeoutSeconds);
      this.#head = head;
      this.#answered = true;
      const mode = handler.onResponseHead(head);
      if (mode === 'stop' || this.#handler !== handler) return;
      this.#mode = mode;
      this.#framer.reset(head.framing);
      this.#reusable = head.keepAlive && head.framing.kind !== 'until-close';
      const start = head.headLength;
      if (start < buffer.length || this.#framer.done) this.#readBody(buffer, start);
      if (this.#handler === handler && !this.#done) handler.onResponseHeadRead();
      return;
    }
  }

  #readBody(buffer: Buffer, start: number): void {
    const handler = this.#handler!;
    const framer = this.#framer;
    let end: number;
    if (this.#mode === 'raw') {
      end = framer.scan(buffer, start);
      // On a framing error nothing of this buffer goes out: the client must not see a forged end of body.
      const stop = end === -2 ? start : end < 0 ? buffer.length : end;
      if (stop > start) handler.onResponseData(buffer, start, stop);
    } else {
      this.#payloadEnd = -1;
      end = framer.scanPayload(buffer, start, this.#onPayload);
      if (this.#mode === 'payload-and-trailers' && end !== -2) this.#keepTail(buffer, start, end < 0 ? buffer.length : end);
    }
    if (this.#handler !== handler) return;
    if (end === -2) {
      handler.onUpstreamFailed(this.#badResponse(framer.error?.message ?? 'bad body framing'));
      return;
    }
    if (end < 0) return;
    // Bytes after the end of the response: the backend is out of step; never reuse it.
    if (end < buffer.length) this.#reusable = false;
    this.#end();
  }

  readonly #onPayload = (buffer: Buffer, start: number, end: number): void => {
    this.#payloadEnd = end;
    this.#handler?.onResponseData(buffer, start, end);
  };

  /** Keeps the bytes after the last payload byte; the framer bounds them (chunk line and trailer limits). */
  #keepTail(buffer: Buffer, start: number, stop: number): void {
    let from = start;
    if (this.#payloadEnd >= 0) {
      from = this.#payloadEnd;
      this.#tail = undefined;
    }
    if (from >= stop) return;
    const piece = buffer.subarray(from, stop);
    this.#tail = this.#tail === undefined ? piece : Buffer.concat([this.#tail, piece]);
  }

  #end(): void {
    this.#done = true;
    let trailers: string[] | undefined;
    if (this.#mode === 'payload-and-trailers' && this.#head!.framing.kind === 'chunked' && this.#tail !== undefined) trailers = chunkedTrailers(this.#tail);
    this.#tail = undefined;
    this.#handler!.onResponseEnd(trailers);
  }

  #badResponse(message: string): UsherError {
    return new UsherError('USHER_UPSTREAM_BAD_RESPONSE', `backend ${this.connection.key}: ${message}`);
  }

  // ---- the connection's other events ----------------------------------------------------

  onUpstreamConnect(): void {
    this.#flushHeld();
  }

  onUpstreamDrain(): void {
    this.#handler?.onRequestBodyFlowing();
  }

  onUpstreamEnd(): void {
    if (this.#head !== undefined && this.#head.framing.kind === 'until-close' && !this.#done) {
      this.#end();
      return;
    }
    this.onUpstreamError(undefined, 'exchange');
  }

  onUpstreamError(error: NodeJS.ErrnoException | undefined, phase: 'connect' | 'exchange'): void {
    const handler = this.#handler;
    if (handler === undefined || this.#done) return;
    this.#giveBackHeld(handler);
    this.#handler = undefined;
    this.connection.destroy();
    handler.onUpstreamLost(error, phase, this.#answered || this.#responseBuffer !== undefined, this.connection.uses);
  }

  onUpstreamTimeout(phase: 'connect' | 'exchange'): void {
    this.#handler?.onUpstreamTimeout(phase);
  }

  onUpstreamInternalError(error: unknown): void {
    const handler = this.#handler;
    this.#handler = undefined;
    handler?.onUpstreamInternalError(error);
  }

  // ---- end of the request ---------------------------------------------------------------

  /**
   * The exchange is done with the connection: back to the idle pool when
   * `reusable` and the response allows it (kept alive, ended where its framing
   * said), else closed. Body bytes never sent (the connection
   * never came up) go back to the handler, for its next attempt.
   */
  release(reusable: boolean): void {
    const handler = this.#handler;
    if (handler !== undefined) this.#giveBackHeld(handler);
    this.#handler = undefined;
    this.#responseBuffer = undefined;
    this.#head = undefined;
    this.#tail = undefined;
    // Paused at the very end (the client's buffer filled with the last bytes) does not matter: the response is whole, and release resumes the socket.
    this.connection.release(reusable && this.#done && this.#reusable);
  }

  #giveBackHeld(handler: Http1UpstreamHandler): void {
    if (this.#held === undefined) return;
    handler.heldBody = this.#held;
    this.#held = undefined;
  }

  /** Hands the socket over (a WebSocket tunnel): the connection is never reused. */
  detach(): Socket {
    this.#handler = undefined;
    this.#head = undefined;
    return this.connection.detach();
  }
}
