/**
 * The event bus between usher instances: Redis pub/sub on
 * `<keyPrefix>:events`, read on a connection of its own (a connection in
 * subscribe mode can run nothing else), written with the registry's.
 *
 * - **What travels.** Cache purges (the admin API's purge body), always; and,
 *   with `redis.shareAdminActions: true`, backend drains, disables and
 *   enables. The instance the admin call reached applies it and publishes it;
 *   every other instance applies it on receipt, in the order received.
 * - **Own messages.** Each message names the instance that sent it; an
 *   instance ignores its own (it applied it already).
 * - **Untrusted input.** Anything on the channel is parsed and checked: a
 *   message that is not JSON, has an unknown version or type, or misses a
 *   field is counted (`usher_peers_messages_rejected_total{reason}`) and
 *   logged (at most once a second), never applied, never thrown.
 * - **At most once.** Pub/sub keeps nothing: an instance whose subscriber is
 *   disconnected when a purge is published misses it (docs/peers.md). The
 *   publisher learns how many subscriptions received it.
 */
import { randomBytes } from 'node:crypto';
import type { AdminState } from '../config/types.ts';
import type { Logger } from '../observe/logger.ts';
import type { RedisLink } from './link.ts';

/** The message format's version; a receiver rejects others (`reason="version"`). */
export const BUS_VERSION = 1;
/** Longest message accepted: the admin API's bodies are at most 64 KiB. */
export const MAX_MESSAGE_BYTES = 64 * 1024;
/** How often a subscriber that is not subscribed yet (Redis away) tries again, ms. */
const SUBSCRIBE_RETRY_MS = 200;

export const MESSAGE_TYPES = ['cache.purge', 'backend.state'] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];
export const REJECT_REASONS = ['malformed', 'version', 'not_shared', 'unknown_backend', 'failed'] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];
const ADMIN_STATES: readonly AdminState[] = ['enabled', 'draining', 'disabled'];

interface Envelope {
  readonly v: typeof BUS_VERSION;
  /** Random, for logs. */
  readonly id: string;
  /** The sending instance's id. */
  readonly from: string;
  /** When it was sent, epoch ms by the sender's clock. */
  readonly at: number;
}

export type BusMessage =
  | (Envelope & { readonly type: 'cache.purge'; readonly purge: Readonly<Record<string, unknown>> })
  | (Envelope & { readonly type: 'backend.state'; readonly pool: string; readonly backend: string; readonly state: AdminState });

/** A message from the channel, checked: the message, or why it is refused. */
export type Parsed = { readonly ok: true; readonly message: BusMessage } | { readonly ok: false; readonly reason: 'malformed' | 'version'; readonly detail: string };

