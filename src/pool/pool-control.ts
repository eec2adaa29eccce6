import { algorithmHashes } from '../balancer/algorithm.ts';
import { formatHostPort } from '../config/hostport.ts';
import type { AdminState, BackendConfig, HashKey, HostPort, PoolConfig } from '../config/types.ts';
import type { Logger } from '../observe/logger.ts';
import { BackendControl } from './backend-control.ts';
import { PoolHealth } from './health/pool-health.ts';
import { InFlightTable } from './in-flight.ts';
import { RetryWindow } from './retry-budget.ts';
import { poolMode, type PoolMode } from './pool-mode.ts';
import type { AttemptOutcome, AttemptReports, PoolDataPlane, PublishedPool } from './published.ts';
import { StickyCookie } from './sticky.ts';
import { backendTlsOptions } from '../upstream/connection.ts';


/** A backend as the admin API adds it. */
export type BackendSpec = Pick<BackendConfig, 'address' | 'name' | 'weight' | 'backup' | 'state' | 'maxConnections' | 'tls'>;

/** A backend as a discovery source (DNS, Kubernetes) reports it. */
export interface DiscoveredBackend {
  readonly address: HostPort;
  /** Relative weight (SRV weight, 1 for an A record or an endpoint); at least 1. */
  readonly weight: number;
  /** Terminating but still serving (Kubernetes `serving && terminating`): drained, and used only when nothing else is available. */
  readonly terminating: boolean;
  /** A name for people (a pod name). */
  readonly name?: string | undefined;
  /**
   * Priority group, lower preferred (SRV priority); absent is 0. When a pool's
   * discovered members are in more than one group, the lowest group with an
   * available member takes the requests and the higher ones are its backups.
   */
  readonly priority?: number | undefined;
}

/** Options that are not part of the config file: injected for tests and embedding. */
export interface PoolControlOptions {
  /** Jitter of health checks; default `Math.random`. */
  readonly random?: () => number;
  readonly logger?: Logger;
  /** Data planes that will serve the pool: rows of its in-flight table. Default 1. */
  readonly dataPlanes?: number;
}

/**
 * The control plane of one pool: which backends it has (membership, in file
 * order), their weights and slow-start weights, their health (active checks,
 * outlier ejection, the `unreachable` ejection after a refused connect),
 * operator state, the pool's mode, the sticky secret and tokens. Admin
 * actions, reloads and health results change it; nothing here runs per
 * request except {@link attemptReported}, which feeds passive health.
 *
 * Data planes read it as a {@link PublishedPool} and are told what to rebuild
 * through {@link PoolDataPlane} (see published.ts). A pool lives across
 * reloads: {@link reconfigure} applies a new file while keeping the health,
 * counters and connections of backends that stay.
 */
export class PoolControl implements PublishedPool, AttemptReports {
  readonly name: string;
  /** Health checks, passive ejection and slow start of this pool. */
  readonly health: PoolHealth;
  /** In-flight attempts per backend slot, one row per data plane. */
  readonly inFlight: InFlightTable;
  /** Requests and retries of the last 10 s, one row per data plane: the retry budget's counts. */
  readonly retryWindow: RetryWindow;
  #config: PoolConfig;
  #backends: BackendControl[] = [];
  /** Members by slot: data planes report by slot. */
  #bySlot: (BackendControl | undefined)[] = [];
  /** Removed backends whose slot no member uses yet; a slot is reused once nothing is in flight on it. */
  readonly #retired: BackendControl[] = [];
  #nextSlot = 0;
  #mode: PoolMode = 'none';
  #sticky: StickyCookie | undefined;
  #hashKey: HashKey | undefined;
  readonly #planes: PoolDataPlane[] = [];
  #closed = false;

  constructor(name: string, config: PoolConfig, options: PoolControlOptions = {}) {
    this.name = name;
    this.#config = config;
    this.inFlight = new InFlightTable(options.dataPlanes ?? 1, Math.max(16, config.backends.length));
    this.retryWindow = new RetryWindow(options.dataPlanes ?? 1);
    const planes = this.#planes;
    const members = (): readonly BackendControl[] => this.#backends;
    this.health = new PoolHealth(
      {
        name,
        get backends() {
          return members();
        },
        stateChanged: () => this.stateChanged(),
        closeIdle: (backend) => {
          for (const plane of planes) plane.closeIdle(backend.slot);
        },
        weightsChanged: () => {
          for (const plane of planes) plane.weightsChanged();
        },
      },
      options.random ?? Math.random,
      options.logger,
    );
    this.#applySettings(config);
    for (const spec of config.backends) this.#backends.push(this.#newBackend(spec));
    this.#membersChanged();
    this.health.configure(config);
  }

