import { describeValue, milliseconds } from './options.ts';

/**
 * A dependency check (database, Redis, another service). It passes when it
 * returns or resolves; it fails when it throws, rejects, resolves to `false`,
 * or takes longer than its timeout. The signal is aborted at the timeout, so a
 * check that can be cancelled (`fetch`, most drivers' query options) should
 * pass it on instead of leaving work behind.
 */
export type CheckFunction = (signal: AbortSignal) => unknown;

/** A check with its own timeout. */
export interface CheckSpec {
  readonly run: CheckFunction;
  /** Milliseconds before the check counts as failed; default: the readiness `checkTimeoutMs`. */
  readonly timeoutMs?: number;
}

/** A check as given in the options: a function, or a function with its own timeout. */
export type Check = CheckFunction | CheckSpec;

/** One check's outcome in a readiness report. */
export interface CheckResult {
  readonly ok: boolean;
  /** How long it took, rounded to the millisecond (the timeout, when it timed out). */
  readonly ms: number;
  /** Why it failed: the error's message, `timed out after N ms`, or `returned false`. */
  readonly error?: string;
}

/** The outcome of one evaluation of every check. */
export interface ReadinessReport {
  readonly ok: boolean;
  /** Names of the failed checks, in the order they were given. */
  readonly failed: readonly string[];
  readonly checks: Readonly<Record<string, CheckResult>>;
}

/** Options of {@link Readiness}. */
export interface ReadinessOptions {
  readonly checks?: Readonly<Record<string, Check>>;
  /** Default timeout of each check, in ms (default 500). */
  readonly checkTimeoutMs?: number;
  /** How long, in ms, a finished evaluation answers later probes (default 1000; 0: every probe not overlapping a running evaluation runs the checks). */
  readonly cacheMs?: number;
}

/**
 * 500 ms per check: checks run in parallel, so the readiness answer takes at
 * most this long (plus the answer itself) and fits inside usher's default
 * health-check timeout of 1 s, with room for a busy event loop. A check that
 * timed out then reads as "timed out", not as a probe timeout on usher's side.
 */
export const DEFAULT_CHECK_TIMEOUT_MS = 500;

/**
 * 1 s: a burst of probes (several balancers, Kubernetes, a monitor) hits each
 * dependency at most once a second, and a result is never older than about
 * half of usher's fastest default check interval (2 s).
 */
export const DEFAULT_CACHE_MS = 1000;

const MAX_ERROR_LENGTH = 300;

interface NamedCheck {
  readonly name: string;
  readonly run: CheckFunction;
  readonly timeoutMs: number;
}

/**
 * Runs the checks in parallel, each bounded by its timeout; shares one running
 * evaluation between concurrent callers (single flight) and reuses a finished
 * one for `cacheMs`, so probes never multiply the load on a dependency. Never
 * rejects: whatever a check does becomes a failed {@link CheckResult}.
 */
export class Readiness {
  readonly #checks: readonly NamedCheck[];
  readonly #cacheMs: number;
  #running: Promise<ReadinessReport> | undefined;
  #cached: ReadinessReport | undefined;
  #cachedUntil = 0;

  constructor(options: ReadinessOptions = {}) {
    const defaultTimeout = milliseconds('checkTimeoutMs', options.checkTimeoutMs, DEFAULT_CHECK_TIMEOUT_MS, 1);
    this.#cacheMs = milliseconds('cacheMs', options.cacheMs, DEFAULT_CACHE_MS);
    const checks = options.checks ?? {};
    if (checks === null || typeof checks !== 'object') {
      throw new TypeError(`usher/backend: checks must be an object of named check functions, got ${describeValue(checks)}`);
    }
    this.#checks = Object.entries(checks).map(([name, check]) => namedCheck(name, check, defaultTimeout));
  }

  /** Names of the configured checks. */
  get names(): readonly string[] {
    return this.#checks.map((check) => check.name);
  }

  /** The current report: cached, shared with a running evaluation, or fresh. */
  evaluate(): Promise<ReadinessReport> {
    if (this.#cached !== undefined && performance.now() < this.#cachedUntil) return Promise.resolve(this.#cached);
    if (this.#running !== undefined) return this.#running;
    const running = this.#runAll().then((report) => {
      this.#cached = report;
      this.#cachedUntil = performance.now() + this.#cacheMs;
      this.#running = undefined;
      return report;
    });
    this.#running = running;
    return running;
  }

  async #runAll(): Promise<ReadinessReport> {
    const results = await Promise.all(this.#checks.map(runCheck));
    const checks: Record<string, CheckResult> = {};
    const failed: string[] = [];
    this.#checks.forEach((check, i) => {
      const result = results[i]!;
      checks[check.name] = result;
      if (!result.ok) failed.push(check.name);
    });
    return { ok: failed.length === 0, failed, checks };
  }
}

function namedCheck(name: string, check: Check, defaultTimeout: number): NamedCheck {
  if (name === '') throw new TypeError('usher/backend: a check needs a non-empty name');
  if (typeof check === 'function') return { name, run: check, timeoutMs: defaultTimeout };
  if (check !== null && typeof check === 'object' && typeof check.run === 'function') {
    return { name, run: check.run, timeoutMs: milliseconds(`checks.${name}.timeoutMs`, check.timeoutMs, defaultTimeout, 1) };
  }
  throw new TypeError(`usher/backend: check "${name}" must be a function or { run, timeoutMs? }, got ${describeValue(check)}`);
}

async function runCheck(check: NamedCheck): Promise<CheckResult> {
  const controller = new AbortController();
  const started = performance.now();
  const elapsed = (): number => Math.round(performance.now() - started);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<CheckResult>((resolve) => {
    timer = setTimeout(() => {
      const error = `timed out after ${check.timeoutMs} ms`;
      controller.abort(new Error(`usher/backend: check "${check.name}" ${error}`));
      resolve({ ok: false, error, ms: check.timeoutMs });
    }, check.timeoutMs);
    // Not unref'd: a caller awaiting readiness (at start-up, before listening) must get its answer
    // even when nothing else keeps the process alive; the timer lives at most timeoutMs.
  });
  // The async wrapper turns a synchronous throw into a rejection like any other.
  const ran = (async (): Promise<CheckResult> => {
    const value: unknown = await check.run(controller.signal);
    return value === false ? { ok: false, error: 'returned false', ms: elapsed() } : { ok: true, ms: elapsed() };
  })().catch((err: unknown): CheckResult => ({ ok: false, error: errorText(err), ms: elapsed() }));
  try {
    return await Promise.race([ran, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/** A failure's message for the report, whatever was thrown (an Error, a string, undefined, an object). */
function errorText(err: unknown): string {
  let text: string;
  try {
    if (err instanceof AggregateError && err.message === '' && err.errors.length > 0) {
      // Node's failed dual-stack connect: the useful messages are the inner ones.
      text = err.errors.map((inner: unknown) => (inner instanceof Error ? inner.message : describeValue(inner))).join('; ');
    } else if (err instanceof Error) {
      text = String(err.message) !== '' ? String(err.message) : err.name;
    } else if (typeof err === 'string') {
      text = err === '' ? 'failed (threw an empty string)' : err;
    } else {
      text = `failed (threw ${describeValue(err)})`;
    }
  } catch {
    text = 'failed (threw a value that cannot be printed)';
  }
  return text.length > MAX_ERROR_LENGTH ? `${text.slice(0, MAX_ERROR_LENGTH)}…` : text;
}
