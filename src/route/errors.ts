/**
 * Errors raised while compiling routes. The config validator reports these
 * problems first, with file positions; this is the second line of defence for
 * configs built in code (tests, the TypeScript API) that skip the validator.
 */

import { UsherConfigError } from '../errors.ts';

/** What was wrong with the route config. */
export type RouteConfigErrorKind =
  | 'invalid-regex'
  | 'invalid-host'
  | 'invalid-methods'
  | 'invalid-strip-prefix'
  | 'duplicate-name';

/**
 * A route config that cannot be compiled. `field` is the config path of the
 * offending value relative to the listener, e.g. `routes[2].match.headers.x-env`.
 */
export class RouteConfigError extends UsherConfigError {
  readonly kind: RouteConfigErrorKind;
  readonly field: string;

  constructor(kind: RouteConfigErrorKind, field: string, message: string, options?: { cause?: unknown }) {
    super(`${field}: ${message}`, [`${field}: ${message}`]);
    if (options?.cause !== undefined) this.cause = options.cause;
    this.name = 'RouteConfigError';
    this.kind = kind;
    this.field = field;
  }
}
