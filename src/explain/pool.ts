/**
 * The pool half of `usher explain`: the pool a route sends to, its algorithm
 * and mode, its backends (from the file, or live from the admin API) and,
 * when the algorithm is deterministic for this request (hash, Maglev, a
 * sticky cookie signed with a known secret, a custom balancer that hashes),
 * which backend the request would reach.
 */
import type { BackendView, PoolView } from '../admin/views.ts';
import { algorithmHashes, algorithmName, createAlgorithm } from '../balancer/algorithm.ts';
import { hashString } from '../balancer/hash-fn.ts';
import type { Endpoint } from '../balancer/types.ts';
import { formatHostPort } from '../config/hostport.ts';
import type { HashKey, PoolConfig } from '../config/types.ts';
import { StickyCookie } from '../pool/sticky.ts';
import { hashKeyOf } from '../proxy/hash-key.ts';
import { cookiesOf, type RouteRequest } from '../route/request.ts';

/** One backend as explain shows it. */
export interface BackendLine {
  readonly address: string;
  readonly name: string | null;
  readonly weight: number;
  readonly backup: boolean;
  /** From the file: `enabled`, `draining`, `disabled`. Live: the admin API's state (`healthy`, `draining`, `unhealthy`, …). */
  readonly state: string;
  /** Live only: requests in flight now. */
  readonly inFlight: number | null;
  /** Whether it can take this request now (from the file: enabled, health assumed). */
  readonly available: boolean;
  /** Live only: found by discovery (DNS), not listed in the file. */
  readonly discovered: boolean;
  /** Live only: terminating but still serving (discovery): what the pool's `fallback` mode uses. */
  readonly fallback: boolean;
}

/** Which backend this request would reach, when that can be known without sending it. */
export interface PickExplanation {
  readonly computable: boolean;
  /** `host:port` of that backend. */
  readonly backend: string | null;
  /** How it was decided, or why it cannot be. */
  readonly text: string;
}

export interface PoolExplanation {
  readonly name: string;
  readonly algorithm: string;
  /** The hash key, for algorithms that hash. */
  readonly hashKey: string | null;
  readonly mode: string;
  /**
   * `file`: as the config says, every backend assumed healthy. `live`: from the
   * running usher's admin API. `file, not live`: the admin API was asked but the
   * running usher has no such pool (its config differs from the file).
   */
  readonly source: 'file' | 'live' | 'file, not live';
  readonly backends: readonly BackendLine[];
  /**
   * Where discovered members come from (`discovery` in the file), and, live,
   * what the running usher found; null without discovery. Explain never
   * resolves a name itself.
   */
  readonly discovery: string | null;
  readonly pick: PickExplanation;
}

/**
 * Explains pool `name` for `request`. `livePools` are the running usher's
 * pools from `GET /api/pools`, when `--admin` asked for them.
 */
export function explainPool(name: string, config: PoolConfig, request: RouteRequest, clientIp: string, livePools: readonly PoolView[] | undefined): PoolExplanation {
  const live = livePools?.find((pool) => pool.name === name);
  const backends = live === undefined ? config.backends.map(fileBackend) : live.backends.map(liveBackend);
  // From the file, a pool that discovers its members has members explain cannot know (it resolves nothing).
  const unknown = live === undefined && config.discovery !== undefined;
  const mode = live?.mode ?? (unknown ? 'unknown' : fileMode(backends));
  const hashes = algorithmHashes(config.algorithm);
  return {
    name,
    algorithm: algorithmName(config.algorithm),
    hashKey: hashes ? formatHashKey(config.hashKey) : null,
    mode,
    source: live !== undefined ? 'live' : livePools === undefined ? 'file' : 'file, not live',
    backends,
    discovery: describeDiscovery(config, live),
    pick: unknown
      ? { computable: false, backend: null, text: `the pool's members also come from ${unknownSources(config)}: ask the running usher with --admin` }
      : explainPick(name, config, backends, mode, request, clientIp),
  };
}

/** What explain cannot know from the file: `DNS, which explain does not resolve`. */
function unknownSources(config: PoolConfig): string {
  const dns = config.discovery?.dns !== undefined;
  const kubernetes = config.discovery?.kubernetes !== undefined;
  if (dns && kubernetes) return 'DNS and Kubernetes, which explain does not resolve or watch';
  return kubernetes ? 'Kubernetes, which explain does not watch' : 'DNS, which explain does not resolve';
}

/** `members from DNS, A/AAAA api.internal port 8080`, and live: `: ok, 3 found, last answer 1.2 s ago`; one per source, `; `-separated. */
function describeDiscovery(config: PoolConfig, live: PoolView | undefined): string | null {
  const parts: string[] = [];
  const dns = config.discovery?.dns;
  if (dns !== undefined) {
    const family = dns.family === 'ipv4' ? 'A' : dns.family === 'ipv6' ? 'AAAA' : 'A/AAAA';
    parts.push(describeSource('DNS', dns.type === 'srv' ? `SRV ${dns.name}` : `${family} ${dns.name} port ${dns.port}`, live?.discovery?.sources.find((s) => s.source === 'dns')));
  }
  const kubernetes = config.discovery?.kubernetes;
  if (kubernetes !== undefined) {
    const source = live?.discovery?.sources.find((s) => s.source === 'kubernetes');
    parts.push(describeSource('Kubernetes', source?.query ?? `EndpointSlices ${kubernetes.namespace ?? '(its own namespace)'}/${kubernetes.service} port ${kubernetes.port}`, source));
  }
  return parts.length === 0 ? null : parts.join('; ');
}

