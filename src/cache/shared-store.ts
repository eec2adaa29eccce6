/**
 * The response store of a process: one byte-bounded store in
 * `SharedArrayBuffer`s that every data-plane thread reads and writes, so an
 * object stored by one worker is a hit for all and `maxBytes` bounds the
 * process (Varnish: one store, many threads; nginx: the index in shared
 * memory). The main thread makes it (`new SharedStore(options)`) and sends
 * its two buffers to every worker, which open them (`new SharedStore(buffers)`).
 *
 * **Data** (`buffers.data`): an arena of equal segments (`max(maxObjectSize +
 * 64 KiB, maxBytes / 64)`, at least four: with less room the object limit
 * shrinks to a quarter of `maxBytes` less header room). Records are appended
 * to the open segment: a 32-byte header (generation, size, slot, lengths,
 * epoch), the primary key, the surrogate keys, the metadata as JSON (Vary
 * names, the kept request fields, the response) and the body, 8-aligned.
 *
 * **Eviction: FIFO with reinsertion** (CLOCK; Segcache, S3-FIFO). When the
 * open segment is full it is sealed and a free one opens. When none is left
 * free, the oldest sealed segment is emptied: records hit since they were
 * written are copied once into the open segment (at most half of it, and
 * never so much that the record being stored no longer fits), the rest are
 * evicted. This approximates the byte-bounded LRU of the contract at one
 * memcpy per kept record, with no per-hit list to update across threads. One
 * segment stays free, so the bytes of an emptied segment are overwritten
 * only after the open one fills again: a reader still copying a record just
 * evicted has that long before the bytes change under it.
 *
 * **Index** (`buffers.meta`): open addressing over a power-of-two slot
 * table (about one slot per 2 KiB of `maxBytes`, 256 to 2 Mi slots, which
 * bounds the entries), struct-of-arrays: hash, hash of the key's target (what
 * precedes its first newline: an unsafe request purges `target\n...` without
 * reading every key), record offset / 8, record generation, flags (accessed,
 * soft-purged, key with extras), last use and hits. A key lives in the window
 * of `window` slots from its home slot (its variants are several slots with
 * the same hash); a lookup reads the whole window and compares the stored
 * key. A put into a full window evicts the least recently used slot in it.
 * `maxVariants` is at most half a window.
 *
 * **Writers** (put, update, delete, purges, eviction) hold one process-wide
 * lock (an Int32: compareExchange, a short spin, then `Atomics.wait` with a
 * 5 ms timeout). Critical sections are bounded: at most one segment is
 * emptied and one record copied in. A lock held 2 s without progress is
 * taken over (its holder is taken to have died: a terminated thread).
 * Purges by prefix or tag scan the index without the lock and take it only
 * to remove what they found.
 *
 * **Readers take no lock** (a seqlock per record): read the slot, check the
 * record's generation, copy the metadata and body into the thread's memory,
 * check the generation again. A writer zeroes a record's generation before
 * its bytes may be reused, so a changed generation means a miss (or one more
 * look, when the record was only moved), never torn bytes. Decoded metadata
 * is kept per thread (4096 records, by offset, checked against the record's
 * generation and epoch on every use), so a hit parses no JSON. Bodies are
 * copied out: a view of shared memory handed to a socket could be
 * overwritten by an eviction while it is being sent.
 *
 * Generations are 32-bit, from one counter; every 2^32 records an epoch
 * (kept in each record) begins, so a thread's memo never takes a new record
 * for an old one. JavaScript orders an `Atomics.load` with other atomics, not
 * with the plain reads of a copy: the free segment is what keeps a reader
 * from seeing an evicted record's bytes replaced before it sees its
 * generation zeroed (x86 orders them anyway).
 *
 * **Numbers.** Bytes, entries, stores, evictions, purges, variants capped and
 * objects too large are process-wide, in the shared header; hits per slot
 * give the top keys. Request counters (hits, misses...) stay per thread, in
 * `ResponseCache`.
 */
import { cyrb53 } from '../runtime/string-hash.ts';
import { FillLocks } from './fill-locks.ts';
import { randomBytes } from 'node:crypto';
import { threadId } from 'node:worker_threads';
import type { Fields } from './fields.ts';
import type { TimedResponse } from './freshness.ts';
import { varyingFields, varyMatches } from './vary.ts';
import {
  CacheStoreConfigError,
  DEFAULT_MAX_BYTES,
  DEFAULT_MAX_OBJECT_SIZE,
  DEFAULT_MAX_VARIANTS,
  surrogateKeysOf,
  type CacheCounters,
  type Lookup,
  type PurgeMode,
  type PutInput,
  type PutResult,
  type ResponseStore,
  type StoredVariant,
  type StoreOptions,
} from './store.ts';

/** The two buffers of a store, as they travel to another thread. */
export interface SharedStoreBuffers {
  readonly meta: SharedArrayBuffer;
  readonly data: SharedArrayBuffer;
  /** The keys some thread is filling (fill-locks.ts). */
  readonly fills: SharedArrayBuffer;
}

/** A variant's body was asked for after its record left the store (evicted or replaced while a request went upstream). */
export class CacheRecordGone extends Error {
  constructor(key: string) {
    super(`the stored response of ${key} is no longer in the cache`);
    this.name = 'CacheRecordGone';
  }
}

/** The two halves of the last key hash (see string-hash.ts). */
const HALVES = new Int32Array(2);

/** Room for a record's header, key and metadata in a segment, besides the body. */
const META_ROOM = 64 * 1024;
const TARGET_SEGMENTS = 64;
const MIN_SEGMENTS = 4;
const MIN_SEGMENT_SIZE = 256;
/** Offsets are stored / 8 in 32 bits. */
const MAX_ARENA = 2 ** 35;
/** Record sizes are 32-bit. */
const MAX_SEGMENT_SIZE = 2 ** 31;
const BYTES_PER_SLOT = 2048;
const MIN_SLOTS = 256;
const MAX_SLOTS = 2 ** 21;
const MIN_WINDOW = 32;
/** Decoded metadata kept per thread. */
const MEMO_SIZE = 4096;
const LOCK_SPINS = 64;
const LOCK_WAIT_MS = 5;
const LOCK_TAKEOVER_MS = 2000;

/** A record: header words (Uint32, from offset / 4), then key, tags, metadata and body. */
const RECORD_HEADER = 32;
const R_GEN = 0;
const R_SIZE = 1;
const R_SLOT = 2;
const R_KEY = 3;
const R_TAGS = 4;
const R_META = 5;
const R_BODY = 6;
const R_EPOCH = 7;

