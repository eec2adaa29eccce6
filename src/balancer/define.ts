/**
 * Custom balancers in a module the config names:
 *
 * ```yaml
 * pools:
 *   api:
 *     algorithm:
 *       module: ./balancers/least-latency.ts   # relative to the config file
 *       options: { explore: 0.05 }
 * ```
 *
 * The module's default export is a {@link BalancerDefinition} (write it with
 * {@link defineBalancer} for type inference) or a plain {@link BalancerFactory}
 * (no options). `options` are checked by the definition's schema when the
 * config is loaded (`usher check`, start, reload), with the same
 * `file:line:col path: message` errors as the rest of the file.
 */
import { isOptionsSchema, type OptionsSchema } from '../config/modules.ts';
import { BALANCER_NAME_PATTERN } from './names.ts';
import type { Balancer, BalancerFactory, BalancerOptions, Endpoint } from './types.ts';

/** A balancing algorithm with its name and the options it takes. */
export interface BalancerDefinition<Options = undefined> {
  /** Shown by the admin API, the dashboard, `usher status` and `usher explain`; same rules as {@link registerBalancer} names. */
  readonly name: string;
  /** Checks the config's `options` (any Standard Schema: zod, valibot, arktype). Without it the balancer takes no options. */
  readonly options?: OptionsSchema<Options> | undefined;
  /**
   * True when `pick` reads `ctx.hash`: the pool then hashes its `hashKey` for
   * every request (and allows `hashKey` and `hashBalanceFactor` in the config).
   */
  readonly hashes?: boolean | undefined;
  /**
   * Builds a balancer over `endpoints`, off the hot path, whenever the pool's
   * membership or weights change. Take randomness and time from `context` so
   * the balancer is reproducible in tests (and passes the conformance suite).
   */
  create(endpoints: readonly Endpoint[], options: Options, context: BalancerOptions): Balancer;
}

/**
 * Checks a balancer definition and returns it, frozen. Exists for type
 * inference (the `options` schema types `create`'s `options`) and to fail at
 * import, naming the problem, rather than at the first request.
 *
 * @example
 * ```ts
 * import { z } from 'zod';
 * import { defineBalancer } from 'usher';
 *
 * export default defineBalancer({
 *   name: 'first-available',
 *   options: z.strictObject({ reverse: z.boolean().default(false) }),
 *   create(endpoints, options) {
 *     const order = options.reverse ? [...endpoints].reverse() : endpoints;
 *     return {
 *       pick(ctx, accept) {
 *         for (const e of order) if (accept(e, ctx)) return e;
 *         return undefined;
 *       },
 *     };
 *   },
 * });
 * ```
 * @throws TypeError when the name is malformed or `create` is not a function.
 */
export function defineBalancer<Options = undefined>(definition: BalancerDefinition<Options>): BalancerDefinition<Options> {
  const problem = definitionProblem(definition);
  if (problem !== undefined) throw new TypeError(`defineBalancer: ${problem}`);
  return Object.freeze({ ...definition });
}

/** What is wrong with a would-be definition, or undefined when it is one. */
export function definitionProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return `expected a balancer definition ({ name, create }), got ${describe(value)}`;
  const { name, create, options, hashes } = value as Record<string, unknown>;
  if (typeof name !== 'string' || !BALANCER_NAME_PATTERN.test(name)) {
    return `name must match ${String(BALANCER_NAME_PATTERN)} (lower-case letters, digits, dashes), got ${JSON.stringify(name) ?? 'nothing'}`;
  }
  if (typeof create !== 'function') return `balancer "${name}": create must be a function, got ${describe(create)}`;
  if (options !== undefined && !isOptionsSchema(options)) {
    return `balancer "${name}": options must be a schema implementing Standard Schema v1 (zod, valibot, arktype), got ${describe(options)}`;
  }
  if (hashes !== undefined && typeof hashes !== 'boolean') return `balancer "${name}": hashes must be true or false, got ${describe(hashes)}`;
  return undefined;
}

/**
 * The factory the pool calls, with `options` already checked and bound.
 * `create` is called once per membership or weight change.
 */
export function factoryOf<Options>(definition: BalancerDefinition<Options>, options: Options): BalancerFactory {
  return (endpoints, context) => definition.create(endpoints, options, context);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'object' ? 'an object' : typeof value;
}
