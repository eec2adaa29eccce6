/**
 * DNS discovery for one pool (`discovery.dns`): a resolver loop on the main
 * thread that turns A/AAAA or SRV answers into the pool's discovered members.
 *
 * - One `dns.promises.Resolver` per source (its own servers when the config
 *   names `resolvers`, the system's otherwise). Never `dns.lookup`: it gives
 *   no TTL and runs on the libuv threadpool, which every worker thread shares
 *   with crypto, zlib and the file system.
 * - Each record set (the SRV records of the service; the A and the AAAA
 *   records of each name) has its own schedule: after an answer, at its TTL
 *   clamped to 1-300 s (or the fixed `refresh`; SRV answers carry no TTL in
 *   Node, so SRV records are asked every `refresh`, 30 s by default).
 * - SERVFAIL, REFUSED, a timeout or any other failure keeps the last good
 *   answer and asks again after a backoff (1 s doubling to 30 s, never later
 *   than `refresh`). NXDOMAIN and NODATA keep the last answer for `hold`, then
 *   drop it. Logs go out when a record set changes between answering,
 *   failing and having no records, not per attempt.
 * - Every lookup is counted by result; the members are reported whole to
 *   the pool (`PoolControl.setDiscovered`) when they change.
 */
import { promises as dnsPromises } from 'node:dns';
import { formatHostPort } from '../config/hostport.ts';
import type { DnsDiscoveryConfig } from '../config/types.ts';
import type { Logger } from '../observe/logger.ts';
import type { DiscoveredBackend } from '../pool/pool-control.ts';

/** What one lookup came to: a metrics label. */
export type DnsResult = 'ok' | 'nxdomain' | 'nodata' | 'servfail' | 'refused' | 'timeout' | 'error';
export const DNS_RESULTS: readonly DnsResult[] = ['ok', 'nxdomain', 'nodata', 'servfail', 'refused', 'timeout', 'error'];

/** The part of `dns.promises.Resolver` a source uses (tests substitute it). */
export interface DnsResolver {
  resolve4(name: string, options: { ttl: true }): Promise<{ address: string; ttl: number }[]>;
  resolve6(name: string, options: { ttl: true }): Promise<{ address: string; ttl: number }[]>;
  resolveSrv(name: string): Promise<{ name: string; port: number; priority: number; weight: number }[]>;
  cancel(): void;
}