/** Slot flags. */
const ACCESSED = 1;
const SOFT_PURGED = 2;
/** The key has extras after a newline (key headers or cookies): prefix purges of `target\n` need a scan only then. */
const EXTENDED = 4;

/** Control words (Int32) at the start of `meta`. */
const C_LOCK = 0;
const C_WAITERS = 1;
const C_LOCK_SEQ = 2;
const C_GEN = 3;
const C_EPOCH = 4;
const C_OPEN = 5;
const C_FREE = 6;
const C_QHEAD = 7;
const C_QLEN = 8;
const C_BYTES8 = 9;
const C_ENTRIES = 10;
const C_EXTENDED = 11;
const C_SLOTS = 12;
const C_WINDOW = 13;
const C_SEGMENTS = 14;
const C_SEGMENT8 = 15;
const C_SEED1 = 16;
const C_SEED2 = 17;
const C_ID1 = 18;
const C_ID2 = 19;
const C_TAKEOVERS = 20;
const CTRL_BYTES = 128;
/** The limits as configured (Float64), after the control words. */
const F_MAX_BYTES = 0;
const F_MAX_OBJECT = 1;
const F_MAX_VARIANTS = 2;
const CONFIG_BYTES = 32;
/** Process-wide counters (BigInt64). */
const K_STORES = 0;
const K_EVICTIONS = 1;
const K_PURGES = 2;
const K_VARIANTS = 3;
const K_TOO_LARGE = 4;
const COUNTER_BYTES = 64;
const TABLES_AT = CTRL_BYTES + CONFIG_BYTES + COUNTER_BYTES;

/** This thread's mark in the lock word (thread ids are never reused in a process). */
const TOKEN = threadId + 1;

interface Encoded {
  readonly key: Buffer;
  readonly tags: Buffer;
  readonly meta: Buffer;
}

/** A record's metadata, decoded once per thread. */
interface Decoded {
  readonly gen: number;
  readonly epoch: number;
  readonly key: string;
  readonly vary: readonly string[];
  readonly requestFields: Fields;
  readonly response: TimedResponse;
  readonly surrogateKeys: readonly string[];
  readonly size: number;
  /** The body's offset from the record's start, and its length. */
  readonly bodyAt: number;
  readonly bodyLength: number;
  /**
   * This thread's copy of the body, kept while the record keeps its
   * generation (the record never changes in place): a hot object is copied
   * out of shared memory once per thread, not once per hit. Bounded per
   * thread by {@link SharedStore.bodyMemoBudget}.
   */
  body?: Buffer | undefined;
}

/** A slot read consistently: its record was live while it was read. */
interface Found {
  readonly slot: number;
  readonly hash: number;
  readonly off8: number;
  readonly gen: number;
  readonly d: Decoded;
  readonly flags: number;
  readonly hits: number;
}

class SharedVariant implements StoredVariant {
  readonly primaryKey: string;
  readonly vary: readonly string[];
  readonly requestFields: Fields;
  response: TimedResponse;
  size: number;
  surrogateKeys: readonly string[];
  invalidated: boolean;
  readonly hits: number;
  /** The store (this thread's view) it came from, its slot, the slot's hash and the record's generation (new when it is rewritten). */
  readonly owner: SharedStore;
  readonly slot: number;
  readonly hash: number;
  gen: number;
  #body: Buffer | undefined;
  readonly #load: (variant: SharedVariant) => Buffer;

  constructor(owner: SharedStore, found: Found, body: Buffer | undefined, hits: number, load: (variant: SharedVariant) => Buffer) {
    this.owner = owner;
    this.primaryKey = found.d.key;
    this.vary = found.d.vary;
    this.requestFields = found.d.requestFields;
    this.response = found.d.response;
    this.size = found.d.size;
    this.surrogateKeys = found.d.surrogateKeys;
    this.invalidated = (found.flags & SOFT_PURGED) !== 0;
    this.hits = hits;
    this.slot = found.slot;
    this.hash = found.hash;
    this.gen = found.gen;
    this.#body = body;
    this.#load = load;
  }

  /** The body, copied out of shared memory when first asked for (the matched variant of a hit has it already). */
  get body(): Buffer {
    return (this.#body ??= this.#load(this));
  }

  get loaded(): boolean {
    return this.#body !== undefined;
  }

  keep(body: Buffer): void {
    this.#body = body;
  }
}

const URI_MISS: Lookup = { kind: 'uri-miss' };

export class SharedStore implements ResponseStore {
  readonly maxBytes: number;
  /** The largest body stored: `maxObjectSize`, or less when segments are small (see the module comment). */
  readonly maxObjectSize: number;
  /** `maxVariants`, at most half a window. */
  readonly maxVariants: number;
  /** The limits it was made with. */
  readonly options: Readonly<Required<StoreOptions>>;
  readonly buffers: SharedStoreBuffers;
  /** Which keys a thread is filling, for every thread (fill-locks.ts). */
  readonly fillLocks: FillLocks;
  /** Random, set when the store is made: two threads' views with the same id are the same store. */
  readonly id: string;
  readonly #ctrl: Int32Array;
  readonly #ctrlU: Uint32Array;
  readonly #counters: BigInt64Array;
  /** Per segment: bytes written / 8. */
  readonly #used8: Uint32Array;
  /** Free segments (a stack of `C_FREE`), and sealed ones oldest first (a ring from `C_QHEAD`, `C_QLEN` long). */
  readonly #free: Int32Array;
  readonly #queue: Int32Array;
  readonly #hash: Int32Array;
  /** The hash of the key's target URI (the key up to its first newline): finds a target's keys with extras. */
  readonly #uri: Int32Array;
  readonly #off: Uint32Array;
  readonly #gen: Uint32Array;
  readonly #flags: Int32Array;
  readonly #stamp: Uint32Array;
  readonly #hits: Uint32Array;
  readonly #bytes: Buffer;
  readonly #words: Uint32Array;
  readonly #slots: number;
  readonly #mask: number;
  readonly #window: number;
  readonly #segments: number;
  readonly #segmentSize: number;
  readonly #seed1: number;
  readonly #seed2: number;
  /** Decoded metadata by record offset / 8 (this thread's). */
  readonly #memo = new Map<number, Decoded>();
  /** Bytes of the bodies kept in {@link #memo}. */
  #memoBodyBytes = 0;
  readonly #load = (variant: SharedVariant): Buffer => {
    const body = this.#bodyOf(variant);
    if (body === undefined) throw new CacheRecordGone(variant.primaryKey);
    return body;
  };

