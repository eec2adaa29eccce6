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

  /** Closes the connection (quitting politely when it is up). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retry);
    try {
      if (this.connection.isOpen) await this.connection.close();
      else await this.connection.destroy();
    } catch {
      try {
        await this.connection.destroy();
      } catch {
        /* already gone */
      }
    }
  }
}
