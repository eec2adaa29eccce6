import { setTimeout as sleep } from 'node:timers/promises';
import { ConnectionTracker, type NodeServer } from './connections.ts';
import type { Health } from './health.ts';
import { safeLog, stderrLogger, type Logger } from './logger.ts';
import { describeValue, milliseconds } from './options.ts';
import { UsherAdmin, type UsherDrainOptions } from './usher-admin.ts';

/** Options of {@link gracefulShutdown}. */
export interface ShutdownOptions {
  /** The health endpoints to switch to 503 draining when the shutdown starts. */
  readonly health?: Health;
  /**
   * How long in ms to keep serving normally after the signal, with readiness
   * failing, before the server stops accepting (default 5000): the time
   * usher's default health checks need to take the backend out. See
   * {@link DEFAULT_DRAIN_DELAY_MS}. With `usher` (direct drain) it is only the
   * fallback when the admin call fails.
   */
  readonly drainDelayMs?: number;
  /** In ms from the signal: past it, remaining connections are cut and the process exits 1 (default 25000). */
  readonly timeoutMs?: number;
  /** Signals that start the shutdown (default `['SIGTERM', 'SIGINT']`); `[]` to only call {@link Shutdown.shutdown}. */
  readonly signals?: readonly NodeJS.Signals[];
  /**
   * Cleanup run once every connection is done (close the database pool,
   * flush a queue). Runs after the last response, so in-flight requests can
   * still use what it closes. A throw or rejection makes the exit code 2.
   */
  readonly onShutdown?: () => unknown;
  /** Called with the exit code at the end (default `process.exit`); tests and embedders inject their own. */
  readonly exit?: (code: number) => void;
  /** Where to report the steps (default: plain lines on stderr). */
  readonly logger?: Logger;
  /** Direct drain through usher's admin API; see {@link UsherDrainOptions}. */
  readonly usher?: UsherDrainOptions;
  /**
   * How to stop accepting, resolving once every connection has closed
   * (default: `server.close()`). The Fastify adapter passes `fastify.close()`.
   */
  readonly close?: () => Promise<unknown>;
}

/**
 * 5 s, from usher's health-check defaults (interval 2 s ±10 % jitter,
 * fastInterval 500 ms once a check failed, fall 3, timeout 1 s):
 *
 *   up to 2.2 s   until the next scheduled check after the signal (it gets 503 draining at once)
 * + 2 × 0.55 s    two more failed checks at fastInterval (fall 3), jittered
 * = 3.3 s         usher stops sending new requests
 * + 1 s           one check timeout, in case the process is too busy to answer promptly
 * + ~0.7 s        for requests usher sent just before, and for timers firing late
 * ≈ 5 s
 *
 * With other check settings: interval × 1.1 + (fall − 1) × fastInterval × 1.1 + timeout, plus slack.
 */
export const DEFAULT_DRAIN_DELAY_MS = 5000;

/**
 * 25 s: inside Kubernetes' default terminationGracePeriodSeconds (30 s), which
 * ends in SIGKILL, so the process still exits on its own, logs included, with
 * 5 s to spare for the preStop hook and a slow exit.
 */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 25_000;

/** The process exit codes a shutdown ends with. */
export const shutdownExitCodes = Object.freeze({
  /** Every connection finished and the cleanup succeeded. */
  ok: 0,
  /** `timeoutMs` passed and the remaining connections were cut (or a custom `close` failed). */
  timeout: 1,
  /** `onShutdown` threw or rejected. */
  cleanupFailed: 2,
  /** A second signal arrived during the shutdown: exit at once (as usher itself does). */
  forced: 130,
});

/** Where a shutdown is: `running` (not started), `draining` (readiness fails, still serving), `closing` (not accepting, in-flight responses finish), `cleanup` (`onShutdown` runs), `done`. */
export type ShutdownState = 'running' | 'draining' | 'closing' | 'cleanup' | 'done';

/** A graceful shutdown attached to a server; see {@link gracefulShutdown}. */
export interface Shutdown {
  readonly state: ShutdownState;
  /** Responses in progress on the server. */
  readonly inFlight: number;
  /**
   * Starts the shutdown as a signal would and resolves with the exit code
   * once `exit` was called. Calling it again returns the same promise (unlike
   * a second signal, which exits at once).
   */
  shutdown(reason?: string): Promise<number>;
  /** Removes the signal handlers and stops following the server (without shutting anything down). */
  dispose(): void;
}