  get config(): PoolConfig {
    return this.#config;
  }

  /** Members, in file order (admin additions last until the next reload). */
  get backends(): readonly BackendControl[] {
    return this.#backends;
  }

  get mode(): PoolMode {
    return this.#mode;
  }

  get sticky(): StickyCookie | undefined {
    return this.#sticky;
  }

  get hashKey(): HashKey | undefined {
    return this.#hashKey;
  }

  /**
   * A data plane serving this pool: from now on it is told about every
   * change. It has built itself from the published state already.
   */
  attach(plane: PoolDataPlane): void {
    this.#planes.push(plane);
  }

  /** A data plane went away (its worker thread ended): it is told nothing more. */
  detach(plane: PoolDataPlane): void {
    const i = this.#planes.indexOf(plane);
    if (i !== -1) this.#planes.splice(i, 1);
  }

  /** The member with this `host:port` (hostnames compared case-insensitively). */
  find(key: string): BackendControl | undefined {
    const wanted = key.toLowerCase();
    for (const backend of this.#backends) if (backend.key.toLowerCase() === wanted) return backend;
    return undefined;
  }

  // ---- reports from data planes ------------------------------------------------------

  /** AttemptReports: a refused connect takes the backend out (`unreachable`); every verdict feeds outlier detection. */
  attemptReported(slot: number, outcome: Exclude<AttemptOutcome, 'unknown'>, failed: boolean): void {
    const backend = this.#bySlot[slot];
    if (backend === undefined) return; // removed meanwhile
    if (outcome === 'unreachable') this.health.unreachable(backend);
    else if (backend.connectFailures !== 0) backend.connectFailures = 0; // it answered: the backoff starts over
    this.health.observe(backend, failed);
  }

  // ---- operator and config changes -------------------------------------------------------

  /** Adds a backend at runtime; it starts as the first health check decides, with slow start. */
  add(spec: BackendSpec): BackendControl {
    const backend = this.#newBackend(spec);
    this.#backends.push(backend);
    this.#membersChanged();
    this.health.added(backend, true);
    return backend;
  }

  /** Removes a backend: no new requests; data planes finish their attempts on it, then close its connections. */
  remove(backend: BackendControl): void {
    const i = this.#backends.indexOf(backend);
    if (i === -1) return;
    this.#backends.splice(i, 1);
    this.#retire(backend);
    this.#membersChanged();
  }

  setWeight(backend: BackendControl, weight: number): void {
    backend.configuredWeight = weight;
    backend.weight = weight;
    this.health.reweigh(backend);
    this.#membersChanged(); // weighted tables (rings, WRR) are built from weights
  }

  /**
   * The members a discovery source found, all of them (not a delta): new
   * addresses join (with slow start, after their first health check), known
   * ones keep their health, counters and connections and take the new weight
   * and terminating flag, missing ones are removed (their requests in flight
   * finish). Backends the file lists are the file's: discovery never touches
   * them, and an address both list stays the file's. An operator's drain or
   * disable of a discovered backend holds until it is gone.
   */
  setDiscovered(members: readonly DiscoveredBackend[]): void {
    const wanted = new Map<string, DiscoveredBackend>();
    for (const member of members) {
      const key = formatHostPort(member.address);
      if (!wanted.has(key)) wanted.set(key, member); // the first report of an address wins (slices may repeat one)
    }
    let membership = false;
    let state = false;
    for (const backend of [...this.#backends]) {
      if (!backend.discovered) {
        wanted.delete(backend.key);
        continue;
      }
      const member = wanted.get(backend.key);
      if (member === undefined) {
        this.#backends.splice(this.#backends.indexOf(backend), 1);
        this.#retire(backend);
        membership = true;
        continue;
      }
      wanted.delete(backend.key);
      const weight = Math.max(1, Math.round(member.weight));
      if (backend.configuredWeight !== weight) {
        backend.configuredWeight = weight;
        backend.weight = weight;
        this.health.reweigh(backend);
        membership = true;
      }
      if (member.name !== undefined) backend.name = member.name;
      if (backend.priority !== (member.priority ?? 0)) {
        backend.priority = member.priority ?? 0;
        membership = true; // may move it between the primaries' and backups' balancers
      }
      if (backend.terminating !== member.terminating) {
        backend.terminating = member.terminating;
        state = true;
        if (member.terminating && backend.adminState === 'enabled') {
          backend.drainedByDiscovery = true;
          this.setAdminState(backend, 'draining');
        } else if (!member.terminating && backend.drainedByDiscovery) {
          backend.drainedByDiscovery = false;
          if (backend.adminState === 'draining') this.setAdminState(backend, 'enabled');
        }
      }
    }
    const added: BackendControl[] = [];
    for (const [, member] of [...wanted].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const backend = this.#newBackend({ address: member.address, name: member.name, weight: Math.max(1, Math.round(member.weight)), backup: false, state: member.terminating ? 'draining' : 'enabled' });
      backend.discovered = true;
      backend.priority = member.priority ?? 0;
      backend.terminating = member.terminating;
      backend.drainedByDiscovery = member.terminating;
      backend.refresh();
      this.#backends.push(backend);
      added.push(backend);
    }
    if (added.length > 0 || membership) {
      this.#membersChanged();
      for (const backend of added) this.health.added(backend, true);
    } else if (state) {
      this.stateChanged();
    }
  }

  /** The discovered members (see {@link setDiscovered}). */
  get discovered(): readonly BackendControl[] {
    return this.#backends.filter((b) => b.discovered);
  }

  setAdminState(backend: BackendControl, state: AdminState): void {
    if (backend.adminState === state) return;
    // An operator's own choice: discovery no longer lifts a drain it did not make.
    if (state !== 'draining') backend.drainedByDiscovery = false;
    backend.adminState = state;
    if (state !== 'enabled') {
      for (const plane of this.#planes) plane.takenOut(backend.slot);
    } else {
      this.health.rejoined(backend);
    }
    this.stateChanged();
  }

  /** Recomputes availability and the pool mode, then tells the data planes; called after any state change. */
  stateChanged(): void {
    for (const backend of this.#backends) backend.refresh();
    // A priority group came up or went down: data planes rebuild their primaries' and backups' balancers.
    if (this.#assignTiers()) for (const plane of this.#planes) plane.membersChanged();
    let primaries = 0;
    let primariesUp = 0;
    let backupsUp = 0;
    let enabled = 0;
    let fallbackUp = 0;
    for (const backend of this.#backends) {
      if (backend.fallback) fallbackUp++;
      if (!backend.enabled) continue;
      enabled++;
      if (backend.backup) {
        if (backend.available) backupsUp++;
        continue;
      }
      primaries++;
      if (backend.available) primariesUp++;
    }
    this.#mode = poolMode({ primaries, primariesUp, backupsUp, enabled, fallbackUp }, this.#config.panicThresholdPercent);
    for (const plane of this.#planes) plane.availabilityChanged();
  }

  /**
   * Applies a reloaded pool config. The file is the source of truth: backends
   * it lists keep their health, counters and connections but take its weight,
   * backup flag, state and limit; backends it does not list are removed (also
   * those the admin API added).
   */
  reconfigure(config: PoolConfig): void {
    this.#config = config;
    this.#applySettings(config);
    const wanted = new Map(config.backends.map((b) => [formatHostPort(b.address), b]));
    for (const backend of [...this.#backends]) {
      const spec = wanted.get(backend.key);
      if (spec === undefined && backend.discovered) continue; // discovery's, not the file's
      if (spec === undefined) {
        this.#backends.splice(this.#backends.indexOf(backend), 1);
        this.#retire(backend);
        continue;
      }
      wanted.delete(backend.key);
      backend.discovered = false; // the file lists it now: it is the file's
      backend.name = spec.name;
      backend.configuredWeight = spec.weight;
      backend.weight = spec.weight;
      backend.backup = spec.backup;
      backend.maxConnections = spec.maxConnections ?? config.maxConnections ?? Infinity;
      if (backend.adminState !== spec.state) this.setAdminState(backend, spec.state);
    }
    const added: BackendControl[] = [];
    for (const spec of wanted.values()) {
      const backend = this.#newBackend(spec);
      this.#backends.push(backend);
      added.push(backend);
    }
    // Keep the file's order, discovered members after it: balancers that walk the list (round-robin ties) follow it.
    const order = new Map(config.backends.map((b, i) => [formatHostPort(b.address), i]));
    const rank = (b: BackendControl): number => order.get(b.key) ?? order.size;
    this.#backends.sort((a, b) => rank(a) - rank(b) || (a.discovered && b.discovered ? (a.key < b.key ? -1 : a.key > b.key ? 1 : 0) : 0));
    this.#membersChanged();
    this.health.configure(config);
    for (const backend of added) this.health.added(backend, true);
  }

  /** Stops health checks and closes the data planes' side (queued requests fail, idle connections close). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.health.stop();
    for (const plane of this.#planes) plane.close();
  }

  // ---- internals ---------------------------------------------------------------

  #applySettings(config: PoolConfig): void {
    this.#sticky = config.sticky === undefined ? undefined : new StickyCookie(config.sticky);
    this.#hashKey = algorithmHashes(config.algorithm) ? config.hashKey : undefined;
  }

  #newBackend(spec: BackendSpec): BackendControl {
    const slot = this.#allocateSlot();
    const backend = new BackendControl(
      {
        slot,
        address: spec.address,
        name: spec.name,
        weight: spec.weight,
        backup: spec.backup,
        adminState: spec.state,
        maxConnections: spec.maxConnections ?? this.#config.maxConnections ?? Infinity,
        // The CA file is read here, when the member is created (start, reload, admin add), never per connection.
        tls: spec.tls === undefined ? undefined : backendTlsOptions(spec.address, spec.tls),
      },
      this.inFlight,
      this.#planes,
    );
    this.#bySlot[slot] = backend;
    return backend;
  }

  /**
   * A slot for a new member: a removed backend's once nothing is in flight
   * on it (so no late attempt end can count against the newcomer), else a
   * new one. Slots stay few, so the in-flight table stays as small as the
   * largest membership.
   */
  #allocateSlot(): number {
    const retired = this.#retired;
    for (let i = 0; i < retired.length; i++) {
      const old = retired[i]!;
      if (this.inFlight.total(old.slot) !== 0) continue;
      retired.splice(i, 1);
      old.releaseSlot();
      return old.slot;
    }
    const slot = this.#nextSlot++;
    this.inFlight.reserve(slot + 1);
    return slot;
  }

  /** Takes a backend out of membership; the caller publishes the change. */
  #retire(backend: BackendControl): void {
    backend.removed = true;
    backend.refresh();
    this.health.removed(backend);
    this.#bySlot[backend.slot] = undefined;
    this.#retired.push(backend);
  }

  /**
   * Discovered members in priority groups (SRV): the lowest group with an
   * available member are primaries, every higher group is a backup, so the
   * pool's modes do the rest (a group that loses its last available member
   * hands over to the next one in this same call, and takes the traffic back
   * when one returns). Lower groups than that one have no available member and
   * stay primaries, so the first of them to come back is used at once. With no
   * available member at all, the lowest group are the primaries. Members in
   * one group (A/AAAA, Kubernetes) are all primaries. The file's backends keep
   * their own `backup`. Returns whether a flag changed; `available` must be fresh.
   */
  #assignTiers(): boolean {
    let first: number | undefined;
    let tiered = false;
    let lowest = Infinity;
    let lowestUp = Infinity;
    for (const backend of this.#backends) {
      if (!backend.discovered) continue;
      if (first === undefined) first = backend.priority;
      else if (backend.priority !== first) tiered = true;
      if (backend.priority < lowest) lowest = backend.priority;
      if (backend.available && backend.priority < lowestUp) lowestUp = backend.priority;
    }
    if (first === undefined) return false;
    const active = !tiered ? first : lowestUp === Infinity ? lowest : lowestUp;
    let changed = false;
    for (const backend of this.#backends) {
      if (!backend.discovered) continue;
      const backup = backend.priority > active;
      if (backend.backup === backup) continue;
      backend.backup = backup;
      changed = true;
    }
    return changed;
  }

  /** Membership, weights or settings changed: new sticky tokens, then every data plane rebuilds, then availability. */
  #membersChanged(): void {
    for (const backend of this.#backends) backend.refresh();
    this.#assignTiers();
    const sticky = this.#sticky;
    for (const backend of this.#backends) backend.stickyToken = sticky === undefined ? '' : sticky.token(this.name, backend.key);
    for (const plane of this.#planes) plane.membersChanged();
    this.stateChanged();
  }
}
