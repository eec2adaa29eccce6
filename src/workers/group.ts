import { once } from 'node:events';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { Worker, type TransferListItem } from 'node:worker_threads';
import type { ListenerConfig, UsherConfig } from '../config/types.ts';
import type { Logger } from '../observe/logger.ts';
import type { Pool } from '../pool/pool.ts';
import type { FromWorker, LentListener, ToWorker, WorkerUsage } from './messages.ts';
import { OUTCOME_CODES } from './messages.ts';
import { portableConfig } from './portable.ts';
import { RemotePlane } from './remote-plane.ts';
import type { WorkerInit } from './worker.ts';

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
}

/** A worker's rates are measured over at least this long: a `/metrics` scrape's fresh usage in between does not shorten the window. */
const MIN_RATE_WINDOW_MS = 500;

/**
 * One worker as the main thread sees it (the admin API, metrics, the
 * dashboard and `usher status` list these), from its usage reports (one a
 * second). The counters carry over a restart: a replacement thread's counts
 * are added to what the dead one last reported.
 */
export interface WorkerView {
  readonly index: number;
  readonly state: 'starting' | 'serving' | 'restarting' | 'stopped';
  readonly restarts: number;
  /** Client connections open now (0 while the thread is not running). */
  readonly connections: number;
  /** Client connections accepted so far. */
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

interface Member {
  readonly index: number;
  worker: Worker | undefined;
  state: WorkerView['state'];
  startedAt: number;
  restarts: number;
  crashesInRow: number;
  planes: Map<string, RemotePlane>;
  usage: WorkerUsage | undefined;
  /** The thread `usage` came from: a report from another one (a replacement) carries the counts over. */
  usageFrom: Worker | undefined;
  /** Counts of the threads this one replaced, as they last reported them. */
  carried: { requests: number; cpuMicros: number };
  /** The report rates are measured from, and the rates between it and the one before. */
  sample: UsageSample | undefined;
  rates: { requestsPerSecond: number; cpuPercent: number };
  /** Answers awaited from this worker, by what they answer. */
  readonly waiting: Map<string, (message: FromWorker) => void>;
}

/**
 * The data-plane worker threads of one usher, run from the main thread (the
 * control plane). It binds a `reusePort` socket per worker for every
 * listener (so bind errors surface here, before any worker serves) and lends
 * each worker its sockets; it connects every pool's control plane to each
 * worker ({@link RemotePlane}); it changes the config in two phases
 * (prepare everywhere, then commit); and it replaces a worker that dies,
 * with backoff, without the others noticing.
 */
export class WorkerGroup {
  readonly size: number;
  readonly #host: GroupHost;
  readonly #init: Omit<WorkerInit, 'index'>;
  readonly #members: Member[] = [];
  /** The address each listener is bound to (the first worker's socket, the same port for all). */
  readonly #addresses = new Map<string, AddressInfo>();
  #generation = 0;
  #pingId = 0;
  #stopping = false;

  constructor(size: number, host: GroupHost, init: Omit<WorkerInit, 'index'>) {
    this.size = size;
    this.#host = host;
    this.#init = init;
  }

  /** Starts every worker on `config`; rejects (and stops them) if any listener cannot be bound or any worker cannot serve. */
  async start(config: UsherConfig): Promise<void> {
    const lent = await this.#bindAll(config.listeners);
    try {
      for (let index = 0; index < this.size; index++) {
        const member: Member = {
          index,
          worker: undefined,
          state: 'starting',
          startedAt: 0,
          restarts: 0,
          crashesInRow: 0,
          planes: new Map(),
          usage: undefined,
          usageFrom: undefined,
          carried: { requests: 0, cpuMicros: 0 },
          sample: undefined,
          rates: { requestsPerSecond: 0, cpuPercent: 0 },
          waiting: new Map(),
        };
        this.#members.push(member);
        this.#spawn(member);
      }
      const generation = ++this.#generation;
      const errors = await this.#prepareAll(generation, config, lent);
      if (errors.length > 0) throw new Error(errors.join('; '));
      await this.#commitAll(generation);
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
      const running = m.worker !== undefined && m.usageFrom === m.worker;
      return {
        index: m.index,
        state: m.state,
        restarts: m.restarts,
        connections: running ? (m.usage?.connections ?? 0) : 0,
        // Until a replacement reports, `usage` is the dead thread's last report: its counts still count.
        requests: m.carried.requests + (m.usage?.requests ?? 0),
        cpuMicros: m.carried.cpuMicros + (m.usage?.cpuMicros ?? 0),
        requestsPerSecond: running ? m.rates.requestsPerSecond : 0,
        cpuPercent: running ? m.rates.cpuPercent : 0,
      };
    });
  }

