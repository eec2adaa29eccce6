/**
 * The instance registry: every usher with a `redis` section writes an entry
 * about itself every `heartbeat` (1 s by default) with a TTL of
 * `peerTimeout` (5 s), and reads everyone's (src/peers/scripts.ts for the
 * keys and why a set of ids, not SCAN). Runs on the control plane only (the
 * main thread), never per worker: one entry and one heartbeat per process.
 *
 * **Ages on Redis's clock.** An entry's age is its TTL minus its remaining
 * PTTL, both measured by Redis, so instances whose clocks disagree still
 * agree on who was seen when.
 *
 * **Redis away.** A heartbeat that fails keeps the last list (with the time
 * it was read, so its age shows), logs once per outage (and once when it is
 * back), and the next heartbeat tries again; the connection reconnects by
 * itself. Nothing on the request path waits for the registry.
 *
 * **`liveInstances()`** is what the rate limiter's Redis fallback divides a
 * limit by: the instances in the last list read (this one included), at
 * least 1; while Redis is away it stays the last value read.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../observe/logger.ts';
import type { RedisConnection } from '../redis/options.ts';
import { within } from './link.ts';
import type { PeerScripts } from './scripts.ts';

/** What an instance writes about itself. */
export interface PeerEntry {
  readonly instance: string;
  readonly hostname: string;
  readonly pid: number;
  /** usher's version (package.json). */
  readonly version: string;
  /** {@link configHash} of its config. */
  readonly configHash: string;
  /** Its admin API (`http://host:port`), or null without one. */
  readonly admin: string | null;
  /** When it started (ISO 8601). */
  readonly startedAt: string;
  /** Random per process: tells two processes that were given the same `instance` apart. */
  readonly boot: string;
  /** The TTL it writes its entry with, ms (the age is this minus the remaining PTTL). */
  readonly ttlMs: number;
}

/** An instance as the registry lists it. */
export interface PeerView {
  readonly instance: string;
  readonly hostname: string;
  readonly pid: number;
  readonly version: string;
  readonly configHash: string;
  readonly admin: string | null;
  readonly startedAt: string;
  /** When its entry was last written (ISO 8601, by this instance's clock). */
  readonly lastSeen: string;
  /** Since then, ms: at the last listing, plus the time since that listing. */
  readonly ageMs: number;
  /** This instance. */
  readonly self: boolean;
  /** Its config hash equals this instance's. */
  readonly sameConfig: boolean;
}

/** The registry's state for the admin API, `usher status` and the dashboard. */
export interface RegistryView {
  readonly instance: string;
  readonly configHash: string;
  /** The last heartbeat reached Redis. */
  readonly connected: boolean;
  /** When the list was last read (ISO 8601), or null if never. */
  readonly listedAt: string | null;
  /** ms since then, or null. */
  readonly listAgeMs: number | null;
  /** Why the last heartbeat failed (no secrets), or null. */
  readonly error: string | null;
  /** Live instances read in the last listing, this one included, ≥ 1. */
  readonly liveInstances: number;
  /** The live instances do not all have one config hash. */
  readonly configMismatch: boolean;
  /** Another process writes entries under this instance's id. */
  readonly duplicateInstance: boolean;
  /** Every live instance, this one first, then by id. */
  readonly peers: readonly PeerView[];
}

export interface RegistryOptions {
  readonly connection: RedisConnection<PeerScripts>;
  readonly keyPrefix: string;
  readonly heartbeatMs: number;
  readonly peerTimeoutMs: number;
  /** This instance's entry as it is now (the config hash and admin address change with reloads). */
  readonly self: () => Omit<PeerEntry, 'boot' | 'ttlMs'>;
  readonly logger: Logger;
  /** A failed heartbeat's message as logged and shown (secrets removed, the connection's cause added). */
  readonly describeError?: (message: string) => string;
  /** Epoch ms (tests). */
  readonly now?: () => number;
}

/** A listed entry and how old it was when listed. */
interface Listed {
  readonly entry: PeerEntry;
  readonly ageMs: number;
}

export class PeerRegistry {
  readonly #options: RegistryOptions;
  readonly #now: () => number;
  readonly #boot = randomBytes(8).toString('hex');
  readonly #indexKey: string;
  #listed: readonly Listed[] = [];
  #listedAt: number | undefined;
  #connected = false;
  #error: string | undefined;
  /** A failure was logged and recovery was not yet. */
  #failing = false;
  #duplicate = false;
  #timer: NodeJS.Timeout | undefined;
  #beat: Promise<void> | undefined;
  #stopped = false;
  /** Heartbeats that reached Redis (tests). */
  beats = 0;

  constructor(options: RegistryOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#indexKey = `{${options.keyPrefix}:peers}`;
  }

  /** This instance's id. */
  get instance(): string {
    return this.#options.self().instance;
  }

  /** `{<keyPrefix>:peers}:<instance>`. */
  entryKey(instance: string): string {
    return `${this.#indexKey}:${instance}`;
  }

