/**
 * Pools with `discovery.kubernetes`: the `kubernetes` kind of discovery
 * source (src/discovery/pool-discovery.ts runs a pool's sources and hands
 * their members together to `PoolControl.setDiscovered`, which keeps the
 * identity of members whose address stays; worker threads get the result as
 * the pool's usual state message). Only the main thread watches.
 *
 * One {@link KubernetesDiscovery} per usher holds the API client (from the
 * top-level `kubernetes` section) and one {@link Reflector} per watched
 * Service; pools naming the same Service share it, each with its own port.
 * Changes reach the pools at once after a quiet spell, then at most every
 * `minIntervalMs` (100 ms) per Service while events keep coming: one update
 * applies on the next turn, and a rollout's hundreds of events rebuild the
 * balancers a few times a second, not hundreds of times.
 */
import { createHash } from 'node:crypto';
import type { KubernetesConfig, KubernetesDiscoveryConfig, UsherConfig } from '../config/types.ts';
import type { Logger } from '../observe/logger.ts';
import type { DiscoveredBackend } from '../pool/pool-control.ts';
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

/** A `kubernetes` source as the admin API, `usher status` and the dashboard show it (the fields DNS sources share, and the watch's). */
export interface KubernetesSourceStatus {
  readonly source: 'kubernetes';
  /** `EndpointSlices prod/api port http`. */
  readonly query: string;
  /** `resolving` (not listed yet), `ok`, `failing` (keeping the last known endpoints), `empty` (listed, no usable endpoint). */
  readonly state: 'resolving' | 'ok' | 'failing' | 'empty';
  readonly members: number;
  readonly lastSuccessAt: string | null;
  readonly lastSuccessAgeMs: number | null;
  readonly lastError: string | null;
  /** Always null: a watch, not lookups on a schedule. */
  readonly nextLookupInMs: null;
  /** The version the next watch resumes from. */
  readonly resourceVersion: string;
}

/** One pool's `discovery.kubernetes`, as `PoolDiscovery` runs it. */
export interface KubernetesSubscription {
  /** Resolves once the Service's first list succeeded or failed (or the subscription closed). */
  readonly settled: Promise<void>;
  /** When the API server last answered well for this Service (ms since the epoch). */
  readonly lastSuccess: number | undefined;
  close(): void;
  status(): KubernetesSourceStatus;
}

/** What `PoolDiscovery` needs to start `kubernetes` sources. */
export interface KubernetesSubscriber {
  subscribe(pool: string, config: KubernetesDiscoveryConfig, report: (members: readonly DiscoveredBackend[]) => void): KubernetesSubscription;
}

/** Whether any pool of `config` is discovered from Kubernetes, or routes come from Ingresses or the Gateway API. */
export function usesKubernetes(config: UsherConfig): boolean {
  return Object.values(config.pools).some((pool) => pool.discovery?.kubernetes !== undefined) || config.kubernetes?.ingress !== undefined || config.kubernetes?.gateway !== undefined;
}

/**
 * Loads the connection a config needs (undefined when no pool uses
 * Kubernetes). Throws a `KubernetesConfigError` naming what to fix: called
 * before a start or reload changes anything.
 */
export function prepareKubernetes(config: UsherConfig, environment?: ConnectionEnvironment): KubeConnection | undefined {
  return usesKubernetes(config) ? loadConnection(config.kubernetes, environment) : undefined;
}

interface Sub {
  readonly pool: string;
  readonly config: KubernetesDiscoveryConfig;
  readonly report: (members: readonly DiscoveredBackend[]) => void;
  /** `namespace/service`, the namespace defaulted from the connection; '' while there is none. */
  key: string;
  members: number;
  /** The last warning (no slices, no such port), so it is logged when it changes, not at every event. */
  warned: string | undefined;
  closed: boolean;
  settle: () => void;
}

interface Watched {
  readonly reflector: Reflector<EndpointSlice>;
  readonly subs: Set<Sub>;
  lastApplied: number;
  timer: NodeJS.Timeout | undefined;
  immediate: NodeJS.Immediate | undefined;
}

