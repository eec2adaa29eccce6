import { Agent, request } from 'undici';
import { waitFor } from './wait.ts';

/** One failed request of a load run. */
export interface LoadFailure {
  readonly at: number;
  readonly error: string;
}

export interface LoadResult {
  readonly ok: number;
  readonly failures: readonly LoadFailure[];
  /** Responses per `x-origin` header value. */
  readonly byOrigin: ReadonlyMap<string, number>;
  /** performance.now() of each response, per origin (to check when traffic to one stopped). */
  readonly lastSeen: ReadonlyMap<string, number>;
}

export interface SteadyLoad {
  /** Stops issuing new requests and resolves once every in-flight one finished. */
  stop(): Promise<LoadResult>;
  /** Requests answered so far (any status). */
  readonly completed: () => number;
}

/**
 * A bounded steady load of GETs over kept-alive connections: `concurrency`
 * workers each send requests back to back until `stop()` is called, `maxRequests`
 * were sent, or `maxMs` passed. A failure is any non-2xx status or transport error.
 */
export function steadyLoad(
  url: string,
  options: { concurrency?: number; maxRequests?: number; maxMs?: number; path?: string } = {},
): SteadyLoad {
  const concurrency = options.concurrency ?? 4;
  const maxRequests = options.maxRequests ?? 20_000;
  const deadline = performance.now() + (options.maxMs ?? 20_000);
  const dispatcher = new Agent({ connections: concurrency, keepAliveTimeout: 10_000 });
  const failures: LoadFailure[] = [];
  const byOrigin = new Map<string, number>();
  const lastSeen = new Map<string, number>();
  let sent = 0;
  let ok = 0;
  let completed = 0;
  let stopped = false;
  const worker = async (): Promise<void> => {
    while (!stopped && sent < maxRequests && performance.now() < deadline) {
      sent++;
      try {
        const res = await request(`${url}${options.path ?? '/load'}`, { dispatcher, headersTimeout: 10_000, bodyTimeout: 10_000 });
        await res.body.text();
        completed++;
        const origin = String(res.headers['x-origin'] ?? '?');
        if (res.statusCode >= 200 && res.statusCode < 300) {
          ok++;
          byOrigin.set(origin, (byOrigin.get(origin) ?? 0) + 1);
          lastSeen.set(origin, performance.now());
        } else {
          failures.push({ at: performance.now(), error: `status ${res.statusCode} ${String(res.headers['x-usher-error'] ?? '')}` });
        }
      } catch (err) {
        completed++;
        failures.push({ at: performance.now(), error: (err as Error).message });
      }
    }
  };
  const workers = Array.from({ length: concurrency }, worker);
  const all = Promise.all(workers);
  return {
    completed: () => completed,
    async stop() {
      stopped = true;
      await all;
      await dispatcher.close();
      return { ok, failures, byOrigin, lastSeen };
    },
  };
}

/** Polls until `condition` holds (test/helpers/wait.ts). */
export { waitFor as until };
