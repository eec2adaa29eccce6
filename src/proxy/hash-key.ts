import type { HashKey } from '../config/types.ts';
import { cookiesOf, queryParamsOf, type RouteRequest } from '../route/request.ts';

/**
 * The request feature a hash-based pool keys on. A missing header, cookie or
 * query parameter hashes as the empty string, so all such requests share one
 * backend rather than failing (HAProxy and Envoy fall back the same way).
 */
export function hashKeyOf(key: HashKey, req: RouteRequest, clientIp: string): string {
  switch (key.kind) {
    case 'client-ip':
      return clientIp;
    case 'path':
      return req.path;
    case 'header': {
      const value = req.headers[key.name];
      return value === undefined ? '' : typeof value === 'string' ? value : value.join(',');
    }
    case 'cookie':
      return cookiesOf(req).get(key.name) ?? '';
    case 'query':
      return queryParamsOf(req).get(key.name) ?? '';
    default: {
      const unreachable: never = key;
      throw new Error(`unknown hash key ${JSON.stringify(unreachable)}`);
    }
  }
}
