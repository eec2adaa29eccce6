/**
 * Pools with `discovery.kubernetes`: one {@link Reflector} per watched
 * Service (pools naming the same Service share it), its EndpointSlices turned
 * into members (endpoints.ts) and handed to each pool's control plane
 * (`PoolControl.setDiscovered`), which keeps the identity of backends that
 * stay and publishes the change to every data plane (worker threads get it as
 * one `pool` message, like any other change). Only the main thread watches.
 *
 * Changes are applied at once after a quiet spell, then at most every
 * `minIntervalMs` (100 ms) per Service while events keep coming: one update
 * applies on the next turn, and a rollout's hundreds of events rebuild the
 * balancers a few times a second, not hundreds of times.
 */
import { createHash } from 'node:crypto';
import type { KubernetesConfig, UsherConfig } from '../config/types.ts';
import type { Logger } from '../observe/logger.ts';
import type { PoolControl } from '../pool/pool-control.ts';
import { KubeClient } from './client.ts';
import { loadConnection, type ConnectionEnvironment, type KubeConnection } from './connection.ts';
import { membersFromSlices, SERVICE_NAME_LABEL, slicePort } from './endpoints.ts';
import { Reflector, newReflectorStats, type ReflectorStats, type ReflectorTiming } from './reflector.ts';
import { ENDPOINT_SLICES } from './resources.ts';
import type { EndpointSlice } from './types.ts';

export interface KubernetesDiscoveryOptions {
  readonly logger: Logger;
  /** In-cluster environment (tests point it at a fake service-account directory). */
  readonly environment?: ConnectionEnvironment;
  readonly timing?: ReflectorTiming & {
    /** Least time between two updates of one Service's pools while events keep coming. Default 100 ms. */
    readonly minIntervalMs?: number;
  };
}

/** A pool as discovery needs it. */
export interface DiscoveredPool {
  readonly name: string;
  readonly control: PoolControl;
}

interface Binding {
  readonly pool: DiscoveredPool;
  readonly key: string;
  readonly port: string | number;
  /** The last warning about this binding (no slices, no such port), so it is logged when it changes, not at every event. */
  warned?: string;
}

interface Watched {
  readonly reflector: Reflector<EndpointSlice>;
  lastApplied: number;
  timer: NodeJS.Timeout | undefined;
  immediate: NodeJS.Immediate | undefined;
}

/** Whether any pool of `config` is discovered from Kubernetes. */
export function usesKubernetes(config: UsherConfig): boolean {
  return Object.values(config.pools).some((pool) => pool.discovery?.kubernetes !== undefined);
}

/**
 * Loads the connection a config needs (undefined when no pool uses
 * Kubernetes). Throws a `KubernetesConfigError` naming what to fix: called
 * before a start or reload changes anything.
 */
export function prepareKubernetes(config: UsherConfig, environment?: ConnectionEnvironment): KubeConnection | undefined {
  return usesKubernetes(config) ? loadConnection(config.kubernetes, environment) : undefined;
}

export class KubernetesDiscovery {
  /** Counts per kind, kept across reflectors (metrics are totals). */
  readonly stats = new Map<string, ReflectorStats>();
  readonly #options: KubernetesDiscoveryOptions;
  #client: KubeClient | undefined;
  #connectionKey = '';
  readonly #watched = new Map<string, Watched>();
  #bindings = new Map<string, Binding>();
  #closed = false;

  constructor(options: KubernetesDiscoveryOptions) {
    this.#options = options;
  }

  /** The client in use (the route translation will share it); undefined when no pool uses Kubernetes. */
  get client(): KubeClient | undefined {
    return this.#client;
  }

