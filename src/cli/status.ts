/**
 * `usher status`: the pools and backends of a running usher as a table, read
 * from `GET /api/pools` on its admin API, its worker threads (when it
 * runs some) from `GET /api/workers`, and the usher instances sharing its
 * Redis (when it has a `redis` section) from `GET /api/peers`; once, or
 * refreshed with `--watch`.
 */
import type { WorkerAdminView } from '../admin/api.ts';
import type { BackendView, PoolView } from '../admin/views.ts';
import type { PeersView } from '../peers/peers.ts';
import { callAdmin, errorMessage, type AdminEndpoint } from './admin-client.ts';
import { exitCodes } from './exit-codes.ts';

/** How `usher status` runs. */
export interface StatusOptions {
  /** Print the API's JSON instead of a table. */
  readonly json: boolean;
  /** Seconds between refreshes; undefined shows the status once. */
  readonly watchSeconds: number | undefined;
  /** Refreshes before stopping (watch mode); undefined: until Ctrl-C. */
  readonly count: number | undefined;
}

const COLUMNS = ['POOL', 'MODE', 'BACKEND', 'STATE', 'WEIGHT', 'IN-FLIGHT', 'REQUESTS', 'FAILURES', '5XX', 'LAST CHECK'] as const;
const WORKER_COLUMNS = ['WORKER', 'STATE', 'CONNECTIONS', 'REQ/S', 'CPU%', 'RESTARTS'] as const;
const PEER_COLUMNS = ['INSTANCE', 'HOST', 'PID', 'VERSION', 'CONFIG', 'ADMIN', 'LAST SEEN'] as const;
/** Columns of numbers, aligned right. */
const NUMERIC: ReadonlySet<string> = new Set(['WEIGHT', 'IN-FLIGHT', 'REQUESTS', 'FAILURES', '5XX', 'WORKER', 'CONNECTIONS', 'REQ/S', 'CPU%', 'RESTARTS', 'PID']);

/** Detail of a failed check shown in the table; the admin API has the whole text. */
const MAX_DETAIL = 40;

/** The table's rows, one per backend (a pool without backends gets one row of dashes), header first. */
export function statusRows(pools: readonly PoolView[], nowMs: number): string[][] {
  const rows: string[][] = [[...COLUMNS]];
  for (const pool of pools) {
    if (pool.backends.length === 0) rows.push([pool.name, pool.mode, '-', '-', '-', '-', '-', '-', '-', '-']);
    for (const backend of pool.backends) {
      rows.push([
        pool.name,
        pool.mode,
        backend.name === null ? backend.address : `${backend.name} ${backend.address}`,
        backend.state,
        weightOf(backend),
        String(backend.inFlight),
        String(backend.counters.requests),
        String(backend.counters.failures),
        String(backend.counters.responses5xx),
        lastCheck(backend, nowMs),
      ]);
    }
  }
  return rows;
}

/**
 * The workers table's rows, one per worker thread, header first: open
 * connections, requests per second and CPU (% of one core)
 * between its last two usage reports, and restarts.
 */
export function workerRows(workers: readonly WorkerAdminView[]): string[][] {
  const rows: string[][] = [[...WORKER_COLUMNS]];
  for (const worker of workers) {
    rows.push([String(worker.index), worker.state, String(worker.connections), worker.requestsPerSecond.toFixed(1), worker.cpuPercent.toFixed(1), String(worker.restarts)]);
  }
  return rows;
}

/**
 * The peers table's rows, header first: one per live instance, this one
 * first and marked `(this)`, a config that differs from this one's marked
 * `(differs)`.
 */
export function peerRows(view: PeersView): string[][] {
  const rows: string[][] = [[...PEER_COLUMNS]];
  for (const peer of view.peers) {
    rows.push([
      peer.self ? `${peer.instance} (this)` : peer.instance,
      peer.hostname,
      String(peer.pid),
      peer.version,
      peer.sameConfig ? peer.configHash : `${peer.configHash} (differs)`,
      peer.admin ?? '-',
      `${(peer.ageMs / 1000).toFixed(1)}s ago`,
    ]);
  }
  return rows;
}

/** The lines above the peers table: where Redis is, how many live, and what is wrong (Redis away, configs that differ). */
export function peerSummary(view: PeersView): string[] {
  const lines = [`peers: ${view.liveInstances} instance${view.liveInstances === 1 ? '' : 's'} on ${view.redis} (prefix ${view.keyPrefix}${view.shareAdminActions ? ', admin actions shared' : ''})`];
  if (!view.connected) {
    const age = view.listAgeMs === null ? 'never listed' : `as of ${(view.listAgeMs / 1000).toFixed(1)}s ago`;
    lines.push(`redis unreachable${view.error === null ? '' : `: ${view.error}`}; peers ${age}`);
  }
  if (view.configMismatch) lines.push('config mismatch: the live instances do not all serve the same config (see CONFIG)');
  if (view.duplicateInstance) lines.push(`another process uses this instance id (${view.instance}): give each instance its own redis.instance`);
  return lines;
}

/**
 * One line per discovery source of each pool: what it asks, its state, the
 * members it found, how old its last answer is, the next lookup, the last error.
 * `api: DNS SRV _http._tcp.api.internal: ok, 3 members, last answer 2.1s ago, next in 27.9s`.
 */
