import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readiness, type Check, type ReadinessReport } from './checks.ts';
import { paths } from './options.ts';

/** Options of {@link createHealth}. */
export interface HealthOptions {
  /** Named dependency checks run by readiness, e.g. `{ db: () => pool.query('select 1') }`. Default: none (ready while not draining). */
  readonly checks?: Readonly<Record<string, Check>>;
  /** Default timeout of each check in ms (default 500: the whole answer fits in usher's default 1 s check timeout). */
  readonly checkTimeoutMs?: number;
  /** How long in ms a readiness result answers later probes (default 1000). */
  readonly cacheMs?: number;
  /** Paths answered with readiness (default `['/health', '/readyz']`; `/health` is usher's default check path). */
  readonly readinessPaths?: readonly string[];
  /** Paths answered with liveness (default `['/livez']`). */
  readonly livenessPaths?: readonly string[];
  /**
   * Whether a failed check's error message is in the answer (default true).
   * Set false when the health paths are reachable from outside (usher
   * forwards every path to the pool unless a route says otherwise) and
   * error messages may name internal hosts: the answer then names the
   * failed checks only.
   */
  readonly showErrors?: boolean;
}

/** A health answer independent of any framework: status, headers (content-type, cache-control, content-length) and a JSON body. */
export interface HealthAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  /** The JSON text; empty for HEAD (whose `content-length` still gives the GET body's length). */
  readonly body: string;
}

/** The default readiness paths: usher's default health-check path and the Kubernetes convention. */
export const DEFAULT_READINESS_PATHS: readonly string[] = Object.freeze(['/health', '/readyz']);
/** The default liveness path (Kubernetes convention). */
export const DEFAULT_LIVENESS_PATHS: readonly string[] = Object.freeze(['/livez']);

const HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-type': 'application/json; charset=utf-8',
  // A cached "ok" in front of a draining process would defeat the drain.
  'cache-control': 'no-store',
});

/**
 * Liveness and readiness endpoints.
 *
 * - Liveness (`/livez`): 200 `{"status":"ok"}` whenever the process can
 *   answer, draining or not, so an orchestrator never kills a process that is
 *   shutting down on purpose.
 * - Readiness (`/health`, `/readyz`): runs the checks (in parallel, each with a
 *   timeout, cached, single flight) and answers 200 `{"status":"ok","checks":…}`
 *   or 503 `{"status":"unavailable","failed":[…],"checks":…}`; once draining,
 *   503 `{"status":"draining"}` at once, without running the checks.
 *
 * Only GET and HEAD are answered; other methods on these paths, and every other
 * path, are left to the application.
 */
export class Health {
  readonly #readiness: Readiness;
  readonly #readinessPaths: readonly string[];
  readonly #livenessPaths: readonly string[];
  readonly #showErrors: boolean;
  #draining = false;

  constructor(options: HealthOptions = {}) {
    this.#readiness = new Readiness(options);
    this.#readinessPaths = paths('readinessPaths', options.readinessPaths, DEFAULT_READINESS_PATHS);
    this.#livenessPaths = paths('livenessPaths', options.livenessPaths, DEFAULT_LIVENESS_PATHS);
    this.#showErrors = options.showErrors ?? true;
  }

  /** Paths answered with readiness. */
  get readinessPaths(): readonly string[] {
    return this.#readinessPaths;
  }

  /** Paths answered with liveness. */
  get livenessPaths(): readonly string[] {
    return this.#livenessPaths;
  }

  /** Whether readiness answers 503 draining (set by the shutdown, or by {@link startDraining}). */
  get draining(): boolean {
    return this.#draining;
  }

  /** From now on readiness answers 503 `{"status":"draining"}`; it does not come back. */
  startDraining(): void {
    this.#draining = true;
  }

  /** Runs (or reuses) the readiness checks; never rejects. */
  readiness(): Promise<ReadinessReport> {
    return this.#readiness.evaluate();
  }

  /**
   * The answer for a request, or `undefined` (synchronously) when the method
   * and path are not a health endpoint. `url` may carry a query, which is ignored.
   */
  answer(method: string, url: string): Promise<HealthAnswer> | undefined {
    if (method !== 'GET' && method !== 'HEAD') return undefined;
    const query = url.indexOf('?');
    const path = query === -1 ? url : url.slice(0, query);
    const head = method === 'HEAD';
    if (this.#livenessPaths.includes(path)) return Promise.resolve(json(200, { status: 'ok' }, head));
    if (!this.#readinessPaths.includes(path)) return undefined;
    if (this.#draining) return Promise.resolve(json(503, { status: 'draining' }, head));
    return this.#readiness.evaluate().then((report) => {
      // Draining may have started while the checks ran: the newer fact wins.
      if (this.#draining) return json(503, { status: 'draining' }, head);
      const checks = this.#showErrors ? report.checks : withoutErrors(report);
      return report.ok ? json(200, { status: 'ok', checks }, head) : json(503, { status: 'unavailable', failed: report.failed, checks }, head);
    });
  }

  /**
   * A `node:http` request handler for the health paths: answers and returns
   * true, or returns false (and touches nothing) for any other request.
   *
   * ```ts
   * createServer((req, res) => health.handle(req, res) || app(req, res));
   * ```
   */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const answer = this.answer(req.method ?? 'GET', req.url ?? '/');
    if (answer === undefined) return false;
    void answer.then((reply) => {
      // The prober may have given up; writing to a destroyed response is harmless but pointless.
      if (res.destroyed || res.headersSent) return;
      try {
        res.writeHead(reply.status, reply.headers);
        res.end(reply.body);
      } catch {
        // Only a response the application touched meanwhile can throw here; a probe is not worth a crash.
        res.destroy();
      }
    });
    return true;
  }
}

/** Creates the health endpoints; see {@link Health}. */
export function createHealth(options: HealthOptions = {}): Health {
  return new Health(options);
}

function json(status: number, value: unknown, head: boolean): HealthAnswer {
  const text = JSON.stringify(value);
  // HEAD gets the headers GET would get, content-length included, and no body.
  return { status, headers: { ...HEADERS, 'content-length': String(Buffer.byteLength(text)) }, body: head ? '' : text };
}

function withoutErrors(report: ReadinessReport): Record<string, { readonly ok: boolean; readonly ms: number }> {
  const checks: Record<string, { readonly ok: boolean; readonly ms: number }> = {};
  for (const [name, result] of Object.entries(report.checks)) checks[name] = { ok: result.ok, ms: result.ms };
  return checks;
}
