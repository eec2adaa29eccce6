/**
 * A fill in progress: the first miss on a key goes upstream, and the
 * requests that miss the same key meanwhile wait for it.
 *
 * Once the response is known to be storable and its length is known
 * ({@link Fill.publish}), waiters need not wait for its end: they are
 * answered from {@link Fill.body}, which hands each of them the bytes as they
 * arrive. A fill with such readers outlives its own client
 * ({@link Fill.outlivesClient}): the backend's body keeps coming for them.
 */
import type { BodyReader, BodySink, StreamedBody } from '../filter/streamed-body.ts';
import type { TimedResponse } from './freshness.ts';

/** The response a fill is storing, as its waiters are answered with it. */
export interface FillHead {
  readonly response: TimedResponse;
  readonly body: FillBody;
}

export class Fill {
  /** When the fill began (ms, the filter's clock): a fill that never settled (its request failed before the response phase) is ignored after the lock timeout. */
  readonly startedAt: number;
  #settled = false;
  #head: FillHead | undefined;
  readonly #waiters: (() => void)[] = [];
  readonly #onSettle: () => void;

  constructor(startedAt: number, onSettle: () => void) {
    this.startedAt = startedAt;
    this.#onSettle = onSettle;
  }

  /** The storable response being filled, while its body can still be streamed (published, not failed). */
  get head(): FillHead | undefined {
    return this.#head?.body.failed === false ? this.#head : undefined;
  }

  /** The response is storable and `length` bytes long: waiters may be answered from its body as it arrives. */
  publish(response: TimedResponse, length: number): FillBody {
    const body = new FillBody(length);
    this.#head = { response, body };
    this.#wake();
    return body;
  }

  /** Whether the fill must go on after its own client left: some waiter is reading its body. */
  get outlivesClient(): boolean {
    return this.#head !== undefined && this.#head.body.readers > 0 && !this.#head.body.failed;
  }

  /** The response was stored, or turned out not to be (waiters then look up again and go upstream). */
  settle(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#onSettle();
    this.#wake();
  }

  /** The fill failed (the backend cut the body, its client left with nobody reading): readers are cut, waiters go upstream. */
  fail(): void {
    this.#head?.body.fail();
    this.settle();
  }

  /** Resolves when the fill settles or after `timeoutMs`, whichever is first. */
  settled(timeoutMs: number): Promise<void> {
    if (this.#settled) return Promise.resolve();
    return this.#until(timeoutMs, () => this.#settled);
  }

  /** Resolves when the fill settles, publishes a streamable response, or after `timeoutMs`. */
  ready(timeoutMs: number): Promise<void> {
    if (this.#settled || this.#head !== undefined) return Promise.resolve();
    return this.#until(timeoutMs, () => this.#settled || this.#head !== undefined);
  }

  #until(timeoutMs: number, done: () => boolean): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const at = this.#waiters.indexOf(check);
        if (at >= 0) this.#waiters.splice(at, 1);
        resolve();
      }, timeoutMs);
      const check = (): void => {
        if (!done()) {
          this.#waiters.push(check);
          return;
        }
        clearTimeout(timer);
        resolve();
      };
      this.#waiters.push(check);
    });
  }

  #wake(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }
}

/**
 * The bytes of a fill's body so far, read by any number of waiters, each at
 * its own pace. The chunks are the ones the fill stores at its end, not a
 * copy; the body is bounded by the cache's `maxObjectSize` (only a body whose
 * length fits is published).
 */
export class FillBody implements StreamedBody {
  readonly length: number;
  readonly chunks: Buffer[] = [];
  #done = false;
  #failed = false;
  readonly #readers = new Set<FillReader>();

  constructor(length: number) {
    this.length = length;
  }

  get failed(): boolean {
    return this.#failed;
  }

  get readers(): number {
    return this.#readers.size;
  }

  /** The next piece of the body (kept: the caller must not reuse its memory). */
  push(chunk: Buffer): void {
    if (this.#done || this.#failed) return;
    this.chunks.push(chunk);
    for (const reader of this.#readers) reader.pump();
  }

  /** The body is complete. */
  finish(): void {
    if (this.#done || this.#failed) return;
    this.#done = true;
    for (const reader of this.#readers) reader.pump();
  }

  /** The body will not complete: every reader's response is cut. */
  fail(): void {
    if (this.#done || this.#failed) return;
    this.#failed = true;
    const readers = [...this.#readers];
    this.#readers.clear();
    for (const reader of readers) reader.sink.abort();
  }

  read(sink: BodySink): BodyReader {
    const reader = new FillReader(this, sink);
    if (this.#failed) {
      sink.abort();
      return reader;
    }
    this.#readers.add(reader);
    reader.pump();
    return reader;
  }

  get complete(): boolean {
    return this.#done;
  }

  forget(reader: FillReader): void {
    this.#readers.delete(reader);
  }
}

class FillReader implements BodyReader {
  readonly sink: BodySink;
  readonly #body: FillBody;
  #next = 0;
  #paused = false;
  #over = false;

  constructor(body: FillBody, sink: BodySink) {
    this.#body = body;
    this.sink = sink;
  }

  pump(): void {
    if (this.#over) return;
    const chunks = this.#body.chunks;
    while (!this.#paused && this.#next < chunks.length) {
      if (!this.sink.write(chunks[this.#next++]!)) this.#paused = true;
    }
    if (!this.#paused && this.#next === chunks.length && this.#body.complete) {
      this.#over = true;
      this.#body.forget(this);
      this.sink.end();
    }
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.pump();
  }

  cancel(): void {
    this.#over = true;
    this.#body.forget(this);
  }
}