export function discoveryLines(pools: readonly PoolView[]): string[] {
  const lines: string[] = [];
  for (const pool of pools) {
    for (const source of pool.discovery?.sources ?? []) {
      const age = source.lastSuccessAgeMs === null ? 'no answer yet' : `last answer ${(source.lastSuccessAgeMs / 1000).toFixed(1)}s ago`;
      const next = source.nextLookupInMs === null ? '' : `, next in ${(source.nextLookupInMs / 1000).toFixed(1)}s`;
      const error = source.lastError === null ? '' : `: ${source.lastError}`;
      lines.push(`${pool.name}: ${source.source.toUpperCase()} ${source.query}: ${source.state}, ${source.members} members, ${age}${next}${error}`);
    }
  }
  return lines;
}

/** The configured weight, and the one in use when slow start holds it lower. */
function weightOf(backend: BackendView): string {
  return backend.effectiveWeight === backend.weight ? String(backend.weight) : `${backend.weight} (${backend.effectiveWeight})`;
}

/** `pass 1.2s ago`, `fail 0.4s ago: connect ECONNREFUSED`, or `-` without active checks. */
function lastCheck(backend: BackendView, nowMs: number): string {
  const check = backend.checks.at(-1);
  if (check === undefined) return '-';
  const ago = `${Math.max(0, (nowMs - Date.parse(check.at)) / 1000).toFixed(1)}s ago`;
  if (check.ok) return `pass ${ago}`;
  const detail = check.detail.length > MAX_DETAIL ? `${check.detail.slice(0, MAX_DETAIL - 1)}…` : check.detail;
  return `fail ${ago}: ${detail}`;
}

/** Rows as aligned text: two spaces between columns, numbers right-aligned, no trailing spaces. */
export function formatTable(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  const header = rows[0]!;
  return rows
    .map((row) =>
      row
        .map((cell, column) => (NUMERIC.has(header[column]!) ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** Shows the status once, or every `watchSeconds` until `count` refreshes or SIGINT. Returns the exit code. */
export async function runStatus(endpoint: AdminEndpoint, options: StatusOptions): Promise<number> {
  if (options.watchSeconds === undefined) {
    const shown = await showOnce(endpoint, options.json, false);
    return shown ? exitCodes.ok : exitCodes.configOrStartup;
  }
  const intervalMs = options.watchSeconds * 1000;
  let stopped = false;
  let wake: (() => void) | undefined;
  const stop = (): void => {
    stopped = true;
    wake?.();
  };
  process.once('SIGINT', stop);
  try {
    for (let refresh = 1; !stopped; refresh++) {
      if (process.stdout.isTTY) process.stdout.write('\x1b[H\x1b[2J'); // clear the screen, cursor home
      else if (refresh > 1) process.stdout.write('\n');
      if (!options.json) process.stdout.write(`usher status: ${endpoint.url}, every ${options.watchSeconds}s, ${new Date().toISOString()}\n\n`);
      // A failed refresh is shown and the watch goes on: usher may be restarting.
      await showOnce(endpoint, options.json, true);
      if (options.count !== undefined && refresh >= options.count) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, intervalMs);
      });
    }
  } finally {
    process.off('SIGINT', stop);
  }
  return exitCodes.ok;
}

async function showOnce(endpoint: AdminEndpoint, json: boolean, watching: boolean): Promise<boolean> {
  const [answer, workersAnswer, peersAnswer] = await Promise.all([
    callAdmin(endpoint, 'GET', '/api/pools', 10_000),
    callAdmin(endpoint, 'GET', '/api/workers', 10_000),
    callAdmin(endpoint, 'GET', '/api/peers', 10_000),
  ]);
  const problem = !answer.reached ? answer.message : !answer.ok ? `admin API at ${endpoint.url}: ${errorMessage(answer)}` : undefined;
  if (problem !== undefined || !answer.reached) {
    (watching ? process.stdout : process.stderr).write(`usher: ${problem}\n`);
    return false;
  }
  // An usher without worker threads lists none, and an older one has no /api/workers: no section then.
  const workers = workersAnswer.reached && workersAnswer.ok ? ((workersAnswer.body as { workers?: WorkerAdminView[] }).workers ?? []) : [];
  // Without a redis section (404), or from an older usher, there is no peers section.
  const peers = peersAnswer.reached && peersAnswer.ok ? (peersAnswer.body as PeersView) : undefined;
  if (json) {
    const body = { ...(answer.body as object), ...(workers.length > 0 ? { workers } : {}), ...(peers === undefined ? {} : { peers }) };
    process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
    return true;
  }
  const pools = (answer.body as { pools?: PoolView[] }).pools ?? [];
  process.stdout.write(`${formatTable(statusRows(pools, Date.now()))}\n`);
  const discovery = discoveryLines(pools);
  if (discovery.length > 0) process.stdout.write(`\n${discovery.join('\n')}\n`);
  if (workers.length > 0) process.stdout.write(`\n${formatTable(workerRows(workers))}\n`);
  if (peers !== undefined) process.stdout.write(`\n${peerSummary(peers).join('\n')}\n${formatTable(peerRows(peers))}\n`);
  return true;
}