  /** Heartbeats every `heartbeatMs`, the first now. */
  start(): void {
    if (this.#timer !== undefined || this.#stopped) return;
    this.#timer = setInterval(() => void this.beat(), this.#options.heartbeatMs);
    this.#timer.unref();
    void this.beat();
  }

  /** One heartbeat: write this entry, read everyone's. Never rejects; a heartbeat still running is joined, not doubled. */
  beat(): Promise<void> {
    this.#beat ??= this.#heartbeat().finally(() => (this.#beat = undefined));
    return this.#beat;
  }

  async #heartbeat(): Promise<void> {
    if (this.#stopped) return;
    const { connection, peerTimeoutMs } = this.#options;
    const self: PeerEntry = { ...this.#options.self(), boot: this.#boot, ttlMs: peerTimeoutMs };
    try {
      const ids = await connection.peersBeat(this.#indexKey, this.entryKey(self.instance), self.instance, JSON.stringify(self), peerTimeoutMs);
      const reply = await connection.peersList(this.#indexKey, ids.map((id) => ({ key: this.entryKey(String(id)), id: String(id) })));
      const listed: Listed[] = [];
      let duplicate = false;
      for (let i = 0; i + 1 < reply.length; i += 2) {
        const entry = parseEntry(reply[i]);
        if (entry === undefined) continue; // written by something else under our prefix: not an instance
        if (entry.instance === self.instance && entry.boot !== self.boot) {
          duplicate = true;
          continue;
        }
        listed.push({ entry, ageMs: Math.max(0, entry.ttlMs - Number(reply[i + 1])) });
      }
      if (!listed.some((l) => l.entry.instance === self.instance)) listed.push({ entry: self, ageMs: 0 });
      this.#listed = listed;
      this.#listedAt = this.#now();
      this.#connected = true;
      this.#error = undefined;
      this.beats++;
      if (duplicate && !this.#duplicate) this.#options.logger.warn({ instance: self.instance }, 'another usher process writes peer entries under this instance id: give each instance its own redis.instance');
      this.#duplicate = duplicate;
      if (this.#failing) {
        this.#failing = false;
        this.#options.logger.info({ peers: listed.length }, 'peer registry: redis reachable again');
      }
    } catch (error) {
      this.#connected = false;
      const message = error instanceof Error ? error.message || error.name : String(error);
      this.#error = this.#options.describeError?.(message) ?? message;
      if (!this.#failing) {
        this.#failing = true;
        // Once per outage: the heartbeat keeps trying every second without filling the log.
        this.#options.logger.warn({ error: this.#error, peers: this.#listed.length }, 'peer registry: redis unreachable; keeping the last known peers until it is back');
      }
    }
  }

  /** Live instances in the last listing, this one included; at least 1 (also before the first listing and while Redis is away: the last value). */
  liveInstances(): number {
    return Math.max(1, this.#listed.length);
  }

  /** The registry as of now: the last listing, its age, this instance first. */
  view(): RegistryView {
    const self = this.#options.self();
    const now = this.#now();
    const since = this.#listedAt === undefined ? 0 : now - this.#listedAt;
    const peers = this.#listed
      .map(({ entry, ageMs }): PeerView => {
        const age = ageMs + since;
        const mine = entry.instance === self.instance;
        // This instance's own fields are read now (a reload may have changed its hash since the last listing).
        const e = mine ? { ...entry, ...self } : entry;
        return { instance: e.instance, hostname: e.hostname, pid: e.pid, version: e.version, configHash: e.configHash, admin: e.admin, startedAt: e.startedAt, lastSeen: new Date(now - age).toISOString(), ageMs: age, self: mine, sameConfig: e.configHash === self.configHash };
      })
      .sort((a, b) => (a.self !== b.self ? (a.self ? -1 : 1) : a.instance < b.instance ? -1 : a.instance > b.instance ? 1 : 0));
    return {
      instance: self.instance,
      configHash: self.configHash,
      connected: this.#connected,
      listedAt: this.#listedAt === undefined ? null : new Date(this.#listedAt).toISOString(),
      listAgeMs: this.#listedAt === undefined ? null : since,
      error: this.#error ?? null,
      liveInstances: this.liveInstances(),
      configMismatch: new Set(peers.map((p) => p.configHash)).size > 1,
      duplicateInstance: this.#duplicate,
      peers,
    };
  }

  /** Whether the last heartbeat reached Redis. */
  get connected(): boolean {
    return this.#connected;
  }

  /**
   * Stops the heartbeat and deletes this instance's entry (and its id), so
   * peers drop it at once rather than after `peerTimeout`; waits at most
   * `timeoutMs` (Redis may be away: the entry then expires by itself).
   */
  async stop(timeoutMs = 1000): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#timer);
    const started = this.#now();
    if (this.#beat !== undefined) await within(this.#beat.then(() => true), timeoutMs);
    const { connection } = this.#options;
    const instance = this.instance;
    const removal = Promise.all([connection.del(this.entryKey(instance)), connection.sRem(this.#indexKey, instance)]).then(
      () => true,
      () => false,
    );
    await within(removal, Math.max(0, timeoutMs - (this.#now() - started)));
  }
}

/** An entry read from Redis, or undefined when it is not one (another program's key, a future format). */
export function parseEntry(text: unknown): PeerEntry | undefined {
  if (typeof text !== 'string') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  const strings = ['instance', 'hostname', 'version', 'configHash', 'startedAt', 'boot'] as const;
  if (!strings.every((key) => typeof v[key] === 'string')) return undefined;
  if (typeof v['pid'] !== 'number' || typeof v['ttlMs'] !== 'number' || !(v['ttlMs'] > 0)) return undefined;
  if (v['admin'] !== null && typeof v['admin'] !== 'string') return undefined;
  return {
    instance: v['instance'] as string,
    hostname: v['hostname'] as string,
    pid: v['pid'],
    version: v['version'] as string,
    configHash: v['configHash'] as string,
    admin: v['admin'] as string | null,
    startedAt: v['startedAt'] as string,
    boot: v['boot'] as string,
    ttlMs: v['ttlMs'],
  };
}
