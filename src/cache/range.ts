/**
 * Serving byte ranges from a complete stored body (RFC 9110 §14).
 *
 * The parts returned are `subarray` views over the stored body: only the
 * small multipart headers are allocated, never a copy of the content.
 */

/** An inclusive byte range, `first`..`last`. */
export interface ByteRange {
  readonly first: number;
  readonly last: number;
}

export type RangeSpec =
  | { readonly kind: 'suffix'; readonly length: number }
  | { readonly kind: 'int'; readonly first: number; readonly last?: number };

/**
 * Parses a `Range` value (RFC 9110 §14.1.1, §14.2). Returns undefined when
 * the header must be ignored, i.e. the full response is sent: not the
 * `bytes` unit, a syntax error anywhere, or an int-range whose last-pos is
 * below its first-pos ("invalid", §14.1.1). The unit is case-insensitive and
 * the list allows OWS and empty members (§5.6.1).
 */
export function parseRange(value: string): RangeSpec[] | undefined {
  const m = /^\s*bytes\s*=(.*)$/is.exec(value);
  if (!m) return undefined;
  const specs: RangeSpec[] = [];
  for (const raw of m[1]!.split(',')) {
    const s = raw.trim();
    if (s === '') continue;
    let r = /^-(\d+)$/.exec(s);
    if (r) {
      specs.push({ kind: 'suffix', length: safeInt(r[1]!) });
      continue;
    }
    r = /^(\d+)-(\d*)$/.exec(s);
    if (!r) return undefined;
    const first = safeInt(r[1]!);
    if (r[2] === '') {
      specs.push({ kind: 'int', first });
    } else {
      const last = safeInt(r[2]!);
      if (last < first) return undefined;
      specs.push({ kind: 'int', first, last });
    }
  }
  return specs.length === 0 ? undefined : specs;
}

/** Digits as a number; lengths beyond 2^53 are all "longer than any stored body". */
function safeInt(digits: string): number {
  const n = Number(digits);
  return Number.isSafeInteger(n) ? n : Number.MAX_SAFE_INTEGER;
}

/**
 * The most parts usher sends in one multipart response. RFC 9110 §14.2 lets
 * a server ignore "many small ranges" as "indications of either a broken
 * client or a deliberate denial-of-service attack": each part costs headers
 * and a boundary, so `bytes=0-0,2-2,4-4,...` can multiply the bytes sent
 * many times over the body's size. Above the cap the Range is ignored and
 * the whole body sent, which costs no more than a plain request.
 */
export const MAX_PARTS = 16;

/**
 * The gap below which two ranges are merged: about the size of a part's own
 * headers, so that merging never sends more bytes than separate parts would
 * (RFC 9110 §15.3.7.2 allows coalescing ranges "separated by a gap that is
 * smaller than the overhead of sending multiple parts").
 */
export const COALESCE_GAP = 80;

export type RangeDecision =
  /** Send the full response (no Range, ignored, or too many parts). */
  | { readonly kind: 'full' }
  /** 416 with this `Content-Range`, the unsatisfied-range form of §14.4 ("bytes", "*", "/" and the length). */
  | { readonly kind: 'unsatisfiable'; readonly contentRange: string }
  /** 206 with these ranges, ascending and coalesced. */
  | { readonly kind: 'partial'; readonly ranges: readonly ByteRange[] };

/**
 * Resolves a parsed Range against a body of `length` bytes (§14.1.1): an
 * int-range is satisfiable when first-pos < length, a suffix-range when its
 * length is above 0; last-pos is capped at length − 1 and a suffix longer
 * than the body means the whole body. No satisfiable range gives 416. A
 * zero-length body has nothing to slice, so the Range is ignored (§14.2
 * allows ignoring Range). Satisfiable ranges are sorted and coalesced.
 */
export function resolveRanges(specs: readonly RangeSpec[] | undefined, length: number, maxParts = MAX_PARTS): RangeDecision {
  if (specs === undefined || length === 0) return { kind: 'full' };
  const ranges: ByteRange[] = [];
  for (const s of specs) {
    if (s.kind === 'suffix') {
      if (s.length > 0) ranges.push({ first: Math.max(0, length - s.length), last: length - 1 });
    } else if (s.first < length) {
      ranges.push({ first: s.first, last: Math.min(s.last ?? length - 1, length - 1) });
    }
  }
  if (ranges.length === 0) return { kind: 'unsatisfiable', contentRange: `bytes */${length}` };
  const merged = coalesce(ranges);
  if (merged.length > maxParts) return { kind: 'full' };
  return { kind: 'partial', ranges: merged };
}

/** Sorts ranges and merges those that overlap or are less than COALESCE_GAP bytes apart. */
export function coalesce(ranges: readonly ByteRange[]): ByteRange[] {
  const sorted = [...ranges].sort((a, b) => a.first - b.first || a.last - b.last);
  const out: ByteRange[] = [];
  for (const r of sorted) {
    const prev = out[out.length - 1];
    if (prev !== undefined && r.first <= prev.last + 1 + COALESCE_GAP) {
      out[out.length - 1] = { first: prev.first, last: Math.max(prev.last, r.last) };
    } else {
      out.push(r);
    }
  }
  return out;
}

export interface PartialBody {
  /** Response header fields to set (lower-case names). */
  readonly fields: Readonly<Record<string, string>>;
  /** The body, in order; content parts are views over the stored body. */
  readonly chunks: readonly Buffer[];
  /** Sum of the chunks' lengths: the Content-Length. */
  readonly length: number;
}

/**
 * Builds the 206 body (§15.3.7): one range gives the slice and a
 * `Content-Range`; several give `multipart/byteranges` (§14.6) with
 * `boundary`, each part carrying the stored `Content-Type` (when known) and
 * its own `Content-Range`.
 */
export function buildPartial(body: Buffer, ranges: readonly ByteRange[], contentType: string | undefined, boundary: string): PartialBody {
  const total = body.length;
  if (ranges.length === 1) {
    const r = ranges[0]!;
    const chunk = body.subarray(r.first, r.last + 1);
    return { fields: { 'content-range': `bytes ${r.first}-${r.last}/${total}` }, chunks: [chunk], length: chunk.length };
  }
  if (!/^[0-9A-Za-z'()+_,\-./:=?]{1,70}$/.test(boundary)) throw new RangeError(`invalid multipart boundary: ${JSON.stringify(boundary)}`);
  const chunks: Buffer[] = [];
  for (const [i, r] of ranges.entries()) {
    let head = `${i === 0 ? '' : '\r\n'}--${boundary}\r\n`;
    if (contentType !== undefined) head += `content-type: ${contentType}\r\n`;
    head += `content-range: bytes ${r.first}-${r.last}/${total}\r\n\r\n`;
    chunks.push(Buffer.from(head, 'latin1'), body.subarray(r.first, r.last + 1));
  }
  chunks.push(Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1'));
  const length = chunks.reduce((n, c) => n + c.length, 0);
  return { fields: { 'content-type': `multipart/byteranges; boundary=${boundary}` }, chunks, length };
}
