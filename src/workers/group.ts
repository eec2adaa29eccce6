import { once } from 'node:events';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { Worker, type TransferListItem } from 'node:worker_threads';
import type { ResponseCacheCounters } from '../cache/response-cache.ts';
import type { SharedStoreBuffers } from '../cache/shared-store.ts';
import type { ListenerConfig, UsherConfig } from '../config/types.ts';
import type { Logger } from '../observe/logger.ts';
import type { Pool } from '../pool/pool.ts';
import type { FromWorker, LentListener, ToWorker, WorkerUsage } from './messages.ts';
import { OUTCOME_CODES } from './messages.ts';
import { portableConfig } from './portable.ts';
import { RemotePlane } from './remote-plane.ts';
import type { WorkerInit } from './worker.ts';
import type { SharedRateLimits } from '../ratelimit/store.ts';

/** How long the main thread waits for a worker's answer to prepare, commit, ping or collect. */
const ANSWER_TIMEOUT_MS = 10_000;
/** A replacement for a crashed worker waits this long, doubling per crash in a row, up to {@link MAX_RESPAWN_DELAY_MS}. */
const RESPAWN_DELAY_MS = 100;
const MAX_RESPAWN_DELAY_MS = 10_000;
/** A worker that lived this long resets the crash backoff. */
const STABLE_AFTER_MS = 30_000;

/** What the group needs from the usher it serves. */
export interface GroupHost {
  readonly logger: Logger;
  /** The control plane's pools now. */
  pools(): Iterable<Pool>;
  /** The config the workers serve now. */
  config(): UsherConfig;
  /** The process's rate-limit tables for `config`'s policies (made now for new ones), sent with it. */
  rateLimits(config: UsherConfig): SharedRateLimits;
  /** The process's response store, sent with every config while a route caches. */
  cache(): SharedStoreBuffers | undefined;
}

/** A worker's rates are measured over at least this long: a `/metrics` scrape's fresh usage in between does not shorten the window. */
const MIN_RATE_WINDOW_MS = 500;

/**
 * One worker as the main thread sees it (the admin API, metrics, the
 * dashboard and `usher status` list these), from its usage reports (one a
 * second). The counters carry over a restart: a replacement thread's counts
 * are added to what the ones before it last reported.
 */
export interface WorkerView {
  readonly index: number;
  readonly state: 'starting' | 'serving' | 'restarting' | 'stopped';
  readonly restarts: number;
  /** Client connections open now (0 while the thread is not running). */
  readonly connections: number;
  /** HTTP requests answered and L4 connections served so far. */
  readonly requests: number;
  /** Thread CPU time so far, µs. */
  readonly cpuMicros: number;
  /** `requests` per second between the last two usage reports (0 while the thread is not running). */
  readonly requestsPerSecond: number;
  /** Thread CPU time over wall time between the last two usage reports, as a percentage of one core. */
  readonly cpuPercent: number;
}

/** A worker's counters at one usage report (carried over restarts), and when the main thread got it. */
interface UsageSample {
  readonly at: number;
  readonly requests: number;
  readonly cpuMicros: number;
}

/** One worker thread: its pools' planes, its in-flight row, the answers awaited from it. */
interface Thread {
  readonly worker: Worker;
  /** Its row in every pool's in-flight table. */
  readonly row: number;
  readonly planes: Map<string, RemotePlane>;
  /** Answers awaited from this thread, by what they answer. */
  readonly waiting: Map<string, (message: FromWorker) => void>;
  readonly startedAt: number;
  /** Resolves when the thread has ended. */
  readonly exited: Promise<void>;
}

/** A worker slot: the thread serving in it now, and its history. */
interface Member {
  readonly index: number;
  thread: Thread | undefined;
  state: WorkerView['state'];
  restarts: number;
  crashesInRow: number;
  usage: WorkerUsage | undefined;
  /** The thread `usage` came from: a report from another one (a replacement) carries the counts over. */
  usageFrom: Thread | undefined;
  /** Counts of the threads this one replaced, as they last reported them. */
  readonly carried: { requests: number; cpuMicros: number };
  /** The report rates are measured from, and the rates between it and the one before. */
  sample: UsageSample | undefined;
  rates: { requestsPerSecond: number; cpuPercent: number };
}

