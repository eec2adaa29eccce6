/**
 * A pool's discovery sources (`pools.<name>.discovery`), run by the control
 * plane on the main thread: each kind of source (`dns`, `kubernetes`)
 * reports its whole member list, and the pool gets the lists of
 * all its sources together through `PoolControl.setDiscovered`, which keeps
 * the identity of members whose address stays and drains the ones that go.
 * Worker threads never resolve anything: they get the members with the
 * pool's published state, like any other membership change.
 *
 * Reloads: a source whose config did not change keeps running, with its
 * members; a changed one is replaced, and the old one's members stay until
 * the new one's first round of lookups ends (so a renamed service does not
 * leave the pool empty meanwhile); a removed one takes its members with it.
 */
import type { DiscoveryConfig } from '../config/types.ts';
import type { Logger } from '../observe/logger.ts';
import type { DiscoveredBackend, PoolControl } from '../pool/pool-control.ts';
import { DnsSource, type DnsClock, type DnsResolver, type DnsResult, type DnsSourceStatus } from './dns-source.ts';
import type { KubernetesSourceStatus, KubernetesSubscriber } from '../kubernetes/discovery.ts';

/** A kind of discovery source: a key of `discovery`. */
export type SourceKind = keyof DiscoveryConfig & string;

/** Options that are not part of the config file: injected by tests. */
export interface DiscoveryOptions {
  readonly logger?: Logger | undefined;
  readonly dns?: {
    readonly resolver?: ((config: NonNullable<DiscoveryConfig['dns']>) => DnsResolver) | undefined;
    readonly clock?: DnsClock | undefined;
    readonly random?: (() => number) | undefined;
  } | undefined;
  /** Runs `kubernetes` sources: the usher's one Kubernetes client and its watches (src/kubernetes/discovery.ts). */
  readonly kubernetes?: KubernetesSubscriber | undefined;
}

/** What a running source offers its pool. */
interface Source {
  /** Resolves after the source's first report (or once it is closed). */
  readonly settled: Promise<void>;
  /** When a lookup last had a good answer (ms since the epoch). */
  readonly lastSuccess: number | undefined;
  close(): void;
  status(): SourceStatus;
}

export type SourceStatus = DnsSourceStatus | KubernetesSourceStatus;

interface Running {
  readonly kind: SourceKind;
  /** The source's config as JSON: a reload that leaves it equal keeps the source. */
  readonly fingerprint: string;
  readonly source: Source;
  /** Its last report; undefined before the first. */
  members: readonly DiscoveredBackend[] | undefined;
  /** The replaced source's members, used until this one reports. */
  inherited: readonly DiscoveredBackend[];
}

/** A pool's discovery as the admin API shows it. */
export interface DiscoveryView {
  readonly sources: readonly SourceStatus[];
}

export class PoolDiscovery {
  readonly pool: string;
  readonly #control: PoolControl;
  readonly #options: DiscoveryOptions;
  readonly #running = new Map<SourceKind, Running>();
  /** Lookups by source and result, for the life of the pool (across reloads and restarted sources). */
  readonly #counts = new Map<string, number>();
  #closed = false;

  constructor(pool: string, control: PoolControl, options: DiscoveryOptions = {}) {
    this.pool = pool;
    this.#control = control;
    this.#options = options;
  }

  /** Whether the pool has a discovery source now. */
  get active(): boolean {
    return this.#running.size > 0;
  }

  /** Starts, keeps, replaces or stops sources to match `config` (a pool's `discovery`; undefined: none). */
  configure(config: DiscoveryConfig | undefined): void {
    if (this.#closed) return;
    let changed = false;
    const kinds: SourceKind[] = ['dns', 'kubernetes'];
    for (const kind of kinds) {
      const wanted = config?.[kind];
      const running = this.#running.get(kind);
      const fingerprint = wanted === undefined ? undefined : JSON.stringify(wanted);
      if (running !== undefined && running.fingerprint === fingerprint) continue;
      if (running !== undefined) {
        running.source.close();
        this.#running.delete(kind);
        changed = true;
      }
      if (wanted === undefined || fingerprint === undefined) continue;
      let entry: Running | undefined;
      // A source reports from a timer, never from its constructor: `entry` is set by then.
      const source = this.#start(kind, wanted, (members) => {
        if (entry === undefined || this.#running.get(kind) !== entry) return; // replaced or stopped meanwhile
        entry.members = members;
        entry.inherited = [];
        this.#publish();
      });
      entry = { kind, fingerprint, source, members: undefined, inherited: running === undefined ? [] : (running.members ?? running.inherited) };
      this.#running.set(kind, entry);
    }
    if (changed) this.#publish();
  }

  /**
   * Gives the pool the sources' last members again: after a reload changed
   * the file's backends, an address the file no longer lists but a source
   * found must come back as discovered (the file had taken it over).
   */
  republish(): void {
    if (!this.#closed && this.#running.size > 0) this.#publish();
  }

  /** Resolves once every source has finished its first round of lookups (or was stopped). */
  ready(): Promise<void> {
    return Promise.all([...this.#running.values()].map((running) => running.source.settled)).then(() => undefined);
  }

  /** Lookups so far by `source` and `result` (`usher_discovery_resolutions_total`). */
  counts(): ReadonlyMap<string, number> {
    return this.#counts;
  }

  /** The sources and their state; undefined when the pool discovers nothing. */
  view(): DiscoveryView | undefined {
    if (this.#running.size === 0) return undefined;
    return { sources: [...this.#running.values()].map((running) => running.source.status()) };
  }

  /** Per source: members it gives the pool now (found, or kept from the source it replaced), and its last good answer (ms since the epoch). */
  sources(): { readonly kind: SourceKind; readonly members: number; readonly lastSuccess: number | undefined }[] {
    return [...this.#running.values()].map((running) => ({ kind: running.kind, members: (running.members ?? running.inherited).length, lastSuccess: running.source.lastSuccess }));
  }

  /** Stops every source; the pool keeps its members (it is closing). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const running of this.#running.values()) running.source.close();
    this.#running.clear();
  }

  #start(kind: SourceKind, config: NonNullable<DiscoveryConfig[SourceKind]>, report: (members: readonly DiscoveredBackend[]) => void): Source {
    switch (kind) {
      case 'dns': {
        const dns = this.#options.dns;
        return new DnsSource(config as NonNullable<DiscoveryConfig['dns']>, {
          pool: this.pool,
          logger: this.#options.logger,
          report,
          count: (result: DnsResult) => this.#count('dns', result),
          resolver: dns?.resolver,
          clock: dns?.clock,
          random: dns?.random,
        });
      }
      case 'kubernetes': {
        const hub = this.#options.kubernetes;
        if (hub === undefined) throw new Error(`pool ${this.pool}: discovery.kubernetes needs the usher's Kubernetes client (Usher passes it; an embedder building pools passes poolOptions.discovery.kubernetes)`);
        return hub.subscribe(this.pool, config as NonNullable<DiscoveryConfig['kubernetes']>, report);
      }
    }
  }

  #count(source: SourceKind, result: string): void {
    const key = `${source} ${result}`;
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + 1);
  }

  /** Every source's members together, to the pool (the first report of an address wins). */
  #publish(): void {
    const all: DiscoveredBackend[] = [];
    for (const running of this.#running.values()) all.push(...(running.members ?? running.inherited));
    this.#control.setDiscovered(all);
  }
}