/** Checks one message read from the channel. Never throws. */
export function parseMessage(text: string): Parsed {
  const bad = (detail: string): Parsed => ({ ok: false, reason: 'malformed', detail });
  if (text.length > MAX_MESSAGE_BYTES) return bad(`longer than ${MAX_MESSAGE_BYTES} bytes`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return bad('not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return bad('not a JSON object');
  const m = value as Record<string, unknown>;
  if (m['v'] !== BUS_VERSION) return { ok: false, reason: 'version', detail: `version ${JSON.stringify(m['v'])}; this usher reads ${BUS_VERSION}` };
  const nonEmpty = (key: string): boolean => typeof m[key] === 'string' && (m[key] as string).length > 0 && (m[key] as string).length <= 256;
  if (!nonEmpty('id') || !nonEmpty('from')) return bad('id and from must be non-empty strings');
  if (typeof m['at'] !== 'number' || !Number.isFinite(m['at'])) return bad('at must be a number (epoch ms)');
  const envelope: Envelope = { v: BUS_VERSION, id: m['id'] as string, from: m['from'] as string, at: m['at'] };
  switch (m['type']) {
    case 'cache.purge': {
      const purge = m['purge'];
      if (typeof purge !== 'object' || purge === null || Array.isArray(purge)) return bad('cache.purge needs purge: {key | prefix | tag, mode?}');
      return { ok: true, message: { ...envelope, type: 'cache.purge', purge: purge as Record<string, unknown> } };
    }
    case 'backend.state': {
      if (!nonEmpty('pool') || !nonEmpty('backend')) return bad('backend.state needs pool and backend');
      if (!(ADMIN_STATES as readonly unknown[]).includes(m['state'])) return bad(`backend.state needs state: ${ADMIN_STATES.join(', ')}`);
      return { ok: true, message: { ...envelope, type: 'backend.state', pool: m['pool'] as string, backend: m['backend'] as string, state: m['state'] as AdminState } };
    }
    default:
      return bad(`unknown type ${JSON.stringify(m['type'])}`);
  }
}

/** What receiving instances do with a message: the running usher's own admin operations. */
export interface BusHandlers {
  /** Applies a purge body as `POST /api/cache/purge` would; throws when it is not a valid purge. Resolves with the responses purged. */
  purge(body: Readonly<Record<string, unknown>>): Promise<number>;
  /** Sets a backend's operator state; false when this instance has no such pool or backend. */
  backendState(pool: string, backend: string, state: AdminState): Promise<boolean>;
}

/** What a publish achieved, for the admin API's answer. */
export type ShareResult =
  | { readonly shared: true; readonly receivers: number }
  | { readonly shared: false; readonly reason: string };

/** The bus's counters (metrics, `GET /api/peers`). */
export interface BusCounters {
  readonly published: Record<MessageType, number>;
  readonly publishErrors: Record<MessageType, number>;
  readonly received: Record<MessageType, number>;
  readonly rejected: Record<RejectReason, number>;
}

export interface BusView extends BusCounters {
  readonly channel: string;
  readonly subscribed: boolean;
  /** The last message applied from a peer: its type, sender and delay (receipt minus the sender's `at`; clocks may differ across hosts). */
  readonly lastReceived: { readonly type: MessageType; readonly from: string; readonly at: string; readonly delayMs: number } | null;
}

export interface BusOptions {
  /** The registry's command connection (a subscribed one can only subscribe). */
  readonly publisher: { publish(channel: string, message: string): Promise<unknown> };
  readonly subscriber: RedisLink;
  readonly channel: string;
  readonly instance: string;
  /** Read at each use: a reload may change it. */
  readonly shareAdminActions: () => boolean;
  readonly handlers: BusHandlers;
  readonly logger: Logger;
  /** A failed publish's message as logged and answered (secrets removed). */
  readonly describeError?: (message: string) => string;
  readonly now?: () => number;
}

const zero = <K extends string>(keys: readonly K[]): Record<K, number> => Object.fromEntries(keys.map((key) => [key, 0])) as Record<K, number>;

export class PeerBus {
  readonly #options: BusOptions;
  readonly #now: () => number;
  readonly counters: BusCounters = { published: zero(MESSAGE_TYPES), publishErrors: zero(MESSAGE_TYPES), received: zero(MESSAGE_TYPES), rejected: zero(REJECT_REASONS) };
  #subscribed = false;
  #subscribing = false;
  #timer: NodeJS.Timeout | undefined;
  /** Messages are applied one after the other, in the order received. */
  #applying: Promise<void> = Promise.resolve();
  #lastReceived: BusView['lastReceived'] = null;
  #lastRejectLog = 0;
  #suppressed = 0;
  #stopped = false;

  constructor(options: BusOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** Subscribes as soon as the subscriber connection is up (and keeps trying while it is not). */
  start(): void {
    if (this.#timer !== undefined || this.#stopped) return;
    this.#timer = setInterval(() => void this.#subscribe(), SUBSCRIBE_RETRY_MS);
    this.#timer.unref();
    void this.#subscribe();
  }

  /** Subscribed, and the subscriber connection is up. */
  get subscribed(): boolean {
    return this.#subscribed && this.#options.subscriber.ready;
  }

  async #subscribe(): Promise<void> {
    // Once subscribed, node-redis subscribes again by itself after a reconnect.
    if (this.#subscribed || this.#subscribing || this.#stopped || !this.#options.subscriber.ready) return;
    this.#subscribing = true;
    try {
      await this.#options.subscriber.connection.subscribe(this.#options.channel, (message: string) => this.receive(message));
      this.#subscribed = true;
      clearInterval(this.#timer);
    } catch {
      // Redis went away in between: the next tick tries again.
    } finally {
      this.#subscribing = false;
    }
  }

  /** Publishes a purge (always shared). */
  publishPurge(body: Readonly<Record<string, unknown>>): Promise<ShareResult> {
    return this.#publish({ type: 'cache.purge', purge: body });
  }

  /** Publishes a backend's new operator state, when `shareAdminActions` is on. */
  publishBackendState(pool: string, backend: string, state: AdminState): Promise<ShareResult> {
    if (!this.#options.shareAdminActions()) return Promise.resolve({ shared: false, reason: 'redis.shareAdminActions is off' });
    return this.#publish({ type: 'backend.state', pool, backend, state });
  }

  async #publish(body: { type: 'cache.purge'; purge: Readonly<Record<string, unknown>> } | { type: 'backend.state'; pool: string; backend: string; state: AdminState }): Promise<ShareResult> {
    const message = { v: BUS_VERSION, id: randomBytes(8).toString('hex'), from: this.#options.instance, at: this.#now(), ...body };
    try {
      const subscribers = Number(await this.#options.publisher.publish(this.#options.channel, JSON.stringify(message)));
      this.counters.published[body.type]++;
      // The count includes this instance's own subscription when it is up.
      return { shared: true, receivers: Math.max(0, subscribers - (this.subscribed ? 1 : 0)) };
    } catch (error) {
      this.counters.publishErrors[body.type]++;
      const text = error instanceof Error ? error.message || error.name : String(error);
      const reason = this.#options.describeError?.(text) ?? text;
      this.#options.logger.warn({ type: body.type, error: reason }, 'could not publish to peers: redis unreachable; applied here only');
      return { shared: false, reason: `redis unreachable: ${reason}` };
    }
  }

  /** One message from the channel (the subscriber calls it; tests too). */
  receive(text: string): void {
    const parsed = parseMessage(text);
    if (!parsed.ok) {
      this.#reject(parsed.reason, parsed.detail);
      return;
    }
    const message = parsed.message;
    if (message.from === this.#options.instance) return; // our own: applied before it was published
    if (message.type === 'backend.state' && !this.#options.shareAdminActions()) {
      this.#reject('not_shared', `${message.from} shared a backend state, and redis.shareAdminActions is off here`);
      return;
    }
    this.#applying = this.#applying.then(() => this.#apply(message));
  }

  /** Resolves once every message received so far is applied (tests). */
  applied(): Promise<void> {
    return this.#applying;
  }

  async #apply(message: BusMessage): Promise<void> {
    const { handlers, logger } = this.#options;
    try {
      if (message.type === 'cache.purge') {
        const purged = await handlers.purge(message.purge);
        logger.debug({ from: message.from, id: message.id, purge: message.purge, purged, delayMs: this.#now() - message.at }, 'cache purge from a peer applied');
      } else {
        if (!(await handlers.backendState(message.pool, message.backend, message.state))) {
          this.#reject('unknown_backend', `${message.from} set ${message.pool}/${message.backend} ${message.state}; this instance has no such pool or backend`);
          return;
        }
        logger.info({ from: message.from, id: message.id, pool: message.pool, backend: message.backend, state: message.state, delayMs: this.#now() - message.at }, 'backend state from a peer applied');
      }
      this.counters.received[message.type]++;
      this.#lastReceived = { type: message.type, from: message.from, at: new Date(message.at).toISOString(), delayMs: this.#now() - message.at };
    } catch (error) {
      const text = error instanceof Error ? error.message : String(error);
      // A purge body the admin API would refuse (400) was never valid; anything else failed to apply.
      this.#reject(isBadRequest(error) ? 'malformed' : 'failed', `${message.type} from ${message.from}: ${text}`);
    }
  }

  #reject(reason: RejectReason, detail: string): void {
    this.counters.rejected[reason]++;
    const now = this.#now();
    if (now - this.#lastRejectLog < 1000) {
      this.#suppressed++;
      return;
    }
    this.#options.logger.warn({ reason, detail, suppressed: this.#suppressed }, 'peer message rejected');
    this.#lastRejectLog = now;
    this.#suppressed = 0;
  }

  view(): BusView {
    return { channel: this.#options.channel, subscribed: this.subscribed, ...this.counters, lastReceived: this.#lastReceived };
  }

  /** Stops subscribing; messages already received are applied first. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#applying;
  }
}

function isBadRequest(error: unknown): boolean {
  return typeof error === 'object' && error !== null && 'status' in error && (error as { status: unknown }).status === 400;
}
