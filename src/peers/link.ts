/**
 * One connection to the configured Redis for the control plane, that keeps
 * trying: node-redis reconnects a standalone client on its own, but a Cluster
 * or Sentinel client whose first topology discovery fails gives up, so a
 * failed `connect()` is tried again here after a backoff. Errors are kept
 * (their text without secrets) for the admin API; logging is the caller's.
 */
import type { RedisScripts } from 'redis';
import type { RedisConfig } from '../config/types.ts';
import { createRedisConnection, reconnectDelay, redactSecrets, type RedisConnection, type RedisConnectionTuning } from '../redis/options.ts';

export class RedisLink<S extends RedisScripts = {}> {
  readonly connection: RedisConnection<S>;
  readonly #config: RedisConfig;
  readonly #onError: (message: string) => void;
  #closed = false;
  #attempts = 0;
  #retry: NodeJS.Timeout | undefined;
  #connecting = false;
  /** The last error's message (secrets removed), until the connection is ready again. */
  lastError: string | undefined;
  /** Resolves when the connection is first up (never while Redis is away). */
  readonly connected: Promise<void>;
  #resolveConnected: () => void = () => {};

  constructor(config: RedisConfig, scripts: S | undefined, tuning: RedisConnectionTuning, onError: (message: string) => void = () => {}) {
    this.#config = config;
    this.#onError = onError;
    this.connection = createRedisConnection(config, scripts, tuning);
    this.connected = new Promise((resolve) => (this.#resolveConnected = resolve));
    // Without a listener an 'error' event would crash the process.
    (this.connection as { on(event: 'error', listener: (error: unknown) => void): unknown }).on('error', (error: unknown) => this.#failed(error));
  }

  /** Starts connecting (in the background); resolves once connected the first time, or never while Redis is away. */
  open(): void {
    if (this.#closed || this.#connecting || this.connection.isOpen) return;
    this.#connecting = true;
    this.connection.connect().then(
      () => {
        this.#connecting = false;
        this.#attempts = 0;
        this.lastError = undefined;
        this.#resolveConnected();
      },
      (error: unknown) => {
        this.#connecting = false;
        this.#failed(error);
        if (this.#closed) return;
        this.#retry = setTimeout(() => this.open(), reconnectDelay(this.#attempts++));
        this.#retry.unref();
      },
    );
  }

  /** Whether commands go out now (not refused at once for want of a connection). */
  get ready(): boolean {
    return this.connection.isReady;
  }

  #failed(error: unknown): void {
    const message = redactSecrets(error instanceof Error ? error.message || error.name : String(error), this.#config);
    this.lastError = message;
    this.#onError(message);
  }

  /**
   * Closes the connection: quits politely when it is up, but waits at most
   * `timeoutMs` for that (a Sentinel or Cluster client whose servers are gone
   * can take many seconds), then drops it.
   */
  async close(timeoutMs = 500): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retry);
    const polite = this.connection.isOpen ? this.connection.close() : this.connection.destroy();
    if (!(await within(Promise.resolve(polite).then(() => true, () => false), timeoutMs))) {
      // Not awaited beyond the bound either: a stop never waits on Redis.
      await within(Promise.resolve(this.connection.destroy()).then(() => true, () => false), timeoutMs);
    }
  }
}

/** Whether `promise` settled true within `ms`. */
export async function within(promise: Promise<boolean>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}
