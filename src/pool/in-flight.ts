/**
 * In-flight attempts per backend, kept where every data plane and the control
 * plane can read them: least-connections, p2c, peak-EWMA and `maxConnections`
 * must compare a backend's load across all data planes, not one plane's share.
 *
 * The cells live in a `SharedArrayBuffer` laid out as one row per data plane
 * (`[plane][slot]`). Each row has a single writer, its data plane, so an
 * update is a plain `++`/`--` on its own cell, no `Atomics` read-modify-write:
 * no other thread ever writes that cell, and a reader in another thread sees
 * either the value before or after (aligned 32-bit accesses do not tear). A
 * total is the sum of the rows, stale at most by the updates other planes are
 * making at that instant, which a balancer cannot tell from a request that
 * arrived a microsecond later (Envoy's least-request reads its atomic
 * `rq_active` the same way). Measured on Node 24: a start and an end with two
 * reads cost the same ~2 ns as on a plain `Int32Array`; `Atomics.add`/`sub`
 * would cost ~30 ns, and a length-tracking view on a growable buffer ~100 ns,
 * which is why the table reallocates to grow instead.
 *
 * With `runtime.workers: 0` one data plane (the main thread) writes row 0.
 * With worker threads, row 0 stays the main thread's (it serves nothing) and
 * worker slot `i` writes row `1 + i` or `1 + N + i` of the same buffer
 * (alternating across planned restarts, see WorkerGroup), which travels to it
 * with the pool's membership ({@link InFlightTable.shared}, {@link SharedInFlightRow}).
 */

/** One data plane's in-flight accounting for the backends of one pool. */
export interface InFlightCounts {
  /** Attempts in flight on the backend in `slot` in every data plane: what balancers and `maxConnections` compare. */
  total(slot: number): number;
  /** Attempts this data plane has in flight on `slot` (its own upstream connections close when this reaches 0 on a removed backend). */
  own(slot: number): number;
  /** An attempt on `slot` started in this data plane. */
  started(slot: number): void;
  /** An attempt on `slot` ended in this data plane; returns this plane's remaining count there. */
  ended(slot: number): number;
}

/** Slots a new table has room for before it first grows. */
const INITIAL_SLOTS = 16;

/**
 * The in-flight cells of one pool for `planes` data planes. The control plane
 * owns it: it assigns backends their slots and grows the table before it
 * publishes a new slot; each data plane writes through its {@link row}.
 */
export class InFlightTable {
  readonly planes: number;
  #slots: number;
  #cells: Int32Array;
  /** Bumped each time the cells move to a bigger buffer. */
  #version = 0;
  /** Rows handed out: they hold the cells directly (one hop less per update) and are told when the table grows. */
  readonly #rows: InFlightRow[] = [];

  constructor(planes = 1, slots = INITIAL_SLOTS) {
    if (!Number.isInteger(planes) || planes < 1) throw new RangeError(`planes must be an integer >= 1, got ${planes}`);
    this.planes = planes;
    this.#slots = Math.max(1, slots);
    this.#cells = new Int32Array(new SharedArrayBuffer(4 * planes * this.#slots));
  }

  /** Slots the table has room for now. */
  get capacity(): number {
    return this.#slots;
  }

  /** The cells and their layout, for a data plane in another thread. */
  get shared(): SharedInFlight {
    return { buffer: this.#cells.buffer as SharedArrayBuffer, slots: this.#slots, planes: this.planes, version: this.#version };
  }

  /** Zeroes a data plane's row: its thread died, and nothing it had in flight will end. */
  clearRow(plane: number): void {
    this.#cells.fill(0, plane * this.#slots, (plane + 1) * this.#slots);
  }

  /** The counts data plane `plane` writes. */
  row(plane: number): InFlightCounts {
    if (!Number.isInteger(plane) || plane < 0 || plane >= this.planes) throw new RangeError(`plane must be an integer in [0, ${this.planes - 1}], got ${plane}`);
    const row = new InFlightRow(this.#cells, this.#slots, plane);
    this.#rows.push(row);
    return row;
  }

  /** Attempts in flight on `slot` across every data plane. */
  total(slot: number): number {
    const cells = this.#cells;
    const stride = this.#slots;
    let sum = 0;
    for (let i = slot; i < cells.length; i += stride) sum += cells[i]!;
    return sum;
  }

  /**
   * Makes room for slots below `slots`, doubling; counts are kept. Control
   * plane only, before it publishes such a slot. The cells move to a new
   * buffer: in-process that is safe (nothing runs in between); with worker
   * threads it must travel with the membership change that needs the slot.
   */
  reserve(slots: number): void {
    if (slots <= this.#slots) return;
    let size = this.#slots;
    while (size < slots) size *= 2;
    const grown = new Int32Array(new SharedArrayBuffer(4 * this.planes * size));
    for (let plane = 0; plane < this.planes; plane++) grown.set(this.#cells.subarray(plane * this.#slots, (plane + 1) * this.#slots), plane * size);
    this.#cells = grown;
    this.#slots = size;
    this.#version++;
    for (const row of this.#rows) row.moved(grown, size);
  }
}

/** One plane's row: the only writer of its cells. */
class InFlightRow implements InFlightCounts {
  #cells: Int32Array;
  /** Cells per row: the table's capacity. */
  #stride: number;
  /** Index of this row's first cell. */
  #base: number;
  readonly plane: number;

  constructor(cells: Int32Array, stride: number, plane: number) {
    this.plane = plane;
    this.#cells = cells;
    this.#stride = stride;
    this.#base = plane * stride;
  }

  /** The table grew into `cells`. */
  moved(cells: Int32Array, stride: number): void {
    this.#cells = cells;
    this.#stride = stride;
    this.#base = this.plane * stride;
  }

  /** This row's cells (a view). */
  protected ownCells(): Int32Array {
    return this.#cells.subarray(this.#base, this.#base + this.#stride);
  }

  total(slot: number): number {
    const cells = this.#cells;
    const stride = this.#stride;
    let sum = 0;
    for (let i = slot; i < cells.length; i += stride) sum += cells[i]!;
    return sum;
  }

  own(slot: number): number {
    return this.#cells[this.#base + slot]!;
  }

  started(slot: number): void {
    this.#cells[this.#base + slot]!++;
  }

  ended(slot: number): number {
    return --this.#cells[this.#base + slot]!;
  }
}

/** A pool's in-flight cells as they cross to a worker thread. */
export interface SharedInFlight {
  readonly buffer: SharedArrayBuffer;
  /** Cells per row. */
  readonly slots: number;
  readonly planes: number;
  /** Which buffer this is: a received SharedArrayBuffer is a new object each time it is posted. */
  readonly version: number;
}

/**
 * A worker thread's row of a pool's in-flight table. The control plane may
 * move the table to a bigger buffer (a new member needed a slot); the worker
 * then {@link adopt}s it and copies its own row over, since it is that row's
 * only writer and so the only one that knows its latest values.
 */
export class SharedInFlightRow extends InFlightRow {
  #version: number;

  constructor(shared: SharedInFlight, plane: number) {
    super(new Int32Array(shared.buffer), shared.slots, plane);
    this.#version = shared.version;
  }

  /** The table moved to `shared` (a no-op when it did not). */
  adopt(shared: SharedInFlight): void {
    if (shared.version === this.#version) return;
    this.#version = shared.version;
    const cells = new Int32Array(shared.buffer);
    cells.set(this.ownCells(), this.plane * shared.slots);
    this.moved(cells, shared.slots);
  }
}