  /** True once every watched Service has been listed (the readiness probe waits for it); true when nothing is watched. */
  get synced(): boolean {
    for (const watched of this.#watched.values()) if (!watched.reflector.synced) return false;
    return true;
  }

  /** The reflector of `namespace/service`, for tests and the admin API. */
  reflector(namespace: string, service: string): Reflector<EndpointSlice> | undefined {
    return this.#watched.get(`${namespace}/${service}`)?.reflector;
  }

  /**
   * Follows a config (at start and after each reload): watches the Services
   * its pools name, stops the others, and lets pools that no longer use
   * Kubernetes drop their discovered members. `connection` comes from
   * {@link prepareKubernetes}; a changed `kubernetes` section restarts every
   * watch (members stay until the new lists arrive).
   */
  apply(config: UsherConfig, pools: ReadonlyMap<string, DiscoveredPool>, connection: KubeConnection | undefined): void {
    if (this.#closed) return;
    const key = connectionKey(config.kubernetes, connection);
    if (connection === undefined || key !== this.#connectionKey) {
      for (const name of [...this.#watched.keys()]) this.#unwatch(name);
      this.#client?.close();
      this.#client = connection === undefined ? undefined : new KubeClient(connection, { userAgent: 'usher (kubernetes discovery)' });
      this.#connectionKey = key;
    }
    const bindings = new Map<string, Binding>();
    if (connection !== undefined) {
      for (const [name, poolConfig] of Object.entries(config.pools)) {
        const wanted = poolConfig.discovery?.kubernetes;
        const pool = pools.get(name);
        if (wanted === undefined || pool === undefined) continue;
        const namespace = wanted.namespace ?? connection.namespace;
        bindings.set(name, { pool, key: `${namespace}/${wanted.service}`, port: wanted.port });
      }
    }
    const previous = this.#bindings;
    this.#bindings = bindings;
    for (const [name, old] of previous) {
      const now = bindings.get(name);
      if (now === undefined && pools.get(name) === old.pool) old.pool.control.setDiscovered([]); // the pool stays, without discovery: its discovered members leave
    }
    const needed = new Set([...bindings.values()].map((b) => b.key));
    for (const name of [...this.#watched.keys()]) if (!needed.has(name)) this.#unwatch(name);
    for (const name of needed) if (!this.#watched.has(name)) this.#watch(name);
    // Pools that are new, moved to another Service or another port: give them what is known now.
    for (const [name, binding] of bindings) {
      const old = previous.get(name);
      if (old !== undefined && old.key === binding.key && old.port === binding.port && old.pool === binding.pool) continue;
      const reflector = this.#watched.get(binding.key)!.reflector;
      if (reflector.synced) this.#update(binding, reflector);
    }
  }

  /** Stops every watch; pools keep their members. */
  async close(): Promise<void> {
    this.#closed = true;
    const stopping = [...this.#watched.keys()].map((name) => this.#unwatch(name));
    await Promise.all(stopping);
    this.#client?.close();
    this.#client = undefined;
  }

  #watch(key: string): void {
    const [namespace, service] = key.split('/') as [string, string];
    const stats = this.stats.get(ENDPOINT_SLICES.kind) ?? newReflectorStats();
    this.stats.set(ENDPOINT_SLICES.kind, stats);
    const reflector = new Reflector<EndpointSlice>(this.#client!, {
      kind: ENDPOINT_SLICES,
      namespace,
      labelSelector: `${SERVICE_NAME_LABEL}=${service}`,
      onChange: () => this.#changed(key),
      logger: this.#options.logger,
      timing: this.#options.timing,
      stats,
    });
    this.#watched.set(key, { reflector, lastApplied: -Infinity, timer: undefined, immediate: undefined });
    reflector.start();
  }

  #unwatch(key: string): Promise<void> {
    const watched = this.#watched.get(key);
    if (watched === undefined) return Promise.resolve();
    this.#watched.delete(key);
    clearTimeout(watched.timer);
    if (watched.immediate !== undefined) clearImmediate(watched.immediate);
    return watched.reflector.stop();
  }

  /** The Service's slices changed: update its pools on the next turn, or once `minIntervalMs` has passed since the last update. */
  #changed(key: string): void {
    const watched = this.#watched.get(key);
    if (watched === undefined || watched.timer !== undefined || watched.immediate !== undefined) return;
    const wait = watched.lastApplied + (this.#options.timing?.minIntervalMs ?? 100) - performance.now();
    const run = (): void => {
      watched.timer = undefined;
      watched.immediate = undefined;
      if (this.#watched.get(key) !== watched) return;
      watched.lastApplied = performance.now();
      this.#publish(key, watched.reflector);
    };
    if (wait <= 0) watched.immediate = setImmediate(run);
    else watched.timer = setTimeout(run, wait);
  }

  #publish(key: string, reflector: Reflector<EndpointSlice>): void {
    for (const binding of this.#bindings.values()) {
      if (binding.key !== key) continue;
      try {
        this.#update(binding, reflector);
      } catch (err) {
        // Runs from a timer: a bug here must not take the process down; the next change tries again.
        this.#options.logger.error({ err, pool: binding.pool.name, service: key }, 'kubernetes discovery: updating the pool failed');
      }
    }
  }

  /** Hands the pool its members; says so once when the Service has no slices, or none with the pool's port (a typo would otherwise be a silent 503). */
  #update(binding: Binding, reflector: Reflector<EndpointSlice>): void {
    const found = membersFromSlices(reflector.store.values(), binding.port);
    binding.pool.control.setDiscovered(found);
    let warning: string | undefined;
    if (reflector.store.size === 0) warning = `Service ${binding.key} has no EndpointSlices (does the Service exist, with a selector?): pool ${binding.pool.name} has no discovered backends`;
    else if (found.length === 0) {
      const ports = new Set<string>();
      for (const slice of reflector.store.values()) for (const p of slice.ports ?? []) ports.add(p.name ? `${p.name} (${p.port ?? 'all'})` : String(p.port ?? 'all'));
      if (![...reflector.store.values()].some((slice) => slicePort(slice, binding.port) !== undefined)) warning = `Service ${binding.key} has no endpoint port ${JSON.stringify(binding.port)} (its slices have: ${[...ports].join(', ') || 'none'}): pool ${binding.pool.name} has no discovered backends`;
    }
    if (warning === binding.warned) return;
    binding.warned = warning;
    if (warning !== undefined) this.#options.logger.warn({ pool: binding.pool.name, service: binding.key, port: binding.port }, warning);
  }
}

/** What identifies a connection: a reload that changes none of it keeps the watches running. */
function connectionKey(config: KubernetesConfig | undefined, connection: KubeConnection | undefined): string {
  if (connection === undefined) return '';
  const hash = createHash('sha256');
  const c = connection.credentials;
  hash.update(connection.ca ?? '').update('\0').update(c.kind).update('\0');
  if (c.kind === 'token') hash.update(c.token);
  else if (c.kind === 'tokenFile') hash.update(c.path);
  else if (c.kind === 'clientCertificate') hash.update(c.cert).update('\0').update(c.key);
  return JSON.stringify({ config: config ?? null, server: connection.server.href, source: connection.source, insecure: connection.insecureSkipTlsVerify, name: connection.tlsServerName ?? null, namespace: connection.namespace, secrets: hash.digest('hex') });
}