  /** Connects a pool's control plane to every worker (a pool the config just added). */
  attachPool(pool: Pool): void {
    for (const member of this.#members) if (member.worker !== undefined) this.#attach(member, pool);
  }

  /**
   * Phase one of a reload: binds the listeners that are new or moved, and has
   * every worker prepare `config`. Returns the errors; on any, nothing changed.
   */
  async prepare(config: UsherConfig, changed: readonly ListenerConfig[]): Promise<string[]> {
    let lent: LentListener[][];
    try {
      lent = await this.#bindAll(changed);
    } catch (error) {
      return [(error as Error).message];
    }
    const generation = ++this.#generation;
    const errors = await this.#prepareAll(generation, config, lent);
    if (errors.length > 0) {
      for (const member of this.#serving()) this.#post(member, { type: 'abort', generation });
      for (const perWorker of lent) for (const { server } of perWorker) server.close();
    }
    return errors;
  }

  /** Phase two: every worker serves the config it prepared. */
  async commit(): Promise<void> {
    await this.#commitAll(this.#generation);
    for (const name of [...this.#addresses.keys()]) {
      if (!this.#host.config().listeners.some((listener) => listener.name === name)) this.#addresses.delete(name);
    }
  }

  /** Resolves once every worker has applied every message sent before this call (the admin API waits for it). */
  async barrier(): Promise<void> {
    const id = ++this.#pingId;
    await Promise.all(this.#serving().map((member) => this.#ask(member, { type: 'ping', id }, `pong:${id}`).catch(() => undefined)));
  }

  /** Every serving worker's numbers now (usage and prom-client metrics JSON). */
  async collect(): Promise<{ usage: WorkerUsage; metrics: unknown }[]> {
    const id = ++this.#pingId;
    const answers = await Promise.all(
      this.#serving().map((member) => this.#ask(member, { type: 'collect', id }, `collected:${id}`).catch(() => undefined)),
    );
    const out: { usage: WorkerUsage; metrics: unknown }[] = [];
    for (const answer of answers) if (answer?.type === 'collected') out.push({ usage: answer.usage, metrics: answer.metrics });
    return out;
  }

  /** Graceful stop of every worker (up to `timeoutMs` for requests in flight), then their threads end. */
  async stop(timeoutMs: number): Promise<void> {
    this.#stopping = true;
    await Promise.all(
      this.#members.map(async (member) => {
        const worker = member.worker;
        if (worker === undefined) return;
        if (member.state === 'serving') {
          await this.#ask(member, { type: 'stop', timeoutMs }, 'stopped', timeoutMs + 2000).catch(() => undefined);
        }
        member.state = 'stopped';
        this.#forget(member);
        await worker.terminate();
      }),
    );
  }

  // ---- workers ------------------------------------------------------------------------

  #spawn(member: Member): void {
    const entry = new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url);
    const init: WorkerInit = { ...this.#init, index: member.index };
    const worker = new Worker(entry, { workerData: init, stdout: false, stderr: false });
    member.worker = worker;
    member.startedAt = performance.now();
    member.state = 'starting';
    worker.on('message', (message: FromWorker) => this.#onMessage(member, message));
    worker.on('error', (error) => this.#host.logger.error({ err: error, worker: member.index }, 'worker thread failed'));
    worker.on('exit', (code) => this.#onExit(member, worker, code));
    for (const pool of this.#host.pools()) this.#attach(member, pool);
  }

  #attach(member: Member, pool: Pool): void {
    const worker = member.worker!;
    const plane = new RemotePlane(pool.control, { post: (message) => worker.postMessage(message) });
    member.planes.get(pool.name)?.close();
    member.planes.set(pool.name, plane);
    pool.control.attach(plane);
  }

  /** Disconnects a worker's planes and clears what it had in flight. */
  #forget(member: Member): void {
    for (const pool of this.#host.pools()) {
      const plane = member.planes.get(pool.name);
      if (plane !== undefined) pool.control.detach(plane);
      pool.control.inFlight.clearRow(member.index + 1);
    }
    member.planes.clear();
    for (const resolve of member.waiting.values()) resolve({ type: 'stopped' });
    member.waiting.clear();
  }

  #onExit(member: Member, worker: Worker, code: number): void {
    if (member.worker !== worker) return;
    member.worker = undefined;
    this.#forget(member);
    if (this.#stopping || member.state === 'stopped') return;
    const lived = performance.now() - member.startedAt;
    member.crashesInRow = lived >= STABLE_AFTER_MS ? 1 : member.crashesInRow + 1;
    const delay = Math.min(MAX_RESPAWN_DELAY_MS, RESPAWN_DELAY_MS * 2 ** (member.crashesInRow - 1));
    member.state = 'restarting';
    member.restarts++;
    this.#host.logger.error({ worker: member.index, code, restarts: member.restarts, respawnInMs: delay }, 'worker thread exited; replacing it');
    const timer = setTimeout(() => void this.#replace(member), delay);
    timer.unref();
  }

  /** Starts a worker in a dead one's place, on the current config, with freshly bound sockets. */
  async #replace(member: Member): Promise<void> {
    if (this.#stopping) return;
    try {
      const config = this.#host.config();
      const lent = await this.#bindFor(config.listeners);
      this.#spawn(member);
      const generation = this.#generation;
      const answer = await this.#ask(member, { type: 'prepare', generation, config: portableConfig(config), listeners: lent }, `prepared:${generation}`, ANSWER_TIMEOUT_MS, lent.map((l) => l.server));
      if (answer.type === 'prepared' && answer.errors.length > 0) throw new Error(answer.errors.join('; '));
      await this.#ask(member, { type: 'commit', generation }, `committed:${generation}`);
      member.state = 'serving';
      this.#host.logger.info({ worker: member.index }, 'worker thread replaced');
    } catch (error) {
      this.#host.logger.error({ err: error, worker: member.index }, 'could not replace a worker thread; retrying');
      await member.worker?.terminate();
    }
  }

  #onMessage(member: Member, message: FromWorker): void {
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
        this.#usage(member, message.usage);
        return;
      case 'collected':
        this.#usage(member, message.usage);
        this.#answer(member, `collected:${message.id}`, message);
        return;
      case 'prepared':
        this.#answer(member, `prepared:${message.generation}`, message);
        return;
      case 'committed':
        this.#answer(member, `committed:${message.generation}`, message);
        return;
      case 'pong':
        this.#answer(member, `pong:${message.id}`, message);
        return;
      case 'stopped':
        this.#answer(member, 'stopped', message);
        return;
    }
  }

  #usage(member: Member, usage: WorkerUsage): void {
    if (member.usageFrom !== member.worker) {
      // The first report of a replacement: the dead thread's last counts carry over, so the worker's counters never go back.
      if (member.usageFrom !== undefined && member.usage !== undefined) {
        member.carried.requests += member.usage.requests;
        member.carried.cpuMicros += member.usage.cpuMicros;
      }
      member.usageFrom = member.worker;
    }
    member.usage = usage;
    this.#measure(member, usage);
    for (const [pool, reports] of Object.entries(usage.pools)) member.planes.get(pool)?.reported(reports);
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

  #answer(member: Member, key: string, message: FromWorker): void {
    const resolve = member.waiting.get(key);
    if (resolve === undefined) return;
    member.waiting.delete(key);
    resolve(message);
  }

  /** Posts `message` and resolves with the answer `key`; rejects after `timeoutMs` or if the worker dies first. */
  #ask(member: Member, message: ToWorker, key: string, timeoutMs = ANSWER_TIMEOUT_MS, transfer: Server[] = []): Promise<FromWorker> {
    return new Promise((resolve, reject) => {
      const worker = member.worker;
      if (worker === undefined) {
        reject(new Error(`worker ${member.index} is not running`));
        return;
      }
      const timer = setTimeout(() => {
        member.waiting.delete(key);
        reject(new Error(`worker ${member.index} did not answer ${message.type} within ${timeoutMs} ms`));
      }, timeoutMs);
      member.waiting.set(key, (answer) => {
        clearTimeout(timer);
        if (answer.type === 'stopped' && key !== 'stopped') reject(new Error(`worker ${member.index} ended`));
        else resolve(answer);
      });
      this.#post(member, message, transfer);
    });
  }

  #post(member: Member, message: ToWorker, transfer: Server[] = []): void {
    // Pending pool state goes first: a commit must find the pools it names.
    for (const plane of member.planes.values()) plane.flush();
    member.worker?.postMessage(message, transfer as unknown as TransferListItem[]);
  }

  #serving(): Member[] {
    return this.#members.filter((m) => m.worker !== undefined && (m.state === 'serving' || m.state === 'starting'));
  }

  async #prepareAll(generation: number, config: UsherConfig, lent: readonly LentListener[][]): Promise<string[]> {
    const portable = portableConfig(config);
    const members = this.#serving();
    const answers = await Promise.all(
      members.map((member, i) =>
        this.#ask(member, { type: 'prepare', generation, config: portable, listeners: lent[member.index] ?? lent[i] ?? [] }, `prepared:${generation}`, ANSWER_TIMEOUT_MS, (lent[member.index] ?? []).map((l) => l.server)).then(
          (answer) => (answer.type === 'prepared' ? answer.errors : []),
          (error: Error) => [error.message],
        ),
      ),
    );
    return [...new Set(answers.flat())];
  }

  async #commitAll(generation: number): Promise<void> {
    await Promise.all(
      this.#serving().map(async (member) => {
        await this.#ask(member, { type: 'commit', generation }, `committed:${generation}`);
        member.state = 'serving';
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