  /** A new, empty store with these limits; or another thread's store, from its buffers. */
  constructor(from: StoreOptions | SharedStoreBuffers = {}) {
    let meta: SharedArrayBuffer;
    let data: SharedArrayBuffer;
    let fills: SharedArrayBuffer | undefined;
    if ('meta' in from) {
      ({ meta, data, fills } = from);
    } else {
      const maxBytes = from.maxBytes ?? DEFAULT_MAX_BYTES;
      const maxObjectSize = from.maxObjectSize ?? DEFAULT_MAX_OBJECT_SIZE;
      const maxVariants = from.maxVariants ?? DEFAULT_MAX_VARIANTS;
      if (!(maxVariants >= 1) || !Number.isInteger(maxVariants)) throw new CacheStoreConfigError(`maxVariants must be a positive integer, not ${maxVariants}`);
      if (!(maxObjectSize > 0)) throw new CacheStoreConfigError(`maxObjectSize must be positive, not ${maxObjectSize}`);
      if (!(maxObjectSize < maxBytes)) throw new CacheStoreConfigError(`maxObjectSize (${maxObjectSize}) must be below maxBytes (${maxBytes})`);
      if (maxBytes > MAX_ARENA) throw new CacheStoreConfigError(`maxBytes (${maxBytes}) must be at most 32 GiB`);
      const geometry = geometryOf(maxBytes, maxObjectSize);
      if (geometry.segmentSize < MIN_SEGMENT_SIZE) throw new CacheStoreConfigError(`maxBytes (${maxBytes}) must be at least ${MIN_SEGMENTS * MIN_SEGMENT_SIZE}`);
      if (geometry.segmentSize > MAX_SEGMENT_SIZE) throw new CacheStoreConfigError(`maxObjectSize (${maxObjectSize}) must be below 2 GiB`);
      let slots = MIN_SLOTS;
      while (slots < MAX_SLOTS && slots * BYTES_PER_SLOT < maxBytes) slots *= 2;
      let window = MIN_WINDOW;
      while (window < 2 * maxVariants) window *= 2;
      window = Math.min(window, slots);
      meta = new SharedArrayBuffer(metaBytes(geometry.segments, slots));
      data = new SharedArrayBuffer(geometry.segments * geometry.segmentSize);
      const ctrl = new Int32Array(meta, 0, CTRL_BYTES / 4);
      const random = randomBytes(16);
      ctrl[C_SEED1] = random.readInt32LE(0);
      ctrl[C_SEED2] = random.readInt32LE(4);
      ctrl[C_ID1] = random.readInt32LE(8);
      ctrl[C_ID2] = random.readInt32LE(12);
      ctrl[C_SLOTS] = slots;
      ctrl[C_WINDOW] = window;
      ctrl[C_SEGMENTS] = geometry.segments;
      ctrl[C_SEGMENT8] = geometry.segmentSize / 8;
      const config = new Float64Array(meta, CTRL_BYTES, CONFIG_BYTES / 8);
      config[F_MAX_BYTES] = maxBytes;
      config[F_MAX_OBJECT] = maxObjectSize;
      config[F_MAX_VARIANTS] = maxVariants;
      // Segment 0 is open; the others are free.
      const free = new Int32Array(meta, TABLES_AT + 4 * geometry.segments, geometry.segments);
      for (let s = 1; s < geometry.segments; s++) free[s - 1] = geometry.segments - s;
      ctrl[C_FREE] = geometry.segments - 1;
    }
    this.fillLocks = new FillLocks(fills);
    this.buffers = { meta, data, fills: this.fillLocks.buffer };
    this.#ctrl = new Int32Array(meta, 0, CTRL_BYTES / 4);
    this.#ctrlU = new Uint32Array(meta, 0, CTRL_BYTES / 4);
    const config = new Float64Array(meta, CTRL_BYTES, CONFIG_BYTES / 8);
    this.#counters = new BigInt64Array(meta, CTRL_BYTES + CONFIG_BYTES, COUNTER_BYTES / 8);
    this.#slots = this.#ctrl[C_SLOTS]!;
    this.#mask = this.#slots - 1;
    this.#window = this.#ctrl[C_WINDOW]!;
    this.#segments = this.#ctrl[C_SEGMENTS]!;
    this.#segmentSize = this.#ctrlU[C_SEGMENT8]! * 8;
    this.#seed1 = this.#ctrl[C_SEED1]!;
    this.#seed2 = this.#ctrl[C_SEED2]!;
    this.id = `${(this.#ctrl[C_ID1]! >>> 0).toString(16)}-${(this.#ctrl[C_ID2]! >>> 0).toString(16)}`;
    const n = this.#segments;
    this.#used8 = new Uint32Array(meta, TABLES_AT, n);
    this.#free = new Int32Array(meta, TABLES_AT + 4 * n, n);
    this.#queue = new Int32Array(meta, TABLES_AT + 8 * n, n);
    let at = TABLES_AT + align8(12 * n);
    const table = <T>(make: (buffer: SharedArrayBuffer, offset: number, length: number) => T): T => {
      const view = make(meta, at, this.#slots);
      at += 4 * this.#slots;
      return view;
    };
    this.#hash = table((b, o, l) => new Int32Array(b, o, l));
    this.#uri = table((b, o, l) => new Int32Array(b, o, l));
    this.#off = table((b, o, l) => new Uint32Array(b, o, l));
    this.#gen = table((b, o, l) => new Uint32Array(b, o, l));
    this.#flags = table((b, o, l) => new Int32Array(b, o, l));
    this.#stamp = table((b, o, l) => new Uint32Array(b, o, l));
    this.#hits = table((b, o, l) => new Uint32Array(b, o, l));
    this.#bytes = Buffer.from(data);
    this.#words = new Uint32Array(data);
    this.options = { maxBytes: config[F_MAX_BYTES]!, maxObjectSize: config[F_MAX_OBJECT]!, maxVariants: config[F_MAX_VARIANTS]! };
    this.maxBytes = this.options.maxBytes;
    this.maxObjectSize = geometryOf(this.options.maxBytes, this.options.maxObjectSize).objectLimit;
    this.maxVariants = Math.min(this.options.maxVariants, this.#window / 2);
  }

  /** Whether the store was made with these limits (a reload that keeps them keeps the store). */
  sameLimits(options: StoreOptions): boolean {
    return (
      (options.maxBytes ?? DEFAULT_MAX_BYTES) === this.options.maxBytes &&
      (options.maxObjectSize ?? DEFAULT_MAX_OBJECT_SIZE) === this.options.maxObjectSize &&
      (options.maxVariants ?? DEFAULT_MAX_VARIANTS) === this.options.maxVariants
    );
  }

  get size(): number {
    return Atomics.load(this.#ctrlU, C_BYTES8) * 8;
  }

  get count(): number {
    return Atomics.load(this.#ctrl, C_ENTRIES);
  }

  get counters(): CacheCounters {
    const k = this.#counters;
    return {
      stores: Number(Atomics.load(k, K_STORES)),
      evictions: Number(Atomics.load(k, K_EVICTIONS)),
      purges: Number(Atomics.load(k, K_PURGES)),
      variantsCapped: Number(Atomics.load(k, K_VARIANTS)),
      tooLarge: Number(Atomics.load(k, K_TOO_LARGE)),
    };
  }

  lookup(primaryKey: string, requestFields: Fields): Lookup {
    const hash = this.#hashOf(primaryKey);
    // A second look when the chosen record changed while its body was copied (it may only have moved).
    for (let attempt = 0; attempt < 2; attempt++) {
      const found = this.#find(primaryKey, hash);
      if (found.length === 0) return URI_MISS;
      let best: Found | undefined;
      for (const f of found) {
        if (varyMatches(f.d.requestFields, f.d.vary, requestFields) && (best === undefined || f.d.response.responseTime > best.d.response.responseTime)) best = f;
      }
      if (best === undefined) return { kind: 'vary-miss', variants: found.map((f) => this.#variant(f)) };
      const body = this.#copyBody(best.off8, best.gen, best.d);
      if (body === undefined) continue;
      this.#touch(best);
      const variant = this.#variant(best, body, best.hits + 1);
      const others = found.filter((f) => f !== best).map((f) => this.#variant(f));
      return { kind: 'hit', variant, variants: [variant, ...others] };
    }
    return URI_MISS;
  }

  variants(primaryKey: string): readonly StoredVariant[] {
    return this.#find(primaryKey, this.#hashOf(primaryKey)).map((f) => this.#variant(f));
  }

  put(primaryKey: string, input: PutInput): PutResult {
    if (input.body.length > this.maxObjectSize) return this.#tooLarge();
    const requestFields = varyingFields(input.vary, input.requestFields);
    const surrogateKeys = surrogateKeysOf(input.response.fields);
    const encoded = encode(primaryKey, surrogateKeys, input.vary, requestFields, input.response);
    const size = recordSize(encoded, input.body.length);
    if (size > this.#segmentSize) return this.#tooLarge();
    const hash = this.#hashOf(primaryKey);
    let off8: number;
    let slot: number;
    let gen: number;
    let epoch: number;
    let bodyAt: number;
    let hits = 0;
    this.#lock();
    try {
      // The variants the same request would select are replaced; the first one's slot (and hits) goes to the new one.
      let reuse = -1;
      const kept: Found[] = [];
      for (const found of this.#find(primaryKey, hash)) {
        if (!varyMatches(found.d.requestFields, found.d.vary, input.requestFields)) {
          kept.push(found);
          continue;
        }
        if (reuse < 0) {
          reuse = found.slot;
          hits = found.hits;
        }
        this.#remove(found.slot);
      }
      while (kept.length >= this.maxVariants) {
        let oldest = 0;
        for (let i = 1; i < kept.length; i++) if (older(this.#stamp[kept[i]!.slot]!, this.#stamp[kept[oldest]!.slot]!)) oldest = i;
        this.#remove(kept[oldest]!.slot);
        kept.splice(oldest, 1);
        Atomics.add(this.#counters, K_VARIANTS, 1n);
      }
      off8 = this.#allocate(size);
      slot = reuse >= 0 ? reuse : this.#freeSlot(hash);
      gen = this.#nextGen();
      epoch = this.#ctrlU[C_EPOCH]!;
      bodyAt = this.#writeHead(off8, size, slot, encoded, input.body.length);
      input.body.copy(this.#bytes, off8 * 8 + bodyAt);
      Atomics.store(this.#words, off8 * 2 + R_GEN, gen);
      const newline = primaryKey.indexOf('\n');
      if (newline >= 0) Atomics.add(this.#ctrl, C_EXTENDED, 1);
      this.#publish(slot, hash, newline < 0 ? hash : this.#hashOf(primaryKey.slice(0, newline)), off8, gen, newline < 0 ? 0 : EXTENDED, hits);
      Atomics.add(this.#ctrlU, C_BYTES8, size / 8);
      Atomics.add(this.#ctrl, C_ENTRIES, 1);
      Atomics.add(this.#counters, K_STORES, 1n);
    } finally {
      this.#unlock();
    }
    const d = this.#remember(off8, { gen, epoch, key: primaryKey, vary: input.vary, requestFields, response: input.response, surrogateKeys, size, bodyAt, bodyLength: input.body.length });
    const variant = new SharedVariant(this, { slot, hash, off8, gen, d, flags: 0, hits }, input.body, hits, this.#load);
    return { stored: true, variant };
  }

  update(stored: StoredVariant, response: TimedResponse): boolean {
    if (!(stored instanceof SharedVariant) || stored.owner !== this) return false;
    const surrogateKeys = surrogateKeysOf(response.fields);
    const encoded = encode(stored.primaryKey, surrogateKeys, stored.vary, stored.requestFields, response);
    let off8: number;
    let gen: number;
    let epoch: number;
    let size: number;
    let bodyAt: number;
    let bodyLength: number;
    this.#lock();
    try {
      if (!this.#owns(stored)) return false;
      const before = this.#off[stored.slot]! * 2;
      bodyLength = this.#words[before + R_BODY]!;
      size = recordSize(encoded, bodyLength);
      if (size > this.#segmentSize) return false;
      // Taken now: making room may evict the record (the caller may still answer with it).
      if (!stored.loaded) stored.keep(Buffer.from(this.#bytes.subarray(bodyStart(this.#words, before), bodyStart(this.#words, before) + bodyLength)));
      off8 = this.#allocate(size);
      if (!this.#owns(stored)) {
        this.#filler(off8, size);
        return false;
      }
      const old = this.#off[stored.slot]! * 2;
      const oldSize = this.#words[old + R_SIZE]!;
      gen = this.#nextGen();
      epoch = this.#ctrlU[C_EPOCH]!;
      bodyAt = this.#writeHead(off8, size, stored.slot, encoded, bodyLength);
      const from = bodyStart(this.#words, old);
      this.#bytes.copy(this.#bytes, off8 * 8 + bodyAt, from, from + bodyLength);
      Atomics.store(this.#words, off8 * 2 + R_GEN, gen);
      Atomics.store(this.#off, stored.slot, off8);
      Atomics.store(this.#gen, stored.slot, gen);
      Atomics.and(this.#flags, stored.slot, ~SOFT_PURGED);
      Atomics.store(this.#stamp, stored.slot, this.#useStamp());
      Atomics.store(this.#words, old + R_GEN, 0);
      Atomics.add(this.#ctrlU, C_BYTES8, size / 8);
      Atomics.sub(this.#ctrlU, C_BYTES8, oldSize / 8);
    } finally {
      this.#unlock();
    }
    stored.gen = gen;
    stored.response = response;
    stored.invalidated = false;
    stored.surrogateKeys = surrogateKeys;
    stored.size = size;
    this.#remember(off8, { gen, epoch, key: stored.primaryKey, vary: stored.vary, requestFields: stored.requestFields, response, surrogateKeys, size, bodyAt, bodyLength });
    return true;
  }

  delete(stored: StoredVariant): boolean {
    if (!(stored instanceof SharedVariant) || stored.owner !== this) return false;
    this.#lock();
    try {
      if (!this.#owns(stored)) return false;
      this.#remove(stored.slot);
      return true;
    } finally {
      this.#unlock();
    }
  }

  purge(primaryKey: string, mode: PurgeMode): number {
    const hash = this.#hashOf(primaryKey);
    this.#lock();
    try {
      const found = this.#find(primaryKey, hash);
      for (const f of found) this.#purgeSlot(f.slot, mode);
      Atomics.add(this.#counters, K_PURGES, BigInt(found.length));
      return found.length;
    } finally {
      this.#unlock();
    }
  }

  purgePrefix(prefix: string, mode: PurgeMode): number {
    const wanted = Buffer.from(prefix);
    const matches = (at: number, w: number): boolean => this.#words[w + R_KEY]! >= wanted.length && this.#bytes.compare(wanted, 0, wanted.length, at + RECORD_HEADER, at + RECORD_HEADER + wanted.length) === 0;
    const newline = prefix.indexOf('\n');
    if (newline < 0) return this.#purgeFound(this.#scan(matches), mode);
    // Keys with extras (key headers, cookies, coded bodies) of one target (`target\n...`: every unsafe request
    // invalidates them): the slots of that target's hash only, and none when no key has extras.
    if (Atomics.load(this.#ctrl, C_EXTENDED) === 0) return 0;
    const uri = this.#hashOf(prefix.slice(0, newline));
    return this.#purgeFound(this.#scan(matches, uri), mode);
  }

  purgeSurrogate(tag: string, mode: PurgeMode): number {
    return this.#purgeFound(this.#scan((at, w) => this.#tagsAt(at, w).includes(tag)), mode);
  }

  /** The `n` primary keys with the most hits (keys never hit are left out), most first. */
  top(n: number): Array<{ readonly key: string; readonly hits: number }> {
    const wanted = Math.max(0, n) + 4; // a few more than asked for, in case some records go meanwhile
    const best: { slot: number; hits: number }[] = [];
    const mask = this.#mask;
    for (let s = 0; s < this.#slots; s++) {
      if (this.#hits[s] === 0) continue;
      const hash = this.#hash[s]!;
      if (hash === 0) continue;
      // A key's variants are the slots with its hash in its window: count them once, from the first.
      const home = hash & mask;
      const distance = (s - home) & mask;
      if (distance >= this.#window) continue; // changed while read
      let first = true;
      for (let i = 0; i < distance && first; i++) if (this.#hash[(home + i) & mask] === hash) first = false;
      if (!first) continue;
      let hits = 0;
      for (let i = distance; i < this.#window; i++) {
        const t = (home + i) & mask;
        if (this.#hash[t] === hash) hits += this.#hits[t]!;
      }
      if (best.length === wanted && hits <= best[wanted - 1]!.hits) continue;
      let at = best.length;
      while (at > 0 && best[at - 1]!.hits < hits) at--;
      best.splice(at, 0, { slot: s, hits });
      if (best.length > wanted) best.pop();
    }
    const out: { key: string; hits: number }[] = [];
    for (const { slot, hits } of best) {
      if (out.length >= n) break;
      const found = this.#read(slot, this.#hash[slot]!, undefined);
      if (found !== undefined) out.push({ key: found.d.key, hits });
    }
    return out.sort((a, b) => b.hits - a.hits || (a.key < b.key ? -1 : 1));
  }

  surrogateKeys(): string[] {
    const tags = new Set<string>();
    for (const { value } of this.#scanValues((at, w) => this.#tagsAt(at, w))) for (const tag of value) tags.add(tag);
    return [...tags];
  }

  // ---- reading (no lock) ----

  /** The live variants of `key` in its window. */
  #find(key: string, hash: number): Found[] {
    const out: Found[] = [];
    const home = hash & this.#mask;
    for (let i = 0; i < this.#window; i++) {
      const s = (home + i) & this.#mask;
      if (this.#hash[s] !== hash) continue;
      const found = this.#read(s, hash, key);
      if (found !== undefined) out.push(found);
    }
    return out;
  }

  /** Slot `s` and its record, if it holds `hash` (and `key`, when given) and stayed the same while read. */
  #read(s: number, hash: number, key: string | undefined): Found | undefined {
    for (let attempt = 0; attempt < 2; attempt++) {
      const gen = Atomics.load(this.#gen, s);
      if (gen === 0) return undefined;
      const off8 = Atomics.load(this.#off, s);
      const d = this.#decode(off8, gen);
      const flags = Atomics.load(this.#flags, s);
      const hits = Atomics.load(this.#hits, s);
      if (Atomics.load(this.#hash, s) !== hash || Atomics.load(this.#gen, s) !== gen) return undefined;
      if (d === undefined) {
        if (Atomics.load(this.#off, s) !== off8) continue; // moved forward meanwhile: read it where it is now
        return undefined;
      }
      return key === undefined || d.key === key ? { slot: s, hash, off8, gen, d, flags, hits } : undefined;
    }
    return undefined;
  }

  /** The metadata of the record at `off8`, if its generation is `gen` (from this thread's memo when known). */
  #decode(off8: number, gen: number): Decoded | undefined {
    const w = off8 * 2;
    const words = this.#words;
    if (w + RECORD_HEADER / 4 > words.length) return undefined;
    const known = this.#memo.get(off8);
    if (Atomics.load(words, w + R_GEN) !== gen) return undefined;
    if (known !== undefined && known.gen === gen && known.epoch === words[w + R_EPOCH]) return known;
    const at = off8 * 8;
    if (!this.#fits(at, w)) return undefined;
    let d: Decoded;
    try {
      const keyAt = at + RECORD_HEADER;
      const tagsAt = keyAt + words[w + R_KEY]!;
      const metaAt = tagsAt + words[w + R_TAGS]!;
      const bodyAt = metaAt + words[w + R_META]!;
      const key = this.#bytes.toString('utf8', keyAt, tagsAt);
      const tags = this.#bytes.toString('utf8', tagsAt, metaAt);
      const [status, requestTime, responseTime, vary, requestFields, fields] = JSON.parse(this.#bytes.toString('utf8', metaAt, bodyAt)) as [number, number, number, string[], Fields, Fields];
      d = { gen, epoch: words[w + R_EPOCH]!, key, vary, requestFields, response: { status, fields, requestTime, responseTime }, surrogateKeys: tags === '' ? [] : tags.split('\n'), size: words[w + R_SIZE]!, bodyAt: bodyAt - at, bodyLength: words[w + R_BODY]! };
    } catch {
      return undefined; // bytes changed while read: the check below would fail too
    }
    if (Atomics.load(words, w + R_GEN) !== gen) return undefined;
    return this.#remember(off8, d);
  }

  #remember(off8: number, d: Decoded): Decoded {
    const old = this.#memo.get(off8);
    if (old !== undefined) this.#forgetBody(old);
    else if (this.#memo.size >= MEMO_SIZE) {
      const oldest = this.#memo.keys().next().value!;
      this.#forgetBody(this.#memo.get(oldest)!);
      this.#memo.delete(oldest);
    }
    this.#memo.set(off8, d);
    return d;
  }

  #forgetBody(d: Decoded): void {
    if (d.body === undefined) return;
    this.#memoBodyBytes -= d.body.length;
    d.body = undefined;
  }

  /** Bytes of body copies this thread keeps (see {@link Decoded.body}): an eighth of the store, at most 32 MiB. */
  get bodyMemoBudget(): number {
    return Math.min(32 * 1024 * 1024, Math.floor(this.maxBytes / 8));
  }

  /** Whether the header at `at` describes a record that lies within its segment. */
  #fits(at: number, w: number): boolean {
    const words = this.#words;
    const size = words[w + R_SIZE]!;
    const end = (Math.floor(at / this.#segmentSize) + 1) * this.#segmentSize;
    return size >= RECORD_HEADER && at + size <= end && RECORD_HEADER + words[w + R_KEY]! + words[w + R_TAGS]! + words[w + R_META]! + words[w + R_BODY]! <= size;
  }

  /**
   * A copy of the body, if the record still has generation `gen` once copied:
   * this thread's kept copy when it has one (the record cannot have changed
   * while its generation stayed), else a new one, kept within the budget.
   * Allocating a large body per hit made V8 count hundreds of KiB of
   * external memory per request, and collect garbage for it.
   */
  #copyBody(off8: number, gen: number, d: Decoded): Buffer | undefined {
    if (d.body !== undefined && d.gen === gen) return Atomics.load(this.#words, off8 * 2 + R_GEN) === gen ? d.body : undefined;
    const from = off8 * 8 + d.bodyAt;
    const body = Buffer.allocUnsafe(d.bodyLength);
    this.#bytes.copy(body, 0, from, from + d.bodyLength);
    if (Atomics.load(this.#words, off8 * 2 + R_GEN) !== gen) return undefined;
    if (d.gen === gen && this.#memo.get(off8) === d && this.#memoBodyBytes + body.length <= this.bodyMemoBudget) {
      d.body = body;
      this.#memoBodyBytes += body.length;
    }
    return body;
  }

  /** The body of a variant not copied at lookup, wherever its record is now. */
  #bodyOf(variant: SharedVariant): Buffer | undefined {
    const found = this.#read(variant.slot, variant.hash, variant.primaryKey);
    if (found === undefined || found.gen !== variant.gen) return undefined;
    return this.#copyBody(found.off8, found.gen, found.d);
  }

  #variant(found: Found, body?: Buffer, hits = found.hits): SharedVariant {
    return new SharedVariant(this, found, body, hits, this.#load);
  }

  /** A hit: counts it and marks the slot used (racing writers may move the mark to the slot's next record: harmless). */
  #touch(found: Found): void {
    const s = found.slot;
    if (Atomics.load(this.#gen, s) !== found.gen) return;
    Atomics.add(this.#hits, s, 1);
    Atomics.store(this.#stamp, s, this.#useStamp());
    if ((Atomics.load(this.#flags, s) & ACCESSED) === 0) Atomics.or(this.#flags, s, ACCESSED);
  }

  /** Last-use stamps: twice the generation counter, plus one for a hit (later than the record written at that count). */
  #useStamp(): number {
    return (Atomics.load(this.#ctrlU, C_GEN) * 2 + 1) >>> 0;
  }

  #tagsAt(at: number, w: number): string[] {
    const length = this.#words[w + R_TAGS]!;
    if (length === 0) return [];
    const from = at + RECORD_HEADER + this.#words[w + R_KEY]!;
    return this.#bytes.toString('utf8', from, from + length).split('\n');
  }

  /** Live slots (of keys whose target hashes to `uri`, when given) whose record passes `test`, read without the lock (each checked against its generation after). */
  #scan(test: (at: number, w: number) => boolean, uri?: number): { slot: number; gen: number }[] {
    return this.#scanValues((at, w) => (test(at, w) ? true : undefined), uri);
  }

  #scanValues<T>(read: (at: number, w: number) => T | undefined, uri?: number): { slot: number; gen: number; value: T }[] {
    const out: { slot: number; gen: number; value: T }[] = [];
    for (let s = 0; s < this.#slots; s++) {
      if (this.#hash[s] === 0 || (uri !== undefined && this.#uri[s] !== uri)) continue;
      const gen = Atomics.load(this.#gen, s);
      const off8 = Atomics.load(this.#off, s);
      const w = off8 * 2;
      if (gen === 0 || Atomics.load(this.#words, w + R_GEN) !== gen) continue;
      const at = off8 * 8;
      if (!this.#fits(at, w)) continue;
      let value: T | undefined;
      try {
        value = read(at, w);
      } catch {
        continue;
      }
      if (value !== undefined && Atomics.load(this.#words, w + R_GEN) === gen) out.push({ slot: s, gen, value });
    }
    return out;
  }

  // ---- writing (under the lock) ----

  #purgeFound(found: readonly { slot: number; gen: number }[], mode: PurgeMode): number {
    if (found.length === 0) return 0;
    let purged = 0;
    this.#lock();
    try {
      for (const { slot, gen } of found) {
        if (this.#hash[slot] === 0 || this.#gen[slot] !== gen) continue; // replaced or gone since the scan
        this.#purgeSlot(slot, mode);
        purged++;
      }
      Atomics.add(this.#counters, K_PURGES, BigInt(purged));
    } finally {
      this.#unlock();
    }
    return purged;
  }

  #purgeSlot(slot: number, mode: PurgeMode): void {
    if (mode === 'hard') this.#remove(slot);
    else Atomics.or(this.#flags, slot, SOFT_PURGED);
  }

  #owns(variant: SharedVariant): boolean {
    return Atomics.load(this.#hash, variant.slot) === variant.hash && Atomics.load(this.#gen, variant.slot) === variant.gen;
  }

  #tooLarge(): PutResult {
    Atomics.add(this.#counters, K_TOO_LARGE, 1n);
    return { stored: false, reason: 'too-large' };
  }

  #nextGen(): number {
    let gen = (this.#ctrlU[C_GEN]! + 1) >>> 0;
    if (gen === 0) {
      // 2^32 records written: a new epoch, so that this thread's memo cannot take a new record for an old one.
      Atomics.add(this.#ctrlU, C_EPOCH, 1);
      gen = 1;
    }
    Atomics.store(this.#ctrlU, C_GEN, gen);
    return gen;
  }

  /** Writes a record's header (generation still 0), key, tags and metadata at `off8`; returns where its body goes, from the record's start. */
  #writeHead(off8: number, size: number, slot: number, encoded: Encoded, bodyLength: number): number {
    const w = off8 * 2;
    const words = this.#words;
    Atomics.store(words, w + R_GEN, 0);
    words[w + R_SIZE] = size;
    words[w + R_SLOT] = slot;
    words[w + R_KEY] = encoded.key.length;
    words[w + R_TAGS] = encoded.tags.length;
    words[w + R_META] = encoded.meta.length;
    words[w + R_BODY] = bodyLength;
    words[w + R_EPOCH] = this.#ctrlU[C_EPOCH]!;
    let at = off8 * 8 + RECORD_HEADER;
    for (const part of [encoded.key, encoded.tags, encoded.meta]) {
      part.copy(this.#bytes, at);
      at += part.length;
    }
    return at - off8 * 8;
  }

  /** Space allocated and not used: a dead record, so the segment can still be walked. */
  #filler(off8: number, size: number): void {
    Atomics.store(this.#words, off8 * 2 + R_GEN, 0);
    this.#words[off8 * 2 + R_SIZE] = size;
  }

  #publish(slot: number, hash: number, uri: number, off8: number, gen: number, flags: number, hits: number): void {
    Atomics.store(this.#uri, slot, uri);
    Atomics.store(this.#off, slot, off8);
    Atomics.store(this.#gen, slot, gen);
    Atomics.store(this.#flags, slot, flags);
    Atomics.store(this.#hits, slot, hits);
    Atomics.store(this.#stamp, slot, (gen * 2) >>> 0);
    Atomics.store(this.#hash, slot, hash);
  }

  /** Removes a slot's record: the slot first (new lookups skip it), then the record's generation (readers copying it see the change). */
  #remove(slot: number): void {
    const w = this.#off[slot]! * 2;
    const size = this.#words[w + R_SIZE]!;
    Atomics.store(this.#hash, slot, 0);
    Atomics.store(this.#words, w + R_GEN, 0);
    Atomics.store(this.#gen, slot, 0);
    if ((this.#flags[slot]! & EXTENDED) !== 0) Atomics.sub(this.#ctrl, C_EXTENDED, 1);
    Atomics.store(this.#flags, slot, 0);
    Atomics.store(this.#hits, slot, 0);
    Atomics.sub(this.#ctrlU, C_BYTES8, size / 8);
    Atomics.sub(this.#ctrl, C_ENTRIES, 1);
  }

  /** A slot for a new key in its window: a free one, else the least recently used one's (an eviction). */
  #freeSlot(hash: number): number {
    const home = hash & this.#mask;
    let victim = -1;
    for (let i = 0; i < this.#window; i++) {
      const s = (home + i) & this.#mask;
      if (this.#hash[s] === 0) return s;
      if (victim < 0 || colder(this.#flags[s]!, this.#stamp[s]!, this.#flags[victim]!, this.#stamp[victim]!)) victim = s;
    }
    this.#remove(victim);
    Atomics.add(this.#counters, K_EVICTIONS, 1n);
    return victim;
  }

  /** `size` bytes in the open segment (returned / 8); when it is full, the next one opens and, if none is left free, the oldest is emptied. */
  #allocate(size: number): number {
    const segmentSize = this.#segmentSize;
    let open = this.#ctrl[C_OPEN]!;
    let used = this.#used8[open]! * 8;
    if (used + size > segmentSize) {
      const ctrl = this.#ctrl;
      const n = this.#segments;
      // Seal the open segment (the newest in the queue) and open a free one.
      this.#queue[(ctrl[C_QHEAD]! + ctrl[C_QLEN]!) % n] = open;
      ctrl[C_QLEN] = ctrl[C_QLEN]! + 1;
      ctrl[C_FREE] = ctrl[C_FREE]! - 1;
      open = this.#free[ctrl[C_FREE]!]!;
      this.#used8[open] = 0;
      ctrl[C_OPEN] = open;
      if (ctrl[C_FREE] === 0) {
        // None left free: empty the oldest sealed one, which stays free until the open one fills.
        const oldest = this.#queue[ctrl[C_QHEAD]!]!;
        ctrl[C_QHEAD] = (ctrl[C_QHEAD]! + 1) % n;
        ctrl[C_QLEN] = ctrl[C_QLEN]! - 1;
        this.#empty(oldest, open, Math.min(Math.floor(segmentSize / 2), segmentSize - size));
        this.#free[0] = oldest;
        ctrl[C_FREE] = 1;
      }
      used = this.#used8[open]! * 8;
    }
    this.#used8[open] = (used + size) / 8;
    return (open * segmentSize + used) / 8;
  }

  /** Empties a sealed segment: its records hit since they were written move to `into` (up to `budget` bytes), the others are evicted. */
  #empty(segment: number, into: number, budget: number): void {
    const words = this.#words;
    let at = segment * this.#segmentSize;
    const end = at + this.#used8[segment]! * 8;
    let moved = 0;
    while (at < end) {
      const w = at / 4;
      const size = words[w + R_SIZE]!;
      if (size < RECORD_HEADER || size % 8 !== 0 || at + size > end) {
        // A record never finished (its writer died holding the lock): drop what points into this segment.
        this.#dropSlotsIn(segment);
        break;
      }
      const gen = words[w + R_GEN]!;
      if (gen !== 0) {
        const slot = words[w + R_SLOT]!;
        if (slot < this.#slots && this.#hash[slot] !== 0 && this.#gen[slot] === gen && this.#off[slot] === at / 8) {
          if ((this.#flags[slot]! & ACCESSED) !== 0 && moved + size <= budget) {
            this.#move(slot, at, size, into);
            moved += size;
          } else {
            this.#remove(slot);
            Atomics.add(this.#counters, K_EVICTIONS, 1n);
          }
        } else {
          Atomics.store(words, w + R_GEN, 0);
        }
      }
      at += size;
    }
    this.#used8[segment] = 0;
  }

  /** Copies a record forward into segment `into`, same generation, and points its slot there; its accessed mark is spent. */
  #move(slot: number, from: number, size: number, into: number): void {
    const to = into * this.#segmentSize + this.#used8[into]! * 8;
    const gen = this.#words[from / 4 + R_GEN]!;
    Atomics.store(this.#words, to / 4 + R_GEN, 0);
    this.#bytes.copy(this.#bytes, to + 4, from + 4, from + size);
    Atomics.store(this.#words, to / 4 + R_GEN, gen);
    Atomics.store(this.#off, slot, to / 8);
    Atomics.and(this.#flags, slot, ~ACCESSED);
    Atomics.store(this.#words, from / 4 + R_GEN, 0);
    this.#used8[into] = this.#used8[into]! + size / 8;
  }

  #dropSlotsIn(segment: number): void {
    const from = (segment * this.#segmentSize) / 8;
    const to = from + this.#segmentSize / 8;
    for (let s = 0; s < this.#slots; s++) {
      if (this.#hash[s] === 0 || this.#off[s]! < from || this.#off[s]! >= to) continue;
      this.#remove(s);
      Atomics.add(this.#counters, K_EVICTIONS, 1n);
    }
  }

  #lock(): void {
    const ctrl = this.#ctrl;
    if (Atomics.compareExchange(ctrl, C_LOCK, 0, TOKEN) !== 0) this.#wait();
    Atomics.add(ctrl, C_LOCK_SEQ, 1);
  }

  #wait(): void {
    const ctrl = this.#ctrl;
    for (let i = 0; i < LOCK_SPINS; i++) if (Atomics.load(ctrl, C_LOCK) === 0 && Atomics.compareExchange(ctrl, C_LOCK, 0, TOKEN) === 0) return;
    let holder = 0;
    let seq = 0;
    let since = 0;
    for (;;) {
      const now = performance.now();
      const h = Atomics.compareExchange(ctrl, C_LOCK, 0, TOKEN);
      if (h === 0) return;
      if (h === TOKEN) throw new Error('the cache store lock is already held by this thread');
      const s = Atomics.load(ctrl, C_LOCK_SEQ);
      if (h !== holder || s !== seq) {
        holder = h;
        seq = s;
        since = now;
      } else if (now - since > LOCK_TAKEOVER_MS && Atomics.compareExchange(ctrl, C_LOCK, h, TOKEN) === h) {
        Atomics.add(ctrl, C_TAKEOVERS, 1);
        return;
      }
      Atomics.add(ctrl, C_WAITERS, 1);
      Atomics.wait(ctrl, C_LOCK, h, LOCK_WAIT_MS);
      Atomics.sub(ctrl, C_WAITERS, 1);
    }
  }

  #unlock(): void {
    Atomics.store(this.#ctrl, C_LOCK, 0);
    if (Atomics.load(this.#ctrl, C_WAITERS) > 0) Atomics.notify(this.#ctrl, C_LOCK, 1);
  }

  /** A seeded 32-bit hash of the key (cyrb53's mixing), never 0 (an empty slot). */
  #hashOf(key: string): number {
    cyrb53(key, this.#seed1, this.#seed2, HALVES);
    return (HALVES[0]! ^ HALVES[1]!) | 0 || 1;
  }
}

/** Segment size, count and the largest body a segment takes. */
function geometryOf(maxBytes: number, maxObjectSize: number): { segmentSize: number; segments: number; objectLimit: number } {
  let segmentSize = align8(Math.max(maxObjectSize + META_ROOM, Math.ceil(maxBytes / TARGET_SEGMENTS)));
  let room = META_ROOM;
  if (Math.floor(maxBytes / segmentSize) < MIN_SEGMENTS) {
    segmentSize = Math.floor(maxBytes / MIN_SEGMENTS / 8) * 8;
    room = Math.min(META_ROOM, Math.floor(segmentSize / 4));
  }
  return { segmentSize, segments: Math.floor(maxBytes / segmentSize), objectLimit: Math.max(0, Math.min(maxObjectSize, segmentSize - room)) };
}

function metaBytes(segments: number, slots: number): number {
  return TABLES_AT + align8(12 * segments) + 7 * 4 * slots;
}

function align8(n: number): number {
  return Math.ceil(n / 8) * 8;
}

function recordSize(encoded: Encoded, bodyLength: number): number {
  return align8(RECORD_HEADER + encoded.key.length + encoded.tags.length + encoded.meta.length + bodyLength);
}

/** Where the body of the record whose header is at word `w` starts, in bytes. */
function bodyStart(words: Uint32Array, w: number): number {
  return w * 4 + RECORD_HEADER + words[w + R_KEY]! + words[w + R_TAGS]! + words[w + R_META]!;
}

function encode(key: string, tags: readonly string[], vary: readonly string[], requestFields: Fields, response: TimedResponse): Encoded {
  return {
    key: Buffer.from(key),
    tags: Buffer.from(tags.join('\n')),
    meta: Buffer.from(JSON.stringify([response.status, response.requestTime, response.responseTime, vary, requestFields, response.fields])),
  };
}

/** Wrap-aware: stamp `a` is older than `b`. */
function older(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

/** Slot a is a better victim than b: not hit since written, then least recently used. */
function colder(flagsA: number, stampA: number, flagsB: number, stampB: number): boolean {
  const hotA = (flagsA & ACCESSED) !== 0;
  const hotB = (flagsB & ACCESSED) !== 0;
  if (hotA !== hotB) return !hotA;
  return older(stampA, stampB);
}
