/**
 * `headers`: set, add and remove request and response header fields (Gateway
 * API RequestHeaderModifier and ResponseHeaderModifier, Traefik `headers`,
 * Envoy `request_headers_to_add`). Each side applies `set` (replacing every
 * field of that name), then `add` (appending), then `remove`. Names and values
 * are checked when the config loads (no framing, hop-by-hop or usher-owned
 * fields), so a request pays only for copying the edits.
 */
import type { HeaderEditsConfig, HeadersFilterConfig } from '../config/types.ts';
import type { Filter, FilterRequest, FilterResponse } from './filter.ts';
import { FilterRun, ResponseView } from './run.ts';

/** One side's edits, flattened at config time. */
interface Compiled {
  /** `[name, value, ...]` */
  readonly set: readonly string[];
  /** `set`'s names, lowercased. */
  readonly lowerSet: readonly string[];
  readonly add: readonly string[];
  /** Lowercase names. */
  readonly remove: readonly string[];
}

function compile(edits: HeaderEditsConfig | undefined): Compiled | undefined {
  if (edits === undefined) return undefined;
  const set = Object.entries(edits.set ?? {}).flat();
  const add = Object.entries(edits.add ?? {}).flatMap(([name, value]) => (typeof value === 'string' ? [name, value] : value.flatMap((one) => [name, one])));
  const remove = (edits.remove ?? []).map((name) => name.toLowerCase());
  if (set.length === 0 && add.length === 0 && remove.length === 0) return undefined;
  const lowerSet = Object.keys(edits.set ?? {}).map((name) => name.toLowerCase());
  return Object.freeze({ set, lowerSet, add, remove });
}

function apply(target: FilterRequest | FilterResponse, edits: Compiled): void {
  if (target instanceof FilterRun) target.headers.applyTrusted(edits.set, edits.lowerSet, edits.add, edits.remove);
  else if (target instanceof ResponseView) {
    target.edits.applyTrusted(edits.set, edits.lowerSet, edits.add, edits.remove);
    target.edited = true;
  } else {
    for (let i = 0; i < edits.set.length; i += 2) target.setHeader(edits.set[i]!, edits.set[i + 1]!);
    for (let i = 0; i < edits.add.length; i += 2) target.addHeader(edits.add[i]!, edits.add[i + 1]!);
    for (const name of edits.remove) target.removeHeader(name);
  }
}

/** The `headers` filter of one route. */
export function headersFilter(config: HeadersFilterConfig): Filter {
  const request = compile(config.request);
  const response = compile(config.response);
  const filter: { -readonly [K in keyof Filter]: Filter[K] } = { name: 'headers' };
  if (request !== undefined) filter.onRequest = (view) => apply(view, request);
  if (response !== undefined) filter.onResponse = (view) => apply(view, response);
  return Object.freeze(filter);
}
