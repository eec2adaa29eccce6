/**
 * Loads the balancer modules a config names (`algorithm: { module, options }`)
 * and checks their options: the balancer half of `resolveModules`.
 */
import { formatHostPort } from '../config/hostport.ts';
import { checkModuleOptions, errorText, loadConfigModule, type ModuleExports } from '../config/modules.ts';
import { failed, parsed, type Parsed } from '../config/parsed.ts';
import type { Reporter } from '../config/report.ts';
import type { BalancerModuleConfig, LoadedBalancer, PoolConfig, UsherConfig } from '../config/types.ts';
import { definitionProblem, factoryOf, type BalancerDefinition } from './define.ts';
import { BALANCER_NAME_PATTERN } from './names.ts';
import type { BalancerFactory } from './types.ts';

/**
 * Returns `config` with every balancer module loaded (`algorithm.loaded`), or
 * undefined after reporting each module that failed to load, exported the
 * wrong thing, or was given options its schema refuses. Modules already
 * loaded are left as they are.
 */
export async function resolveBalancerModules(config: UsherConfig, reporter: Reporter): Promise<UsherConfig | undefined> {
  const pools: Record<string, PoolConfig> = {};
  let changed = false;
  let failedAny = false;
  await Promise.all(
    Object.entries(config.pools).map(async ([name, pool]) => {
      pools[name] = pool;
      const algorithm = pool.algorithm;
      if (typeof algorithm === 'string' || algorithm.loaded !== undefined) return;
      const loaded = await loadBalancer(pool, algorithm, ['pools', name], reporter);
      if (loaded === undefined) failedAny = true;
      else {
        pools[name] = { ...pool, algorithm: { ...algorithm, loaded } };
        changed = true;
      }
    }),
  );
  if (failedAny) return undefined;
  // Keep the file's pool order: it is the order the admin API and dashboard show.
  return changed ? { ...config, pools: Object.fromEntries(Object.keys(config.pools).map((name) => [name, pools[name]!])) } : config;
}

async function loadBalancer(pool: PoolConfig, ref: BalancerModuleConfig, poolPath: readonly string[], reporter: Reporter): Promise<LoadedBalancer | undefined> {
  const at = [...poolPath, 'algorithm'];
  const definition = await loadConfigModule(ref, at, reporter, balancerExport);
  if (definition === undefined) return undefined;
  const what = `balancer "${definition.name}"`;
  const options = await checkModuleOptions(definition.options, ref, at, reporter, what);
  if (!options.ok) return undefined;
  const hashes = definition.hashes === true;
  if (!hashes) {
    // Only keys written in the file: the resolved config always has a hashKey (its default).
    for (const key of ['hashKey', 'hashBalanceFactor']) {
      if (reporter.valueAt([...poolPath, key]) !== undefined) {
        reporter.error([...poolPath, key], `${key} only applies to algorithms that hash, and ${what} does not (its definition has no "hashes: true")`, { target: 'key' });
        return undefined;
      }
    }
  }
  const factory = factoryOf(definition, options.value);
  // Build it once over the file's backends, as the pool will: a create() that throws is a config error now, not a 500 later.
  for (const backup of [false, true]) {
    const endpoints = pool.backends
      .filter((backend) => backend.backup === backup)
      .map((backend, index) => ({ index, key: formatHostPort(backend.address), weight: backend.weight, inFlight: 0 }));
    try {
      factory(endpoints, { random: Math.random, now: () => performance.now(), hashBalanceFactor: pool.hashBalanceFactor });
    } catch (error) {
      reporter.error([...at, 'module'], `${what}: create() threw over this pool's ${backup ? 'backup' : 'primary'} backends: ${errorText(error)}`);
      return undefined;
    }
  }
  return { name: definition.name, factory, hashes };
}

/**
 * The module's default export as a definition: a {@link BalancerDefinition},
 * or a bare {@link BalancerFactory} (a balancer without options, named after
 * the function).
 */
function balancerExport(exports: ModuleExports): Parsed<BalancerDefinition<unknown>> {
  const value = exports['default'];
  if (value === undefined) {
    return failed('has no default export; export default defineBalancer({ name, create }) (or a balancer factory function)');
  }
  if (typeof value === 'function') {
    const factory = value as BalancerFactory;
    const name = BALANCER_NAME_PATTERN.test(factory.name) ? factory.name : 'custom';
    return parsed({ name, create: (endpoints, _options, context) => factory(endpoints, context) });
  }
  const problem = definitionProblem(value);
  return problem === undefined ? parsed(value as BalancerDefinition<unknown>) : failed(`its default export is not a balancer: ${problem}`);
}