function describeSource(kind: string, query: string, source: NonNullable<PoolView['discovery']>['sources'][number] | undefined): string {
  if (source === undefined) return `members from ${kind}, ${query}`;
  const age = source.lastSuccessAgeMs === null ? 'no answer yet' : `last answer ${(source.lastSuccessAgeMs / 1000).toFixed(1)} s ago`;
  return `members from ${kind}, ${query}: ${source.state}, ${source.members} found, ${age}${source.lastError === null ? '' : ` (${source.lastError})`}`;
}

function fileBackend(backend: PoolConfig['backends'][number]): BackendLine {
  return {
    address: formatHostPort(backend.address),
    name: backend.name ?? null,
    weight: backend.weight,
    backup: backend.backup,
    state: backend.state,
    inFlight: null,
    available: backend.state === 'enabled',
    discovered: false,
    fallback: false,
  };
}

function liveBackend(backend: BackendView): BackendLine {
  return {
    address: backend.address,
    name: backend.name,
    weight: backend.weight,
    backup: backend.backup,
    state: backend.state,
    inFlight: backend.inFlight,
    available: backend.state === 'healthy' || backend.state === 'slow-start',
    discovered: backend.discovered,
    fallback: backend.terminating && backend.healthy && !backend.ejected && backend.adminState !== 'disabled',
  };
}

/** The pool's mode if every backend were healthy: `Pool.stateChanged` without health. */
function fileMode(backends: readonly BackendLine[]): string {
  if (backends.some((b) => !b.backup && b.available)) return 'primary';
  return backends.some((b) => b.backup && b.available) ? 'backup' : 'none';
}

function explainPick(
  pool: string,
  config: PoolConfig,
  backends: readonly BackendLine[],
  mode: string,
  request: RouteRequest,
  clientIp: string,
): PickExplanation {
  if (mode === 'none') return { computable: true, backend: null, text: 'no backend is available: usher answers 503 (no_backend)' };
  // Panic mode ignores health, not operator intent.
  // Fallback mode takes only terminating discovered backends that still serve.
  const accepted = (b: BackendLine): boolean => (mode === 'panic' ? b.state !== 'draining' && b.state !== 'disabled' : mode === 'fallback' ? b.fallback : b.available);
  const notes: string[] = [];
  const sticky = config.sticky;
  if (sticky !== undefined) {
    const cookie = cookiesOf(request).get(sticky.cookie);
    if (cookie === undefined) notes.push(`no ${sticky.cookie} cookie: balanced, then pinned with Set-Cookie`);
    else if (sticky.secret === undefined) {
      return { computable: false, backend: null, text: `the ${sticky.cookie} cookie is signed with a key made at start (no sticky.secret): cannot tell which backend it pins` };
    } else {
      const signer = new StickyCookie(sticky);
      const pinned = backends.find((b) => signer.token(pool, b.address) === cookie);
      if (pinned !== undefined && accepted(pinned)) {
        return { computable: true, backend: pinned.address, text: `the ${sticky.cookie} cookie pins ${describe(pinned)}` };
      }
      notes.push(pinned === undefined ? `the ${sticky.cookie} cookie pins no backend of this pool: balanced, then re-pinned` : `the ${sticky.cookie} cookie pins ${describe(pinned)}, which is not available: balanced, then re-pinned`);
    }
  }
  const algorithm = algorithmName(config.algorithm);
  if (!algorithmHashes(config.algorithm)) {
    return { computable: false, backend: null, text: [...notes, `${algorithm} depends on load and chance: any available candidate`].join('; ') };
  }
  const key = hashKeyOf(config.hashKey, request, clientIp);
  // As the pool builds them: one balancer over the primaries, one over the backups, tables from configured weights.
  const group = backends.filter((b) => (mode === 'backup' ? b.backup : mode === 'panic' || mode === 'fallback' || !b.backup));
  const endpoints: Endpoint[] = group.map((b, index) => ({ index, key: b.address, weight: b.weight, inFlight: b.inFlight ?? 0 }));
  const balancer = createAlgorithm(config.algorithm, endpoints, { random: () => 0, now: () => 0, hashBalanceFactor: config.hashBalanceFactor });
  const chosen = balancer.pick({ hash: hashString(key), tried: [] }, (e) => accepted(group[e.index]!));
  const source = `${formatHashKey(config.hashKey)} ${describeKey(config.hashKey, key)}`;
  const bounded = config.hashBalanceFactor === undefined ? '' : ` (hashBalanceFactor may move it while that backend is busy)`;
  if (chosen === undefined) return { computable: true, backend: null, text: [...notes, `${algorithm} on ${source}: no candidate is available`].join('; ') };
  const line = group[chosen.index]!;
  return { computable: true, backend: line.address, text: [...notes, `${algorithm} on ${source} picks ${describe(line)}${bounded}`].join('; ') };
}

/** `10.0.0.6:3000 (beta)`. */
export function describe(backend: Pick<BackendLine, 'address' | 'name'>): string {
  return backend.name === null ? backend.address : `${backend.address} (${backend.name})`;
}

/** `= "42"`, or `is missing (hashes as "")`, or the client address. */
function describeKey(hashKey: HashKey, key: string): string {
  if (hashKey.kind === 'client-ip') return `= ${key} (the client address; set it with --client-ip)`;
  return key === '' && hashKey.kind !== 'path' ? 'is missing (hashes as "")' : `= ${JSON.stringify(key)}`;
}

/** `client-ip`, `path`, `header:x-user-id`: as written in the config. */
export function formatHashKey(hashKey: HashKey): string {
  return hashKey.kind === 'client-ip' || hashKey.kind === 'path' ? hashKey.kind : `${hashKey.kind}:${hashKey.name}`;
}
