/**
 * usher as the controller of its own IngressClass and GatewayClass: watches
 * the kinds `kubernetes.ingress` and `kubernetes.gateway` need (one reflector
 * per kind, every namespace), translates them (translate.ts) on the main
 * thread, hands the result to the runtime, which swaps it in like a reload
 * (the worker threads get it as a config, nothing is dropped), then writes
 * the status back, each object with its `observedGeneration`, a 409 retried
 * after reading the object again.
 *
 * Changes are coalesced: one translation after a quiet spell of
 * `debounceMs` (default 50 ms), at most one apply in flight.
 */
import type { KubernetesConfig } from '../config/types.ts';
import type { Logger } from '../observe/logger.ts';
import type { KubeClient } from './client.ts';
import { KubernetesApiError } from './errors.ts';
import { Reflector, newReflectorStats, type ReflectorStats, type ReflectorTiming } from './reflector.ts';
import { GATEWAY_CLASSES, GATEWAYS, HTTP_ROUTES, INGRESS_CLASSES, INGRESSES, REFERENCE_GRANTS, SECRETS, SERVICES, type ResourceKind } from './resources.ts';
import type { Condition, Gateway, GatewayClass, HTTPRoute, Ingress, RouteParentStatus } from './route-types.ts';
import { condition, GATEWAY_GROUP, translate, type ClusterRoutes, type ClusterState } from './translate.ts';
import type { KubeObject } from './types.ts';
import { isIP } from 'node:net';

/** Longest the first translation waits for every kind to list once (see #run). */
const SYNC_WAIT_MS = 10_000;
/** Longest a steady stream of changes postpones a translation. */
const MAX_DEBOUNCE_MS = 1000;

export interface KubernetesRoutesOptions {
  readonly client: KubeClient;
  readonly config: KubernetesConfig;
  readonly logger: Logger;
  readonly timing?: ReflectorTiming & { readonly debounceMs?: number };
  /** Swaps the routes in; resolves with the errors when the runtime refused them (nothing changed then). */
  readonly apply: (routes: ClusterRoutes) => Promise<readonly string[]>;
}

/** Status writes, for tests and metrics. */
export interface StatusStats {
  writes: number;
  conflicts: number;
  failures: number;
}

const MAX_STATUS_ATTEMPTS = 5;

export class KubernetesRoutes {
  readonly stats = new Map<string, ReflectorStats>();
  readonly status: StatusStats = { writes: 0, conflicts: 0, failures: 0 };
  /** What was last applied. */
  current: ClusterRoutes | undefined;
  /** Resolves after the first translation was applied (or failed), once every reflector tried its first list. */
  readonly firstApplied: Promise<void>;
  #firstApplied: () => void = () => undefined;
  readonly #options: KubernetesRoutesOptions;
  readonly #reflectors = new Map<ResourceKind, Reflector>();
  /** Aborted at stop: the status writes and re-reads under way end at once. */
  readonly #abort = new AbortController();
  #startedAt = 0;
  /** When the first change not yet translated arrived (see #changed). */
  #pendingSince: number | undefined;
  /** Runs the translation once SYNC_WAIT_MS after start, when some kind has not listed by then. */
  #syncTimer: NodeJS.Timeout | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = false;
  #lastKey = '';
  #started = false;