/** Time and timers, injectable for tests. */
export interface DnsClock {
  /** Milliseconds since the epoch (Date.now). */
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Shortest and longest time an answer's TTL may set before the next lookup. */
export const MIN_TTL_MS = 1000;
export const MAX_TTL_MS = 300_000;
/** Time between SRV lookups without `refresh`: Node's resolveSrv gives no TTL. */
export const SRV_REFRESH_MS = 30_000;
/** Retries after a failure: 1 s, doubling, at most 30 s. */
export const BACKOFF_MS = 1000;
export const MAX_BACKOFF_MS = 30_000;
/** SRV weights (0-65535) are scaled down to the pool's weights (1-1000). */
const MAX_WEIGHT = 1000;

export interface DnsSourceOptions {
  readonly pool: string;
  readonly logger?: Logger | undefined;
  /** The members, whole, each time they change (and once after the first round of lookups). */
  readonly report: (members: readonly DiscoveredBackend[]) => void;
  /** One call per lookup, with its result. */
  readonly count?: ((result: DnsResult) => void) | undefined;
  /** Makes the resolver; default `new dns.promises.Resolver` with the config's servers and timeouts. */
  readonly resolver?: ((config: DnsDiscoveryConfig) => DnsResolver) | undefined;
  readonly clock?: DnsClock | undefined;
  /** Jitter of retries (±10 %); default Math.random. */
  readonly random?: (() => number) | undefined;
}

type RecordType = 'A' | 'AAAA' | 'SRV';
type ResultClass = 'ok' | 'negative' | 'failure';

interface SrvAnswer {
  readonly target: string;
  readonly port: number;
  readonly priority: number;
  readonly weight: number;
}

/** One name and record type, looked up on its own schedule. */
interface RecordSet {
  readonly type: RecordType;
  readonly name: string;
  /** The last good answer (addresses, or SRV records); undefined before one, or once `hold` dropped it. */
  answer: readonly string[] | readonly SrvAnswer[] | undefined;
  /** Smallest TTL of the last good answer, ms (A/AAAA only). */
  ttlMs: number | undefined;
  okAt: number | undefined;
  /** First NXDOMAIN/NODATA since the last good answer. */
  negativeSince: number | undefined;
  /** Lookups in a row that did not answer. */
  failures: number;
  result: DnsResult | undefined;
  error: string | undefined;
  dueAt: number;
}

/** A record set as the admin API shows it. */
export interface DnsRecordStatus {
  readonly type: RecordType;
  readonly name: string;
  readonly result: DnsResult | null;
  readonly error: string | null;
  /** Addresses, or SRV records as `priority weight port target`. */
  readonly answer: readonly string[];
  readonly ttlSeconds: number | null;
  readonly lastAnswerAt: string | null;
  readonly failures: number;
  /** When a held answer will be dropped (NXDOMAIN/NODATA), if one is held. */
  readonly holdUntil: string | null;
  readonly nextLookupInMs: number;
}

/** A DNS source as the admin API and `usher status` show it. */
export interface DnsSourceStatus {
  readonly source: 'dns';
  /** `A/AAAA api.internal port 8080` or `SRV _http._tcp.api.internal`. */
  readonly query: string;
  /** `resolving` (no round finished yet), `ok`, `failing` (keeping the last answer), `holding` (NXDOMAIN/NODATA within `hold`), `empty`. */
  readonly state: 'resolving' | 'ok' | 'failing' | 'holding' | 'empty';
  readonly members: number;
  readonly lastSuccessAt: string | null;
  readonly lastSuccessAgeMs: number | null;
  readonly lastError: string | null;
  readonly nextLookupInMs: number | null;
  readonly records: readonly DnsRecordStatus[];
}

const systemClock: DnsClock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** The resolver a source uses: its own servers, one retry within `timeoutMs` (the source also cancels at `timeoutMs`). */
export function defaultResolver(config: DnsDiscoveryConfig): DnsResolver {
  const attempt = Math.max(50, Math.round(config.timeoutMs / 3));
  const resolver = new dnsPromises.Resolver({ timeout: attempt, tries: 2, maxTimeout: Math.max(attempt, config.timeoutMs) });
  if (config.resolvers !== undefined) resolver.setServers([...config.resolvers]);
  return resolver;
}

/** `ENOTFOUND` → nxdomain, …: c-ares's codes as Node gives them. */
export function classify(code: string | undefined): DnsResult {
  switch (code) {
    case 'ENOTFOUND':
      return 'nxdomain';
    case 'ENODATA':
      return 'nodata';
    case 'ESERVFAIL':
      return 'servfail';
    case 'EREFUSED':
      return 'refused';
    case 'ETIMEOUT':
    case 'ECANCELLED':
      return 'timeout';
    default:
      return 'error';
  }
}

function classOf(result: DnsResult | undefined): ResultClass | undefined {
  if (result === undefined) return undefined;
  if (result === 'ok') return 'ok';
  return result === 'nxdomain' || result === 'nodata' ? 'negative' : 'failure';
}

/** Time until the next lookup after a good answer. */
export function answerInterval(type: RecordType, ttlMs: number | undefined, refreshMs: number | undefined): number {
  if (refreshMs !== undefined) return refreshMs;
  if (type === 'SRV' || ttlMs === undefined) return SRV_REFRESH_MS;
  return Math.min(MAX_TTL_MS, Math.max(MIN_TTL_MS, ttlMs));
}

/** Time until the next lookup after `failures` lookups in a row that did not answer (jitter in [0, 1)). */
export function retryInterval(failures: number, refreshMs: number | undefined, jitter: number): number {
  const base = Math.min(MAX_BACKOFF_MS, BACKOFF_MS * 2 ** Math.min(20, failures - 1));
  const jittered = Math.round(base * (0.9 + 0.2 * jitter));
  return refreshMs === undefined ? jittered : Math.min(jittered, refreshMs);
}

/** One pool's DNS discovery; starts looking up at once. */
export class DnsSource {
  readonly config: DnsDiscoveryConfig;
  readonly #options: DnsSourceOptions;
  readonly #clock: DnsClock;
  readonly #random: () => number;
  readonly #resolver: DnsResolver;
  readonly #logger: Logger | undefined;
  /** The SRV record set (SRV mode). */
  readonly #srv: RecordSet | undefined;
  /** A and AAAA record sets by `type name`: of `name`, or of the SRV targets. */
  readonly #addresses = new Map<string, RecordSet>();
  #timer: unknown;
  #running = false;
  #closed = false;
  #members: readonly DiscoveredBackend[] = [];
  #reported: string | undefined;
  #settled = false;
  readonly settled: Promise<void>;
  #settle!: () => void;

