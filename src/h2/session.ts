import { constants, createServer, type Http2Server, type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { Duplex } from 'node:stream';
import { UsherError } from '../errors.ts';
import { isToken } from '../http1/chars.ts';
import { defaultHeadLimits } from '../http1/types.ts';
import { clientAddress, upstreamRequestHeaderLines } from '../proxy/headers.ts';
import type { DownstreamSettings, Forward, HttpListenerPlan, PlanSource, RequestFacts, RouteOutcome } from '../proxy/plan.ts';
import { requestIdOf } from '../proxy/request-id.ts';
import { routeRequest } from '../proxy/route-phase.ts';
import { createRouteRequest } from '../route/request.ts';
import { H2cExchange } from './h2c-upstream.ts';
import { H2Exchange, type UpstreamBodyFraming } from './h2-exchange.ts';
import { h2cRequestHeaders, isTarget, requestFields, type H2RequestFields } from './headers.ts';
import { resetStream, respondError } from './respond.ts';
import type { StreamExchange, StreamOwner } from './stream-exchange.ts';

/**
 * Streams one client may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS).
 * 100 is the floor RFC 9113 §6.5.2 recommends and nginx's and Envoy's order of
 * magnitude; not configurable yet (TODO(h2-config): a listener `http2` block).
 */
export const MAX_CONCURRENT_STREAMS = 100;

/** What the runtime may pass to {@link serveHttp2}. */
export interface Http2Hooks {
  /** Called once when the session is gone (its socket closed): the listener's connection bookkeeping. */
  readonly onClose?: ((session: Http2Downstream) => void) | undefined;
}

/**
 * One client's HTTP/2 connection: a node:http2 server session on a socket
 * usher accepted (a TLSSocket that negotiated ALPN `h2`, or a plain socket
 * speaking h2c with prior knowledge). Each stream is one request, routed and
 * proxied on its own; the session only tracks them and closes gracefully.
 */
export class Http2Downstream implements StreamOwner {
  readonly socket: Duplex;
  readonly session: ServerHttp2Session;
  readonly clientIp: string;
  readonly proto: string;
  readonly #plans: PlanSource;
  readonly #hooks: Http2Hooks;
  readonly #exchanges = new Set<StreamExchange>();
  #streams = 0;
  #closed = false;

  constructor(socket: Duplex, session: ServerHttp2Session, plans: PlanSource, hooks: Http2Hooks) {
    this.socket = socket;
    this.session = session;
    this.#plans = plans;
    this.#hooks = hooks;
    const remote = socket as Duplex & { remoteAddress?: string; encrypted?: boolean };
    this.clientIp = clientAddress(remote.remoteAddress);
    this.proto = remote.encrypted === true ? 'https' : (plans.plan()?.proto ?? 'http');
    session.on('stream', this.#onStream);
    session.on('error', this.#onError);
    session.on('close', this.#onClose);
    session.setTimeout(plans.plan()?.settings.keepAliveTimeoutMs ?? 60_000, this.#onIdle);
  }

  /** The listener this connection came in on. */
  get plansSource(): PlanSource {
    return this.#plans;
  }

  /** Streams being served. */
  get activeStreams(): number {
    return this.#exchanges.size;
  }

  /**
   * Graceful close: GOAWAY with the last stream id usher processed, so the
   * client opens no new streams here (and knows those it may have sent
   * meanwhile were refused unprocessed, safe to retry elsewhere); streams in
   * flight finish, then the connection closes.
   */
  close(): void {
    if (this.session.closed || this.session.destroyed) return;
    this.session.close();
  }

  /** Cuts the connection and every stream on it now. */
  destroy(): void {
    this.session.destroy();
    this.socket.destroy();
  }

  reportInternalError(error: unknown): void {
    this.#plans.onInternalError(error);
  }

  streamDone(exchange: StreamExchange): void {
    if (!this.#exchanges.delete(exchange)) return;
    exchange.log();
  }

  #onStream = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, rawHeaders: string[]): void => {
    try {
      this.#serve(stream, headers, (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0, rawHeaders);
    } catch (error) {
      this.#plans.onInternalError(error);
      if (!respondError(stream, 500, 'internal_error', String(headers[':method']))) resetStream(stream, constants.NGHTTP2_INTERNAL_ERROR);
    }
    // maxRequestsPerConnection holds for HTTP/2 too (nginx's keepalive_requests does): GOAWAY after
    // this stream, so long-lived clients still move between usher instances on a rolling restart.
    const max = (this.#plans.plan()?.settings ?? fallbackSettings).maxRequestsPerConnection;
    if (++this.#streams >= max) this.close();
  };

  /** Route phase for one stream (proxy/route-phase.ts, shared with HTTP/1.1), then the exchange that fits the pool's protocol. */
  #serve(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, endStream: boolean, rawHeaders: readonly string[]): void {
    const plan = this.#plans.plan();
    const method = headers[':method'] ?? '';
    const path = headers[':path'] ?? '';
    const fields = requestFields(rawHeaders);
    const settings = plan?.settings ?? fallbackSettings;
    const routeHeaders = headers as Record<string, string | string[] | undefined>;
    if (routeHeaders['host'] === undefined && fields.host !== undefined) routeHeaders['host'] = fields.host;
    const request = createRouteRequest(method, path, routeHeaders);
    const requestId = requestIdOf(rawHeaders);
    const lengthHeader = headers['content-length'];
    const length = lengthHeader === undefined ? -1 : Number(lengthHeader);
    const facts: RequestFacts = {
      clientIp: this.clientIp,
      scheme: this.proto === 'https' ? 'https' : 'http',
      protocol: 'HTTP/2',
      requestId,
      rawTarget: path,
      rawHeaders: fields.raw,
      contentLength: length,
      absoluteForm: false,
      hostHeader: undefined,
      malformed: malformed(method, path, fields, settings),
    };
    const outcome = routeRequest(plan, request, facts);
    const exchange = outcome.pool?.config.protocol === 'h2c'
      ? new H2cExchange(stream, this, method, path, settings, endStream, requestId)
      : new H2Exchange(stream, this, method, path, settings, endStream, requestId);
    this.#exchanges.add(exchange);
    if (plan !== undefined) {
      exchange.arrivedOn(plan);
      if (plan.accessLog.needsHeaders) exchange.requestHeaders = headers;
    }
    this.#act(plan, exchange, fields, method, length, endStream, outcome);
  }

  /** Acts on the route phase's outcome (again when an asynchronous filter settles). */
  #act(plan: HttpListenerPlan | undefined, exchange: StreamExchange, fields: H2RequestFields, method: string, length: number, endStream: boolean, outcome: RouteOutcome): void {
    if (outcome.route !== undefined && plan !== undefined) exchange.matched(plan, outcome.route);
    switch (outcome.kind) {
      case 'fail':
        exchange.fail(outcome.error);
        return;
      case 'answer':
        exchange.answer(outcome.status, outcome.headers, outcome.body, outcome.stream);
        return;
      case 'forward':
        this.#forward(exchange, fields, method, length, endStream, outcome);
        return;
      case 'suspended': {
        // The stream's body is not read until start(): flow control holds the client meanwhile. A reset cancels the filter.
        const cancel = (): void => outcome.cancel();
        exchange.stream.once('close', cancel);
        void outcome.settled.then((settled) => {
          exchange.stream.off('close', cancel);
          if (exchange.finished) return;
          try {
            this.#act(plan, exchange, fields, method, length, endStream, settled);
          } catch (error) {
            this.#plans.onInternalError(error);
            exchange.fail(new UsherError('USHER_INTERNAL', 'internal error while routing; see the usher log'));
          }
        });
        return;
      }
      default: {
        const unreachable: never = outcome;
        throw new Error(`unknown route outcome ${String(unreachable)}`);
      }
    }
  }

  /** The request head for the backend (with the filters' edits), then the pick phase onwards. */
  #forward(exchange: StreamExchange, fields: H2RequestFields, method: string, length: number, endStream: boolean, outcome: Forward): void {
    const filters = outcome.filters;
    const forwarding = { clientIp: this.clientIp, proto: this.proto, requestId: exchange.requestId };
    if (exchange instanceof H2cExchange) {
      const built = h2cRequestHeaders(fields.raw, method, outcome.target, forwarding, filters);
      exchange.prepare(built.list, built.authority);
    } else if (exchange instanceof H2Exchange) {
      const framing: UpstreamBodyFraming = endStream ? 'none' : length >= 0 ? 'length' : 'chunked';
      let head = `${method} ${outcome.target} HTTP/1.1\r\n${upstreamRequestHeaderLines(fields.raw, noTokens, forwarding, filters)}`;
      if (framing === 'length') head += `content-length: ${length}\r\n`;
      else if (framing === 'chunked') head += 'transfer-encoding: chunked\r\n';
      else if (bodyExpected.has(method)) head += 'content-length: 0\r\n'; // some servers answer 411 without one
      exchange.prepare(head, fields.host === undefined && filters?.hostEdited !== true, framing, length);
    }
    exchange.filters = filters;
    exchange.start(outcome.pool, outcome.hash, outcome.stickyToken);
  }

  #onIdle = (): void => {
    // An idle connection is closed gracefully; one with streams in flight is left alone (re-armed by activity).
    if (this.#exchanges.size === 0) this.close();
  };

  #onError = (): void => {
    // A protocol error from the client; 'close' follows and does the bookkeeping.
  };

  #onClose = (): void => {
    if (this.#closed) return;
    this.#closed = true;
    live.delete(this);
    this.socket.destroy();
    this.#hooks.onClose?.(this);
  };
}

const noTokens: readonly string[] = [];

/** Methods whose request normally has a body: an empty one is announced with `content-length: 0`. */
const bodyExpected: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH']);

/** Limits used when a listener was removed under a connection (its streams get 404). */
const fallbackSettings: DownstreamSettings = {
  limits: defaultHeadLimits,
  keepAliveTimeoutMs: 60_000,
  headerTimeoutMs: 10_000,
  bodyIdleTimeoutMs: 60_000,
  sendTimeoutMs: 60_000,
  tunnelIdleTimeoutMs: 3_600_000,
  maxBodyBytes: 0,
  maxRequestsPerConnection: 1000,
  maxConnections: 10_000,
  maxConnectionsPerClient: 0,
};

/**
 * What the route phase refuses in an HTTP/2 request itself (the rest,
 * CONNECT included, is `proxy/route-phase.ts`'s, as for HTTP/1.1):
 * `:authority` and Host must agree (RFC 9113 §8.3.1); HTTP/2 has no
 * absolute-form. The target length limit applies as on HTTP/1.1 (nghttp2
 * bounds the rest of the head), and so do its character rules: fields that
 * reach an HTTP/1.1 backend must be ones usher's own parser would have accepted.
 */
function malformed(method: string, path: string, fields: H2RequestFields, settings: DownstreamSettings): UsherError | undefined {
  if (method === 'CONNECT') return undefined;
  if (!isToken(method) || !isTarget(path) || !fields.valid) {
    return new UsherError('USHER_DOWNSTREAM_BAD_REQUEST', 'a method, :path or header field HTTP/1.1 would reject');
  }
  if (fields.hostMismatch) return new UsherError('USHER_DOWNSTREAM_HOST_MISMATCH', ':authority and host name different hosts');
  if (path.length > settings.limits.maxTargetBytes) {
    return new UsherError('USHER_DOWNSTREAM_BAD_REQUEST', `:path longer than ${settings.limits.maxTargetBytes} bytes`);
  }
  return undefined;
}

// ---- one node:http2 server per listener ------------------------------------------------

interface Front {
  readonly settings: DownstreamSettings;
  readonly server: Http2Server;
}

/** The http2 server of each plan source (listener), rebuilt when a reload changes its settings. */
const fronts = new WeakMap<PlanSource, Front>();
/** Every open session, for {@link closeAll}. */
const live = new Set<Http2Downstream>();

/**
 * The node:http2 server that creates sessions for a listener. It never
 * listens: usher accepts the sockets (TLS with ALPN, limits, PROXY protocol)
 * and hands them over with `emit('connection')`. Its options come from the
 * listener's limits, so a changed limit (reload) builds a new one; sessions
 * already open keep theirs.
 */
function serverFor(plans: PlanSource, plan: HttpListenerPlan | undefined): Http2Server {
  const settings = plan?.settings ?? fallbackSettings;
  const front = fronts.get(plans);
  if (front !== undefined && front.settings === settings) return front.server;
  const server = createServer({
    // Pseudo-headers count as entries in node's limit; usher's limit is on ordinary fields.
    maxHeaderListPairs: settings.limits.maxHeaders + 4,
    settings: { maxConcurrentStreams: MAX_CONCURRENT_STREAMS, maxHeaderListSize: settings.limits.maxHeadBytes },
  });
  fronts.set(plans, { settings, server });
  return server;
}

/**
 * Serves HTTP/2 on an accepted socket: a TLSSocket whose ALPN protocol is
 * `h2`, or any plain duplex speaking h2c with prior knowledge (tests, or a
 * cleartext listener that sniffs the HTTP/2 preface). `plans` is the
 * listener's {@link PlanSource} (its `RunningListener`): each stream reads the
 * current plan once, as an HTTP/1.1 request does, so a reload applies to new
 * streams while streams in flight keep theirs.
 *
 * Returns the session; call {@link Http2Downstream.close} on it (or
 * {@link closeAll}) for a graceful stop.
 */
export function serveHttp2(socket: Duplex, plans: PlanSource, hooks: Http2Hooks = {}): Http2Downstream {
  const server = serverFor(plans, plans.plan());
  let session: ServerHttp2Session | undefined;
  const capture = (created: ServerHttp2Session): void => {
    session = created;
  };
  // node:http2 creates the session synchronously inside the 'connection' handler and announces it with 'session'.
  server.once('session', capture);
  server.emit('connection', socket);
  server.off('session', capture);
  if (session === undefined) throw new Error('node:http2 did not create a session for the connection');
  const downstream = new Http2Downstream(socket, session, plans, hooks);
  live.add(downstream);
  return downstream;
}

/**
 * Graceful stop of every HTTP/2 connection (or those of one listener):
 * GOAWAY now, streams in flight finish, new ones are refused. Resolves when
 * they have all closed; pair it with a deadline and {@link destroyAll}.
 */
export function closeAll(plans?: PlanSource): Promise<void> {
  const closing: Promise<void>[] = [];
  for (const downstream of live) {
    if (plans !== undefined && downstream.plansSource !== plans) continue;
    closing.push(new Promise<void>((resolve) => (downstream.session.closed && downstream.session.destroyed ? resolve() : downstream.session.once('close', () => resolve()))));
    downstream.close();
  }
  return Promise.all(closing).then(() => undefined);
}

/** Cuts every HTTP/2 connection (or those of one listener) now; returns how many. */
export function destroyAll(plans?: PlanSource): number {
  let cut = 0;
  for (const downstream of [...live]) {
    if (plans !== undefined && downstream.plansSource !== plans) continue;
    cut++;
    downstream.destroy();
  }
  return cut;
}