  constructor(options: KubernetesRoutesOptions) {
    this.#options = options;
    this.firstApplied = new Promise<void>((resolve) => (this.#firstApplied = resolve));
    const kinds: ResourceKind[] = [];
    if (options.config.ingress !== undefined) kinds.push(INGRESS_CLASSES, INGRESSES, SERVICES, SECRETS);
    if (options.config.gateway !== undefined) kinds.push(GATEWAY_CLASSES, GATEWAYS, HTTP_ROUTES, REFERENCE_GRANTS, SERVICES);
    for (const kind of new Set(kinds)) {
      const stats = newReflectorStats();
      this.stats.set(kind.kind, stats);
      this.#reflectors.set(kind, new Reflector(options.client, {
        kind,
        // Only TLS Secrets: usher never sees the others.
        ...(kind === SECRETS ? { fieldSelector: 'type=kubernetes.io/tls' } : {}),
        onChange: () => this.#changed(),
        logger: options.logger,
        ...(options.timing === undefined ? {} : { timing: options.timing }),
        stats,
      }));
    }
  }

  /** Every reflector has listed once. */
  get synced(): boolean {
    return this.#listed() && this.current !== undefined;
  }

  #listed(): boolean {
    for (const r of this.#reflectors.values()) if (!r.synced) return false;
    return true;
  }

  start(): void {
    this.#startedAt = performance.now();
    for (const r of this.#reflectors.values()) r.start();
    void Promise.all([...this.#reflectors.values()].map((r) => r.attempted)).then(() => {
      this.#started = true;
      this.#changed(true);
    });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    // Status writes in flight are given up: a stop must not wait for an unreachable API server (up to the request timeout each).
    this.#abort.abort();
    clearTimeout(this.#timer);
    clearTimeout(this.#syncTimer);
    this.#firstApplied();
    await Promise.all([...this.#reflectors.values()].map((r) => r.stop()));
    await this.#running;
  }

  #objects<T extends KubeObject>(kind: ResourceKind): T[] {
    const r = this.#reflectors.get(kind);
    return r === undefined ? [] : ([...r.store.values()] as T[]);
  }

  #state(): ClusterState {
    return {
      ingressClasses: this.#objects(INGRESS_CLASSES),
      ingresses: this.#objects(INGRESSES),
      services: this.#objects(SERVICES),
      secrets: this.#objects(SECRETS),
      gatewayClasses: this.#objects(GATEWAY_CLASSES),
      gateways: this.#objects(GATEWAYS),
      httpRoutes: this.#objects(HTTP_ROUTES),
      referenceGrants: this.#objects(REFERENCE_GRANTS),
    };
  }

  #changed(now = false): void {
    if (this.#stopped || !this.#started) return;
    if (this.#running !== undefined) {
      this.#again = true;
      return;
    }
    // Debounced, but a steady stream of changes (less than the debounce apart) still runs at least every MAX_DEBOUNCE_MS.
    const at = performance.now();
    this.#pendingSince ??= at;
    if (this.#timer !== undefined && at - this.#pendingSince >= MAX_DEBOUNCE_MS) return; // the armed timer runs soon enough
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#pendingSince = undefined;
      this.#running = this.#run().finally(() => {
        this.#running = undefined;
        if (this.#again) {
          this.#again = false;
          this.#changed();
        }
      });
    }, now ? 0 : (this.#options.timing?.debounceMs ?? 50));
  }

  async #run(): Promise<void> {
    try {
      // Until every kind has listed once, a translation would see missing Services and Secrets and replace good
      // routes with 500s (a list that failed resolves `attempted` too): wait (the first successful list runs this
      // again), but at most SYNC_WAIT_MS, so a kind the cluster does not have (no Gateway API CRDs) blocks nothing.
      if (!this.#listed() && performance.now() - this.#startedAt < SYNC_WAIT_MS) {
        this.#syncTimer ??= setTimeout(() => this.#changed(true), SYNC_WAIT_MS).unref();
        return;
      }
      const routes = translate(this.#state(), this.#options.config);
      const key = JSON.stringify({ r: [...routes.routes], p: [...routes.pools], c: [...routes.certificates].map(([l, cs]) => [l, cs.map((c) => c.certFile)]) });
      if (key !== this.#lastKey || this.current === undefined) {
        for (const warning of routes.warnings) this.#options.logger.warn({}, `kubernetes routes: ${warning}`);
        const errors = await this.#options.apply(routes);
        if (errors.length > 0) {
          this.#options.logger.error({ errors }, 'kubernetes routes: the translated routes were refused; the previous ones keep serving');
          return;
        }
        this.#lastKey = key;
        this.current = routes;
        this.#options.logger.info({ listeners: Object.fromEntries([...routes.routes].map(([l, r]) => [l, r.length])), pools: routes.pools.size }, 'kubernetes routes applied');
      }
      if (!this.#stopped) await this.#writeStatuses(routes);
    } catch (err) {
      this.#options.logger.error({ err }, 'kubernetes routes: applying failed');
    } finally {
      this.#firstApplied();
    }
  }

  // ---- status -------------------------------------------------------------------------------------

  async #writeStatuses(routes: ClusterRoutes): Promise<void> {
    const config = this.#options.config;
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const writes: Promise<void>[] = [];
    if (config.ingress?.address !== undefined) {
      const address = config.ingress.address;
      const entry = isIP(address) !== 0 ? { ip: address } : { hostname: address };
      for (const key of routes.ingresses) {
        const ingress = this.#reflectors.get(INGRESSES)?.store.get(key) as Ingress | undefined;
        if (ingress !== undefined) writes.push(this.#write(INGRESSES, ingress, () => ({ loadBalancer: { ingress: [entry] } })));
      }
    }
    if (config.gateway !== undefined) {
      for (const name of routes.gatewayClasses) {
        const gc = this.#reflectors.get(GATEWAY_CLASSES)?.store.get(name) as GatewayClass | undefined;
        if (gc !== undefined) writes.push(this.#write(GATEWAY_CLASSES, gc, (o: GatewayClass) => ({ ...o.status, conditions: [condition(o.status?.conditions, 'Accepted', true, 'Accepted', 'usher is the controller of this class', o.metadata?.generation, now)] })));
      }
      const address = config.gateway.address;
      for (const [key, attached] of routes.gateways) {
        const gw = this.#reflectors.get(GATEWAYS)?.store.get(key) as Gateway | undefined;
        if (gw === undefined) continue;
        writes.push(this.#write(GATEWAYS, gw, (o: Gateway) => {
          const generation = o.metadata?.generation;
          return {
            ...(address === undefined ? {} : { addresses: [{ type: isIP(address) !== 0 ? 'IPAddress' : 'Hostname', value: address }] }),
            conditions: [condition(o.status?.conditions, 'Accepted', true, 'Accepted', '', generation, now), condition(o.status?.conditions, 'Programmed', true, 'Programmed', '', generation, now)],
            listeners: (o.spec?.listeners ?? []).map((l) => {
              const previous = o.status?.listeners?.find((s) => s.name === l.name)?.conditions;
              const http = l.protocol === 'HTTP';
              return {
                name: l.name,
                attachedRoutes: attached.get(l.name) ?? 0,
                supportedKinds: http ? [{ group: GATEWAY_GROUP, kind: 'HTTPRoute' }] : [],
                conditions: [
                  condition(previous, 'Accepted', http, http ? 'Accepted' : 'UnsupportedProtocol', http ? '' : `usher serves HTTP listeners only, not ${l.protocol}`, generation, now),
                  condition(previous, 'Programmed', http, http ? 'Programmed' : 'Invalid', '', generation, now),
                  condition(previous, 'ResolvedRefs', true, 'ResolvedRefs', '', generation, now),
                ],
              };
            }),
          };
        }));
      }
      for (const [key, parents] of routes.httpRoutes) {
        const route = this.#reflectors.get(HTTP_ROUTES)?.store.get(key) as HTTPRoute | undefined;
        if (route === undefined) continue;
        const controllerName = config.gateway.controllerName;
        writes.push(this.#write(HTTP_ROUTES, route, (o: HTTPRoute) => {
          const generation = o.metadata?.generation;
          const others = (o.status?.parents ?? []).filter((p) => p.controllerName !== controllerName);
          const ours: RouteParentStatus[] = parents.map((p) => {
            const previous = (o.status?.parents ?? []).find((s) => s.controllerName === controllerName && sameParent(s.parentRef, p.parentRef, o))?.conditions;
            return {
              parentRef: p.parentRef,
              controllerName,
              conditions: [
                condition(previous, 'Accepted', p.accepted.ok, p.accepted.reason, p.accepted.message, generation, now),
                condition(previous, 'ResolvedRefs', p.resolvedRefs.ok, p.resolvedRefs.reason, p.resolvedRefs.message, generation, now),
              ],
            };
          });
          return { parents: [...others, ...ours] };
        }));
      }
    }
    await Promise.all(writes);
  }

  /**
   * Writes `desired(object)` as the object's status when it differs (PUT to
   * `/status` with the object's resourceVersion); on 409 reads the object
   * again and recomputes, at most {@link MAX_STATUS_ATTEMPTS} times.
   */
  async #write<T extends KubeObject & { status?: unknown }>(kind: ResourceKind, object: T, desired: (o: T) => unknown): Promise<void> {
    let current = object;
    for (let attempt = 1; attempt <= MAX_STATUS_ATTEMPTS; attempt++) {
      const status = desired(current);
      // The API server returns custom resources with sorted keys: compare canonically, or every run rewrites them.
      if (canonical(status) === canonical(current.status ?? null)) return;
      try {
        await this.#options.client.replaceStatus(kind, { ...current, apiVersion: current.apiVersion ?? apiVersion(kind), kind: current.kind ?? kind.kind, status } as T, this.#abort.signal);
        this.status.writes++;
        return;
      } catch (err) {
        if (this.#stopped) return; // aborted by stop(): nothing to report
        if (err instanceof KubernetesApiError && err.conflict && attempt < MAX_STATUS_ATTEMPTS) {
          this.status.conflicts++;
          try {
            current = await this.#options.client.get<T>(kind, kind.namespaced ? current.metadata?.namespace : undefined, current.metadata?.name ?? '', this.#abort.signal);
          } catch (getErr) {
            this.status.failures++;
            this.#options.logger.warn({ err: getErr }, `kubernetes routes: reading ${kind.kind} ${current.metadata?.name} again after a conflict failed`);
            return;
          }
          continue;
        }
        if (err instanceof KubernetesApiError && err.status === 404) return; // deleted meanwhile
        this.status.failures++;
        this.#options.logger.warn({ err }, `kubernetes routes: writing the status of ${kind.kind} ${current.metadata?.namespace ?? ''}/${current.metadata?.name} failed`);
        return;
      }
    }
  }
}

function apiVersion(kind: ResourceKind): string {
  return kind.group === '' ? kind.version : `${kind.group}/${kind.version}`;
}

function sameParent(a: RouteParentStatus['parentRef'], b: RouteParentStatus['parentRef'], route: KubeObject): boolean {
  const ns = route.metadata?.namespace;
  return a.name === b.name && (a.namespace ?? ns) === (b.namespace ?? ns) && (a.sectionName ?? '') === (b.sectionName ?? '') && (a.port ?? 0) === (b.port ?? 0);
}

export type { Condition };

/** JSON with every object's keys sorted: equal for equal values whatever order the keys came in. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v));
}
