import type { Socket } from 'node:net';
import type { BackendRuntime } from '../pool/backend-runtime.ts';
import type { TcpListenerPlan } from './plan.ts';
import { L4Session } from './session.ts';

export { compileTcpPlan, DEFAULT_PRELUDE_TIMEOUT_MS, type L4Route, type TcpListenerPlan } from './plan.ts';
export { MAX_CONNECT_ATTEMPTS } from './session.ts';
export type { TunnelEnd } from './tunnel.ts';

/**
 * usher's L4 data path: one accepted client connection at a time, through
 * fixed phases:
 *
 *   accept → prelude (PROXY header, ClientHello) → route → pick (or queue)
 *          → connect (redispatch on failure) → PROXY header out → tunnel → end
 *
 * The runtime creates the listening server with `allowHalfOpen: true` (so a
 * client's FIN does not end its write half before the backend's last bytes
 * are relayed) and passes each accepted socket to {@link TcpProxy.handle}.
 *
 * Prelude rules:
 * - `acceptProxyProtocol` and a trusted peer: a PROXY v1/v2 header is
 *   required first (the receiver "MUST not try to guess", proxy-protocol.txt §2); a
 *   malformed or missing one closes the connection. Its source address
 *   replaces the peer's for hashing, logs and the PROXY header sent on.
 * - `acceptProxyProtocol` and an untrusted peer: the connection proceeds
 *   without a header, but one that starts with a PROXY signature is closed
 *   (it tried to claim an address it may not claim). On `tcp` this is judged
 *   on the first chunk read, after the backend connection is up (waiting for
 *   client bytes first would stall server-speaks-first protocols); a header
 *   split by the network before its 6th byte passes as data, and the backend
 *   then sees it only as payload after usher's own header, if any.
 * - `tls-passthrough`: the ClientHello is buffered (at most
 *   CLIENT_HELLO_MAX_BYTES) and routed by SNI; no match and no catch-all closes.
 * Both must arrive within `preludeTimeoutMs`. All of it is bounded: at most
 * 4 KiB of PROXY header plus 32 KiB of ClientHello per connection.
 *
 * Backend accounting: one connection is one attempt for its whole life, so
 * `inFlight` counts open connections (least-connections balances on them and
 * `maxConnections` limits them). A connect error or timeout ends the attempt
 * as a failure (outlier detection sees it); a tunnel that ends with FIN both
 * ways or by idle timeout as a success; anything else (resets mid-stream,
 * drains) gives no verdict, as L4 cannot tell whose fault a reset was.
 *
 * Logging: per-connection events go to the process log at debug level only,
 * so a flood of bad clients cannot flood the log. Not done here yet: an
 * access-log line per L4 connection and per-listener connection limits
 * (`limits.maxConnections`), which the runtime wiring has to add.
 */
export class TcpProxy {
  #plan: TcpListenerPlan;
  readonly #sessions = new Set<L4Session>();
  readonly #drainTimers = new Set<NodeJS.Timeout>();
  #closed = false;

  constructor(plan: TcpListenerPlan) {
    this.#plan = plan;
  }

  /** The plan new connections use. */
  get plan(): TcpListenerPlan {
    return this.#plan;
  }

  /** Swaps in a reloaded plan: new connections use it, open ones keep theirs. */
  setPlan(plan: TcpListenerPlan): void {
    this.#plan = plan;
  }

  /** Client connections open now, in any phase. */
  get connections(): number {
    return this.#sessions.size;
  }

  /** Takes over one accepted client socket. Never throws. */
  handle(socket: Socket): void {
    if (this.#closed) {
      socket.destroy();
      return;
    }
    const session = new L4Session(this.#sessions, this.#plan, socket);
    this.#sessions.add(session);
    try {
      session.start();
    } catch (error) {
      // A bug must cost this connection, not the process.
      this.#plan.logger.error({ err: error, listener: this.#plan.name }, 'internal error on an L4 connection; connection closed');
      session.destroy('internal error');
    }
  }

  /**
   * Closes, after `afterMs`, this proxy's connections still open to `backend`
   * (also those made to it in the meantime). Drains, disables and removals
   * need no call: each tunnel is in `backend.tunnels`, which the pool closes
   * `drainTimeoutMs` after them. This is for closing on other occasions.
   */
  closeBackend(backend: BackendRuntime, afterMs: number): void {
    if (afterMs <= 0) {
      this.#closeSessionsOf(backend);
      return;
    }
    const timer = setTimeout(() => {
      this.#drainTimers.delete(timer);
      this.#closeSessionsOf(backend);
    }, afterMs);
    timer.unref();
    this.#drainTimers.add(timer);
  }

  /** Closes every connection at once and refuses new ones from then on (shutdown, after its grace period). */
  closeAll(): void {
    this.#closed = true;
    for (const timer of this.#drainTimers) clearTimeout(timer);
    this.#drainTimers.clear();
    for (const session of [...this.#sessions]) session.destroy('shutdown');
  }

  #closeSessionsOf(backend: BackendRuntime): void {
    for (const session of [...this.#sessions]) if (session.backend === backend) session.destroy('backend drained');
  }
}

