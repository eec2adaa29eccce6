import type { Accept, Balancer, PickContext } from '../balancer/types.ts';
import { createBalancer } from '../balancer/registry.ts';
import type { HashKey, PoolConfig } from '../config/types.ts';
import { Backend } from './backend.ts';
import { UpstreamConnectionPool } from './upstream-connection.ts';
import { StickyCookie } from './sticky.ts';

/**
 * Health, draining and "already tried" are decided here, once, for every
 * algorithm: the balancer only ranks candidates (see balancer/types.ts).
 */
const acceptAvailable: Accept = (endpoint, ctx) =>
  (endpoint as Backend).available && (ctx.tried.length === 0 || !ctx.tried.includes(endpoint.index));

const hashAlgorithms: ReadonlySet<string> = new Set(['hash', 'maglev']);

/** Options that are not part of the config file: injected for tests and embedding. */
export interface PoolOptions {
  readonly random?: () => number;
  readonly now?: () => number;
}

/**
 * A named set of interchangeable backends and the rules for spreading requests
 * over them: the balancer, the hash key, sticky sessions and the upstream timeouts.
 */
export class Pool {
  readonly name: string;
  readonly config: PoolConfig;
  readonly backends: readonly Backend[];
  readonly balancer: Balancer;
  /** Set when the algorithm hashes a request feature; the proxy computes `ctx.hash` only then. */
  readonly hashKey: HashKey | undefined;
  readonly sticky: StickyCookie | undefined;
  readonly #byStickyToken: ReadonlyMap<string, Backend>;

  constructor(name: string, config: PoolConfig, options: PoolOptions = {}) {
    this.name = name;
    this.config = config;
    this.sticky = config.sticky === undefined ? undefined : new StickyCookie(config.sticky);
    const sticky = this.sticky;
    this.backends = config.backends.map(
      (backend, index) =>
        new Backend({
          index,
          address: backend.address,
          weight: backend.weight,
          stickyToken: sticky === undefined ? '' : sticky.token(name, `${backend.address.host}:${backend.address.port}`),
          connections: new UpstreamConnectionPool(backend.address, config.timeouts),
        }),
    );
    this.#byStickyToken = new Map(this.backends.map((backend) => [backend.stickyToken, backend]));
    this.hashKey = hashAlgorithms.has(config.algorithm) ? config.hashKey : undefined;
    this.balancer = createBalancer(config.algorithm, this.backends, {
      random: options.random ?? Math.random,
      now: options.now ?? performance.now.bind(performance),
      hashBalanceFactor: config.hashBalanceFactor,
    });
  }

  /** A backend for a new request, or undefined when none is available. */
  pick(ctx: PickContext): Backend | undefined {
    // The balancer returns one of the endpoints it was built with: our backends.
    return this.balancer.pick(ctx, acceptAvailable) as Backend | undefined;
  }

  /** The backend a sticky cookie value pins to, if it exists and is available. */
  pinned(token: string, ctx: PickContext): Backend | undefined {
    const backend = this.#byStickyToken.get(token);
    return backend !== undefined && acceptAvailable(backend, ctx) ? backend : undefined;
  }

  /** Closes idle upstream connections; busy ones close when their exchange ends. */
  close(): void {
    for (const backend of this.backends) backend.connections.close();
  }
}
