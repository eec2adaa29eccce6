/**
 * The `usher_compress_*` metrics. The filter counts into this thread's
 * {@link compressCounters} (plain numbers, no registry work on the data
 * path); the registry reads them at scrape time and `/metrics` sums threads.
 */
import type { Registry } from 'prom-client';
import { collectedCounter } from '../observe/collected.ts';
import type { Coding } from './codec.ts';
import type { SkipReason } from './eligible.ts';
import { existingThreadGuard } from './guard.ts';

export interface CompressCounters {
  /** Responses coded, by coding. */
  readonly coded: Record<Coding, number>;
  /** Responses a compress filter saw and sent uncoded, by reason. */
  readonly skipped: Record<SkipReason, number>;
  /** Responses coded upstream decoded for clients that do not accept the coding, by coding. */
  readonly decoded: Record<Coding, number>;
  /** Body bytes into the encoders and out of them. */
  bytesIn: number;
  bytesOut: number;
  /** Local answers (cache hits) whose coded body was taken from the store's memo instead of coded again. */
  reused: number;
  /** Background codings of stored bodies (thread pool) that failed. */
  backgroundFailed: number;
}

/** This thread's counters (each worker thread has its own module instance). */
export const compressCounters: CompressCounters = {
  coded: { zstd: 0, br: 0, gzip: 0 },
  decoded: { zstd: 0, br: 0, gzip: 0 },
  skipped: { status: 0, method: 0, range: 0, encoded: 0, 'no-transform': 0, type: 0, size: 0, client: 0, guard: 0, deferred: 0 },
  bytesIn: 0,
  bytesOut: 0,
  reused: 0,
  backgroundFailed: 0,
};

/** Declares `usher_compress_*` on a thread's registry. */
export function declareCompressMetrics(registry: Registry, counters: CompressCounters = compressCounters): void {
  collectedCounter(registry, 'usher_compress_responses_total', 'Responses through a compress filter, by coding; coding="identity" ones were sent uncoded, by reason: status (1xx, 204, 304), method (HEAD), range, encoded (already), no-transform, type (not on the list), size (under minSize), client (Accept-Encoding), guard (CPU guard off), deferred (a cache hit of 64 KiB or more, sent uncoded while its coding is made on the thread pool for the next hits).', ['coding', 'reason'], (emit) => {
    for (const [coding, value] of Object.entries(counters.coded)) emit({ coding }, value);
    for (const [reason, value] of Object.entries(counters.skipped)) emit({ coding: 'identity', reason }, value);
  });
  collectedCounter(registry, 'usher_compress_decoded_total', 'Responses coded by the backend that usher decoded for a client whose Accept-Encoding refuses the coding, by coding.', ['coding'], (emit) => {
    for (const [coding, value] of Object.entries(counters.decoded)) emit({ coding }, value);
  });
  collectedCounter(registry, 'usher_compress_bytes_total', 'Body bytes of coded responses, into the encoders (direction="in") and out of them (direction="out").', ['direction'], (emit) => {
    emit({ direction: 'in' }, counters.bytesIn);
    emit({ direction: 'out' }, counters.bytesOut);
  });
  collectedCounter(registry, 'usher_compress_reused_total', 'Cache hits sent coded with a body coded once before and kept with the stored response (compress listed before cache), instead of coded again.', [], (emit) => emit({}, counters.reused));
  collectedCounter(registry, 'usher_compress_guard_steps_total', 'Steps of the CPU guard: direction="down" (levels lowered, then compression off for new responses) and "up" (back).', ['direction'], (emit) => {
    const guard = existingThreadGuard();
    emit({ direction: 'down' }, guard?.stepsDown ?? 0);
    emit({ direction: 'up' }, guard?.stepsUp ?? 0);
  });
}