export class KubernetesDiscovery implements KubernetesSubscriber {
  /** Counts per kind, kept across reflectors (metrics are totals). */
  readonly stats = new Map<string, ReflectorStats>();
  readonly #options: KubernetesDiscoveryOptions;
  #client: KubeClient | undefined;
  #connection: KubeConnection | undefined;
  #connectionKey = '';
  readonly #subs = new Set<Sub>();
  readonly #watched = new Map<string, Watched>();
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
   * Uses `connection` (from {@link prepareKubernetes}) from now on: at start,
   * and at each reload before the pools' sources are configured. A changed
   * connection (section, kubeconfig contents, token file, namespace) restarts
   * every watch; pools keep their members until the new lists arrive. None:
   * no pool uses Kubernetes any more, the client closes.
   */
  connect(config: KubernetesConfig | undefined, connection: KubeConnection | undefined): void {
    if (this.#closed) return;
    const key = connectionKey(config, connection);
    if (key === this.#connectionKey) return;
    for (const name of [...this.#watched.keys()]) void this.#unwatch(name);
    this.#client?.close();
    this.#connection = connection;
    this.#client = connection === undefined ? undefined : new KubeClient(connection, { userAgent: 'usher (kubernetes discovery)' });
    this.#connectionKey = key;
    // Without a connection no pool uses Kubernetes any more: their sources are about to close.
    for (const sub of this.#subs) {
      if (connection !== undefined) this.#attach(sub);
      else sub.key = '';
    }
  }

  /** A pool's `discovery.kubernetes` starts: its members are reported from a timer, never from this call. */
  subscribe(pool: string, config: KubernetesDiscoveryConfig, report: (members: readonly DiscoveredBackend[]) => void): KubernetesSubscription {
    let settle: () => void = () => undefined;
    const settled = new Promise<void>((resolve) => (settle = resolve));
    const sub: Sub = { pool, config, report, key: '', members: 0, warned: undefined, closed: false, settle };
    this.#subs.add(sub);
    this.#attach(sub);
    const hub = this;
    return {
      settled,
      get lastSuccess() {
        return hub.#watched.get(sub.key)?.reflector.lastSuccessAt;
      },
      close: () => this.#detach(sub),
      status: () => this.#status(sub),
    };
  }

  /** Stops every watch; pools keep their members. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#watched.keys()].map((name) => this.#unwatch(name)));
    for (const sub of this.#subs) sub.settle();
    this.#client?.close();
    this.#client = undefined;
  }

  /** Watches the sub's Service (sharing a reflector with other pools) and, when it is listed already, reports on the next turn. */
  #attach(sub: Sub): void {
    const connection = this.#connection;
    if (connection === undefined || this.#closed) {
      sub.key = '';
      if (connection === undefined && !this.#closed) this.#options.logger.error({ pool: sub.pool }, `pool ${sub.pool}: discovery.kubernetes, but no connection to the API server (an embedder must call connect() first)`);
      sub.settle();
      return;
    }
    sub.key = `${sub.config.namespace ?? connection.namespace}/${sub.config.service}`;
    let watched = this.#watched.get(sub.key);
    if (watched === undefined) watched = this.#watch(sub.key);
    watched.subs.add(sub);
    void watched.reflector.attempted.then(() => sub.settle());
    if (watched.reflector.synced) {
      const reflector = watched.reflector;
      setImmediate(() => {
        if (sub.closed || this.#watched.get(sub.key)?.reflector !== reflector) return;
        try {
          this.#update(sub, reflector);
        } catch (err) {
          // Runs from an immediate: a bug here must not take the process down; the next change tries again.
          this.#options.logger.error({ err, pool: sub.pool, service: sub.key }, 'kubernetes discovery: updating the pool failed');
        }
      });
    }
  }

  #detach(sub: Sub): void {
    if (sub.closed) return;
    sub.closed = true;
    sub.settle();
    this.#subs.delete(sub);
    const watched = this.#watched.get(sub.key);
    if (watched === undefined) return;
    watched.subs.delete(sub);
    if (watched.subs.size === 0) void this.#unwatch(sub.key);
  }

  #watch(key: string): Watched {
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
    const watched: Watched = { reflector, subs: new Set(), lastApplied: -Infinity, timer: undefined, immediate: undefined };
    this.#watched.set(key, watched);
    reflector.start();
    return watched;
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
      for (const sub of watched.subs) {
        try {
          this.#update(sub, watched.reflector);
        } catch (err) {
          // Runs from a timer: a bug here must not take the process down; the next change tries again.
          this.#options.logger.error({ err, pool: sub.pool, service: key }, 'kubernetes discovery: updating the pool failed');
        }
      }
    };
    if (wait <= 0) watched.immediate = setImmediate(run);
    else watched.timer = setTimeout(run, wait);
  }

  /** Reports the pool's members; says so once when the Service has no slices, or none with the pool's port (a typo would otherwise be a silent 503). */
  #update(sub: Sub, reflector: Reflector<EndpointSlice>): void {
    const port = sub.config.port;
    const found = membersFromSlices(reflector.store.values(), port);
    sub.members = found.length;
    sub.report(found);
    let warning: string | undefined;
    if (reflector.store.size === 0) warning = `Service ${sub.key} has no EndpointSlices (does the Service exist, with a selector?): pool ${sub.pool} has no discovered backends`;
    else if (found.length === 0) {
      const ports = new Set<string>();
      for (const slice of reflector.store.values()) for (const p of slice.ports ?? []) ports.add(p.name ? `${p.name} (${p.port ?? 'all'})` : String(p.port ?? 'all'));
      if (![...reflector.store.values()].some((slice) => slicePort(slice, port) !== undefined)) warning = `Service ${sub.key} has no endpoint port ${JSON.stringify(port)} (its slices have: ${[...ports].join(', ') || 'none'}): pool ${sub.pool} has no discovered backends`;
    }
    if (warning === sub.warned) return;
    sub.warned = warning;
    if (warning !== undefined) this.#options.logger.warn({ pool: sub.pool, service: sub.key, port }, warning);
  }

  #status(sub: Sub): KubernetesSourceStatus {
    const reflector = this.#watched.get(sub.key)?.reflector;
    const at = reflector?.lastSuccessAt;
    const state = reflector === undefined || (!reflector.synced && reflector.lastError === undefined) ? 'resolving' : reflector.lastError !== undefined ? 'failing' : sub.members === 0 ? 'empty' : 'ok';
    return {
      source: 'kubernetes',
      query: `EndpointSlices ${sub.key === '' ? `${sub.config.namespace ?? '(own namespace)'}/${sub.config.service}` : sub.key} port ${sub.config.port}`,
      state,
      members: sub.members,
      lastSuccessAt: at === undefined ? null : new Date(at).toISOString(),
      lastSuccessAgeMs: at === undefined ? null : Math.max(0, Date.now() - at),
      lastError: reflector?.lastError?.message ?? null,
      nextLookupInMs: null,
      resourceVersion: reflector?.resourceVersion ?? '',
    };
  }
}

/** What identifies a connection: a reload that changes none of it keeps the watches running. */
/** What identifies a connection for restarts: the section, the server, and the credentials' digest (a rotated static token or certificate restarts). */
export function connectionKey(config: KubernetesConfig | undefined, connection: KubeConnection | undefined): string {
  if (connection === undefined) return '';
  const hash = createHash('sha256');
  const c = connection.credentials;
  hash.update(connection.ca ?? '').update('\0').update(c.kind).update('\0');
  if (c.kind === 'token') hash.update(c.token);
  else if (c.kind === 'tokenFile') hash.update(c.path);
  else if (c.kind === 'clientCertificate') hash.update(c.cert).update('\0').update(c.key);
  return JSON.stringify({ config: config ?? null, server: connection.server.href, source: connection.source, insecure: connection.insecureSkipTlsVerify, name: connection.tlsServerName ?? null, namespace: connection.namespace, secrets: hash.digest('hex') });
}