/**
 * The data-plane worker threads of one usher, run from the main thread (the
 * control plane). It binds a `reusePort` socket per worker for every
 * listener (so bind errors surface here, before any worker serves) and lends
 * each worker its sockets; it connects every pool's control plane to each
 * worker ({@link RemotePlane}); it changes the config in two phases
 * (prepare everywhere, then commit); it replaces a worker that dies, with
 * backoff, without the others noticing; and it restarts a worker on purpose
 * by taking its sockets back and lending them to the next one, so no
 * connection waiting to be accepted is lost.
 *
 * Worker slot `i` writes row `1 + i` or `1 + size + i` of every in-flight
 * table, alternating: a restarted worker's successor starts on the other row
 * while the old thread finishes its requests on its own.
 */
export class WorkerGroup {
  readonly size: number;
  readonly #host: GroupHost;
  #init: Omit<WorkerInit, 'index' | 'plane'>;
  readonly #members: Member[] = [];
  /** Threads that handed their sockets back and are finishing their requests. */
  readonly #retiring = new Set<Thread>();
  /** The address each listener is bound to (the first worker's socket, the same port for all). */
  readonly #addresses = new Map<string, AddressInfo>();
  #generation = 0;
  #pingId = 0;
  #stopping = false;
  /** Config changes, planned restarts and crash replacements run one at a time, in order (see {@link exclusive}). */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(size: number, host: GroupHost, init: Omit<WorkerInit, 'index' | 'plane'>) {
    this.size = size;
    this.#host = host;
    this.#init = init;
  }

  /** Rows every pool's in-flight table needs: the main thread's, and two per worker slot. */
  static planes(size: number): number {
    return size === 0 ? 1 : 1 + 2 * size;
  }

  /** Starts every worker on `config`; rejects (and stops them) if any listener cannot be bound or any worker cannot serve. */
  async start(config: UsherConfig): Promise<void> {
    const lent = await this.#bindAll(config.listeners);
    try {
      for (let index = 0; index < this.size; index++) {
        const member: Member = {
          index,
          thread: undefined,
          state: 'starting',
          restarts: 0,
          crashesInRow: 0,
          usage: undefined,
          usageFrom: undefined,
          carried: { requests: 0, cpuMicros: 0 },
          sample: undefined,
          rates: { requestsPerSecond: 0, cpuPercent: 0 },
        };
        this.#members.push(member);
        member.thread = this.#spawn(member, 1 + index);
      }
      const generation = ++this.#generation;
      const errors = await this.#prepareAll(generation, config, lent);
      if (errors.length > 0) throw new Error(errors.join('; '));
      await this.#commitAll(generation, true);
    } catch (error) {
      await this.stop(0);
      throw error;
    }
  }

  /** The bound address of a listener. */
  address(listener: string): AddressInfo | undefined {
    return this.#addresses.get(listener);
  }

