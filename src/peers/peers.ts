/**
 * State shared by the usher instances that use one Redis: the registry
 * (registry.ts) and the event bus (bus.ts), on two connections of the
 * control plane (the main thread): one for commands (heartbeats, listings,
 * publishes) and one subscribed to the events channel. Made by `Usher` when
 * the config has a `redis` section.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { RedisConfig, UsherConfig } from '../config/types.ts';
import type { Logger } from '../observe/logger.ts';
import { describeRedis, redactSecrets } from '../redis/options.ts';
import { PeerBus, type BusHandlers, type BusView } from './bus.ts';
import { configHash } from './config-hash.ts';
import { RedisLink } from './link.ts';
import { PeerRegistry, type RegistryView } from './registry.ts';
import { peerScripts, type PeerScripts } from './scripts.ts';
import { peerSettings, type PeerSettings } from './settings.ts';

/**
 * The registry and bus wait this long at least for a command (`redis.timeout`
 * if longer): they are off the request path, where the rate limiter's 20 ms
 * matters, and a heartbeat answered in 200 ms is still a heartbeat.
 */
const CONTROL_TIMEOUT_MS = 1000;

/** usher's version, from its package.json (src/peers and dist/peers are both two levels down). */
export const USHER_VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
})();

/** `GET /api/peers`. */
export interface PeersView extends RegistryView {
  /** Where Redis is (no credentials). */
  readonly redis: string;
  readonly keyPrefix: string;
  readonly shareAdminActions: boolean;
  readonly heartbeatMs: number;
  readonly peerTimeoutMs: number;
  readonly bus: BusView;
}

export interface PeersOptions {
  /** The running config (read at each heartbeat: reloads change the hash). */
  readonly config: () => UsherConfig;
  /** This instance's admin API URL, or null. */
  readonly admin: () => string | null;
  readonly handlers: BusHandlers;
  readonly logger: Logger;
}

/** The default instance id: `<hostname>:<pid>`, unique on a host and readable in a list. */
export function defaultInstanceId(): string {
  const host = hostname().replace(/[^A-Za-z0-9_.:@-]/g, '-').replace(/^[^A-Za-z0-9]+/, '') || 'usher';
  return `${host.slice(0, 100)}:${process.pid}`;
}

export class Peers {
  readonly instance: string;
  readonly registry: PeerRegistry;
  readonly bus: PeerBus;
  readonly #command: RedisLink<PeerScripts>;
  readonly #subscriber: RedisLink;
  readonly #options: PeersOptions;
  /** The `redis` section started with: connection changes need a restart. */
  readonly #started: PeerSettings;
  #config: PeerSettings;
  readonly #hashes = new WeakMap<UsherConfig, string>();

  private constructor(given: RedisConfig, options: PeersOptions) {
    const config = peerSettings(given);
    this.#options = options;
    this.#started = config;
    this.#config = config;
    this.instance = config.instance ?? defaultInstanceId();
    const tuning = { commandTimeoutMs: Math.max(CONTROL_TIMEOUT_MS, config.timeoutMs) };
    // Errors are logged by the registry, once per outage; the links keep the last one for the admin API.
    this.#command = new RedisLink(config, peerScripts, { ...tuning, clientName: `usher:${this.instance}` });
    this.#subscriber = new RedisLink(config, undefined, { ...tuning, clientName: `usher:${this.instance}:events` });
    const startedAt = new Date().toISOString();
    const host = hostname();
    this.registry = new PeerRegistry({
      connection: this.#command.connection,
      keyPrefix: config.keyPrefix,
      heartbeatMs: config.heartbeatMs,
      peerTimeoutMs: config.peerTimeoutMs,
      self: () => ({ instance: this.instance, hostname: host, pid: process.pid, version: USHER_VERSION, configHash: this.configHash(), admin: options.admin(), startedAt }),
      logger: options.logger,
      describeError: (message) => redactSecrets(this.#explain(message), config),
    });
    this.bus = new PeerBus({
      publisher: this.#command.connection,
      subscriber: this.#subscriber,
      channel: `${config.keyPrefix}:events`,
      instance: this.instance,
      shareAdminActions: () => this.#config.shareAdminActions,
      handlers: options.handlers,
      logger: options.logger,
      describeError: (message) => redactSecrets(this.#explain(message), config),
    });
  }

  /** Connects (in the background: Redis may be away) and starts the heartbeat and the subscription. */
  static start(config: RedisConfig, options: PeersOptions): Peers {
    const peers = new Peers(config, options);
    peers.#command.open();
    peers.#subscriber.open();
    peers.bus.start();
    // The first heartbeat waits for the connection (a second at most), so a normal start logs no outage.
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<void>((resolve) => (timer = setTimeout(resolve, CONTROL_TIMEOUT_MS).unref()));
    void Promise.race([peers.#command.connected, waited]).then(() => {
      clearTimeout(timer);
      peers.registry.start();
    });
    options.logger.info({ instance: peers.instance, redis: describeRedis(config), keyPrefix: config.keyPrefix, shareAdminActions: config.shareAdminActions }, 'peers: registering with redis');
    return peers;
  }

  /** The running config's hash (computed once per config). */
  configHash(): string {
    const config = this.#options.config();
    let hash = this.#hashes.get(config);
    if (hash === undefined) {
      hash = configHash(config);
      this.#hashes.set(config, hash);
    }
    return hash;
  }

  /** Instances alive as last read from Redis, this one included; at least 1. For the rate limiter's fallback (limit ÷ instances). */
  liveInstances(): number {
    return this.registry.liveInstances();
  }

  get shareAdminActions(): boolean {
    return this.#config.shareAdminActions;
  }

  /**
   * A reloaded `redis` section: `shareAdminActions` applies now (and the new
   * config hash at the next heartbeat); anything about the connection, the
   * prefix, the id or the timings at the next restart (returned as warnings).
   */
  configure(given: RedisConfig | undefined): string[] {
    if (given === undefined) return ['removing the redis section takes effect at the next restart'];
    const next = peerSettings(given);
    const { shareAdminActions: _a, ...before } = this.#started;
    const { shareAdminActions: _b, ...after } = next;
    this.#config = { ...this.#started, shareAdminActions: next.shareAdminActions };
    if (JSON.stringify(before) !== JSON.stringify(after)) return ['redis changes other than shareAdminActions take effect at the next restart'];
    void this.registry.beat();
    return [];
  }

  /** A failed command's message, with the connection's own error when it says more ("The client is offline (connect ECONNREFUSED …)"). */
  #explain(message: string): string {
    const cause = this.#command.lastError;
    return cause === undefined || cause === message ? message : `${message} (${cause})`;
  }

  view(): PeersView {
    const config = this.#config;
    return {
      ...this.registry.view(),
      redis: describeRedis(config),
      keyPrefix: config.keyPrefix,
      shareAdminActions: config.shareAdminActions,
      heartbeatMs: config.heartbeatMs,
      peerTimeoutMs: config.peerTimeoutMs,
      bus: this.bus.view(),
    };
  }

  /** Leaves the registry (its entry deleted, so peers drop it now), stops the bus, closes both connections. */
  async stop(): Promise<void> {
    await this.bus.stop();
    await this.registry.stop();
    await Promise.all([this.#command.close(), this.#subscriber.close()]);
  }
}
