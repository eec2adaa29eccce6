import type { Socket } from 'node:net';
import { UsherError } from '../errors.ts';
import { BodyFramer } from '../http1/body-framer.ts';
import { parseRequestHead } from '../http1/request-head.ts';
import type { HeadLimits, Http1ParseError, RequestHead } from '../http1/types.ts';
import { createRouteRequestFromRaw, type RouteRequest } from '../route/request.ts';
import { deadlines, type Expiring } from '../runtime/deadlines.ts';
import { simpleResponse } from './error-response.ts';
import { Exchange } from './exchange.ts';
import { clientAddress, headerValue, upstreamRequestHeaderLines } from './headers.ts';
import { http1Answer } from './local-answer.ts';
import type { DownstreamSettings, Forward, HttpListenerPlan, PlanSource, RequestFacts, RouteOutcome, Suspended } from './plan.ts';
import { newRequestId } from './request-id.ts';
import { roundMs } from './request-record.ts';
import { routeRequest } from './route-phase.ts';
import { Tunnel } from '../l4/tunnel.ts';

export type { DownstreamSettings, PlanSource } from './plan.ts';

/**
 * One client connection speaking HTTP/1.1: reads request heads, runs one
 * exchange at a time (pipelined requests wait, unread, in the socket), and
 * decides when the connection is reused or closed.
 *
 * The keep-alive, header and request body idle timeouts are coarse deadlines
 * swept by runtime/deadlines.ts (restarted by every read, off while usher
 * waits for the upstream), so a request arms no node timer. The send timeout
 * (a client that stops reading) has its own timer, and the grace period after
 * a rejected request still uses `socket.setTimeout`.
 */
export class DownstreamConnection implements Expiring {
  readonly socket: Socket;
  readonly clientIp: string;
  limits: HeadLimits;
  #settings: DownstreamSettings;
  #requests = 0;
  #bodyBytes = 0;
  #inputEnded = false;
  #tunneled = false;
  #sendTimer: NodeJS.Timeout | undefined;
  readonly #plans: PlanSource;
  readonly #requestFramer = new BodyFramer();
  #buffer: Buffer | undefined;
  #headStartedAt = 0;
  #exchange: Exchange | undefined;
  /** The current request while an asynchronous filter decides it. */
  #waiting: Suspended | undefined;
  #drainWaiter: Exchange | undefined;
  /** What the route phase reads about the current request: one exchange at a time, so one object per connection. */
  readonly #facts: Http1Facts;
  /** Set when usher is stopping: answer the current request with `Connection: close`. */
  closing = false;
  /** Expiring: when the idle connection (or its incomplete head) times out; 0 while an exchange runs. */
  deadline = 0;
  /** Length of the armed timeout (keep-alive, header or body idle), restarted by every read. */
  #timeoutMs = 0;
  readonly #onClosed: (connection: DownstreamConnection) => void;

