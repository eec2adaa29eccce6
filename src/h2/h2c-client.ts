import { connect, type ClientHttp2Session, type ClientHttp2Stream, type ClientSessionRequestOptions } from 'node:http2';
import type { TimeoutsConfig } from '../config/types.ts';
import type { BackendRuntime } from '../pool/backend-runtime.ts';

/**
 * One cleartext HTTP/2 session ("prior knowledge", RFC 9113 §3.3) to one
 * backend, shared by every request to it: HTTP/2 multiplexes, so unlike
 * HTTP/1.1 there is no pool of connections, only a session that is replaced
 * when it closes, fails or receives GOAWAY.
 *
 * The connect timeout is usher's own timer (node:http2 has none); the idle
 * timeout closes a session without streams after `timeouts.idleMs`, which is
 * also how sessions to backends removed from their pool go away. A session
 * with no stream in flight is unref'd, so it never keeps the process alive.
 */
export class H2cClient {
  readonly origin: string;
  #session: ClientHttp2Session | undefined;
  #active = 0;

  constructor(backendKey: string) {
    this.origin = `http://${backendKey}`;
  }

  /** Streams in flight on the current session. */
  get activeStreams(): number {
    return this.#active;
  }

  /** Opens a stream on the current session, or on a new one when there is none usable. */
  request(headers: readonly string[], options: ClientSessionRequestOptions, timeouts: TimeoutsConfig): ClientHttp2Stream {
    let session = this.#usable() ?? this.#open(timeouts);
    let stream: ClientHttp2Stream;
    try {
      stream = session.request(headers, options);
    } catch {
      // The session ran out of stream ids or closed under us: one fresh session, then give up.
      this.#drop(session);
      session = this.#open(timeouts);
      stream = session.request(headers, options);
    }
    this.#active++;
    session.ref();
    stream.once('close', this.#streamClosed);
    return stream;
  }

  readonly #streamClosed = (): void => {
    if (--this.#active === 0) this.#session?.unref();
  };

  /** Closes the session: streams in flight finish, new requests open a new session. */
  close(): void {
    const session = this.#session;
    this.#session = undefined;
    session?.close();
  }

  /** Closes now, cutting streams in flight. */
  destroy(): void {
    const session = this.#session;
    this.#session = undefined;
    session?.destroy();
  }

  #usable(): ClientHttp2Session | undefined {
    const session = this.#session;
    if (session === undefined) return undefined;
    if (session.closed || session.destroyed) {
      this.#session = undefined;
      return undefined;
    }
    return session;
  }

  #open(timeouts: TimeoutsConfig): ClientHttp2Session {
    const session = connect(this.origin, { settings: { enablePush: false } });
    this.#session = session;
    live.add(this);
    const timer = setTimeout(() => {
      session.destroy(Object.assign(new Error(`no connection within ${timeouts.connectMs} ms`), { code: 'ETIMEDOUT' }));
    }, timeouts.connectMs);
    session.once('connect', () => clearTimeout(timer));
    // Streams get the error too; the session's own copy needs a listener or it would be thrown.
    session.on('error', ignoreError);
    session.on('goaway', () => this.#drop(session));
    session.on('close', () => {
      clearTimeout(timer);
      this.#drop(session);
      if (this.#session === undefined) live.delete(this);
    });
    session.setTimeout(timeouts.idleMs, () => {
      if (this.#active === 0 && this.#session === session) this.close();
    });
    session.unref();
    return session;
  }

  /** Stops using `session` for new streams (it finishes those it has). */
  #drop(session: ClientHttp2Session): void {
    if (this.#session === session) this.#session = undefined;
  }
}

function ignoreError(): void {}

/** Sessions by backend: a backend that stays across reloads keeps its session. */
const clients = new WeakMap<BackendRuntime, H2cClient>();
/** Clients with an open session, for shutdown. */
const live = new Set<H2cClient>();

/** The h2c client of `backend`, created on first use. */
export function h2cClientFor(backend: BackendRuntime): H2cClient {
  let client = clients.get(backend);
  if (client === undefined) {
    client = new H2cClient(backend.key);
    clients.set(backend, client);
  }
  return client;
}

/** Closes every h2c session to backends (usher stopping): streams in flight finish first. */
export function closeH2cSessions(): void {
  for (const client of live) client.close();
}
