/**
 * A route's `redirect`, run as the last filter of its chain: it answers
 * every request that reaches it (Gateway API RequestRedirect). The Location
 * is `proxy/redirect.ts`'s, so HTTP/1.1 and HTTP/2 clients get the same one.
 */
import type { RedirectConfig } from '../config/types.ts';
import { UsherError } from '../errors.ts';
import { redirectLocation } from '../proxy/redirect.ts';
import type { InternalFilter } from './chain.ts';
import type { FilterRequest, LocalResponse } from './filter.ts';

/** The `redirect` of one route; `listenerProto` is the scheme the Location keeps by default. */
export function redirectFilter(redirect: RedirectConfig, listenerProto: 'http' | 'https'): InternalFilter {
  return Object.freeze({
    name: 'redirect',
    onRequest(request: FilterRequest): LocalResponse | UsherError {
      const location = redirectLocation(redirect, request, listenerProto);
      if (location === undefined) return new UsherError('USHER_DOWNSTREAM_BAD_REQUEST', 'a redirect needs a valid Host');
      return { status: redirect.code, headers: { location } };
    },
  });
}