  constructor(socket: Socket, plans: PlanSource, settings: DownstreamSettings, onClosed: (c: DownstreamConnection) => void) {
    this.socket = socket;
    // Every handler is guarded: a bug on one connection must cut that connection, not the process.
    this.clientIp = clientAddress(socket.remoteAddress);
    this.#facts = new Http1Facts(this.clientIp);
    this.limits = settings.limits;
    this.#settings = settings;
    this.#plans = plans;
    this.#onClosed = onClosed;
    socket.setNoDelay(true);
    this.#arm(settings.keepAliveTimeoutMs);
    deadlines.add(this);
    socket.on('data', this.#onDataGuarded);
    socket.on('timeout', this.#onTimeout);
    socket.on('drain', this.#onDrain);
    socket.on('error', this.#onError);
    socket.on('close', this.#onClose);
  }

  /** Logs an internal error (a bug) that happened while serving this connection. */
  reportInternalError(error: unknown): void {
    this.#plans.onInternalError(error);
  }

  /** True while a request is being served. */
  get busy(): boolean {
    return this.#exchange !== undefined;
  }

  #onDataGuarded = (chunk: Buffer): void => {
    try {
      this.#onData(chunk);
    } catch (error) {
      this.#plans.onInternalError(error);
      this.#failInternally();
    }
  };

  /** After a bug: answer 500 if nothing was sent yet, then close; never leave the client hanging. */
  #failInternally(): void {
    const exchange = this.#exchange;
    try {
      if (exchange !== undefined && !exchange.finished) {
        exchange.clientKeepAlive = false;
        exchange.fail(new UsherError('USHER_INTERNAL', 'internal error; see the usher log'));
        return;
      }
    } catch (error) {
      this.#plans.onInternalError(error);
    }
    this.socket.destroy();
  }

  #onData(chunk: Buffer): void {
    // Every read restarts the armed timeout (keep-alive, header or body idle), as node's socket timeout did.
    const now = performance.now();
    if (this.deadline !== 0) this.deadline = now + this.#timeoutMs;
    if (this.#inputEnded) return;
    const exchange = this.#exchange;
    if (exchange !== undefined) {
      if (!exchange.requestBodyDone) {
        this.#feedRequestBody(exchange, chunk, 0);
        return;
      }
      // A pipelined request while one is in flight: keep it, stop reading until the response is done.
      this.#buffer = this.#buffer === undefined ? chunk : Buffer.concat([this.#buffer, chunk]);
      this.socket.pause();
      return;
    }
    if (this.#buffer === undefined) {
      this.#buffer = chunk;
      this.#headStartedAt = now;
      this.#arm(this.#settings.headerTimeoutMs);
    } else {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      if (now - this.#headStartedAt > this.#settings.headerTimeoutMs) {
        this.#reject(408, 'header_timeout');
        return;
      }
    }
    this.#readHead();
  }

  #readHead(): void {
    const buffer = this.#buffer!;
    const result = parseRequestHead(buffer, 0, this.limits);
    if (result === undefined) return;
    if ('error' in result) {
      this.#rejectParse(result);
      return;
    }
    this.#buffer = undefined;
    this.#startExchange(result, buffer);
  }

  #startExchange(head: RequestHead, buffer: Buffer): void {
    const exchange = new Exchange(this, head, this.#headStartedAt);
    this.#exchange = exchange;
    const plan = this.#plans.plan();
    if (plan === undefined) {
      exchange.fail(new UsherError('USHER_NO_ROUTE', 'listener removed'));
      return;
    }
    const settings = plan.settings;
    this.#settings = settings;
    this.limits = settings.limits;
    if (++this.#requests >= settings.maxRequestsPerConnection) exchange.clientKeepAlive = false;
    const framing = head.framing;
    // Upstream timeouts bound the wait from here; only a request body still to come is the client's to time.
    if (framing.kind === 'none') this.deadline = 0;
    else this.#arm(settings.bodyIdleTimeoutMs);
    this.#bodyBytes = 0;
    if (framing.kind !== 'none') this.#requestFramer.reset(framing);
    exchange.arrivedOn(plan);
    const request = createRouteRequestFromRaw(head.method, head.target, head.host, head.rawHeaders);
    const outcome = routeRequest(plan, request, this.#facts.of(head, plan, exchange.requestId));
    this.#act(plan, exchange, head, request, outcome, head.headLength < buffer.length ? buffer.subarray(head.headLength) : undefined);
  }

  /** Acts on the route phase's outcome; `rest` is what the client sent after the head, not yet looked at. */
  #act(plan: HttpListenerPlan, exchange: Exchange, head: RequestHead, request: RouteRequest, outcome: RouteOutcome, rest: Buffer | undefined): void {
    if (outcome.route !== undefined) exchange.matched(plan, outcome.route);
    switch (outcome.kind) {
      case 'forward':
        this.#forward(plan, exchange, head, request, outcome, rest);
        return;
      case 'suspended':
        this.#suspend(plan, exchange, head, request, outcome, rest);
        return;
      case 'answer':
      case 'fail':
        // A request body is never read: close after answering, so it is not taken for the next request.
        if (head.framing.kind !== 'none' || this.closing) exchange.clientKeepAlive = false;
        else if (rest !== undefined) this.#buffer = rest; // pipelined requests
        if (outcome.kind === 'fail') exchange.fail(outcome.error);
        else {
          const answer = http1Answer(outcome, exchange.clientKeepAlive, head.minorVersion, exchange.requestId, head.method);
          if (outcome.stream !== undefined && head.method !== 'HEAD') exchange.respondStreamed(outcome.status, answer.head, outcome.stream);
          else exchange.respond(outcome.status, answer.head, answer.body, answer.bodyBytes);
        }
        return;
      default: {
        const unreachable: never = outcome;
        throw new Error(`unknown route outcome ${String(unreachable)}`);
      }
    }
  }

  /** The pick phase onwards: the upstream head (with the filters' edits), then the body bytes read so far. */
  #forward(plan: HttpListenerPlan, exchange: Exchange, head: RequestHead, request: RouteRequest, outcome: Forward, rest: Buffer | undefined): void {
    const framing = head.framing;
    const filters = outcome.filters;
    let upstreamHead =
      `${head.method} ${outcome.target} HTTP/1.1\r\n` +
      upstreamRequestHeaderLines(head.rawHeaders, head.connectionTokens, { clientIp: this.clientIp, proto: plan.proto, requestId: exchange.requestId }, filters);
    if (framing.kind === 'length') upstreamHead += `content-length: ${framing.length}\r\n`;
    else if (framing.kind === 'chunked') upstreamHead += 'transfer-encoding: chunked\r\n'; // the parser accepts no other coding
    // An upgrade (WebSocket) keeps its Upgrade and Connection fields: the backend must see what is asked.
    if (head.upgrade) upstreamHead += `upgrade: ${headerValue(head.rawHeaders, 'upgrade') ?? ''}\r\nconnection: upgrade\r\n`;
    const addHost = head.host === undefined && request.host === undefined && filters?.hostEdited !== true;
    exchange.filters = filters;
    exchange.start(outcome.pool, outcome.hash, outcome.stickyToken, upstreamHead, addHost);
    if (rest === undefined) return;
    if (!exchange.finished && !exchange.requestBodyDone) this.#feedRequestBody(exchange, rest, 0);
    else this.#buffer = rest;
  }

  /**
   * An asynchronous filter decides the request: body bytes read with the head
   * go to the exchange, which holds them and pauses the client (as while
   * connecting); pipelined requests wait in the buffer. The client leaving
   * cancels the filter (exchangeDone).
   */
  #suspend(plan: HttpListenerPlan, exchange: Exchange, head: RequestHead, request: RouteRequest, outcome: Suspended, rest: Buffer | undefined): void {
    this.#waiting = outcome;
    if (rest !== undefined) {
      if (!exchange.requestBodyDone) this.#feedRequestBody(exchange, rest, 0);
      else this.#buffer = rest;
    }
    void outcome.settled.then((settled) => {
      if (this.#waiting === outcome) this.#waiting = undefined;
      if (exchange.finished || this.#exchange !== exchange) return;
      try {
        this.#act(plan, exchange, head, request, settled, undefined);
      } catch (error) {
        this.#plans.onInternalError(error);
        this.#failInternally();
      }
    });
  }

  #feedRequestBody(exchange: Exchange, chunk: Buffer, start: number): void {
    const end = this.#requestFramer.scan(chunk, start);
    if (end === -2) {
      const error = this.#requestFramer.error;
      exchange.fail(new UsherError('USHER_DOWNSTREAM_BAD_REQUEST', error?.message ?? 'bad request body framing'));
      return;
    }
    const stop = end < 0 ? chunk.length : end;
    const maxBody = this.#settings.maxBodyBytes;
    if (maxBody > 0 && (this.#bodyBytes += stop - start) > maxBody) {
      // Chunked (or lying) bodies are counted on the wire, framing included.
      exchange.fail(new UsherError('USHER_DOWNSTREAM_BODY_TOO_LARGE', `request body exceeds maxBodyBytes ${maxBody}`));
      return;
    }
    if (stop > start && !exchange.sendRequestBody(start === 0 && stop === chunk.length ? chunk : chunk.subarray(start, stop))) {
      // Resumed when the upstream drains; the wait is not the client's fault, so the body timer stops.
      this.socket.pause();
      this.deadline = 0;
    }
    if (end >= 0) {
      exchange.requestBodyDone = true;
      if (this.#drainWaiter === undefined) this.deadline = 0;
      if (end < chunk.length) {
        this.#buffer = chunk.subarray(end);
        this.socket.pause();
      }
    }
  }

  /** Called by the exchange when its response is complete (or it failed). */
  exchangeDone(exchange: Exchange): void {
    if (this.#exchange !== exchange) return;
    this.#exchange = undefined;
    this.#drainWaiter = undefined;
    // Answered (or the client left) while a filter was still deciding: its outcome no longer matters.
    this.#waiting?.cancel();
    this.#waiting = undefined;
    clearTimeout(this.#sendTimer);
    exchange.log();
    if (!exchange.clientKeepAlive || this.closing) {
      this.#endInput();
      this.socket.end();
      return;
    }
    this.#arm(this.#settings.keepAliveTimeoutMs);
    if (this.#buffer !== undefined) {
      this.#headStartedAt = performance.now();
      // Parse the next pipelined request on a fresh tick: a long pipeline must not grow the stack.
      setImmediate(this.#continuePipeline);
    } else {
      this.resumeReading();
    }
  }

  #continuePipeline = (): void => {
    if (this.#exchange !== undefined || this.#buffer === undefined || this.socket.destroyed) return;
    this.#readHead();
    if (this.#exchange === undefined) this.resumeReading();
  };

  resumeReading(): void {
    if (!this.socket.isPaused() || this.socket.destroyed) return;
    const exchange = this.#exchange;
    if (exchange !== undefined && !exchange.requestBodyDone && this.#drainWaiter === undefined) {
      this.#arm(this.#settings.bodyIdleTimeoutMs);
    }
    this.socket.resume();
  }

  /**
   * The exchange waits for the client to drain its socket before reading more
   * from upstream. A timer of its own, not the socket's idle timeout: node
   * skips a socket timeout while a write is pending and its queue changed, which
   * would stretch the send timeout to about twice its value.
   */
  awaitDrain(exchange: Exchange): void {
    this.#drainWaiter = exchange;
    clearTimeout(this.#sendTimer);
    this.#sendTimer = setTimeout(this.#onSendTimeout, this.#settings.sendTimeoutMs);
  }

  #onSendTimeout = (): void => {
    const exchange = this.#drainWaiter;
    if (exchange === undefined) return;
    // The response had started: the log says the client was cut (499), not that it got a 200.
    exchange.status = 499;
    exchange.fail(new UsherError('USHER_DOWNSTREAM_SEND_TIMEOUT', `client read nothing for ${this.#settings.sendTimeoutMs} ms`));
    this.socket.destroy();
  };

  /**
   * The exchange upgraded the connection (WebSocket): from now on it is a
   * byte tunnel to `upstream`, owned by {@link Tunnel}. Bytes the client sent
   * after the upgrade request go first.
   */
  becomeTunnel(upstream: Socket, onEnd: () => void): Tunnel {
    const socket = this.socket;
    this.#tunneled = true;
    this.#exchange = undefined;
    this.#drainWaiter = undefined;
    clearTimeout(this.#sendTimer);
    socket.removeListener('data', this.#onDataGuarded);
    socket.removeListener('timeout', this.#onTimeout);
    socket.removeListener('drain', this.#onDrain);
    // Leave the deadline sweep: the Tunnel has its own idle timeout, and no keep-alive, header or body deadline may cut it.
    this.deadline = 0;
    deadlines.delete(this);
    const pending = this.#buffer;
    this.#buffer = undefined;
    if (pending !== undefined) upstream.write(pending);
    const tunnel = new Tunnel(socket, upstream, { idleMs: this.#settings.tunnelIdleTimeoutMs, onEnd });
    upstream.resume();
    socket.resume();
    return tunnel;
  }

  #onDrain = (): void => {
    const waiter = this.#drainWaiter;
    if (waiter === undefined) return;
    this.#drainWaiter = undefined;
    clearTimeout(this.#sendTimer);
    if (this.#exchange !== undefined) this.deadline = 0;
    waiter.onDownstreamDrain();
  };

  #arm(ms: number): void {
    this.#timeoutMs = ms;
    this.deadline = deadlines.at(ms);
  }

  /** Expiring: the keep-alive, header or body idle deadline passed. */
  onDeadline(): void {
    this.#onTimeout();
  }

  #onTimeout = (): void => {
    const exchange = this.#exchange;
    if (exchange !== undefined) {
      if (!exchange.requestBodyDone && this.#drainWaiter === undefined) {
        // The client stopped sending its body (slow POST).
        exchange.fail(new UsherError('USHER_DOWNSTREAM_BODY_TIMEOUT', `no request body bytes for ${this.#settings.bodyIdleTimeoutMs} ms`));
        this.deadline = 0;
        this.socket.setTimeout(1000); // a client that never reads our answer is not waited for
        return;
      }
      // Armed while waiting for the client to read: it stopped.
      this.socket.destroy();
      return;
    }
    if (this.#buffer !== undefined) this.#reject(408, 'header_timeout');
    else this.socket.destroy(); // idle keep-alive connection
  };

  #onError = (): void => {
    // 'close' follows and does the bookkeeping; the error itself is the client's business.
  };

  #onClose = (): void => {
    clearTimeout(this.#sendTimer);
    this.#exchange?.onDownstreamClose();
    this.#exchange = undefined;
    this.#buffer = undefined;
    this.deadline = 0;
    deadlines.delete(this);
    this.#onClosed(this);
  };

  #rejectParse(error: Http1ParseError): void {
    this.#reject(error.status, error.code.toLowerCase());
  }

  /** Answers a request usher could not read, and closes: after a framing error the byte stream cannot be trusted. */
  #reject(status: number, reason: string): void {
    const plan = this.#plans.plan();
    const requestId = newRequestId();
    if (plan !== undefined) {
      const totalMs = performance.now() - this.#headStartedAt;
      const bytesIn = this.#buffer?.length ?? 0;
      plan.metrics.unrouted.observe(undefined, status, totalMs, -1, bytesIn, 0);
      // A request usher could not read still gets its log line: that is how an operator sees an attack.
      if (plan.accessLog.enabled) {
        plan.accessLog.write({
          client: this.clientIp,
          method: '-',
          path: '-',
          protocol: '-',
          status,
          listener: plan.name,
          route: undefined,
          pool: undefined,
          backend: undefined,
          upstreamMs: -1,
          totalMs: roundMs(totalMs),
          bytesIn,
          bytesOut: 0,
          error: reason,
          requestId,
        });
      }
    }
    this.#endInput();
    if (!this.socket.writable) {
      this.socket.destroy();
      return;
    }
    this.socket.end(simpleResponse(status, reason, false, requestId), 'latin1');
    this.deadline = 0;
    this.socket.setTimeout(1000); // a client that never reads our answer is not waited for
  }

  /** Closes the connection if it is idle; a busy one closes after its current response. */
  closeIfIdle(): void {
    this.closing = true;
    if (this.#tunneled) return; // tunnels get the shutdown grace period, then are cut
    if (this.#exchange === undefined) {
      this.#endInput();
      this.socket.end();
    }
  }

  /**
   * Once usher has decided to close, nothing more the client sends is a
   * request: pipelined bytes are dropped, later ones read and discarded (so the
   * close completes), and none ever reaches a backend.
   */
  #endInput(): void {
    this.#inputEnded = true;
    this.#buffer = undefined;
    this.socket.resume();
  }
}

/** The route phase's view of an HTTP/1.1 request ({@link RequestFacts}), refilled per request. */
class Http1Facts implements RequestFacts {
  readonly clientIp: string;
  scheme: 'http' | 'https' = 'http';
  protocol: 'HTTP/1.0' | 'HTTP/1.1' = 'HTTP/1.1';
  requestId = '';
  rawTarget = '';
  rawHeaders: readonly string[] = [];
  contentLength = -1;
  absoluteForm = false;
  hostHeader: string | undefined = undefined;
  readonly malformed = undefined;

  constructor(clientIp: string) {
    this.clientIp = clientIp;
  }

  of(head: RequestHead, plan: HttpListenerPlan, requestId: string): this {
    const target = head.target;
    this.scheme = plan.proto;
    this.protocol = head.minorVersion === 1 ? 'HTTP/1.1' : 'HTTP/1.0';
    this.requestId = requestId;
    this.rawTarget = target;
    this.rawHeaders = head.rawHeaders;
    this.contentLength = head.framing.kind === 'length' ? head.framing.length : -1;
    this.absoluteForm = target.charCodeAt(0) !== 0x2f /* / */ && target !== '*';
    this.hostHeader = head.host;
    return this;
  }
}
