/**
 * `usher explain` as text: one line per fact, each starting with what it is
 * about (`listener:`, `route 2 api:`, `action:`, `pool api:`, `backend …:`,
 * `pick:`), so a reader scans the left edge and a script can grep.
 */
import type { Explanation } from './explain.ts';
import { describe } from './pool.ts';

/** The explanation as lines of text (without a trailing newline). */
export function formatExplanation(explanation: Explanation): string {
  const { request, listener, routes, match, pool } = explanation;
  const lines: string[] = [];
  lines.push(`request: ${request.method} ${request.target}${request.host === null ? ' (no Host)' : ` (Host: ${request.host})`}`);
  lines.push(`listener: ${listener.name} (${listener.protocol} ${listener.bind}), chosen as ${listener.chosenBy}`);
  for (const route of routes) lines.push(`route ${route.index} ${route.name}: ${route.matched ? 'match' : 'no match'}: ${route.reason}`);
  if (match === null) {
    lines.push(`no route matches: usher answers 404 (no_route)`);
    return lines.join('\n');
  }
  if (match.action === 'redirect') {
    const redirect = match.redirect!;
    lines.push(
      redirect.location === null
        ? `action: redirect ${redirect.code}, but the request has no usable Host and the redirect names none: usher answers 400`
        : `action: redirect ${redirect.code} to ${redirect.location}`,
    );
  } else {
    const upstream = match.upstream!;
    const strip = match.stripPrefix === null ? '' : upstream.target === request.target ? ` (stripPrefix ${match.stripPrefix} does not apply)` : ` (stripPrefix ${match.stripPrefix})`;
    lines.push(`action: proxy to pool ${match.pool}; the backend sees ${upstream.method} ${upstream.target}${strip}`);
  }
  lines.push(`filters: ${match.filters === null || match.filters.length === 0 ? 'none' : match.filters.join(', ')}`);
  if (pool === null) return lines.join('\n');
  const hashing = pool.hashKey === null ? '' : ` on ${pool.hashKey}`;
  const source =
    pool.source === 'live' ? 'live, from the admin API'
    : pool.source === 'file' ? 'from the file; health is known only with --admin'
    : 'from the file: the running usher has no such pool; reload it?';
  lines.push(`pool ${pool.name}: algorithm ${pool.algorithm}${hashing}, mode ${pool.mode} (${source})`);
  if (pool.discovery !== null) lines.push(`  discovery: ${pool.discovery}`);
  if (pool.backends.length === 0) lines.push(pool.discovery !== null && pool.source !== 'live' ? '  no backends in the file' : '  no backends');
  for (const backend of pool.backends) {
    const facts = [`weight ${backend.weight}`, ...(backend.backup ? ['backup'] : []), backend.state, ...(backend.discovered ? ['discovered'] : []), ...(backend.inFlight === null ? [] : [`${backend.inFlight} in flight`])];
    lines.push(`  backend ${describe(backend)}: ${facts.join(', ')}`);
  }
  lines.push(`pick: ${pool.pick.text}`);
  return lines.join('\n');
}
