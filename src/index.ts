/**
 * usher's TypeScript API: embed the balancer, build configs in code, and plug
 * in custom balancing algorithms.
 *
 * ```ts
 * import { Usher, parseConfig, registerBalancer, defineFilter, z } from 'usher';
 * ```
 */
export { Usher, type UsherOptions } from './runtime/usher.ts';
export type { Snapshot } from './runtime/snapshot.ts';
export { Pool, type PoolOptions } from './pool/pool.ts';
export { PoolControl, type BackendSpec } from './pool/pool-control.ts';
export { PoolRuntime, type Selection } from './pool/pool-runtime.ts';
export type { PoolMode } from './pool/pool-mode.ts';
export { BackendControl, type BackendState, type BackendCounters } from './pool/backend-control.ts';
export { BackendRuntime } from './pool/backend-runtime.ts';
export type { PublishedPool, PublishedBackend, PoolDataPlane, AttemptReports, AttemptOutcome, AttemptCounters, BackendUsage } from './pool/published.ts';
export { InFlightTable, type InFlightCounts } from './pool/in-flight.ts';
export { UsherError, UsherConfigError, errorSpecs, type ErrorCode, type ErrorSource } from './errors.ts';
export { loadConfigFile, parseConfig, parseConfigAsync, formatIssue, configJsonSchema, quickConfig, loadConfig, resolveModules } from './config/index.ts';
export type { ConfigResult, ConfigIssue, OptionsSchema } from './config/index.ts';
export type * from './config/types.ts';
export { registerBalancer, createBalancer, balancerNames, BUILTIN_BALANCERS, type RegisterOptions } from './balancer/registry.ts';
export { defineBalancer, type BalancerDefinition } from './balancer/define.ts';
export type * from './balancer/types.ts';
export { hashString } from './balancer/hash-fn.ts';
export { compileRoutes, RouteTable, type CompiledRoute } from './route/table.ts';
export { createRouteRequest, type RouteRequest } from './route/request.ts';
export { defineFilter, type Filter, type FilterDefinition, type FilterRequest, type FilterResponse, type LocalResponse, type RequestVerdict, type BodyTransform } from './filter/filter.ts';
/** The zod usher validates with: filter modules declare their options with it (one zod instance, one error format). */
export { z } from 'zod';