/**
 * Makes a server stop gracefully on SIGTERM/SIGINT, in this order:
 *
 * 1. readiness answers 503 draining at once; the server keeps serving normally;
 * 2. wait `drainDelayMs` (or drain through usher's admin API and wait `settleDelayMs`);
 * 3. stop accepting (`server.close()`);
 * 4. responses in flight go out with `Connection: close`; idle keep-alive
 *    connections close at once, the others right after their response;
 * 5. once every connection is done, run `onShutdown`, then exit 0;
 *    past `timeoutMs` from the signal, cut what is left and exit 1.
 *
 * A second signal exits 130 at once. With `usher`, the backend is also
 * enabled in usher once the server listens.
 */
export function gracefulShutdown(server: NodeServer, options: ShutdownOptions = {}): Shutdown {
  return new GracefulShutdown(server, options);
}

class GracefulShutdown implements Shutdown {
  readonly #server: NodeServer;
  readonly #tracker: ConnectionTracker;
  readonly #health: Health | undefined;
  readonly #drainDelayMs: number;
  readonly #timeoutMs: number;
  readonly #signals: readonly NodeJS.Signals[];
  readonly #onShutdown: (() => unknown) | undefined;
  readonly #exit: (code: number) => void;
  readonly #logger: Logger;
  readonly #usher: UsherAdmin | undefined;
  readonly #close: () => Promise<unknown>;
  /** Aborted when the shutdown ends (exit called): pending waits stop, nothing runs after. */
  readonly #ended = new AbortController();
  /** Aborted when the shutdown starts (or on dispose): enable retries stop, a drain is under way. */
  readonly #started = new AbortController();
  #state: ShutdownState = 'running';
  #result: Promise<number> | undefined;
  #resolve: ((code: number) => void) | undefined;
  #timeout: NodeJS.Timeout | undefined;

