/**
 * Entity tags of coded responses (Caddy's approach). A strong ETag promises
 * byte-identical bodies, and a gzip body is not the identity one, so a coded
 * response's strong tag gets the coding as a suffix (`"abc"` → `"abc-gzip"`).
 * A client revalidating with that tag must still match at the origin, which
 * never issued it: the suffix is removed from `If-None-Match` and `If-Match`
 * going upstream. `If-Range` is left alone, on purpose: a range of the coded
 * body is not a range of the origin's, so a suffixed `If-Range` must fail at
 * the origin and yield the whole (identity) representation.
 *
 * Weak tags (`W/"..."`) are left as they are on responses: weak comparison
 * already allows a different encoding of the same content. The suffix is
 * stripped from weak tags in requests too, since an intermediary may weaken
 * usher's strong tag (nginx does when it recompresses).
 */
import type { Coding } from './codec.ts';

/** One entity-tag of a list, or `*`: `W/` prefix, opaque part (without quotes). */
interface Tag {
  readonly weak: boolean;
  readonly opaque: string;
}

/** Parses an entity-tag list (`If-None-Match`, `If-Match`); undefined when it does not parse (left alone then). Quoted tags may hold commas. */
function parseTags(value: string): (Tag | '*')[] | undefined {
  const tags: (Tag | '*')[] = [];
  let i = 0;
  const n = value.length;
  for (;;) {
    while (i < n && (value[i] === ' ' || value[i] === '\t' || value[i] === ',')) i++;
    if (i >= n) return tags;
    if (value[i] === '*') {
      tags.push('*');
      i++;
      continue;
    }
    let weak = false;
    if (value.startsWith('W/', i)) {
      weak = true;
      i += 2;
    }
    if (value[i] !== '"') return undefined;
    const end = value.indexOf('"', i + 1);
    if (end === -1) return undefined;
    tags.push({ weak, opaque: value.slice(i + 1, end) });
    i = end + 1;
  }
}

/** `"abc"` → `"abc-gzip"` for a strong tag; weak and malformed tags unchanged. */
export function suffixETag(etag: string, coding: Coding): string {
  const trimmed = etag.trim();
  if (trimmed.length < 2 || !trimmed.startsWith('"') || !trimmed.endsWith('"')) return etag;
  return `${trimmed.slice(0, -1)}-${coding}"`;
}

/** The coding whose suffix `opaque` ends with, among `codings`. */
function suffixOf(opaque: string, codings: readonly Coding[]): Coding | undefined {
  return codings.find((coding) => opaque.length > coding.length + 1 && opaque.endsWith(`-${coding}`));
}

/**
 * An `If-None-Match`/`If-Match` value with the coding suffixes of `codings`
 * removed, and which (original opaque → coding) pairs were found, so a 304
 * can give the client back the tag it has. Undefined when nothing changes.
 */
export function unsuffixTags(value: string, codings: readonly Coding[]): { value: string; stripped: ReadonlyMap<string, Coding> } | undefined {
  const tags = parseTags(value);
  if (tags === undefined) return undefined;
  const stripped = new Map<string, Coding>();
  const out = tags.map((tag) => {
    if (tag === '*') return '*';
    const coding = suffixOf(tag.opaque, codings);
    if (coding === undefined) return `${tag.weak ? 'W/' : ''}"${tag.opaque}"`;
    const opaque = tag.opaque.slice(0, -(coding.length + 1));
    stripped.set(opaque, coding);
    return `${tag.weak ? 'W/' : ''}"${opaque}"`;
  });
  return stripped.size === 0 ? undefined : { value: out.join(', '), stripped };
}

/** The opaque part of a strong ETag, or undefined for a weak or malformed one. */
export function strongOpaque(etag: string): string | undefined {
  const trimmed = etag.trim();
  return trimmed.length >= 2 && trimmed.startsWith('"') && trimmed.endsWith('"') ? trimmed.slice(1, -1) : undefined;
}