  /** The workers as operators see them. */
  get views(): readonly WorkerView[] {
    return this.#members.map((m) => {
      const running = m.thread !== undefined && m.usageFrom === m.thread;
      return {
        index: m.index,
        state: m.state,
        restarts: m.restarts,
        connections: running ? (m.usage?.connections ?? 0) : 0,
        // Until a replacement reports, `usage` is the last thread's last report: its counts still count.
        requests: m.carried.requests + (m.usage?.requests ?? 0),
        cpuMicros: m.carried.cpuMicros + (m.usage?.cpuMicros ?? 0),
        requestsPerSecond: running ? m.rates.requestsPerSecond : 0,
        cpuPercent: running ? m.rates.cpuPercent : 0,
      };
    });
  }

  /** Connects a pool's control plane to every worker (a pool the config just added). */
  attachPool(pool: Pool): void {
    for (const thread of this.#threads()) this.#attach(thread, pool);
  }

  /**
   * Runs `operation` alone: a reload's prepare and commit, a planned restart
   * and a crash replacement each see the workers and the config as they were
   * when it began, and none starts a thread on a config another is changing.
   */
  exclusive<T>(operation: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(operation, operation);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Phase one of a reload (call it inside {@link exclusive}, with the commit):
   * binds the listeners that are new or moved, and has every worker prepare
   * `config`. Returns the errors; on any, nothing changed.
   */
  async prepare(config: UsherConfig, changed: readonly ListenerConfig[]): Promise<string[]> {
    const addresses = new Map(this.#addresses);
    let lent: LentListener[][];
    try {
      lent = await this.#bindAll(changed);
    } catch (error) {
      this.#restoreAddresses(addresses);
      return [(error as Error).message];
    }
    const generation = ++this.#generation;
    const serving = new Set(this.#serving().map((member) => member.index));
    // Sockets for a slot with no serving thread (in crash backoff) go nowhere: its replacement binds its own.
    for (let index = 0; index < lent.length; index++) if (!serving.has(index)) for (const { server } of lent[index]!) server.close();
    const errors = await this.#prepareAll(generation, config, lent);
    if (errors.length > 0) {
      for (const member of this.#serving()) this.#post(member.thread!, { type: 'abort', generation });
      this.#restoreAddresses(addresses);
    }
    return errors;
  }

  #restoreAddresses(addresses: ReadonlyMap<string, AddressInfo>): void {
    this.#addresses.clear();
    for (const [name, address] of addresses) this.#addresses.set(name, address);
  }

  /** Phase two: every worker serves the config it prepared. */
  async commit(): Promise<void> {
    await this.#commitAll(this.#generation);
    for (const name of [...this.#addresses.keys()]) {
      if (!this.#host.config().listeners.some((listener) => listener.name === name)) this.#addresses.delete(name);
    }
  }

  /**
   * Resolves once every worker has applied every message sent before this
   * call (the admin API waits for it); rejects when one did not confirm in
   * time. A thread that ends meanwhile counts as done: its replacement starts
   * from the current state.
   */
  async barrier(): Promise<void> {
    const id = ++this.#pingId;
    const late: number[] = [];
    await Promise.all(
      this.#threads().map((thread) =>
        this.#ask(thread, { type: 'ping', id }, `pong:${id}`).catch((error: Error) => {
          if (!(error instanceof ThreadEnded)) late.push(thread.row);
        }),
      ),
    );
    if (late.length > 0) throw new Error(`${late.length} worker thread(s) did not confirm the change within ${ANSWER_TIMEOUT_MS} ms; it is applied on the control plane and reaches them when they catch up`);
  }

  /**
   * Gives every worker new TLS session-ticket keys, and threads started later
   * (replacements, planned restarts) get them too. Resolves once every
   * running thread has them.
   */
  async setTicketKeys(keys: Uint8Array): Promise<void> {
    this.#init = { ...this.#init, ticketKeys: keys };
    for (const thread of this.#threads()) this.#post(thread, { type: 'ticket-keys', keys });
    await this.barrier();
  }

  /**
   * Every worker thread's numbers now, retiring ones included: their usage
   * (which also refreshes what the control plane sums for the admin API) and,
   * with `metrics`, their registries as prom-client JSON.
   */
  async collect(metrics = true): Promise<{ usage: WorkerUsage; metrics: unknown }[]> {
    const id = ++this.#pingId;
    const answers = await Promise.all(this.#threads().map((thread) => this.#ask(thread, { type: 'collect', id, metrics }, `collected:${id}`).catch(() => undefined)));
    const out: { usage: WorkerUsage; metrics: unknown }[] = [];
    for (const answer of answers) if (answer?.type === 'collected') out.push({ usage: answer.usage, metrics: answer.metrics });
    return out;
  }

  /** The serving workers' response-cache request counters as of their last usage report (at most a second old). */
  get cacheCounters(): ResponseCacheCounters[] {
    const out: ResponseCacheCounters[] = [];
    for (const member of this.#members) if (member.usage?.cache !== undefined) out.push(member.usage.cache);
    return out;
  }

  /** Every worker's response-cache request counters, now (the store itself is shared: the main thread reads its numbers). */
  async cache(): Promise<ResponseCacheCounters[]> {
    const id = ++this.#pingId;
    const answers = await Promise.all(this.#threads().map((thread) => this.#ask(thread, { type: 'cache', id }, `cache-report:${id}`).catch(() => undefined)));
    const out: ResponseCacheCounters[] = [];
    for (const answer of answers) if (answer?.type === 'cache-report') out.push(answer.counters);
    return out;
  }

  /**
   * A planned restart of worker `index`: it hands its listening sockets back
   * (open: connections waiting in their accept queues stay there), a new
   * thread takes them and serves, and the old one finishes its requests
   * (up to `shutdownTimeout`) before it ends.
   */
  restart(index: number): Promise<void> {
    return this.exclusive(() => this.#restart(index));
  }

  async #restart(index: number): Promise<void> {
    const member = this.#members[index];
    const old = member?.thread;
    if (this.#stopping) throw new Error('usher is stopping');
    if (member === undefined || old === undefined || member.state !== 'serving') throw new Error(`worker ${index} is not serving`);
    member.state = 'restarting';
    const row = old.row === 1 + index ? 1 + this.size + index : 1 + index;
    let listeners: readonly LentListener[];
    try {
      // The slot's other row may still belong to the thread an earlier restart retired (one writer per row): wait for it to end.
      for (const retiring of this.#retiring) if (retiring.row === row) await retiring.exited;
      const id = ++this.#pingId;
      const answer = await this.#ask(old, { type: 'hand-back', id }, `handed-back:${id}`);
      if (answer.type !== 'handed-back') throw new Error(`worker ${index} did not hand its sockets back`);
      listeners = answer.listeners;
    } catch (error) {
      if (member.thread === old) member.state = 'serving';
      throw error;
    }
    this.#retiring.add(old);
    member.restarts++;
    const thread = this.#spawn(member, row);
    member.thread = thread;
    try {
      if (this.#stopping) throw new Error('usher is stopping');
      const generation = this.#generation;
      const prepared = await this.#ask(thread, { type: 'prepare', generation, config: portableConfig(this.#host.config()), rateLimits: this.#host.rateLimits(this.#host.config()), cache: this.#host.cache(), listeners }, `prepared:${generation}`, ANSWER_TIMEOUT_MS, listeners.map((l) => l.server));
      if (prepared.type === 'prepared' && prepared.errors.length > 0) throw new Error(prepared.errors.join('; '));
      await this.#ask(thread, { type: 'commit', generation }, `committed:${generation}`);
      member.state = 'serving';
      this.#host.logger.info({ worker: index }, 'worker thread restarted');
    } catch (error) {
      // The new thread cannot serve: it ends, and the crash path starts another with freshly bound sockets.
      this.#host.logger.error({ err: error, worker: index }, 'the restarted worker thread could not serve; replacing it');
      void thread.worker.terminate();
      throw error;
    } finally {
      const timeoutMs = this.#host.config().shutdownTimeoutMs;
      const id = ++this.#pingId;
      void this.#ask(old, { type: 'stop', id, timeoutMs }, `stopped:${id}`, timeoutMs + 2000)
        .catch(() => undefined)
        .then(() => old.worker.terminate());
    }
  }

  /** Graceful stop of every worker (up to `timeoutMs` for requests in flight), then their threads end. */
  async stop(timeoutMs: number): Promise<void> {
    this.#stopping = true;
    // A restart or replacement under way finishes first (each checks #stopping), so no thread starts after this.
    await this.#queue;
    const threads = this.#threads();
    for (const member of this.#members) member.state = 'stopped';
    await Promise.all(
      threads.map(async (thread) => {
        const id = ++this.#pingId;
        await this.#ask(thread, { type: 'stop', id, timeoutMs }, `stopped:${id}`, timeoutMs + 2000).catch(() => undefined);
        await thread.worker.terminate();
      }),
    );
  }

  // ---- threads ------------------------------------------------------------------------

  #spawn(member: Member, row: number): Thread {
    const entry = new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url);
    const init: WorkerInit = { ...this.#init, index: member.index, plane: row };
    const young = youngGenerationMb();
    const worker = new Worker(entry, { workerData: init, stdout: false, stderr: false, ...(young > 0 ? { resourceLimits: { maxYoungGenerationSizeMb: young } } : {}) });
    const thread: Thread = { worker, row, planes: new Map(), waiting: new Map(), startedAt: performance.now(), exited: new Promise((resolve) => worker.once('exit', () => resolve())) };
    member.state = member.state === 'restarting' ? 'restarting' : 'starting';
    worker.on('message', (message: FromWorker) => this.#onMessage(member, thread, message));
    worker.on('error', (error) => this.#host.logger.error({ err: error, worker: member.index }, 'worker thread failed'));
    worker.on('exit', (code) => this.#onExit(member, thread, code));
    for (const pool of this.#host.pools()) this.#attach(thread, pool);
    return thread;
  }

  #attach(thread: Thread, pool: Pool): void {
    const plane = new RemotePlane(pool.control, { post: (message) => thread.worker.postMessage(message) });
    thread.planes.get(pool.name)?.close();
    thread.planes.set(pool.name, plane);
    pool.control.attach(plane);
  }

  /** Disconnects a thread's planes and clears what it had in flight. */
  #forget(thread: Thread): void {
    for (const pool of this.#host.pools()) {
      const plane = thread.planes.get(pool.name);
      if (plane !== undefined) pool.control.detach(plane);
      pool.control.inFlight.clearRow(thread.row);
    }
    thread.planes.clear();
    for (const resolve of thread.waiting.values()) resolve(ENDED);
    thread.waiting.clear();
  }

  #onExit(member: Member, thread: Thread, code: number): void {
    this.#forget(thread);
    if (this.#retiring.delete(thread) || member.thread !== thread) return;
    member.thread = undefined;
    if (this.#stopping || member.state === 'stopped') return;
    const lived = performance.now() - thread.startedAt;
    member.crashesInRow = lived >= STABLE_AFTER_MS ? 1 : member.crashesInRow + 1;
    const delay = Math.min(MAX_RESPAWN_DELAY_MS, RESPAWN_DELAY_MS * 2 ** (member.crashesInRow - 1));
    member.state = 'restarting';
    member.restarts++;
    this.#host.logger.error({ worker: member.index, code, restarts: member.restarts, respawnInMs: delay }, 'worker thread exited; replacing it');
    const timer = setTimeout(() => void this.#replace(member, thread.row), delay);
    timer.unref();
  }

  /** Starts a worker in a dead one's place, on the current config, with freshly bound sockets; on failure, tries again later. */
  #replace(member: Member, row: number): Promise<void> {
    return this.exclusive(async () => {
      if (this.#stopping || member.thread !== undefined) return;
      let thread: Thread | undefined;
      try {
        const config = this.#host.config();
        const lent = await this.#bindFor(config.listeners);
        if (this.#stopping) {
          for (const { server } of lent) server.close();
          return;
        }
        thread = this.#spawn(member, row);
        member.thread = thread;
        const generation = this.#generation;
        const answer = await this.#ask(thread, { type: 'prepare', generation, config: portableConfig(config), rateLimits: this.#host.rateLimits(config), cache: this.#host.cache(), listeners: lent }, `prepared:${generation}`, ANSWER_TIMEOUT_MS, lent.map((l) => l.server));
        if (answer.type === 'prepared' && answer.errors.length > 0) throw new Error(answer.errors.join('; '));
        await this.#ask(thread, { type: 'commit', generation }, `committed:${generation}`);
        member.state = 'serving';
        this.#host.logger.info({ worker: member.index }, 'worker thread replaced');
      } catch (error) {
        this.#host.logger.error({ err: error, worker: member.index }, 'could not replace a worker thread; retrying');
        if (thread !== undefined) {
          void thread.worker.terminate(); // its exit schedules the next attempt
        } else {
          const timer = setTimeout(() => void this.#replace(member, row), MAX_RESPAWN_DELAY_MS);
          timer.unref();
        }
      }
    });
  }

  #onMessage(member: Member, thread: Thread, message: FromWorker): void {
    switch (message.type) {
      case 'reports': {
        const pool = [...this.#host.pools()].find((p) => p.name === message.pool);
        if (pool === undefined) return;
        const data = message.data;
        for (let i = 0; i + 2 < data.length; i += 3) {
          const outcome = OUTCOME_CODES[data[i + 1]!];
          if (outcome !== undefined) pool.control.attemptReported(data[i]!, outcome, data[i + 2] === 1);
        }
        return;
      }
      case 'usage':
        this.#usage(member, thread, message.usage);
        return;
      case 'collected':
        this.#usage(member, thread, message.usage);
        this.#answer(thread, `collected:${message.id}`, message);
        return;
      case 'prepared':
        this.#answer(thread, `prepared:${message.generation}`, message);
        return;
      case 'committed':
        this.#answer(thread, `committed:${message.generation}`, message);
        return;
      case 'pong':
        this.#answer(thread, `pong:${message.id}`, message);
        return;
      case 'cache-report':
        this.#answer(thread, `cache-report:${message.id}`, message);
        return;
      case 'handed-back':
        // Sockets nobody waits for any more (the restart gave up): close them rather than leave them accepting.
        if (!this.#answer(thread, `handed-back:${message.id}`, message)) for (const { server } of message.listeners) server.close();
        return;
      case 'stopped':
        this.#answer(thread, `stopped:${message.id}`, message);
        return;
    }
  }

  #usage(member: Member, thread: Thread, usage: WorkerUsage): void {
    for (const [pool, reports] of Object.entries(usage.pools)) thread.planes.get(pool)?.reported(reports);
    if (member.thread !== thread) return; // a retiring thread: its numbers count in the planes above, not in the slot's view
    if (member.usageFrom !== thread) {
      // The first report of a new thread: the last one's counts carry over, so the worker's counters never go back.
      if (member.usageFrom !== undefined && member.usage !== undefined) {
        member.carried.requests += member.usage.requests;
        member.carried.cpuMicros += member.usage.cpuMicros;
      }
      member.usageFrom = thread;
    }
    member.usage = usage;
    this.#measure(member, usage);
  }

  /** Rates from the difference between this report and the last one measured, at least {@link MIN_RATE_WINDOW_MS} before. */
  #measure(member: Member, usage: WorkerUsage): void {
    const now: UsageSample = { at: performance.now(), requests: member.carried.requests + usage.requests, cpuMicros: member.carried.cpuMicros + usage.cpuMicros };
    const last = member.sample;
    if (last !== undefined && now.at - last.at < MIN_RATE_WINDOW_MS) return;
    member.sample = now;
    if (last === undefined) return;
    const seconds = (now.at - last.at) / 1000;
    member.rates = {
      requestsPerSecond: round1(Math.max(0, now.requests - last.requests) / seconds),
      cpuPercent: round1((Math.max(0, now.cpuMicros - last.cpuMicros) / (seconds * 1e6)) * 100),
    };
  }

  /** Hands `message` to whoever awaits `key`; false when nobody does. */
  #answer(thread: Thread, key: string, message: FromWorker): boolean {
    const resolve = thread.waiting.get(key);
    if (resolve === undefined) return false;
    thread.waiting.delete(key);
    resolve(message);
    return true;
  }

  /** Posts `message` and resolves with the answer `key`; rejects after `timeoutMs` or if the thread ends first. */
  #ask(thread: Thread, message: ToWorker, key: string, timeoutMs = ANSWER_TIMEOUT_MS, transfer: Server[] = []): Promise<FromWorker> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        thread.waiting.delete(key);
        reject(new Error(`worker did not answer ${message.type} within ${timeoutMs} ms`));
      }, timeoutMs);
      thread.waiting.set(key, (answer) => {
        clearTimeout(timer);
        if (answer === ENDED) reject(new ThreadEnded());
        else resolve(answer);
      });
      this.#post(thread, message, transfer);
    });
  }

  #post(thread: Thread, message: ToWorker, transfer: Server[] = []): void {
    // Pending pool state goes first: a commit must find the pools it names.
    for (const plane of thread.planes.values()) plane.flush();
    thread.worker.postMessage(message, transfer as unknown as TransferListItem[]);
  }

  /** Slots whose thread runs and serves (or is starting). */
  #serving(): Member[] {
    return this.#members.filter((m) => m.thread !== undefined && (m.state === 'serving' || m.state === 'starting'));
  }

  /** Every running thread, retiring ones included. */
  #threads(): Thread[] {
    const threads: Thread[] = [...this.#retiring];
    for (const member of this.#members) if (member.thread !== undefined) threads.push(member.thread);
    return threads;
  }

  async #prepareAll(generation: number, config: UsherConfig, lent: readonly LentListener[][]): Promise<string[]> {
    const portable = portableConfig(config);
    const rateLimits = this.#host.rateLimits(config);
    const cache = this.#host.cache();
    const answers = await Promise.all(
      this.#serving().map((member) => {
        const listeners = lent[member.index] ?? [];
        return this.#ask(member.thread!, { type: 'prepare', generation, config: portable, rateLimits, cache, listeners }, `prepared:${generation}`, ANSWER_TIMEOUT_MS, listeners.map((l) => l.server)).then(
          (answer) => (answer.type === 'prepared' ? answer.errors : []),
          (error: Error) => [error.message],
        );
      }),
    );
    return [...new Set(answers.flat())];
  }

  /**
   * Every worker that prepared serves the new config. One that does not
   * answer (it died meanwhile) is left to the crash path, which starts its
   * replacement on the current config; the others go on. At start, `strict`
   * makes any failure fail the start.
   */
  async #commitAll(generation: number, strict = false): Promise<void> {
    await Promise.all(
      this.#serving().map(async (member) => {
        try {
          const answer = await this.#ask(member.thread!, { type: 'commit', generation }, `committed:${generation}`);
          if (answer.type === 'committed' && answer.error !== undefined) throw new Error(answer.error);
          member.state = 'serving';
        } catch (error) {
          if (strict) throw error;
          this.#host.logger.error({ err: error, worker: member.index, generation }, 'a worker did not commit the new config');
        }
      }),
    );
  }

  /** Binds one socket per worker for each listener: `lent[worker]` lists that worker's. Closes them all on failure. */
  async #bindAll(listeners: readonly ListenerConfig[]): Promise<LentListener[][]> {
    const lent: LentListener[][] = Array.from({ length: this.size }, () => []);
    try {
      for (const listener of listeners) {
        for (let index = 0; index < this.size; index++) lent[index]!.push(await this.#bindOne(listener));
      }
    } catch (error) {
      for (const perWorker of lent) for (const { server } of perWorker) server.close();
      throw error;
    }
    return lent;
  }

  /** One socket per listener, for one (replacement) worker. */
  async #bindFor(listeners: readonly ListenerConfig[]): Promise<LentListener[]> {
    const lent: LentListener[] = [];
    try {
      for (const listener of listeners) lent.push(await this.#bindOne(listener));
    } catch (error) {
      for (const { server } of lent) server.close();
      throw error;
    }
    return lent;
  }

  /** A listening socket in the listener's reuseport group (the first one picks the port when the config says 0). */
  async #bindOne(listener: ListenerConfig): Promise<LentListener> {
    const known = this.#addresses.get(listener.name);
    const port = known !== undefined && known.port !== 0 && (listener.bind.port === 0 || listener.bind.port === known.port) ? known.port : listener.bind.port;
    const server = createServer();
    try {
      server.listen({ host: listener.bind.host, port, reusePort: true, backlog: 511 });
      await once(server, 'listening');
    } catch (error) {
      server.close();
      throw new Error(`listener ${listener.name}: cannot bind ${listener.bind.host}:${listener.bind.port}: ${(error as Error).message}`, { cause: error });
    }
    if (known === undefined || known.port !== (server.address() as AddressInfo).port) this.#addresses.set(listener.name, server.address() as AddressInfo);
    return { name: listener.name, server };
  }
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}

/**
 * The young generation a worker's heap may grow to, MiB (`resourceLimits`);
 * 0 leaves V8's default, which grows to 128 MiB under proxy load. A small one
 * stays in the CPU's caches: measured with `bench --workers 1` (5 rounds,
 * docs/design.md), 12 MiB against the default cut CPU per request by 10 % on
 * small GETs and 28 % on 64 KiB responses, their p99 from 3.8 to 2.1 ms and
 * from 30 to 5 ms, and RSS by ~150 MiB. `USHER_WORKER_YOUNG_MB` overrides it.
 */
const DEFAULT_YOUNG_GENERATION_MB = 12;

function youngGenerationMb(): number {
  const raw = process.env['USHER_WORKER_YOUNG_MB'];
  const fromEnv = raw === undefined || raw === '' ? Number.NaN : Number(raw);
  return Number.isFinite(fromEnv) && fromEnv >= 0 ? fromEnv : DEFAULT_YOUNG_GENERATION_MB;
}

/** The answer every pending question gets when its thread ends. */
const ENDED: FromWorker = { type: 'stopped', id: -1 };

/** The thread ended before it answered. */
class ThreadEnded extends Error {
  constructor() {
    super('the worker thread ended');
    this.name = 'ThreadEnded';
  }
}