  constructor(server: NodeServer, options: ShutdownOptions) {
    if (server === null || typeof server !== 'object' || typeof server.close !== 'function' || typeof server.closeIdleConnections !== 'function') {
      throw new TypeError(`usher/backend: gracefulShutdown needs a node:http or node:https server, got ${describeValue(server)}`);
    }
    this.#server = server;
    this.#health = options.health;
    this.#drainDelayMs = milliseconds('drainDelayMs', options.drainDelayMs, DEFAULT_DRAIN_DELAY_MS);
    this.#timeoutMs = milliseconds('timeoutMs', options.timeoutMs, DEFAULT_SHUTDOWN_TIMEOUT_MS, 1);
    this.#signals = options.signals ?? ['SIGTERM', 'SIGINT'];
    this.#onShutdown = options.onShutdown;
    this.#exit = options.exit ?? ((code) => process.exit(code));
    this.#logger = options.logger ?? stderrLogger;
    this.#usher = options.usher === undefined ? undefined : new UsherAdmin(options.usher, this.#logger);
    this.#close = options.close ?? (() => closeServer(server));
    if (this.#drainDelayMs >= this.#timeoutMs) {
      safeLog(this.#logger, 'warn', `drainDelayMs (${this.#drainDelayMs}) is not below timeoutMs (${this.#timeoutMs}): every shutdown will end in the timeout`);
    }
    this.#tracker = new ConnectionTracker(server);
    for (const signal of this.#signals) process.on(signal, this.#onSignal);
    if (this.#usher?.enableOnStart === true) {
      if (server.listening) this.#enable();
      else server.once('listening', this.#enable);
    }
  }

  get state(): ShutdownState {
    return this.#state;
  }

  get inFlight(): number {
    return this.#tracker.inFlight;
  }

  shutdown(reason = 'shutdown requested'): Promise<number> {
    if (this.#result !== undefined) return this.#result;
    this.#result = new Promise((resolve) => (this.#resolve = resolve));
    this.#started.abort();
    void this.#run(reason);
    return this.#result;
  }

  dispose(): void {
    for (const signal of this.#signals) process.off(signal, this.#onSignal);
    this.#server.off('listening', this.#enable);
    this.#tracker.dispose();
    this.#started.abort();
  }

  readonly #onSignal = (signal: NodeJS.Signals): void => {
    if (this.#ended.signal.aborted) return;
    if (this.#result === undefined) {
      void this.shutdown(signal);
      return;
    }
    safeLog(this.#logger, 'warn', `${signal} during the shutdown: exiting now`);
    this.#finish(shutdownExitCodes.forced);
  };

  readonly #enable = (): void => {
    // Never rejects: failures are logged by UsherAdmin.
    void this.#usher?.enable(this.#started.signal);
  };

  async #run(reason: string): Promise<void> {
    const startedAt = performance.now();
    this.#state = 'draining';
    this.#health?.startDraining();
    this.#timeout = setTimeout(() => this.#onTimeout(), this.#timeoutMs);
    safeLog(
      this.#logger,
      'info',
      `${reason}: shutting down; readiness answers 503 draining, still serving ${this.#usher === undefined ? `for ${this.#drainDelayMs} ms` : 'until usher drained this backend'} (timeout ${this.#timeoutMs} ms)`,
    );
    try {
      await this.#drain(startedAt);
      if (this.#ended.signal.aborted) return;
      this.#state = 'closing';
      const closed = this.#close();
      this.#tracker.startClosing();
      safeLog(this.#logger, 'info', `stopped accepting; ${this.#tracker.inFlight} response(s) in flight finish with Connection: close`);
      await closed;
      if (this.#ended.signal.aborted) return;
      this.#state = 'cleanup';
      if (this.#onShutdown !== undefined) {
        try {
          await this.#onShutdown();
        } catch (err) {
          safeLog(this.#logger, 'error', `onShutdown failed: ${err instanceof Error ? (err.stack ?? err.message) : describeValue(err)}`);
          this.#finish(shutdownExitCodes.cleanupFailed);
          return;
        }
      }
      safeLog(this.#logger, 'info', `shut down cleanly in ${Math.round(performance.now() - startedAt)} ms`);
      this.#finish(shutdownExitCodes.ok);
    } catch (err) {
      // Only a custom close() can get here; the timeout still bounds the shutdown, so exit now with its code.
      safeLog(this.#logger, 'error', `shutdown failed: ${err instanceof Error ? err.message : describeValue(err)}`);
      this.#tracker.cutAll();
      this.#finish(shutdownExitCodes.timeout);
    }
  }

  /** Step 2: usher's admin API when configured and reachable, else the full drain delay from the signal. */
  async #drain(startedAt: number): Promise<void> {
    if (this.#usher !== undefined) {
      if (await this.#usher.drain()) {
        await this.#wait(this.#usher.settleDelayMs);
        return;
      }
      safeLog(this.#logger, 'warn', `falling back to the drain delay (${this.#drainDelayMs} ms from the signal)`);
    }
    await this.#wait(startedAt + this.#drainDelayMs - performance.now());
  }

  async #wait(ms: number): Promise<void> {
    if (ms <= 0) return;
    try {
      await sleep(ms, undefined, { signal: this.#ended.signal });
    } catch {
      // Aborted: the shutdown already ended (timeout or second signal).
    }
  }

  #onTimeout(): void {
    if (this.#ended.signal.aborted) return;
    safeLog(this.#logger, 'error', `shutdown timeout (${this.#timeoutMs} ms): cutting ${this.#tracker.inFlight} response(s) still in flight; exiting ${shutdownExitCodes.timeout}`);
    this.#tracker.cutAll();
    this.#finish(shutdownExitCodes.timeout);
  }

  #finish(code: number): void {
    if (this.#ended.signal.aborted) return;
    this.#ended.abort();
    this.#state = 'done';
    clearTimeout(this.#timeout);
    // Handlers stay installed until here so a second signal is caught; after the exit they are moot.
    for (const signal of this.#signals) process.off(signal, this.#onSignal);
    this.#tracker.dispose();
    try {
      this.#exit(code);
    } finally {
      this.#resolve?.(code);
    }
  }
}

/** `server.close()` as a promise; a server that was not listening counts as closed. */
function closeServer(server: NodeServer): Promise<void> {
  return new Promise((resolve) => {
    server.close((err?: Error) => {
      // ERR_SERVER_NOT_RUNNING: never listened, or closed by someone else; either way nothing is left to wait for.
      void err;
      resolve();
    });
  });
}