  constructor(config: DnsDiscoveryConfig, options: DnsSourceOptions) {
    this.config = config;
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
    this.#logger = options.logger;
    this.#resolver = (options.resolver ?? defaultResolver)(config);
    this.settled = new Promise<void>((resolve) => (this.#settle = resolve));
    const now = this.#clock.now();
    if (config.type === 'srv') this.#srv = newSet('SRV', config.name, now);
    else for (const type of this.#families()) this.#addresses.set(`${type} ${config.name}`, newSet(type, config.name, now));
    this.#wake(0);
  }

  /** When a lookup last had a good answer (ms since the epoch). */
  get lastSuccess(): number | undefined {
    let last: number | undefined;
    for (const set of this.#sets()) if (set.okAt !== undefined && (last === undefined || set.okAt > last)) last = set.okAt;
    return last;
  }

  /** The members of the last report. */
  get members(): readonly DiscoveredBackend[] {
    return this.#members;
  }

  /** When the next lookup is due (ms since the epoch); undefined once closed. */
  get nextLookupAt(): number | undefined {
    if (this.#closed) return undefined;
    let next = Infinity;
    for (const set of this.#sets()) next = Math.min(next, set.dueAt);
    return next === Infinity ? undefined : next;
  }

  /** Stops looking up; nothing more is reported. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#resolver.cancel();
    this.#settle();
  }

  status(): DnsSourceStatus {
    const now = this.#clock.now();
    const sets = [...this.#sets()];
    const lastSuccess = this.lastSuccess;
    let lastError: string | undefined;
    for (const set of sets) {
      if (set.result !== 'ok' && set.error !== undefined && !(set.result === 'nodata' && this.#hasSibling(set))) lastError = `${set.type} ${set.name}: ${set.error}`;
    }
    const next = this.nextLookupAt;
    const config = this.config;
    return {
      source: 'dns',
      query: config.type === 'srv' ? `SRV ${config.name}` : `${familyLabel(config.family)} ${config.name} port ${config.port}`,
      state: this.#state(sets),
      members: this.#members.length,
      lastSuccessAt: lastSuccess === undefined ? null : new Date(lastSuccess).toISOString(),
      lastSuccessAgeMs: lastSuccess === undefined ? null : Math.max(0, now - lastSuccess),
      lastError: lastError ?? null,
      nextLookupInMs: next === undefined ? null : Math.max(0, next - now),
      records: sets.map((set) => ({
        type: set.type,
        name: set.name,
        result: set.result ?? null,
        error: set.error ?? null,
        answer: set.answer === undefined ? [] : set.type === 'SRV' ? (set.answer as readonly SrvAnswer[]).map((r) => `${r.priority} ${r.weight} ${r.port} ${r.target}`) : [...(set.answer as readonly string[])],
        ttlSeconds: set.ttlMs === undefined ? null : set.ttlMs / 1000,
        lastAnswerAt: set.okAt === undefined ? null : new Date(set.okAt).toISOString(),
        failures: set.failures,
        holdUntil: set.answer !== undefined && set.negativeSince !== undefined ? new Date(set.negativeSince + config.holdMs).toISOString() : null,
        nextLookupInMs: Math.max(0, set.dueAt - now),
      })),
    };
  }

  // ---- the loop ---------------------------------------------------------------

  #families(): ('A' | 'AAAA')[] {
    const family = this.config.family;
    return family === 'ipv4' ? ['A'] : family === 'ipv6' ? ['AAAA'] : ['A', 'AAAA'];
  }

  *#sets(): Iterable<RecordSet> {
    if (this.#srv !== undefined) yield this.#srv;
    yield* this.#addresses.values();
  }

  #wake(delayMs: number): void {
    if (this.#closed) return;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      void this.#tick();
    }, Math.max(0, delayMs));
  }

  /** Looks up what is due (the SRV records first, then the addresses of their targets), reports, sleeps until the next is due. */
  async #tick(): Promise<void> {
    if (this.#closed || this.#running) return;
    this.#running = true;
    let floor = 0;
    try {
      const srv = this.#srv;
      if (srv !== undefined) {
        if (srv.dueAt <= this.#clock.now()) await this.#lookupAll([srv]);
        if (this.#closed) return;
        this.#followTargets(srv);
      }
      const now = this.#clock.now();
      const due = [...this.#addresses.values()].filter((set) => set.dueAt <= now);
      if (due.length > 0) await this.#lookupAll(due);
      if (this.#closed) return;
      this.#publish();
    } catch (err) {
      // Nothing above should throw; if it does, the loop must go on.
      this.#logger?.error({ err, pool: this.#options.pool }, 'dns discovery: unexpected error; retrying');
      floor = BACKOFF_MS; // never a busy loop
    } finally {
      this.#running = false;
      const next = this.nextLookupAt;
      if (next !== undefined) this.#wake(Math.max(floor, next - this.#clock.now()));
    }
  }

  /** SRV mode: one A/AAAA record set per target of the SRV answer kept now; targets no longer named are forgotten. */
  #followTargets(srv: RecordSet): void {
    const wanted = new Set<string>();
    const now = this.#clock.now();
    for (const record of (srv.answer ?? []) as readonly SrvAnswer[]) {
      for (const type of this.#families()) {
        const key = `${type} ${record.target}`;
        wanted.add(key);
        if (!this.#addresses.has(key)) this.#addresses.set(key, newSet(type, record.target, now));
      }
    }
    for (const key of [...this.#addresses.keys()]) if (!wanted.has(key)) this.#addresses.delete(key);
  }

  /** Looks up `sets` at once, cancelling what has no answer after `timeout`. */
  async #lookupAll(sets: readonly RecordSet[]): Promise<void> {
    let timedOut = false;
    const deadline = this.#clock.setTimeout(() => {
      timedOut = true;
      this.#resolver.cancel();
    }, this.config.timeoutMs);
    try {
      const outcomes = await Promise.all(sets.map((set) => this.#lookup(set)));
      if (this.#closed) return;
      const now = this.#clock.now();
      sets.forEach((set, i) => this.#apply(set, outcomes[i]!, now, timedOut));
    } finally {
      this.#clock.clearTimeout(deadline);
    }
  }

  async #lookup(set: RecordSet): Promise<{ result: DnsResult; error?: string; answer?: readonly string[] | readonly SrvAnswer[]; ttlMs?: number }> {
    try {
      if (set.type === 'SRV') {
        const records = (await this.#resolver.resolveSrv(set.name))
          // A target of "." means "no service here" (RFC 2782).
          .filter((r) => r.name !== '' && r.name !== '.')
          .map((r) => ({ target: r.name.replace(/\.$/, '').toLowerCase(), port: r.port, priority: r.priority, weight: r.weight }));
        if (records.length === 0) return { result: 'nodata', error: 'ENODATA' };
        records.sort((a, b) => a.priority - b.priority || (a.target < b.target ? -1 : a.target > b.target ? 1 : a.port - b.port));
        return { result: 'ok', answer: records };
      }
      const records = set.type === 'A' ? await this.#resolver.resolve4(set.name, { ttl: true }) : await this.#resolver.resolve6(set.name, { ttl: true });
      if (records.length === 0) return { result: 'nodata', error: 'ENODATA' };
      const addresses = [...new Set(records.map((r) => r.address))].sort();
      const ttlMs = Math.min(...records.map((r) => r.ttl)) * 1000;
      return { result: 'ok', answer: addresses, ttlMs };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return { result: classify(code), error: code ?? (err as Error).message };
    }
  }

  #apply(set: RecordSet, outcome: { result: DnsResult; error?: string; answer?: readonly string[] | readonly SrvAnswer[]; ttlMs?: number }, now: number, timedOut: boolean): void {
    const { config } = this;
    let { result } = outcome;
    let error = outcome.error;
    if (timedOut && result === 'timeout') error = 'ETIMEOUT';
    this.#options.count?.(result);
    const before = classOf(set.result);
    const after = classOf(result);
    const log = this.#logger;
    const where = { pool: this.#options.pool, source: 'dns', type: set.type, name: set.name };
    if (result === 'ok') {
      if (before !== undefined && before !== 'ok') log?.info({ ...where, after: set.failures }, 'dns discovery: the name answers again');
      set.answer = outcome.answer;
      set.ttlMs = outcome.ttlMs;
      set.okAt = now;
      set.negativeSince = undefined;
      set.failures = 0;
      set.result = result;
      set.error = undefined;
      set.dueAt = now + answerInterval(set.type, outcome.ttlMs, config.refreshMs);
      return;
    }
    set.failures++;
    set.result = result;
    set.error = error;
    let next = retryInterval(set.failures, config.refreshMs, this.#random());
    if (after === 'negative') {
      set.negativeSince ??= now;
      const holdEnds = set.negativeSince + config.holdMs;
      if (set.answer !== undefined && now >= holdEnds) {
        set.answer = undefined;
        set.ttlMs = undefined;
        log?.warn({ ...where, result, holdMs: config.holdMs }, `dns discovery: ${result} for longer than hold: the name's members are removed`);
      } else if (set.answer !== undefined) {
        next = Math.min(next, holdEnds - now);
        if (before !== 'negative') log?.warn({ ...where, result, holdMs: config.holdMs }, `dns discovery: ${result}; keeping the last answer for hold`);
      } else if (before !== 'negative' && !this.#hasSibling(set)) {
        log?.warn({ ...where, result }, `dns discovery: ${result}: the name has no records`);
      }
    } else if (before !== 'failure') {
      log?.warn({ ...where, result, error, kept: set.answer?.length ?? 0 }, 'dns discovery: lookup failing; keeping the last answer and retrying with backoff');
    }
    set.dueAt = now + Math.max(0, next);
  }

  /** An A or AAAA set whose name has addresses of the other family: its NODATA is normal (`family: any`). */
  #hasSibling(set: RecordSet): boolean {
    if (set.type === 'SRV') return false;
    const other = this.#addresses.get(`${set.type === 'A' ? 'AAAA' : 'A'} ${set.name}`);
    return other?.answer !== undefined;
  }

  #state(sets: readonly RecordSet[]): DnsSourceStatus['state'] {
    if (!this.#settled) return 'resolving';
    if (sets.some((set) => classOf(set.result) === 'failure')) return 'failing';
    if (sets.some((set) => set.answer !== undefined && set.negativeSince !== undefined)) return 'holding';
    return this.#members.length === 0 ? 'empty' : 'ok';
  }

  /** The members the kept answers make; reported when they changed, and once every record set has been asked. */
  #publish(): void {
    if (!this.#settled) {
      for (const set of this.#sets()) if (set.result === undefined) return;
      this.#settled = true;
    }
    const members = this.#compute();
    const key = members.map((m) => `${m.address.host} ${m.address.port} ${m.weight} ${m.priority ?? 0}`).join(',');
    if (key === this.#reported) return;
    const previous = new Set(this.#members.map((m) => memberKey(m)));
    const current = new Set(members.map((m) => memberKey(m)));
    const added = [...current].filter((k) => !previous.has(k));
    const removed = [...previous].filter((k) => !current.has(k));
    this.#reported = key;
    this.#members = members;
    if (added.length > 0 || removed.length > 0) this.#logger?.info({ pool: this.#options.pool, source: 'dns', members: members.length, added, removed }, 'dns discovery: members changed');
    this.#options.report(members);
    this.#settle();
  }

  #compute(): DiscoveredBackend[] {
    const config = this.config;
    const families = this.#families();
    const addressesOf = (name: string): string[] => families.flatMap((type) => (this.#addresses.get(`${type} ${name}`)?.answer ?? []) as readonly string[]);
    if (config.type === 'address') {
      return addressesOf(config.name).map((host) => ({ address: { host, port: config.port }, weight: 1, terminating: false }));
    }
    const records = (this.#srv?.answer ?? []) as readonly SrvAnswer[];
    const heaviest = Math.max(0, ...records.map((r) => r.weight));
    const scale = heaviest > MAX_WEIGHT ? MAX_WEIGHT / heaviest : 1;
    const members: DiscoveredBackend[] = [];
    const seen = new Set<string>();
    for (const record of records) {
      for (const host of addressesOf(record.target)) {
        const key = `${host} ${record.port}`;
        if (seen.has(key)) continue; // the lowest priority (records are sorted) wins
        seen.add(key);
        members.push({ address: { host, port: record.port }, weight: Math.max(1, Math.round(record.weight * scale)), terminating: false, name: record.target, priority: record.priority });
      }
    }
    return members;
  }
}

function newSet(type: RecordType, name: string, now: number): RecordSet {
  return { type, name, answer: undefined, ttlMs: undefined, okAt: undefined, negativeSince: undefined, failures: 0, result: undefined, error: undefined, dueAt: now };
}

function memberKey(member: DiscoveredBackend): string {
  return formatHostPort(member.address);
}

function familyLabel(family: DnsDiscoveryConfig['family']): string {
  return family === 'ipv4' ? 'A' : family === 'ipv6' ? 'AAAA' : 'A/AAAA';
}
